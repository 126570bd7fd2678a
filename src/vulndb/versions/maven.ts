/**
 * Maven version ordering: a re-implementation of maven-artifact's ComparableVersion (3.x), which
 * is what Maven itself uses to resolve ranges and therefore what Maven advisories assume.
 *
 * The model: a version is a list of items. `.` separates items within a list; `-` and every
 * digit/letter transition open a nested sub-list, so `1.0-rc1` is [1, [rc, [1]]]. Trailing "null"
 * items (0, the empty qualifier and its aliases, empty lists) are dropped from every list, which is
 * how `1.0.0 == 1` and `1-ga == 1`. When one list runs out, the other's next item is compared with
 * "null", which decides `1-SNAPSHOT < 1 < 1-sp` and `1 < 1.1`.
 */
import { VersionError } from './errors.js';

export type Ordering = -1 | 0 | 1;

type Item =
  | { readonly kind: 'int'; readonly value: bigint }
  | { readonly kind: 'str'; readonly value: string }
  | { readonly kind: 'list'; readonly items: Item[] };

/** Known qualifiers in ascending order; '' is the release itself. */
const QUALIFIERS = ['alpha', 'beta', 'milestone', 'rc', 'snapshot', '', 'sp'];
const ALIASES: Readonly<Record<string, string>> = { ga: '', final: '', release: '', cr: 'rc' };
const RELEASE_INDEX = String(QUALIFIERS.indexOf(''));

/**
 * Maven orders qualifiers by comparing these keys as strings: known ones by their index, unknown
 * ones after all known ones (`7-foo` > `6`) and lexically among themselves.
 */
function comparableQualifier(q: string): string {
  const i = QUALIFIERS.indexOf(q);
  return i === -1 ? `${QUALIFIERS.length}-${q}` : String(i);
}

function cmpStr(x: string, y: string): Ordering {
  return x === y ? 0 : x < y ? -1 : 1;
}

function stringItem(raw: string, followedByDigit: boolean): Item {
  let value = raw;
  // `a1`, `b1`, `m1` are shorthands only when a number follows directly.
  if (followedByDigit && value.length === 1) {
    if (value === 'a') value = 'alpha';
    else if (value === 'b') value = 'beta';
    else if (value === 'm') value = 'milestone';
  }
  return { kind: 'str', value: ALIASES[value] ?? value };
}

function isNull(item: Item): boolean {
  switch (item.kind) {
    case 'int':
      return item.value === 0n;
    case 'str':
      return comparableQualifier(item.value) === RELEASE_INDEX;
    case 'list':
      return item.items.length === 0;
  }
}

/**
 * Drops trailing null items. Like Maven, it keeps scanning past non-null sub-lists, so a null
 * sitting just before a sub-list is dropped too (`1-ga-1` becomes [1, [[1]]]). That quirk is
 * Maven's own and is kept so that we order exactly as Maven resolves.
 */
function normalise(list: Item[]): void {
  for (let i = list.length - 1; i >= 0; i--) {
    const item = list[i] as Item;
    if (isNull(item)) list.splice(i, 1);
    else if (item.kind !== 'list') break;
  }
}

const DIGIT = /[0-9]/;

function parse(version: string): Item[] {
  const v = version.toLowerCase();
  const root: Item[] = [];
  let list = root;
  const stack: Item[][] = [root];
  let isDigit = false;
  let start = 0;
  const openSubList = (): void => {
    const next: Item[] = [];
    list.push({ kind: 'list', items: next });
    list = next;
    stack.push(next);
  };
  /**
   * Maven 3.9 treats a trailing `.X` qualifier like `-X`; the POM spec says `.qualifier` equals
   * `-qualifier` everywhere. We apply it everywhere: without it `4.b < 4-alpha < 4 < 4.b` and the
   * ordering is not transitive, which would make range matching depend on comparison order.
   */
  const pushQualifier = (raw: string, followedByDigit: boolean, tokenStart: number): void => {
    if (tokenStart > 0 && v[tokenStart - 1] === '.' && list.length > 0) openSubList();
    list.push(stringItem(raw, followedByDigit));
  };
  const pushToken = (tokenStart: number, end: number): void => {
    if (end === tokenStart) list.push({ kind: 'int', value: 0n });
    else if (isDigit) list.push({ kind: 'int', value: BigInt(v.slice(tokenStart, end)) });
    else pushQualifier(v.slice(tokenStart, end), false, tokenStart);
  };
  for (let i = 0; i < v.length; i++) {
    const c = v[i] as string;
    if (c === '.' || c === '-') {
      // An empty token (`1..2`, `1-`) stands for 0.
      pushToken(start, i);
      start = i + 1;
      if (c === '-') openSubList();
    } else if (DIGIT.test(c)) {
      if (!isDigit && i > start) {
        pushQualifier(v.slice(start, i), true, start);
        start = i;
        openSubList();
      }
      isDigit = true;
    } else {
      if (isDigit && i > start) {
        list.push({ kind: 'int', value: BigInt(v.slice(start, i)) });
        start = i;
        openSubList();
      }
      isDigit = false;
    }
  }
  if (v.length > start) pushToken(start, v.length);
  // Innermost lists first, so an emptied sub-list is itself removed by its parent.
  for (let i = stack.length - 1; i >= 0; i--) normalise(stack[i] as Item[]);
  return root;
}

/** Compares an item with another, or with "null" (the padding when a list runs out). */
function compareItem(a: Item, b: Item | null): Ordering {
  switch (a.kind) {
    case 'int':
      if (b === null) return a.value === 0n ? 0 : 1;
      if (b.kind === 'int') return a.value === b.value ? 0 : a.value < b.value ? -1 : 1;
      // `1.1 > 1-sp` and `1.1 > 1-1`: a number outranks any qualifier or sub-list.
      return 1;
    case 'str':
      if (b === null) return cmpStr(comparableQualifier(a.value), RELEASE_INDEX);
      if (b.kind === 'str') return cmpStr(comparableQualifier(a.value), comparableQualifier(b.value));
      return -1;
    case 'list':
      if (b === null) {
        // Every element is weighed against null, not just the first (MNG-6964).
        for (const item of a.items) {
          const r = compareItem(item, null);
          if (r !== 0) return r;
        }
        return 0;
      }
      if (b.kind === 'int') return -1;
      if (b.kind === 'str') return 1;
      return compareLists(a.items, b.items);
  }
}

/** Avoids producing -0, which would not be `0` under Object.is. */
function negate(o: Ordering): Ordering {
  return o === 0 ? 0 : o === 1 ? -1 : 1;
}

function compareLists(left: Item[], right: Item[]): Ordering {
  const n = Math.max(left.length, right.length);
  for (let i = 0; i < n; i++) {
    const l = left[i];
    const r = right[i];
    let result: Ordering;
    // When the left side is the shorter one, compare the other way round and flip the sign.
    if (l === undefined) result = r === undefined ? 0 : negate(compareItem(r, null));
    else result = compareItem(l, r ?? null);
    if (result !== 0) return result;
  }
  return 0;
}

/**
 * ComparableVersion accepts any string; we refuse empty strings and whitespace or control
 * characters, which only appear in broken records and would otherwise be ordered arbitrarily.
 */
export function isValidMavenVersion(v: string): boolean {
  return typeof v === 'string' && v.length > 0 && !/[\s\u0000-\u001f\u007f]/u.test(v);
}

export function compareMavenVersions(a: string, b: string): Ordering {
  if (!isValidMavenVersion(a)) throw new VersionError(`invalid Maven version: ${JSON.stringify(a)}`);
  if (!isValidMavenVersion(b)) throw new VersionError(`invalid Maven version: ${JSON.stringify(b)}`);
  return compareLists(parse(a), parse(b));
}
