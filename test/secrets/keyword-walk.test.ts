import { execFileSync } from 'node:child_process';
import fc from 'fast-check';
import { afterEach, describe, expect, it } from 'vitest';
import { keywordsInContent, scanContent, setKeywordWalkForTest } from '../../src/secrets/engine.js';
import { KeywordWalker, WASM_WALK_MAX_BYTES } from '../../src/secrets/keyword-walk.js';
import { BUILTIN_RULES, type SecretRule } from '../../src/secrets/rules.js';

const STRONG = BUILTIN_RULES.filter((r) => !r.fallback);
const KEYWORDS = [...new Set(BUILTIN_RULES.flatMap((r) => r.keywords))].filter(Boolean);

/** keywordsInContent with the WebAssembly walk (where it can) and with the JavaScript walk. */
function bothWays(content: Buffer, rules: readonly SecretRule[]) {
  setKeywordWalkForTest('auto');
  const wasm = keywordsInContent(content, rules);
  setKeywordWalkForTest('js');
  const js = keywordsInContent(content, rules);
  setKeywordWalkForTest('auto');
  return { wasm, js };
}

const sorted = (s: Set<string> | undefined | null) => (s ? [...s].sort() : s);

afterEach(() => setKeywordWalkForTest('auto'));

describe('the keyword walk in WebAssembly', () => {
  it('is built from keyword-walk.wat as committed', () => {
    // Exits 1 with a message when src/secrets/keyword-walk-wasm.ts is stale.
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
    setKeywordWalkForTest('js');
    const js = scanContent(text, { path: 'app/.env' });
    setKeywordWalkForTest('auto');
    const wasm = scanContent(text, { path: 'app/.env' });
    expect(wasm).toEqual(js);
    expect(js.length).toBeGreaterThan(0);
  });
});
