/**
 * The keyword automaton's byte walk in WebAssembly (keyword-walk.wat), about twice as fast as the
 * same loop in JavaScript. One instance per automaton: its table sits at the start of the
 * instance's own memory, and each text is copied in after it. Where WebAssembly is missing or a
 * text is too large or has too many keyword ends, the caller walks in JavaScript instead, with the
 * same result.
 */
import { KEYWORD_WALK_WASM } from './keyword-walk-wasm.js';
import { embeddedModule } from '../wasm/embedded-module.js';

/** Accepting states recorded per text before the walk gives up and the caller walks in JavaScript. */
const MAX_HITS = 4096;
/**
 * Texts above this are walked in JavaScript rather than grow the instance's memory for them (which
 * never shrinks). Twice the layer analyser's limit on files it searches (SECRET_MAX_FILE_BYTES).
 */
export const WASM_WALK_MAX_BYTES = 4 << 20;
const PAGE = 65536;

interface WalkExports {
  readonly memory: WebAssembly.Memory;
  walk(next: number, cls: number, input: number, n: number, mid: number, j: number, hits: number, max: number): number;
}

const walkModule = embeddedModule(KEYWORD_WALK_WASM);

export class KeywordWalker {
  private readonly exports: WalkExports;
  private readonly classAt: number;
  private readonly hitsAt: number;
  private readonly inputAt: number;
  private bytes: Uint8Array;

  private constructor(instance: WebAssembly.Instance, next: Int32Array, classOf: Uint8Array) {
    this.exports = instance.exports as unknown as WalkExports;
    this.classAt = next.byteLength;
    this.hitsAt = this.classAt + 256;
    this.inputAt = this.hitsAt + MAX_HITS * 4;
    this.grow(this.inputAt + PAGE);
    new Int32Array(this.exports.memory.buffer, 0, next.length).set(next);
    this.bytes = new Uint8Array(this.exports.memory.buffer);
    this.bytes.set(classOf, this.classAt);
  }

  /** A walker for this table, or undefined when WebAssembly cannot run here. */
  static create(next: Int32Array, classOf: Uint8Array): KeywordWalker | undefined {
    const module = walkModule();
    if (module === null) return undefined;
    try {
      return new KeywordWalker(new WebAssembly.Instance(module), next, classOf);
    } catch {
      return undefined;
    }
  }

  private grow(size: number): void {
    const { memory } = this.exports;
    if (memory.buffer.byteLength < size) memory.grow(Math.ceil((size - memory.buffer.byteLength) / PAGE));
  }

  /**
   * The accepting states the two walks over `text` reach (as automatonKeywordsInBytes's walks
   * would; repeats kept), an empty array for none, or undefined when this walker cannot say
   * (text over WASM_WALK_MAX_BYTES, or more than MAX_HITS keyword ends).
   */
  acceptingStates(text: Uint8Array, mid: number, secondStart: number): Int32Array | undefined {
    if (text.length > WASM_WALK_MAX_BYTES) return undefined;
    if (this.inputAt + text.length > this.bytes.length) {
      this.grow(this.inputAt + text.length);
      this.bytes = new Uint8Array(this.exports.memory.buffer);
    }
    this.bytes.set(text, this.inputAt);
    const count = this.exports.walk(0, this.classAt, this.inputAt, text.length, mid, secondStart, this.hitsAt, MAX_HITS);
    if (count > MAX_HITS) return undefined;
    return new Int32Array(this.exports.memory.buffer, this.hitsAt, count);
  }
}
