/**
 * Composer (Packagist) ordering: Composer's VersionParser::normalize followed by PHP's
 * version_compare, which is how Composer's constraint matching orders versions.
 *
 * Normalising first matters: raw version_compare says `1.0 < 1.0.0`, but Composer pads every
 * classical version to four numbers and spells stability suffixes one way (`-alpha`, `-beta`,
 * `-RC`, `-patch`, `-dev`), after which version_compare gives dev < alpha < beta < RC < stable <
 * patch. Branch names (`dev-main`) have no order and are rejected.
 */
import { VersionError } from './errors.js';

export type Ordering = -1 | 0 | 1;

/** Composer's modifier regex: optional stability with optional number(s), then optional -dev. */
const MODIFIER = '[._-]?(?:(stable|beta|b|RC|alpha|a|patch|pl|p)((?:[.-]?\\d+)*)?)?([.-]?dev)?';
const CLASSICAL = new RegExp(`^v?(\\d{1,5})(\\.\\d+)?(\\.\\d+)?(\\.\\d+)?${MODIFIER}$`, 'i');
const DATE_BASED = new RegExp(`^v?(\\d{4}(?:[.:-]?\\d{2}){1,6}(?:[.:-]?\\d{1,3}){0,2})${MODIFIER}$`, 'i');
/** Numeric branches such as `2.x-dev` sort as the highest dev version of that line. */
const NUMERIC_BRANCH = /^v?(\d+)(\.(?:\d+|[xX*]))?(\.(?:\d+|[xX*]))?(\.(?:\d+|[xX*]))?$/;

function expandStability(s: string): string {
  switch (s.toLowerCase()) {
    case 'a':
      return 'alpha';
    case 'b':
      return 'beta';
    case 'p':
    case 'pl':
      return 'patch';
    case 'rc':
      return 'RC';
    default:
      return s.toLowerCase();
  }
}

/** Returns Composer's normalised form, or null where Composer would throw or yield a branch. */
export function normaliseComposerVersion(input: string): string | null {
  if (typeof input !== 'string') return null;
  let v = input.trim();
  if (v.length === 0 || /^dev-/i.test(v)) return null;
  // Build metadata is dropped before matching, as Composer does.
  const build = /^([^,\s+]+)\+[^\s]+$/.exec(v);
  if (build !== null) v = build[1] as string;

  // Stability word, its number(s) and the -dev flag: the three MODIFIER groups.
  let matched: { base: string; mods: (string | undefined)[] } | undefined;
  const classical = CLASSICAL.exec(v);
  if (classical !== null) {
    const [, major, minor, patch, build4, ...mods] = classical;
    matched = { base: `${major}${minor || '.0'}${patch || '.0'}${build4 || '.0'}`, mods };
  } else {
    const date = DATE_BASED.exec(v);
    if (date !== null) {
      const [, stamp, ...mods] = date;
      matched = { base: (stamp as string).replace(/\D/g, '.'), mods };
    }
  }
  if (matched !== undefined) {
    const [stability, stabilityNum, dev] = matched.mods;
    let out = matched.base;
    if (stability) {
      if (stability.toLowerCase() === 'stable') return out;
      out += `-${expandStability(stability)}${stabilityNum ? stabilityNum.replace(/^[.-]+/, '') : ''}`;
    }
    if (dev) out += '-dev';
    return out;
  }
  const devBranch = /^(.*?)[.-]?dev$/i.exec(v);
  if (devBranch !== null) {
    const m = NUMERIC_BRANCH.exec(devBranch[1] as string);
    if (m !== null) {
      let out = '';
      for (let i = 1; i < 5; i++) {
        const part = m[i];
        out += part !== undefined ? part.replace(/[*X]/g, 'x') : '.x';
      }
      return `${out.replace(/x/g, '9999999')}-dev`;
    }
  }
  return null;
}

/** PHP's special forms; matched by prefix, in this order. Numbers rank as `#`. */
const SPECIAL_FORMS: ReadonlyArray<readonly [string, number]> = [
  ['dev', 0],
  ['alpha', 1],
  ['a', 1],
  ['beta', 2],
  ['b', 2],
  ['RC', 3],
  ['rc', 3],
  ['#', 4],
  ['pl', 5],
  ['p', 5],
];

function formRank(token: string): number {
  for (const [name, rank] of SPECIAL_FORMS) if (token.startsWith(name)) return rank;
  // Unknown words sort below everything, as in PHP.
  return -6;
}

function sign(n: number): Ordering {
  return n < 0 ? -1 : n > 0 ? 1 : 0;
}

const isNumeric = (t: string): boolean => /^[0-9]/.test(t);

/** php_version_compare on already-normalised strings. */
function phpVersionCompare(a: string, b: string): Ordering {
  const tokens = (s: string): string[] =>
    s.split(/[^0-9A-Za-z]+|(?<=[0-9])(?=[^0-9])|(?<=[^0-9])(?=[0-9])/).filter(Boolean);
  const ta = tokens(a);
  const tb = tokens(b);
  const n = Math.min(ta.length, tb.length);
  for (let i = 0; i < n; i++) {
    const x = ta[i] as string;
    const y = tb[i] as string;
    let r: Ordering;
    if (isNumeric(x) && isNumeric(y)) {
      const bx = BigInt(x);
      const by = BigInt(y);
      r = bx === by ? 0 : bx < by ? -1 : 1;
    } else if (!isNumeric(x) && !isNumeric(y)) r = sign(formRank(x) - formRank(y));
    else r = isNumeric(x) ? sign(4 - formRank(y)) : sign(formRank(x) - 4);
    if (r !== 0) return r;
  }
  // A longer version wins if its next part is a number; otherwise that part is weighed against a
  // number, so `-dev`/`-alpha` tails lose and `-patch` tails win.
  if (ta.length > n) {
    const next = ta[n] as string;
    return isNumeric(next) ? 1 : sign(formRank(next) - 4);
  }
  if (tb.length > n) {
    const next = tb[n] as string;
    return isNumeric(next) ? -1 : sign(4 - formRank(next));
  }
  return 0;
}

export function isValidComposerVersion(v: string): boolean {
  return normaliseComposerVersion(v) !== null;
}

export function compareComposerVersions(a: string, b: string): Ordering {
  const na = normaliseComposerVersion(a);
  if (na === null) throw new VersionError(`invalid Composer version: ${JSON.stringify(a)}`);
  const nb = normaliseComposerVersion(b);
  if (nb === null) throw new VersionError(`invalid Composer version: ${JSON.stringify(b)}`);
  return phpVersionCompare(na, nb);
}
