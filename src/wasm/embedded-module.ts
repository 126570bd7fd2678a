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
