/**
 * isProbablyBinary's control-byte count in WebAssembly (binary-sniff.wat), sixteen bytes a step.
 * One instance per process, made on first use; its memory holds one head at a time. Where
 * WebAssembly or its SIMD cannot run, the caller counts in JavaScript instead.
 */
import { BINARY_SNIFF_WASM } from './binary-sniff-wasm.js';
import { embeddedInstance } from '../wasm/embedded-module.js';

/** The most bytes one call looks at: isProbablyBinary's window. */
export const SNIFF_WINDOW = 8192;

interface SniffExports {
  readonly memory: WebAssembly.Memory;
  controls(input: number, n: number): number;
}

// One page (64 KiB) holds the window.
const instance = embeddedInstance<SniffExports>(BINARY_SNIFF_WASM);

/**
 * -1 when the first SNIFF_WINDOW bytes of `head` hold a NUL, else how many of them are control
 * bytes (as engine.ts's CONTROL table counts them); undefined when WebAssembly cannot run.
 */
export function controlBytes(head: Uint8Array): number | undefined {
  const s = instance();
  if (!s) return undefined;
  const n = Math.min(head.length, SNIFF_WINDOW);
  s.bytes.set(n === head.length ? head : head.subarray(0, n), 0);
  return s.exports.controls(0, n);
}
