import { parseSmallYaml, type YamlLoadNotes } from './lock-yaml.js';

/**
 * Reads the few fields a lockfile analyser uses out of a large YAML lockfile (pnpm-lock.yaml), a
 * line at a time, without building the document.
 *
 * The yaml package keeps a syntax tree of every token until a document is converted to plain
 * values, some 60 times the text; even parsed 64 KiB at a time (lock-yaml.ts) a 16 MB lockfile
 * took a scan to 338 MB, most of it garbage. A lockfile is written by a program in a small part of
 * YAML: block mappings of `key: value` lines, keys plain or quoted, scalars on one line, and flow
 * collections (`{integrity: ...}`) on one line. This reader follows that part and keeps, of the
 * last document, only what a Spec names: every other value is passed over by its indentation,
 * never parsed. What it keeps is exactly what the yaml package's plain values hold at those places
 * (the same core-schema scalars, the later of two equal keys winning, `__proto__` an own key).
 *
 * Anything outside that part where it looks (anchors, aliases, tags, block scalars, explicit `?`
 * keys, a scalar or flow collection continued on the next line, tabs, document end markers or
 * directives) makes it give up with a reason and a line number, so that the caller can parse the
 * file the ordinary way if it is small. Lines it passes over are not checked: a syntax error in a
 * value nobody reads does not stop it, where the yaml package would refuse the whole file.
 */

/** Keep the value here if it is a scalar; a list or map becomes an empty one of its kind. */
export const SCALAR = 1;
/** Keep the value here, which must be a scalar: anything else makes the reader give up. */
export const EXACT_SCALAR = 2;
/**
 * What to keep: the keys of a mapping to read (`'*'` for any other key); their values are read
 * as mappings by the nested Spec, and a scalar there is kept as it is. Keys not named are passed over.
 */
export interface Spec {
  readonly [key: string]: Spec | typeof SCALAR | typeof EXACT_SCALAR;
}

export interface ReadOptions {
  /** Stop reading a mapping at the second level (a section's entries) past this many entries. */
  maxEntries?: number;
  /** Collection keys dropped from flow collections read (see YamlLoadNotes). */
  notes?: YamlLoadNotes;
}

export type ReadResult =
  | { ok: true; value: Record<string, unknown>; cutSections: string[] }
  | { ok: false; reason: string; line: number };

/** Longest flow collection (`{...}` on one line) handed to the yaml package where a value is kept. */
const MAX_FLOW_BYTES = 64 * 1024;
/** Bytes decoded into one string at a time (whole lines), as linesOf does. */
const BLOCK = 1 << 16;

class Unsupported extends Error {}

/** The lines of a buffer, decoded a block of whole lines at a time; blank and comment lines skipped. */
class Lines {
  private text = '';
  private pos = 0;
  private next = 0;
  /** The current content line (no line break, no trailing `\r`), or undefined at the end. */
  line: string | undefined;
  /** Its indentation in spaces; -1 for a document start marker `---`. */
  indent = 0;
  /** Its 1-based number. */
  number = 0;

  constructor(private readonly buf: Buffer) {
    this.advance();
  }

  advance(): void {
    for (;;) {
      const raw = this.rawLine();
      if (raw === undefined) {
        this.line = undefined;
        return;
      }
      const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;
      let i = 0;
      while (line.charCodeAt(i) === 0x20) i++;
      if (i === line.length || line.charCodeAt(i) === 0x23 /* # */) continue;
      // Other white space (tabs) before the first character: blank, a comment, or what key()
      // refuses; YAML forbids tabs in indentation and no lockfile writer makes them.
      if (line.charCodeAt(i) <= 0x20 && (line.trim() === '' || line.trimStart().startsWith('#'))) continue;
      if (i === 0 && (line.startsWith('---') || line.startsWith('...') || line.startsWith('%'))) {
        if (/^---[ ]*$/.test(line)) {
          this.line = line;
          this.indent = -1;
          return;
        }
        if (line.startsWith('%') || /^(---|\.\.\.)(\s|$)/.test(line)) {
          this.line = line;
          throw new Unsupported(line.startsWith('%') ? 'a directive' : 'a document marker with content');
        }
      }
      this.line = line;
      this.indent = i;
      return;
    }
  }

  private rawLine(): string | undefined {
    if (this.pos >= this.text.length) {
      if (this.next >= this.buf.length) return undefined;
      let end = this.buf.length;
      if (end - this.next > BLOCK) {
        const nl = this.buf.lastIndexOf(0x0a, this.next + BLOCK);
        end = nl >= this.next ? nl + 1 : this.buf.indexOf(0x0a, this.next + BLOCK) + 1 || this.buf.length;
      }
      this.text = this.buf.toString('utf8', this.next, end);
      if (this.next === 0 && this.text.charCodeAt(0) === 0xfeff) this.text = this.text.slice(1);
      this.next = end;
      this.pos = 0;
    }
    this.number++;
    const nl = this.text.indexOf('\n', this.pos);
    const end = nl < 0 ? this.text.length : nl;
    const line = this.text.slice(this.pos, end);
    this.pos = end + 1;
    return line;
  }
}

/**
 * The last document of `buf` (a YAML file) reduced to what `spec` names, or why it could not be
 * read this way.
 */
export function readYamlLines(buf: Buffer, spec: Spec, options: ReadOptions = {}): ReadResult {
  let lines: Lines | undefined;
  try {
    lines = new Lines(buf);
    const reader = new Reader(lines, options);
    return { ok: true, value: reader.documents(spec), cutSections: reader.cutSections };
  } catch (e) {
    if (e instanceof Unsupported) return { ok: false, reason: e.message, line: lines?.number ?? 1 };
    throw e;
  }
}

class Reader {
  readonly cutSections: string[] = [];
  private readonly maxEntries: number;

  constructor(
    private readonly lines: Lines,
    private readonly options: ReadOptions,
  ) {
    this.maxEntries = options.maxEntries ?? Infinity;
  }

  documents(spec: Spec): Record<string, unknown> {
    const l = this.lines;
    let doc: Record<string, unknown> | undefined;
    for (;;) {
      if (l.line === undefined) break;
      if (l.indent === -1) {
        l.advance();
        doc = undefined;
        this.cutSections.length = 0;
        continue;
      }
      if (l.indent !== 0) throw new Unsupported('a document that is not a mapping at the left margin');
      doc = this.map(0, spec, 0);
    }
    if (doc === undefined) throw new Unsupported('no mapping in the last document');
    return doc;
  }

  /** The mapping whose keys are at `indent`, starting at the current line. */
  private map(indent: number, spec: Spec, depth: number, section?: string): Record<string, unknown> {
    const l = this.lines;
    const out: Record<string, unknown> = {};
    let entries = 0;
    while (l.line !== undefined && l.indent === indent) {
      const line = l.line;
      const { key, rest } = this.key(line, indent);
      const child = Object.hasOwn(spec, key) ? spec[key] : spec['*'];
      if (child === undefined) {
        this.skip(indent, rest);
        continue;
      }
      define(out, key, this.value(indent, rest, child, depth + 1, depth === 0 ? key : undefined));
      if (section !== undefined && ++entries > this.maxEntries) {
        this.cutSections.push(section);
        // The rest of the section: its entries and everything under them.
        while (l.line !== undefined && l.indent >= indent) l.advance();
        return out;
      }
    }
    if (l.line !== undefined && l.indent > indent) throw new Unsupported('a line indented deeper than its mapping');
    return out;
  }

  /** A mapping key at `indent` of `line`, and what follows its colon (trimmed, comment kept). */
  private key(line: string, indent: number): { key: string; rest: string } {
    if (line.includes('\t')) throw new Unsupported('a tab');
    const c = line[indent]!;
    let key: string;
    let after: number;
    if (c === "'" || c === '"') {
      const end = quotedEnd(line, indent);
      if (end < 0) throw new Unsupported('a quoted key not closed on its line');
      key = this.quoted(line.slice(indent, end));
      after = end;
      while (line[after] === ' ') after++;
      if (line[after] !== ':' || (after + 1 < line.length && line[after + 1] !== ' ')) throw new Unsupported('a quoted scalar where a key was expected');
      after++;
    } else {
      if ('?:-[]{},&*!|>%@`#'.includes(c) && !((c === '-' || c === ':' || c === '?') && line.length > indent + 1 && line[indent + 1] !== ' ')) {
        throw new Unsupported(`a key starting with "${c}"`);
      }
      let colon = line.indexOf(':', indent);
      while (colon >= 0 && colon + 1 < line.length && line[colon + 1] !== ' ') colon = line.indexOf(':', colon + 1);
      if (colon < 0) throw new Unsupported('a line that is not a "key: value"');
      const raw = line.slice(indent, colon);
      if (raw.includes(' #')) throw new Unsupported('a comment inside a key');
      key = keyString(plainScalar(raw.trimEnd()));
      after = colon + 1;
    }
    return { key, rest: line.slice(after).trim() };
  }

  /** The value after `key:` on a line at `indent`; moves past everything that belongs to it. */
  private value(indent: number, rest: string, spec: Spec | typeof SCALAR | typeof EXACT_SCALAR, depth: number, section?: string): unknown {
    const l = this.lines;
    if (rest === '' || rest.startsWith('#')) {
      l.advance();
      if (l.line === undefined || l.indent < indent) return null;
      const isItem = isSeqItem(l.line, l.indent);
      if (l.indent === indent && !isItem) return null;
      if (isItem) {
        if (spec === EXACT_SCALAR) throw new Unsupported('a list where a scalar was expected');
        this.skipBelow(indent, true);
        return [];
      }
      if (!isMapEntry(l.line, l.indent)) throw new Unsupported('a scalar continued on the next line');
      if (typeof spec !== 'object') {
        if (spec === EXACT_SCALAR) throw new Unsupported('a mapping where a scalar was expected');
        this.skipBelow(indent, false);
        return {};
      }
      return this.map(l.indent, spec, depth, section);
    }
    const c = rest[0]!;
    let v: unknown;
    if (c === "'" || c === '"') {
      const end = quotedEnd(rest, 0);
      if (end < 0) throw new Unsupported('a quoted scalar continued on the next line');
      const tail = rest.slice(end).trimStart();
      if (tail !== '' && !tail.startsWith('#')) throw new Unsupported('text after a quoted scalar');
      v = own(this.quoted(rest.slice(0, end)));
    } else if (c === '{' || c === '[') {
      if (rest.length > MAX_FLOW_BYTES) throw new Unsupported(`a flow collection over ${MAX_FLOW_BYTES} bytes`);
      let parsed: unknown;
      try {
        parsed = parseSmallYaml(rest, this.options.notes);
      } catch {
        throw new Unsupported('a flow collection not closed on its line');
      }
      if (spec === EXACT_SCALAR) throw new Unsupported('a collection where a scalar was expected');
      v = reduce(parsed, spec);
    } else if ('&*!|>%@`'.includes(c) || ('-?:'.includes(c) && (rest.length === 1 || rest[1] === ' ')) || ',[]{}'.includes(c)) {
      throw new Unsupported(`a value starting with "${c}"`);
    } else {
      const hash = rest.indexOf(' #');
      const raw = (hash < 0 ? rest : rest.slice(0, hash)).trimEnd();
      if (raw.includes(': ') || raw.endsWith(':')) throw new Unsupported('a mapping inside a scalar');
      v = plainScalar(raw);
      if (typeof v === 'string') v = own(v);
    }
    l.advance();
    if (l.line !== undefined && l.indent > indent) throw new Unsupported('a value continued on the next line');
    return v;
  }

  /** Passes over the value of the key on the current line (at `indent`), whatever it holds. */
  private skip(indent: number, rest: string): void {
    this.lines.advance();
    this.skipBelow(indent, rest === '' || rest.startsWith('#'));
  }

  /** Moves past lines deeper than `indent` (and, for an empty value, list items at `indent`). */
  private skipBelow(indent: number, itemsAtIndent: boolean): void {
    const l = this.lines;
    while (l.line !== undefined && (l.indent > indent || (itemsAtIndent && l.indent === indent && isSeqItem(l.line, indent)))) l.advance();
  }

  /** A quoted scalar's value; double-quoted ones with escapes are decoded by the yaml package. */
  private quoted(text: string): string {
    if (text[0] === "'") return text.slice(1, -1).replaceAll("''", "'");
    if (!text.includes('\\')) return text.slice(1, -1);
    const v = parseSmallYaml(text);
    if (typeof v !== 'string') throw new Unsupported('a double-quoted scalar');
    return v;
  }
}

/** Where the quoted scalar starting at `from` ends (the index after its closing quote), or -1. */
function quotedEnd(s: string, from: number): number {
  const q = s[from];
  for (let i = from + 1; i < s.length; i++) {
    const c = s[i];
    if (q === '"' && c === '\\') i++;
    else if (c === q) {
      if (q === "'" && s[i + 1] === "'") i++;
      else return i + 1;
    }
  }
  return -1;
}

function isSeqItem(line: string, indent: number): boolean {
  return line[indent] === '-' && (line.length === indent + 1 || line[indent + 1] === ' ');
}

/** Whether the line at `indent` reads as `key:` or `key: value` (a plain or quoted key). */
function isMapEntry(line: string, indent: number): boolean {
  const c = line[indent];
  if (c === "'" || c === '"') {
    let end = quotedEnd(line, indent);
    if (end < 0) return false;
    while (line[end] === ' ') end++;
    return line[end] === ':';
  }
  const colon = line.indexOf(':', indent);
  return colon >= 0 && (line.indexOf(': ', indent) >= 0 || line.endsWith(':'));
}

/** A plain scalar as the yaml package's core schema resolves it. */
function plainScalar(s: string): unknown {
  const c = s.charCodeAt(0);
  // Only scalars starting with a digit, a sign, a dot, ~, n, N, t, T, f or F, or empty, may be anything but a string.
  if (!(s === '' || (c >= 0x30 && c <= 0x39) || '+-.~nNtTfF'.includes(s[0]!))) return s;
  if (/^(?:~|[Nn]ull|NULL)?$/.test(s)) return null;
  if (/^(?:[Tt]rue|TRUE|[Ff]alse|FALSE)$/.test(s)) return s[0] === 't' || s[0] === 'T';
  if (/^0o[0-7]+$/.test(s)) return parseInt(s.slice(2), 8);
  if (/^[-+]?[0-9]+$/.test(s)) return parseInt(s, 10);
  if (/^0x[0-9a-fA-F]+$/.test(s)) return parseInt(s.slice(2), 16);
  if (/^(?:[-+]?\.(?:inf|Inf|INF)|\.nan|\.NaN|\.NAN)$/.test(s)) {
    return s.slice(-3).toLowerCase() === 'nan' ? NaN : s[0] === '-' ? -Infinity : Infinity;
  }
  if (/^[-+]?(?:\.[0-9]+|[0-9]+(?:\.[0-9]*)?)[eE][-+]?[0-9]+$/.test(s) || /^[-+]?(?:\.[0-9]+|[0-9]+\.[0-9]*)$/.test(s)) return parseFloat(s);
  return s;
}

/** A map key as the yaml package makes one of a scalar for a plain object. */
function keyString(v: unknown): string {
  return v === null ? '' : String(v);
}

/**
 * A copy of a string kept in the result: a slice of the 64 KiB block it was read from would keep
 * the whole block alive. V8 copies slices under 13 characters anyway; a longer one is joined to a
 * space (a new string of both) and cut from it, which leaves it pointing into that copy only.
 */
function own(s: string): string {
  return s.length < 13 ? s : ` ${s}`.slice(1);
}

/** Own, enumerable and writable, even for `__proto__`: what the yaml package's plain objects hold. */
function define(into: Record<string, unknown>, key: string, value: unknown): void {
  // An assignment is the same for any other key, and several times faster for a large section.
  if (key === '__proto__') Object.defineProperty(into, key, { value, writable: true, enumerable: true, configurable: true });
  else into[key] = value;
}

/** A parsed flow collection cut down to what `spec` names, as the line reader would have kept it. */
function reduce(v: unknown, spec: Spec | typeof SCALAR): unknown {
  if (Array.isArray(v)) return [];
  if (typeof v !== 'object' || v === null) return v;
  if (spec === SCALAR) return {};
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(v)) {
    const child = Object.hasOwn(spec, key) ? spec[key] : spec['*'];
    if (child === undefined) continue;
    if (child === EXACT_SCALAR && typeof value === 'object' && value !== null) throw new Unsupported('a collection where a scalar was expected');
    define(out, key, reduce(value, child === EXACT_SCALAR ? SCALAR : child));
  }
  return out;
}
