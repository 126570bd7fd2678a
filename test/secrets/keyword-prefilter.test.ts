import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { keywordsIn, keywordsInContent, mayHaveKeywords, scanContent, scanText } from '../../src/secrets/engine.js';
import { BUILTIN_RULES } from '../../src/secrets/rules.js';
import type { SecretRule } from '../../src/secrets/rules.js';
import { FAMILIES } from './corpus.js';
import { Rng } from './gen.js';

// A few letters and regex metacharacters, so keywords overlap, nest as prefixes and need escaping.
const CHARS = ['a', 'b', 'c', '.', '*', '$', '\\', '|'];
const word = (max: number) => fc.array(fc.constantFrom(...CHARS), { maxLength: max }).map((cs) => cs.join(''));

const rule = (keywords: string[], i: number): SecretRule => ({ id: `r${i}`, title: 't', severity: 'low', keywords, regex: /x/g });

/** What the prefilter used to do: one `includes` per keyword. */
function naive(text: string, rules: readonly SecretRule[]): Set<string> | undefined {
  const present = new Set<string>(['']);
  for (const r of rules) for (const k of r.keywords) if (text.includes(k)) present.add(k);
  const runnable = rules.some((r) => r.keywords.length === 0 || r.keywords.some((k) => present.has(k)));
  return runnable ? present : undefined;
}

describe('the secret keyword prefilter', () => {
  it('finds exactly the keywords that one includes() per keyword finds', () => {
    fc.assert(
      fc.property(fc.array(fc.array(word(4), { maxLength: 4 }), { minLength: 1, maxLength: 6 }), word(40), (lists, text) => {
        const rules = lists.map(rule);
        const got = keywordsIn(text, rules);
        const want = naive(text, rules);
        if (want === undefined) {
          // No rule can run: the fast path may say so, or list only keywords no rule needs.
          if (got !== undefined) for (const r of rules) expect(r.keywords.length > 0 && !r.keywords.some((k) => got.has(k))).toBe(true);
          return;
        }
        expect(got).toBeDefined();
        for (const r of rules) for (const k of r.keywords) expect(got!.has(k), `keyword ${JSON.stringify(k)} in ${JSON.stringify(text)}`).toBe(want.has(k));
      }),
      { numRuns: 3000 },
    );
  });

  it('never skips a text whose lower-cased copy holds a keyword (any case, Kelvin sign, dotted I)', () => {
    // Upper and lower case letters, U+212A (lower-cases to "k") and U+0130 (lower-cases to two units).
    const MIXED = ['a', 'A', 'b', 'B', 'k', 'K', '\u212a', '\u0130', 'i', '.', '*', '$', '\\', '|'];
    const lowerWord = (max: number) => fc.array(fc.constantFrom('a', 'b', 'k', 'i', '.', '*', '$', '\\', '|'), { minLength: 1, maxLength: max }).map((cs) => cs.join(''));
    const mixed = fc.array(fc.constantFrom(...MIXED), { maxLength: 40 }).map((cs) => cs.join(''));
    const lowerSameLength = (t: string) => (t.toLowerCase().length === t.length ? t.toLowerCase() : t.replace(/[A-Z]+/g, (x) => x.toLowerCase()));
    fc.assert(
      fc.property(fc.array(fc.array(lowerWord(4), { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }), mixed, (lists, text) => {
        const rules = lists.map(rule);
        if (keywordsIn(lowerSameLength(text), rules) !== undefined) expect(mayHaveKeywords(text, rules), JSON.stringify(text)).toBe(true);
      }),
      { numRuns: 3000 },
    );
    expect(mayHaveKeywords('nothing to see', BUILTIN_RULES)).toBe(false);
    expect(mayHaveKeywords('AKIA', BUILTIN_RULES)).toBe(true);
    expect(mayHaveKeywords('a\u212aia', BUILTIN_RULES)).toBe(true);
  });

  it('scanContent finds what scanText finds on the UTF-8 decoding, for any bytes', () => {
    // Keyword letters in both cases, U+212A and U+0130 in UTF-8, broken sequences, text around.
    const pieces = ['a', 'A', 'k', 'K', 'i', 'I', 'b', '=', ' ', '\n', '\u212a', '\u0130', 'é', 'ghp_', 'GHP_', 'aKia', 'npm_', 'x'.repeat(36)];
    const piece = fc.oneof(
      fc.constantFrom(...pieces).map((p) => Buffer.from(p, 'utf8')),
      fc.constantFrom([0xff], [0xc3], [0xe2, 0x84], [0xe2], [0x84, 0xaa]).map((b) => Buffer.from(b)),
    );
    const content = fc.array(piece, { maxLength: 24 }).map((ps) => Buffer.concat(ps));
    // Keywords that overlap and nest (output links), one with an A-Z letter (never in the lower-cased
    // copy), and a validator that reads the lower-cased copy (made lazily on the byte path).
    const userRules = fc
      .array(fc.array(fc.constantFrom('ak', 'aki', 'kia', 'ghp_', 'npm', 'b=', 'i', 'Ak'), { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 4 })
      .map((lists) =>
        lists.map(
          (keywords, i): SecretRule => ({
            id: `u${i}`,
            title: 't',
            severity: 'low',
            keywords,
            regex: /[A-Za-z\u212a]{2,}/g,
            validate: i % 2 === 0 ? undefined : (secret, c) => c.lower.slice(c.index, c.index + secret.length) !== secret && c.positionsOf('k').length % 2 === 0,
          }),
        ),
      );
    fc.assert(
      fc.property(content, fc.option(userRules, { nil: undefined }), (bytes, rules) => {
        const want = scanText(bytes.toString('utf8'), { path: 'etc/app.conf' }, rules);
        expect(scanContent(bytes, { path: 'etc/app.conf' }, rules), JSON.stringify(bytes.toString('latin1'))).toEqual(want);
      }),
      { numRuns: 3000 },
    );
  });

  it('finds on the bytes exactly the keywords keywordsIn finds on the lower-cased decoding', () => {
    const lowerSameLength = (t: string) => (t.toLowerCase().length === t.length ? t.toLowerCase() : t.replace(/[A-Z]+/g, (x) => x.toLowerCase()));
    const letters = ['a', 'b', 'k', 'i', '_'];
    const keyword = fc.array(fc.constantFrom(...letters, 'A', 'K'), { minLength: 1, maxLength: 4 }).map((cs) => cs.join(''));
    const piece = fc.oneof(
      fc.constantFrom(...letters, 'A', 'B', 'K', 'I', '\u0130', '\u212a', 'é', '\n').map((p) => Buffer.from(p, 'utf8')),
      fc.constantFrom([0xff], [0xc3], [0xe2, 0x84], [0x84, 0xaa]).map((b) => Buffer.from(b)),
    );
    const content = fc.array(piece, { maxLength: 40 }).map((ps) => Buffer.concat(ps));
    fc.assert(
      fc.property(fc.array(fc.array(keyword, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 6 }), content, (lists, bytes) => {
        const rules = lists.map(rule);
        const got = keywordsInContent(bytes, rules);
        if (got === null) return; // left to scanText (the bytes hold U+212A)
        expect(got, JSON.stringify(bytes.toString('latin1'))).toEqual(keywordsIn(lowerSameLength(bytes.toString('utf8')), rules));
      }),
      { numRuns: 5000 },
    );
    expect(keywordsInContent(Buffer.from('xx AKIA eyJ pwd'), BUILTIN_RULES)).toEqual(new Set(['', 'akia', 'eyj', 'pwd']));
  });

  // keywordLead: the rule's regex is tried only at the places its promise leaves open. These
  // compare with the same rules searching the whole text (keywordLead removed).
  const unanchored = (rules: readonly SecretRule[]) => rules.map((r) => ({ ...r, keywordLead: undefined }));

  it('finds with keywordLead what a search through the whole text finds (rules that keep the promise)', () => {
    const kw = fc.constantFrom('ab', 'ba', 'abc', 'c', 'bb');
    const text = fc.array(fc.constantFrom('a', 'b', 'c', 'A', 'B', 'C', '.', ' ', '\n'), { maxLength: 60 }).map((cs) => cs.join(''));
    const spec = fc.record({ keywords: fc.uniqueArray(kw, { minLength: 1, maxLength: 3 }), lead: fc.integer({ min: 0, max: 3 }), tail: fc.integer({ min: 0, max: 4 }), ci: fc.boolean() });
    fc.assert(
      fc.property(fc.array(spec, { minLength: 1, maxLength: 3 }), text, (specs, t) => {
        // Up to `lead` characters, then a keyword: every match starts at most `lead` before one.
        const rules = specs.map(
          ({ keywords, lead, tail, ci }, i): SecretRule => ({
            id: `k${i}`,
            title: 't',
            severity: 'low',
            keywords,
            regex: new RegExp(`[a-c. ]{0,${lead}}(?:${keywords.join('|')})[a-c.]{0,${tail}}`, ci ? 'gi' : 'g'),
            keywordLead: lead,
            validate: (secret) => secret.length % 3 !== 1,
          }),
        );
        const want = scanText(t, { path: 'etc/app.conf' }, unanchored(rules));
        expect(scanText(t, { path: 'etc/app.conf' }, rules), JSON.stringify(t)).toEqual(want);
        expect(scanContent(Buffer.from(t), { path: 'etc/app.conf' }, rules), JSON.stringify(t)).toEqual(want);
      }),
      { numRuns: 5000 },
    );
  });

  it('finds with the built-in keywordLead values what a search through the whole text finds', () => {
    // Labelled corpus cases, joined, with key names re-cased and client_secret-style prefixes.
    const rng = new Rng(0x1ead);
    const cases = FAMILIES.flatMap((f) => [...f.positives(rng), ...f.negatives(rng)]).map((c) => c.text);
    const recase = (t: string, seed: number) => t.replace(/[A-Za-z]/g, (c, i: number) => ((i * 7 + seed) % 5 === 0 ? (c === c.toLowerCase() ? c.toUpperCase() : c.toLowerCase()) : c));
    const piece = fc.oneof(
      fc.constantFrom(...cases),
      fc.tuple(fc.constantFrom(...cases), fc.nat()).map(([c, seed]) => recase(c, seed)),
      fc.constantFrom('client_', 'Client-', 'CLIENT', 'x', 'secret', 'pwd', ' ', '\n', '=', ': "', 'eyJ', 'AKIA', 'api_', 'Access-'),
    );
    const all = unanchored(BUILTIN_RULES);
    expect(BUILTIN_RULES.filter((r) => r.keywordLead !== undefined).length).toBeGreaterThan(0);
    fc.assert(
      fc.property(fc.array(piece, { minLength: 1, maxLength: 12 }), (pieces) => {
        const t = pieces.join('');
        const want = scanText(t, { path: 'etc/app.conf' }, all);
        expect(scanText(t, { path: 'etc/app.conf' }), t).toEqual(want);
        expect(scanContent(Buffer.from(t), { path: 'etc/app.conf' }), t).toEqual(want);
      }),
      { numRuns: 1500 },
    );
  });
});
