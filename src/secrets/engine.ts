/**
 * The scanning loop. The one rule it must never break: the secret value stays inside scanText.
 * Findings carry only a redacted prefix; validate functions run inside try/catch so a parser
 * error message (V8's JSON.parse quotes its input) cannot carry a secret out either.
 */
import type { Severity } from '../sbom/finding.js';
import { builtinAllowlist, type Allowlist } from './allowlist.js';
import { BUILTIN_RULES, type MatchContext, type SecretRule } from './rules.js';
import { controlBytes, SNIFF_WINDOW } from './binary-sniff.js';
import { KeywordWalker } from './keyword-walk.js';
import { shannonEntropy } from './text.js';

/** One secret found in a text, before the caller adds location, layer and target. */
export interface RawSecret {
  ruleId: string;
  title: string;
  severity: Severity;
  /** 1-based line of the secret's first character. */
  line: number;
  /** First characters of the secret and its length, e.g. `ghp_…(40 chars)`. */
  redacted: string;
}

/** Rules plus the allowlists that apply to them. */
export interface RuleSet {
  readonly rules: readonly SecretRule[];
  readonly allow: Allowlist;
}

let defaultSet: RuleSet | undefined;

/** The built-in rules and allowlists (what scanText uses when given nothing). */
export function defaultRuleSet(): RuleSet {
  defaultSet ??= { rules: BUILTIN_RULES, allow: builtinAllowlist() };
  return defaultSet;
}

/**
 * `secret` → `ghp_…(40 chars)`. At most 4 characters are shown, and never more than a third of a
 * short secret, so an 8-character password shows 2.
 */
export function redact(secret: string): string {
  const chars = Array.from(secret); // code points, so a surrogate pair is never cut in half
  const shown = Math.min(4, Math.floor(chars.length / 3));
  return `${chars.slice(0, shown).join('')}…(${chars.length} chars)`;
}

// Each rule regex is recompiled once with `g` (exec loop) and `d` (offset of the `secret` group)
// and without `y`, whatever flags the author gave it.
const prepared = new WeakMap<RegExp, RegExp>();
function prepare(re: RegExp): RegExp {
  let p = prepared.get(re);
  if (p === undefined) {
    const flags = [...new Set(re.flags.replace('y', '') + 'gd')].join('');
    p = new RegExp(re.source, flags);
    prepared.set(re, p);
  }
  return p;
}

const preparedSticky = new WeakMap<RegExp, RegExp>();
function prepareSticky(re: RegExp): RegExp {
  let p = preparedSticky.get(re);
  if (p === undefined) {
    const flags = [...new Set(re.flags.replace(/[gy]/g, '') + 'yd')].join('');
    p = new RegExp(re.source, flags);
    preparedSticky.set(re, p);
  }
  return p;
}

/**
 * The global exec loop of runRules for a rule with `keywordLead` (see SecretRule), trying the
 * regex only at the places where it can match. A global search from `from` returns the match at
 * the smallest position at or after `from` where a sticky search succeeds, and the same match; a
 * match starts at most `lead` characters before an occurrence of one of the rule's keywords. So
 * trying sticky searches at those places, in increasing order and never before the end of the
 * previous match (or one past an empty match), returns the same matches in the same order.
 */
function execNearKeywords(
  rule: SecretRule,
  lead: number,
  text: string,
  has: (keyword: string) => boolean,
  positionsOf: (literal: string) => readonly number[],
  take: (m: RegExpExecArray) => void,
): void {
  const lists = rule.keywords.filter(has).map(positionsOf);
  const at = lists.length === 1 ? lists[0]! : Int32Array.from(lists.flat()).sort();
  const re = prepareSticky(rule.regex);
  let from = 0;
  let tried = -1;
  for (const p of at) {
    let s = Math.max(p - lead, tried + 1, from);
    while (s <= p) {
      tried = s;
      re.lastIndex = s;
      const m = re.exec(text);
      if (m === null || m[0].length === 0) s++; // the global loop skips an empty match, then goes on one further
      else {
        take(m);
        from = s + m[0].length;
        s = Math.max(s + 1, from);
      }
    }
  }
}

/**
 * The keyword prefilter, done in one pass over the text instead of one `includes` per keyword (49
 * for the built-in rules, each a full scan of a file that usually contains none of them).
 *
 * The regex is every non-empty keyword, longest first, as one alternation. Restarting each search
 * one character after the previous match start visits every position where some keyword starts
 * and records the longest keyword starting there; any shorter keyword starting at that position
 * is a prefix of it. So a keyword occurs in the text exactly when it is a substring of one of the
 * recorded matches, which is what `keywordsIn` returns: the same answer as `lower.includes(k)`.
 */
interface KeywordIndex {
  /** Undefined when no rule has a non-empty keyword. */
  readonly regex: RegExp | undefined;
  readonly keywords: readonly string[];
  /** Every rule has keywords, none of them empty: a text with no keyword at all yields nothing. */
  readonly allNeedKeywords: boolean;
  /**
   * For deciding on the original text, before the lower-cased copy is made (most files hold no
   * keyword, and the copy is as large as the file): only when every rule needs a keyword and every
   * keyword is ASCII. Then a keyword occurs in the lower-cased copy only where the text holds it in
   * some mix of ASCII cases, or with U+212A KELVIN SIGN, the one other character that lower-cases
   * to ASCII without changing the length (U+0130 lengthens it, and then only A-Z are lower-cased;
   * see lowerSameLength). Undefined otherwise, or when the keywords make too large an automaton.
   */
  readonly anyCase: KeywordAutomaton | undefined;
  /** Each keyword's index in `keywords`. */
  readonly numberOf: ReadonlyMap<string, number>;
}

/**
 * An Aho-Corasick automaton over the keywords, with A-Z read as a-z and U+212A as "k": one table
 * step per character finds whether any keyword occurs, in about half the time of the same
 * alternation as a case-insensitive regex (5.3 against 10.8 ms over the 3.6 M characters of
 * node-app's node_modules text), and with the output lists which keywords occur.
 */
interface KeywordAutomaton {
  /** The class of each code below 256, 0 for characters in no keyword; A-Z share a-z's classes. */
  readonly classOf: Uint8Array;
  readonly kelvinClass: number;
  /**
   * States are numbered in steps of the class count: next[state + class] is the next state, or
   * its bitwise complement (negative) when some keyword ends there (other than an A-Z one, see
   * outputs), so the scanning loops test the sign instead of loading a flag.
   */
  readonly next: Int32Array;
  /**
   * Which keywords end where: for an accepting state, outputStart[state] is where in `outputs` a
   * count starts, followed by that many keyword indices: the state's own keyword and those its
   * failure links reach. A keyword with an A-Z letter is never listed: the lower-cased copy that
   * keywordsIn searches holds no A-Z, so such a keyword never occurs there.
   */
  readonly outputStart: Int32Array;
  readonly outputs: Int32Array;
  /** The longest keyword's length. */
  readonly maxLength: number;
}

const MAX_AUTOMATON_CELLS = 1 << 20;

function buildAutomaton(keywords: readonly string[]): KeywordAutomaton | undefined {
  const fold = (c: number) => (c >= 0x41 && c <= 0x5a ? c + 0x20 : c);
  const classOf = new Uint8Array(256);
  let classes = 1;
  for (const k of keywords) {
    for (let i = 0; i < k.length; i++) {
      const c = fold(k.charCodeAt(i));
      if (classOf[c] !== 0) continue;
      classOf[c] = classes;
      if (c >= 0x61 && c <= 0x7a) classOf[c - 0x20] = classes;
      classes++;
    }
  }
  // The trie, then the failure links breadth first, folded into one dense transition table.
  const children: Array<Array<number | undefined>> = [[]];
  const own: number[][] = [[]];
  for (const [index, k] of keywords.entries()) {
    let state = 0;
    for (let i = 0; i < k.length; i++) {
      const c = classOf[fold(k.charCodeAt(i))]!;
      let child = children[state]![c];
      if (child === undefined) {
        child = children.length;
        children.push([]);
        own.push([]);
        children[state]![c] = child;
      }
      state = child;
    }
    if (!/[A-Z]/.test(k)) own[state]!.push(index);
  }
  const states = children.length;
  if (states * classes > MAX_AUTOMATON_CELLS) return undefined;
  const next = new Int32Array(states * classes);
  const fail = new Int32Array(states);
  const queue: number[] = [];
  for (let c = 0; c < classes; c++) {
    const child = children[0]![c];
    if (child !== undefined) {
      next[c] = child;
      queue.push(child);
    }
  }
  for (let q = 0; q < queue.length; q++) {
    const state = queue[q]!;
    // Breadth first, so the failure state (shallower) already holds everything its links reach.
    for (const k of own[fail[state]!]!) if (!own[state]!.includes(k)) own[state]!.push(k);
    for (let c = 0; c < classes; c++) {
      const child = children[state]![c];
      const viaFail = next[fail[state]! * classes + c]!;
      if (child === undefined) next[state * classes + c] = viaFail;
      else {
        fail[child] = viaFail;
        next[state * classes + c] = child;
        queue.push(child);
      }
    }
  }
  const outputStart = new Int32Array(states * classes);
  const outputs: number[] = [];
  for (let i = 0; i < next.length; i++) next[i] = own[next[i]!]!.length > 0 ? ~(next[i]! * classes) : next[i]! * classes;
  for (let state = 0; state < states; state++) {
    if (own[state]!.length === 0) continue;
    outputStart[state * classes] = outputs.length;
    outputs.push(own[state]!.length, ...own[state]!);
  }
  const maxLength = Math.max(...keywords.map((k) => k.length));
  return { classOf, kelvinClass: classOf[0x6b]!, next, outputStart, outputs: Int32Array.from(outputs), maxLength };
}

function automatonFinds(a: KeywordAutomaton, text: string): boolean {
  const { classOf, kelvinClass, next } = a;
  let state = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    state = next[state + (c < 256 ? classOf[c]! : c === 0x212a ? kelvinClass : 0)]!;
    if (state < 0) return true;
  }
  return false;
}

const keywordIndexes = new WeakMap<readonly SecretRule[], KeywordIndex>();

function keywordIndex(rules: readonly SecretRule[]): KeywordIndex {
  let index = keywordIndexes.get(rules);
  if (index === undefined) {
    const keywords = [...new Set(rules.flatMap((r) => r.keywords))].filter((k) => k !== '');
    const source = [...keywords]
      .sort((a, b) => b.length - a.length)
      .map((k) => k.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&'))
      .join('|');
    const allNeedKeywords = rules.every((r) => r.keywords.length > 0 && !r.keywords.includes(''));
    index = {
      regex: keywords.length > 0 ? new RegExp(source, 'g') : undefined,
      keywords,
      allNeedKeywords,
      anyCase: keywords.length > 0 && allNeedKeywords && keywords.every((k) => /^[\x00-\x7f]+$/.test(k)) ? buildAutomaton(keywords) : undefined,
      numberOf: new Map(keywords.map((k, i) => [k, i])),
    };
    keywordIndexes.set(rules, index);
  }
  return index;
}

/**
 * False when no rule can run on `text` because none of the keywords occurs in it in any case:
 * decided on the original text, so the lower-cased copy is only made for texts that may need it.
 * True means "maybe": keywordsIn on the copy gives the exact answer.
 */
export function mayHaveKeywords(text: string, rules: readonly SecretRule[]): boolean {
  const { anyCase } = keywordIndex(rules);
  return anyCase === undefined || automatonFinds(anyCase, text);
}

/** U+212A KELVIN SIGN in UTF-8: the one non-ASCII character that lower-cases to an ASCII letter in place. */
const KELVIN_UTF8 = Buffer.from('\u212a', 'utf8');

/**
 * The keywords that occur in UTF-8 `bytes` with A-Z read as a-z, as flags indexed like
 * KeywordIndex.keywords (with one more, set when any is), or undefined when none does. The whole
 * text is read (all matches, through the output lists), not only up to the first keyword.
 *
 * One automaton walk is a chain of dependent table loads, so two walks go side by side, which
 * the processor overlaps: one over the first half, one from `maxLength - 1` bytes before the
 * middle to the end. A keyword ending in the first half is found by the first walk; one ending
 * later starts at or after where the second walk starts, which finds it.
 */
function automatonKeywordsInBytes(a: KeywordAutomaton, bytes: Uint8Array, count: number): Uint8Array | undefined {
  if (wasmMode !== 'js') {
    const walker = walkerFor(a);
    const n = bytes.length;
    const mid = n >>> 1;
    const states = walker?.acceptingStates(bytes, mid, Math.max(0, mid - a.maxLength + 1));
    if (states !== undefined) {
      if (states.length === 0) return undefined;
      const found = new Uint8Array(count + 1);
      for (const state of states) markOutputs(a, found, ~state);
      return found;
    }
  }
  return automatonKeywordsInBytesJs(a, bytes, count);
}

/**
 * The same walks in WebAssembly (keyword-walk.ts), one instance per automaton, made on first use;
 * null where WebAssembly cannot run.
 */
const walkers = new WeakMap<KeywordAutomaton, KeywordWalker | null>();
function walkerFor(a: KeywordAutomaton): KeywordWalker | undefined {
  let w = walkers.get(a);
  if (w === undefined) {
    w = KeywordWalker.create(a.next, a.classOf) ?? null;
    walkers.set(a, w);
  }
  return w ?? undefined;
}

/**
 * Whether the keyword walk and the binary sniff use WebAssembly where it can run ('auto') or
 * always their JavaScript versions ('js'), for the tests that compare the two.
 */
let wasmMode: 'auto' | 'js' = 'auto';
export function setWasmForTest(mode: 'auto' | 'js'): void {
  wasmMode = mode;
}

/** automatonKeywordsInBytes in JavaScript: the fallback, and the reference the tests hold WebAssembly to. */
function automatonKeywordsInBytesJs(a: KeywordAutomaton, bytes: Uint8Array, count: number): Uint8Array | undefined {
  const { classOf, next } = a;
  const found = new Uint8Array(count + 1);
  const n = bytes.length;
  const mid = n >>> 1;
  let j = Math.max(0, mid - a.maxLength + 1);
  let first = 0;
  let second = 0;
  for (let i = 0; i < mid; i++, j++) {
    let x = next[first + classOf[bytes[i]!]!]!;
    let y = next[second + classOf[bytes[j]!]!]!;
    // Negative: a keyword ends there. Decided outside the loop, which rarely needs it.
    if ((x | y) < 0) {
      x = markOutputs(a, found, x);
      y = markOutputs(a, found, y);
    }
    first = x;
    second = y;
  }
  for (; j < n; j++) {
    let y = next[second + classOf[bytes[j]!]!]!;
    if (y < 0) y = markOutputs(a, found, y);
    second = y;
  }
  return found[count] === 1 ? found : undefined;
}

/**
 * A next-table entry made a state: when negative, the keywords that end at the state it stands
 * for are flagged in `found` (and its last flag, "any"), and that state is returned.
 */
function markOutputs(a: KeywordAutomaton, found: Uint8Array, entry: number): number {
  if (entry >= 0) return entry;
  const state = ~entry;
  const { outputStart, outputs } = a;
  const at = outputStart[state]!;
  for (let k = at + 1, end = at + 1 + outputs[at]!; k < end; k++) found[outputs[k]!] = 1;
  found[found.length - 1] = 1;
  return state;
}

/**
 * scanText for a file's bytes: the same findings as `scanText(content.toString('utf8'), ...)`, but
 * the keyword prefilter runs on the bytes, before the file is decoded or lower-cased. Every ASCII
 * character of the decoded text comes from one ASCII byte and no other byte decodes to ASCII; two
 * ASCII characters are adjacent in the text exactly when their bytes are (a run of other bytes
 * decodes to at least one non-ASCII character). The lower-cased copy keywordsIn searches changes
 * A-Z to a-z, and of the non-ASCII characters only U+212A KELVIN SIGN becomes ASCII ("k"; U+0130
 * becomes two characters and is handled by lowering only A-Z). So when the bytes hold no U+212A,
 * the ASCII keywords that occur in the lower-cased copy are exactly those that occur in the bytes
 * with A-Z read as a-z (an A-Z keyword occurs in neither). A file with U+212A goes through
 * scanText, which decides on the text.
 */
export function scanContent(
  content: Buffer,
  ctx: { path: string },
  rules?: RuleSet | readonly SecretRule[],
  bound?: FindingBound,
): RawSecret[] {
  const set = toRuleSet(rules);
  if (bound) bound.total = 0;
  if (set.allow.paths.matches(ctx.path)) return [];
  const index = keywordIndex(set.rules);
  const found = byteKeywordFlags(content, index);
  if (found === null) return scanText(content.toString('utf8'), ctx, set, bound);
  // Every rule needs a keyword (the automaton is only built then), so no keyword means no rule runs.
  if (found === undefined) return [];
  return runRules(content.toString('utf8'), undefined, set, (k) => found[index.numberOf.get(k) ?? -1] === 1, bound);
}

/**
 * A cap on the findings scanText and scanContent return: the first `max` in file order, the same
 * ones an unbounded scan lists first. `total` is set to how many the unbounded scan would return.
 * Only those first ones are made into findings (redacted text, line number); the others cost a few
 * numbers each while overlaps are resolved.
 */
export interface FindingBound {
  readonly max: number;
  total: number;
}

/**
 * The byte prefilter shared by scanContent and its test: flags per keyword as
 * automatonKeywordsInBytes gives them, or null where the bytes cannot decide (no automaton, or a
 * U+212A in the content) and scanText must decide on the decoded text.
 */
function byteKeywordFlags(content: Buffer, index: KeywordIndex): Uint8Array | undefined | null {
  if (index.anyCase === undefined || content.indexOf(KELVIN_UTF8) !== -1) return null;
  return automatonKeywordsInBytes(index.anyCase, content, index.keywords.length);
}

/**
 * What scanContent's byte prefilter decides, for its property test: keywordsIn's answer on the
 * lower-cased decoding of `content`, or null where scanContent leaves the decision to scanText.
 */
export function keywordsInContent(content: Buffer, rules: readonly SecretRule[]): Set<string> | undefined | null {
  const index = keywordIndex(rules);
  const found = byteKeywordFlags(content, index);
  return found && new Set(['', ...index.keywords.filter((_k, i) => found[i] === 1)]);
}

/**
 * The keywords of `rules` that occur in `lower` (the empty keyword, which always occurs, included),
 * or undefined when no rule can run: none of the keywords occurs and every rule needs one. That is
 * most files, and they then cost one regex search and nothing else. Exported for its property test.
 */
export function keywordsIn(lower: string, rules: readonly SecretRule[]): Set<string> | undefined {
  const { regex, keywords, allNeedKeywords } = keywordIndex(rules);
  const found = new Set<string>();
  if (regex !== undefined) {
    regex.lastIndex = 0;
    for (let m = regex.exec(lower); m !== null; m = regex.exec(lower)) {
      found.add(m[0]);
      regex.lastIndex = m.index + 1;
    }
  }
  if (found.size === 0 && allNeedKeywords) return undefined;
  const present = new Set<string>(['']);
  for (const k of keywords) {
    if (found.has(k)) present.add(k);
    else for (const f of found) if (f.includes(k)) { present.add(k); break; }
  }
  return present;
}

function accepted(rule: SecretRule, secret: string, ctx: MatchContext, allow: Allowlist): boolean {
  if (secret.length === 0) return false;
  if (rule.entropy !== undefined && shannonEntropy(secret) < rule.entropy) return false;
  if (rule.validate !== undefined) {
    try {
      if (!rule.validate(secret, ctx)) return false;
    } catch {
      return false;
    }
  }
  if (allow.values.has(secret)) return false;
  return !allow.valuePatterns.some((re) => {
    re.lastIndex = 0;
    return re.test(secret);
  });
}

/** Lower-case copy whose offsets match the original (toLowerCase can lengthen a few code points). */
function lowerSameLength(text: string): string {
  const lower = text.toLowerCase();
  return lower.length === text.length ? lower : text.replace(/[A-Z]+/g, (s) => s.toLowerCase());
}

function toRuleSet(rules: RuleSet | readonly SecretRule[] | undefined): RuleSet {
  if (rules === undefined) return defaultRuleSet();
  if (Array.isArray(rules)) return { rules: rules as readonly SecretRule[], allow: defaultRuleSet().allow };
  return rules as RuleSet;
}

/**
 * Find secrets in a text. `ctx.path` is checked against the path allowlist (an allowed path
 * yields nothing). `rules` is a RuleSet (see buildRuleSet) or a bare rule list, which gets the
 * built-in allowlists. Results are ordered by position; overlapping matches are reported once,
 * by the first specific rule in rule order (catch-all rules lose to any specific rule).
 */
export function scanText(
  text: string,
  ctx: { path: string },
  rules?: RuleSet | readonly SecretRule[],
  bound?: FindingBound,
): RawSecret[] {
  const set = toRuleSet(rules);
  if (bound) bound.total = 0;
  if (text.length === 0 || set.allow.paths.matches(ctx.path) || !mayHaveKeywords(text, set.rules)) return [];
  const lower = lowerSameLength(text);
  // The prefilter: which keywords occur in the shared lower-cased copy, found before any rule regex.
  const present = keywordsIn(lower, set.rules);
  if (present === undefined) return [];
  return runRules(text, lower, set, (k) => present.has(k), bound);
}

/**
 * The rest of scanText, given which keywords occur in the lower-cased copy (`has`, exact): the
 * regexes of the rules that have no keyword or one that occurs, the validators, the overlap
 * resolution and the line numbers. `lower` is lowerSameLength(text), made here only if needed.
 *
 * Overlaps are resolved rule by rule as each rule's matches come (see Kept), so a match is held as
 * two numbers, not as an object with its redacted text: a file of hundreds of thousands of matches
 * used to build all of them, and their findings, before the caller kept the first thousand.
 */
function runRules(
  text: string,
  knownLower: string | undefined,
  set: RuleSet,
  has: (keyword: string) => boolean,
  bound?: FindingBound,
): RawSecret[] {
  let lower = knownLower;
  const lowerText = (): string => (lower ??= lowerSameLength(text));
  const positions = new Map<string, number[]>();
  const positionsOf = (literal: string): readonly number[] => {
    let found = positions.get(literal);
    if (found === undefined) {
      const l = lowerText();
      found = [];
      for (let i = l.indexOf(literal); i !== -1; i = l.indexOf(literal, i + 1)) found.push(i);
      positions.set(literal, found);
    }
    return found;
  };

  const kept = new Kept();
  // Specific rules first, in rule order, then the catch-all (fallback) rules in rule order: a
  // match overlapping one already kept is dropped.
  const byPrecedence = set.rules.map((rule, order) => ({ rule, order })).sort((a, b) => Number(a.rule.fallback === true) - Number(b.rule.fallback === true) || a.order - b.order);
  const starts: number[] = [];
  const ends: number[] = [];
  for (const { rule, order } of byPrecedence) {
    if (rule.keywords.length > 0 && !rule.keywords.some(has)) continue;
    starts.length = 0;
    ends.length = 0;
    const take = (m: RegExpExecArray): void => {
      const groups = m.groups ?? {};
      const secret = groups.secret ?? m[0];
      const span = m.indices?.groups?.secret ?? [m.index, m.index + m[0].length];
      const context: MatchContext = {
        text,
        get lower() {
          return lowerText();
        },
        index: span[0],
        groups,
        positionsOf,
      };
      if (!accepted(rule, secret, context, set.allow)) return;
      starts.push(span[0]);
      ends.push(span[1]);
    };
    if (rule.keywordLead !== undefined && rule.keywords.length > 0 && !rule.keywords.includes('')) {
      execNearKeywords(rule, rule.keywordLead, text, has, positionsOf, take);
    } else {
      const re = prepare(rule.regex);
      re.lastIndex = 0;
      for (let m = re.exec(text); m !== null; m = re.exec(text)) {
        if (m[0].length === 0) {
          re.lastIndex++; // a user regex that matches empty text must still advance
          continue;
        }
        take(m);
      }
    }
    if (starts.length > 0) kept.addRule(order, starts, ends);
  }
  if (bound) bound.total = kept.size;
  if (kept.size === 0) return [];

  // Findings for the first ones only; line numbers in one forward walk, since kept is by offset.
  // The next newline is remembered: searching again from the last one for every finding read the
  // rest of a long line each time (180,000 key ids on one line of 3.7 MB: 25 s).
  const count = bound === undefined ? kept.size : Math.min(kept.size, Math.max(0, bound.max));
  const out: RawSecret[] = [];
  let line = 1;
  let nl = text.indexOf('\n');
  for (let k = 0; k < count; k++) {
    const start = kept.starts[k]!;
    while (nl !== -1 && nl < start) {
      line++;
      nl = text.indexOf('\n', nl + 1);
    }
    const rule = set.rules[kept.orders[k]!]!;
    out.push({
      ruleId: rule.id,
      title: rule.title,
      severity: rule.severity,
      line,
      redacted: redact(text.slice(start, kept.ends[k]!)), // the secret: its group's span, or the match
    });
  }
  return out;
}

/**
 * The matches kept so far, sorted by start, as parallel lists of numbers: start, end and the
 * rule's index in the rule list. Kept matches never overlap, so sorted by start they are sorted by
 * end too, and only the last one starting before a match ends can overlap it (comparing each match
 * with every kept one was quadratic: a 2 MB file of 95,000 access key ids took 9 s).
 */
class Kept {
  starts: number[] = [];
  ends: number[] = [];
  orders: number[] = [];

  get size(): number {
    return this.starts.length;
  }

  /**
   * One rule's matches (spans, in the order found), after every rule that takes precedence over it:
   * those that overlap no kept match nor an earlier match of the rule's kept here are merged in.
   */
  addRule(order: number, starts: readonly number[], ends: readonly number[]): void {
    // By start; a stable order for equal starts. Built-in rules give them sorted already.
    let index: number[] | undefined;
    for (let i = 1; i < starts.length; i++) {
      if (starts[i]! < starts[i - 1]!) {
        index = Array.from(starts, (_, j) => j).sort((a, b) => starts[a]! - starts[b]! || a - b);
        break;
      }
    }
    const addStarts: number[] = [];
    const addEnds: number[] = [];
    let reach = -1;
    for (let i = 0; i < starts.length; i++) {
      const j = index === undefined ? i : index[i]!;
      const start = starts[j]!;
      const end = ends[j]!;
      if (start < reach) continue;
      // The last kept match that starts before this one ends.
      let lo = 0;
      let hi = this.starts.length;
      while (lo < hi) {
        const mid = (lo + hi) >>> 1;
        if (this.starts[mid]! < end) lo = mid + 1;
        else hi = mid;
      }
      if (lo > 0 && this.ends[lo - 1]! > start) continue;
      addStarts.push(start);
      addEnds.push(end);
      reach = Math.max(reach, end);
    }
    if (addStarts.length === 0) return;
    if (this.starts.length === 0 || addStarts[0]! > this.starts.at(-1)!) {
      // The common case of one rule, or of matches after all kept ones: appended in place.
      for (let b = 0; b < addStarts.length; b++) {
        this.starts.push(addStarts[b]!);
        this.ends.push(addEnds[b]!);
        this.orders.push(order);
      }
      return;
    }
    const starts2: number[] = [];
    const ends2: number[] = [];
    const orders2: number[] = [];
    let a = 0;
    let b = 0;
    while (a < this.starts.length || b < addStarts.length) {
      if (b >= addStarts.length || (a < this.starts.length && this.starts[a]! <= addStarts[b]!)) {
        starts2.push(this.starts[a]!);
        ends2.push(this.ends[a]!);
        orders2.push(this.orders[a++]!);
      } else {
        starts2.push(addStarts[b]!);
        ends2.push(addEnds[b++]!);
        orders2.push(order);
      }
    }
    this.starts = starts2;
    this.ends = ends2;
    this.orders = orders2;
  }
}

/** 1 for the control bytes isProbablyBinary counts (NUL is decided before counting). */
const CONTROL = new Uint8Array(256);
for (let b = 1; b < 0x20; b++) if (b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b) CONTROL[b] = 1;
CONTROL[0x7f] = 1;

/**
 * Heuristic for a file's first bytes: binary if it has a NUL, or if more than 10 % of the bytes
 * are control characters other than tab, newline, carriage return, form feed and escape.
 *
 * Called for nearly every small file of an image, and it reads up to 8 KiB of each: counted in
 * WebAssembly sixteen bytes at a time (binary-sniff.ts) where it can run. The JavaScript count
 * goes four bytes at a time: a word with no byte below 0x20 and none equal to 0x7f (the common
 * case in text) adds nothing and needs no per-byte look; its NUL test is one native indexOf.
 */
export function isProbablyBinary(head: Buffer): boolean {
  const n = Math.min(head.length, SNIFF_WINDOW);
  if (n === 0) return false;
  if (wasmMode !== 'js') {
    const count = controlBytes(head);
    if (count !== undefined) return count < 0 || count / n > 0.1;
  }
  return isProbablyBinaryJs(head, n);
}

/** isProbablyBinary in JavaScript: the fallback, and the reference the tests hold WebAssembly to. */
function isProbablyBinaryJs(head: Buffer, n: number): boolean {
  if ((n === head.length ? head : head.subarray(0, n)).indexOf(0) !== -1) return true;
  let control = 0;
  let i = 0;
  // Bytes before the first 4-byte boundary of the underlying memory, then whole words, then the rest.
  const lead = Math.min(n, (4 - (head.byteOffset & 3)) & 3);
  for (; i < lead; i++) control += CONTROL[head[i]!]!;
  const words = (n - i) >>> 2;
  if (words > 0) {
    const w32 = new Uint32Array(head.buffer, head.byteOffset + i, words);
    for (let j = 0; j < words; j++) {
      const w = w32[j]!;
      const x = w ^ 0x7f7f7f7f;
      // Some byte of w is below 0x20, or some byte of x is zero (w has a 0x7f): never a false negative.
      if ((((w - 0x20202020) & ~w) | ((x - 0x01010101) & ~x)) & 0x80808080) {
        const k = i + j * 4;
        control += CONTROL[head[k]!]! + CONTROL[head[k + 1]!]! + CONTROL[head[k + 2]!]! + CONTROL[head[k + 3]!]!;
      }
    }
    i += words * 4;
  }
  for (; i < n; i++) control += CONTROL[head[i]!]!;
  return control / n > 0.1;
}
