/**
 * Alpine package version ordering (Alpine, Wolfi, Chainguard), following the grammar and rules of
 * current apk-tools:
 *
 *   digits{.digits}...{letter}{_suffix{digits}}...{~hexhash}{-rdigits}
 *
 * The string is read as a sequence of typed tokens. Two versions are compared token by token
 * while the token kinds agree; when one version runs into a different kind of token first, the
 * kind decides (a longer version is newer, except that a pre-release suffix makes it older).
 */
import { VersionError } from './errors.js';

/**
 * Token kinds in grammar order. The order matters: it is both the order in which tokens may
 * appear and the tie-break when two versions diverge in kind (the *lower* kind is newer, because
 * it means that version still had more release components left).
 */
const enum Kind {
  InitialDigit = 0,
  Digit = 1,
  Letter = 2,
  Suffix = 3,
  SuffixNumber = 4,
  CommitHash = 5,
  Revision = 6,
  End = 7,
}

/** Suffix ranks: pre-release ones are negative (older than no suffix), post-release positive. */
const SUFFIX_RANK: Readonly<Record<string, number>> = {
  alpha: -4,
  beta: -3,
  pre: -2,
  rc: -1,
  cvs: 1,
  svn: 2,
  git: 3,
  hg: 4,
  p: 5,
};

interface Token {
  kind: Kind;
  /** Raw text: digits for numeric kinds, the letter, the suffix name or the hash. */
  text: string;
}

/** Splits a version into tokens, or returns null if it breaks the grammar anywhere. */
function tokenize(v: string): Token[] | null {
  if (typeof v !== 'string') return null;
  const first = /^[0-9]+/.exec(v);
  if (first === null) return null;
  const tokens: Token[] = [{ kind: Kind.InitialDigit, text: first[0] }];
  let prev: Kind = Kind.InitialDigit;
  let i = first[0].length;

  while (i < v.length) {
    const c = v[i] as string;
    const rest = v.slice(i);
    let m: RegExpExecArray | null;
    let next: Token;
    if (c >= 'a' && c <= 'z') {
      // A single lowercase letter, only straight after the numeric part.
      if (prev > Kind.Digit) return null;
      next = { kind: Kind.Letter, text: c };
      i += 1;
    } else if (c === '.') {
      if (prev > Kind.Digit || (m = /^\.([0-9]+)/.exec(rest)) === null) return null;
      next = { kind: Kind.Digit, text: m[1] as string };
      i += m[0].length;
    } else if (c >= '0' && c <= '9') {
      // Digits can only start a token here as the number of a suffix (e.g. `_rc2`); after a
      // numeric component they would already have been consumed.
      if (prev !== Kind.Suffix || (m = /^[0-9]+/.exec(rest)) === null) return null;
      next = { kind: Kind.SuffixNumber, text: m[0] };
      i += m[0].length;
    } else if (c === '_') {
      if (prev > Kind.SuffixNumber || (m = /^_([a-z]*)/.exec(rest)) === null) return null;
      const name = m[1] as string;
      if (!Object.hasOwn(SUFFIX_RANK, name)) return null;
      next = { kind: Kind.Suffix, text: name };
      i += m[0].length;
    } else if (c === '~') {
      // Commit hash (lowercase hex), compared as a plain string.
      if (prev >= Kind.CommitHash || (m = /^~([0-9a-f]+)/.exec(rest)) === null) return null;
      next = { kind: Kind.CommitHash, text: m[1] as string };
      i += m[0].length;
    } else if (c === '-') {
      if (prev >= Kind.Revision || (m = /^-r([0-9]+)/.exec(rest)) === null) return null;
      next = { kind: Kind.Revision, text: m[1] as string };
      i += m[0].length;
    } else {
      return null;
    }
    tokens.push(next);
    prev = next.kind;
  }
  return tokens;
}

export function isValidAlpineVersion(v: string): boolean {
  return tokenize(v) !== null;
}

function sign(n: number): -1 | 0 | 1 {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

/** Numeric comparison of digit strings of any length (apk uses 64-bit integers). */
function compareNumbers(a: string, b: string): -1 | 0 | 1 {
  const x = a.replace(/^0+/, '');
  const y = b.replace(/^0+/, '');
  if (x.length !== y.length) return x.length < y.length ? -1 : 1;
  return x < y ? -1 : x > y ? 1 : 0;
}

/** Byte-wise comparison where a proper prefix sorts first. */
function compareStrings(a: string, b: string): -1 | 0 | 1 {
  return a < b ? -1 : a > b ? 1 : 0;
}

function compareTokens(a: Token, b: Token): -1 | 0 | 1 {
  switch (a.kind) {
    case Kind.Digit:
      // A later component with a leading zero is a decimal fraction in Gentoo's scheme, so
      // 1.05 < 1.1 and 1.001 < 1.01: compare those as strings rather than as numbers.
      if (a.text.startsWith('0') || b.text.startsWith('0')) return compareStrings(a.text, b.text);
      return compareNumbers(a.text, b.text);
    case Kind.InitialDigit:
    case Kind.SuffixNumber:
    case Kind.Revision:
      return compareNumbers(a.text, b.text);
    case Kind.Suffix:
      return sign((SUFFIX_RANK[a.text] as number) - (SUFFIX_RANK[b.text] as number));
    default:
      // Letter and commit hash.
      return compareStrings(a.text, b.text);
  }
}

function tokenizeOrThrow(v: string): Token[] {
  const t = tokenize(v);
  if (t === null) throw new VersionError(`invalid Alpine version: ${JSON.stringify(v)}`);
  return t;
}

const END: Token = { kind: Kind.End, text: '' };

export function compareAlpineVersions(a: string, b: string): -1 | 0 | 1 {
  const ta = tokenizeOrThrow(a);
  const tb = tokenizeOrThrow(b);
  for (let i = 0; ; i++) {
    const x = ta[i] ?? END;
    const y = tb[i] ?? END;
    if (x.kind !== y.kind) {
      // Equal so far, diverging in kind. A pre-release suffix makes its side older than
      // whatever the other side has (1.0_rc1 < 1.0 and < 1.0-r1); otherwise the side whose
      // next token comes earlier in the grammar carries more release detail and is newer
      // (1.0.1 > 1.0a > 1.0_p1 > 1.0-r5 > 1.0).
      if (x.kind === Kind.Suffix && (SUFFIX_RANK[x.text] as number) < 0) return -1;
      if (y.kind === Kind.Suffix && (SUFFIX_RANK[y.text] as number) < 0) return 1;
      return x.kind > y.kind ? -1 : 1;
    }
    if (x.kind === Kind.End) return 0;
    const c = compareTokens(x, y);
    if (c !== 0) return c;
  }
}
