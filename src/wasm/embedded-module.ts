/**
 * Compiles one of the project's embedded WebAssembly modules (base64 in a `*-wasm.ts` file) on
 * first use. The getter returns null where it cannot run (no WebAssembly under --jitless, or a
 * feature such as SIMD missing), and its caller falls back to JavaScript.
 */
export function embeddedModule(base64: string): () => WebAssembly.Module | null {
  let compiled: WebAssembly.Module | null | undefined;
  return () => {
    if (compiled === undefined) {
      try {
        compiled = new WebAssembly.Module(Buffer.from(base64, 'base64'));
      } catch {
        compiled = null;
      }
    }
    return compiled;
  };
}

/** One instance of a module whose memory never grows, with a byte view of that memory. */
export interface EmbeddedInstance<E> {
  readonly exports: E;
  readonly bytes: Uint8Array;
}

/**
 * The process's one instance of an embedded module, made on first use; null where it cannot run.
 * For kernels that take their input copied into the start of their memory, one call at a time.
 */
export function embeddedInstance<E extends { readonly memory: WebAssembly.Memory }>(
  base64: string,
): () => EmbeddedInstance<E> | null {
  const module = embeddedModule(base64);
  let instance: EmbeddedInstance<E> | null | undefined;
  return () => {
    if (instance === undefined) {
      const compiled = module();
      const exports = compiled && (new WebAssembly.Instance(compiled).exports as unknown as E);
      // The memory never grows, so this view stays valid.
      instance = exports ? { exports, bytes: new Uint8Array(exports.memory.buffer) } : null;
    }
    return instance;
  };
}
