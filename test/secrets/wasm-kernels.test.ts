import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { isProbablyBinary, keywordsInContent, scanContent, setWasmForTest } from '../../src/secrets/engine.js';
import { controlBytes, SNIFF_WINDOW } from '../../src/secrets/binary-sniff.js';
import { KeywordWalker, WASM_WALK_MAX_BYTES } from '../../src/secrets/keyword-walk.js';
import { BUILTIN_RULES, type SecretRule } from '../../src/secrets/rules.js';

const STRONG = BUILTIN_RULES.filter((r) => !r.fallback);
const KEYWORDS = [...new Set(BUILTIN_RULES.flatMap((r) => r.keywords))].filter(Boolean);

/** keywordsInContent with the WebAssembly walk (where it can) and with the JavaScript walk. */
function bothWays(content: Buffer, rules: readonly SecretRule[]) {
  setWasmForTest('auto');
  const wasm = keywordsInContent(content, rules);
  setWasmForTest('js');
  const js = keywordsInContent(content, rules);
  setWasmForTest('auto');
  return { wasm, js };
}

const sorted = (s: Set<string> | undefined | null) => (s ? [...s].sort() : s);

afterEach(() => setWasmForTest('auto'));

describe('the keyword walk in WebAssembly', () => {
  it('is built from keyword-walk.wat and binary-sniff.wat as committed', () => {
    // Exits 1 with a message when a src/secrets/*-wasm.ts module is stale.
    expect(() => execFileSync(process.execPath, ['scripts/build-wasm.mjs', '--check'], { stdio: 'pipe' })).not.toThrow();
  });

  it('runs here, so the tests below compare two different walks', () => {
    const walker = KeywordWalker.create(Int32Array.of(0), Uint8Array.from({ length: 256 }, () => 0));
    expect(walker).toBeDefined();
    expect(walker!.acceptingStates(Buffer.from('plain text'), 5, 5)).toEqual(new Int32Array(0));
    // Beyond its size limit it declines, and the caller walks in JavaScript.
    expect(walker!.acceptingStates(Buffer.alloc(WASM_WALK_MAX_BYTES + 1), 0, 0)).toBeUndefined();
  });

  it('finds the same keywords as the JavaScript walk, at any length and on either side of the middle', () => {
    // Keyword pieces in both cases, bytes that are no keyword letter, non-ASCII and broken UTF-8.
    const piece = fc.oneof(
      { weight: 3, arbitrary: fc.constantFrom(...KEYWORDS, ...KEYWORDS.map((k) => k.toUpperCase())).map((k) => Buffer.from(k)) },
      { weight: 5, arbitrary: fc.string({ maxLength: 60 }).map((t) => Buffer.from(t, 'utf8')) },
      { weight: 1, arbitrary: fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b)) },
      { weight: 1, arbitrary: fc.constantFrom('x'.repeat(4000), 'a'.repeat(333)).map((t) => Buffer.from(t)) },
    );
    fc.assert(
      fc.property(fc.array(piece, { maxLength: 40 }), fc.boolean(), (pieces, strongOnly) => {
        const content = Buffer.concat(pieces);
        const { wasm, js } = bothWays(content, strongOnly ? STRONG : BUILTIN_RULES);
        expect(sorted(wasm)).toEqual(sorted(js));
      }),
      { numRuns: 1500 },
    );
  });

  it('finds a keyword that straddles the middle, ends the text, or starts it', () => {
    for (const k of ['ghp_', 'akia', 'private key-----', 'hooks.slack.com']) {
      for (const at of ['start', 'middle', 'end'] as const) {
        const filler = 'z'.repeat(1001);
        const text = at === 'start' ? k + filler : at === 'end' ? filler + k : filler.slice(0, 500 - (k.length >> 1)) + k + filler;
        const { wasm, js } = bothWays(Buffer.from(text), BUILTIN_RULES);
        expect(wasm?.has(k), `${k} at ${at}`).toBe(true);
        expect(sorted(wasm)).toEqual(sorted(js));
      }
    }
    expect(bothWays(Buffer.alloc(0), BUILTIN_RULES)).toEqual({ wasm: undefined, js: undefined });
  });

  it('hands a text with very many keyword ends to the JavaScript walk, with the same answer', () => {
    const content = Buffer.from('ghp_ token npm_ '.repeat(3000));
    const { wasm, js } = bothWays(content, BUILTIN_RULES);
    expect(sorted(wasm)).toEqual(sorted(js));
    expect(wasm?.has('ghp_') && wasm.has('npm_') && wasm.has('token')).toBe(true);
  });

  it('leaves the findings of a scan unchanged', () => {
    const text = Buffer.from(
      `# config\nexport GITHUB_TOKEN=ghp_${'A1b2C3d4E5f6G7h8I9j0'.repeat(2).slice(0, 36)}\n${'const x = 1;\n'.repeat(200)}password = "s3cr3t-Value-9x!"\n`,
    );
    setWasmForTest('js');
    const js = scanContent(text, { path: 'app/.env' });
    setWasmForTest('auto');
    const wasm = scanContent(text, { path: 'app/.env' });
    expect(wasm).toEqual(js);
    expect(js.length).toBeGreaterThan(0);
  });
});

describe('the binary sniff in WebAssembly', () => {
  const sniffBothWays = (head: Buffer) => {
    setWasmForTest('auto');
    const wasm = isProbablyBinary(head);
    setWasmForTest('js');
    const js = isProbablyBinary(head);
    setWasmForTest('auto');
    return { wasm, js };
  };

  it('runs here', () => {
    expect(controlBytes(Buffer.from('text\twith\ttabs\n'))).toBe(0);
    expect(controlBytes(Buffer.from('a\u0001b\u007f'))).toBe(2);
    expect(controlBytes(Buffer.from('ends in NUL\u0000'))).toBe(-1);
  });

  it('decides as the JavaScript count does, at any length, offset and mix of control bytes', () => {
    // Text, each control byte the rule names or spares, NUL, and high bytes; a random start offset
    // so the JavaScript count's word alignment varies too.
    const special = [0, 1, 8, 9, 10, 11, 12, 13, 14, 26, 27, 28, 31, 32, 126, 127, 128, 255];
    const bytes = fc.array(
      fc.oneof({ weight: 6, arbitrary: fc.integer({ min: 32, max: 126 }) }, { weight: 2, arbitrary: fc.constantFrom(...special) }, { weight: 1, arbitrary: fc.integer({ min: 0, max: 255 }) }),
      { maxLength: 300 },
    );
    fc.assert(
      fc.property(bytes, fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 40 }), (body, offset, repeat) => {
        const whole = Buffer.concat([Buffer.alloc(offset, 0x41), ...Array.from({ length: repeat + 1 }, () => Buffer.from(body))]);
        const head = whole.subarray(offset);
        const { wasm, js } = sniffBothWays(head);
        expect(wasm).toBe(js);
      }),
      { numRuns: 2000 },
    );
  });

  it('looks at the first 8 KiB only, as before', () => {
    const text = Buffer.alloc(SNIFF_WINDOW, 0x61);
    const late = Buffer.concat([text, Buffer.alloc(100, 0)]);
    expect(sniffBothWays(late)).toEqual({ wasm: false, js: false });
    const early = Buffer.concat([text.subarray(0, SNIFF_WINDOW - 1), Buffer.alloc(100, 0)]);
    expect(sniffBothWays(early)).toEqual({ wasm: true, js: true });
    // Just over and just under 10 % control bytes.
    const mix = (controls: number) => Buffer.concat([Buffer.alloc(controls, 0x01), Buffer.alloc(1000 - controls, 0x61)]);
    expect(sniffBothWays(mix(101))).toEqual({ wasm: true, js: true });
    expect(sniffBothWays(mix(100))).toEqual({ wasm: false, js: false });
  });
});
