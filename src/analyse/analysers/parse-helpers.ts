import { jsonPastBounds } from '../../json-structure.js';
import { MAX_OWNED_FILES_PER_FILE, MAX_OWNED_PATH_BYTES_PER_FILE } from '../dispatch.js';
import type { AnalyserFile, FileFacts, FileStream } from '../types.js';

/** Small helpers the lockfile and metadata analysers share. */
export type JsonObject = Record<string, unknown>;

export function isObject(v: unknown): v is JsonObject {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/**
 * Most licences one package record keeps. Real packages name one to three; a hostile manifest can
 * list hundreds of thousands, and every one would travel through the cache and the report.
 */
export const MAX_LICENSES = 32;

/** A non-empty string, or undefined. */
export function str(v: unknown): string | undefined {
  return typeof v === 'string' && v !== '' ? v : undefined;
}

/** Messages from parsers can span lines (code frames); a warning must be one line. */
export function oneLine(e: unknown): string {
  const msg = e instanceof Error ? e.message : String(e);
  return (msg.split('\n')[0] ?? '').trim();
}

/** The file as text, without a UTF-8 byte-order mark. */
export function fileText(file: AnalyserFile): string {
  const s = file.content.toString('utf8');
  return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
}

/**
 * Bytes decoded into one string at a time by linesOf. Small enough that a block's string is an
 * ordinary young-generation object: a 1 MiB string went to the large-object space and lived until
 * a full collection, so a 63 MiB file left some 60 MB of spent blocks behind (218 MB peak for
 * lines that yield nothing, 167 MB with 64 KiB blocks).
 */
const LINE_BLOCK = 1 << 16;

/**
 * The lines of a buffer one at a time, decoded a block of whole lines at a time: neither
 * split('\n') (millions of strings at once) nor one string of the whole file (as large again as
 * the buffer, for a dpkg status file that may be 128 MiB), and not a decode per line either (five
 * times slower than slicing a block's string). Used by the dpkg and apk databases.
 */
export function* linesOf(buf: Buffer): Generator<string> {
  let start = 0;
  while (start < buf.length) {
    let end = buf.length;
    if (end - start > LINE_BLOCK) {
      const nl = buf.lastIndexOf(0x0a, start + LINE_BLOCK);
      // A line longer than a block is decoded whole.
      end = nl >= start ? nl + 1 : (buf.indexOf(0x0a, start + LINE_BLOCK) + 1 || buf.length);
    }
    const text = buf.toString('utf8', start, end);
    let from = 0;
    for (let nl = text.indexOf('\n'); nl >= 0; nl = text.indexOf('\n', from)) {
      yield text.slice(from, nl);
      from = nl + 1;
    }
    if (from < text.length) yield text.slice(from);
    start = end;
  }
}

/**
 * Longest line a LineStream keeps whole. Lines of package databases are short; a longer line (a
 * hostile description, or a file with no newline at all) keeps its first bytes only, so reading
 * a file as it arrives never holds more than this of one line.
 */
export const MAX_LINE_BYTES = 1 << 20;

/**
 * Reads a text file as its bytes arrive, a line at a time (see linesOf): cut into lines at newline
 * bytes (a UTF-8 sequence never holds one). Only the end of a line cut by a chunk's end is copied
 * and kept, so a large database is never held whole. A subclass handles each line and says what
 * it found; setting `stopped` ends the reading early.
 */
export abstract class LineStream implements FileStream {
  /** Set when nothing more of the file is wanted: later bytes are not even cut into lines. */
  protected stopped = false;
  /** The bytes of a line not ended yet, at most MAX_LINE_BYTES of them. */
  private partial: Buffer[] = [];
  private partialBytes = 0;

  protected abstract line(line: string): void;
  protected abstract finish(): FileFacts;

  write(chunk: Buffer): void {
    if (this.stopped) return;
    const nl = chunk.lastIndexOf(0x0a);
    if (nl < 0) {
      this.keepPartial(chunk);
      return;
    }
    let from = 0;
    if (this.partialBytes > 0) {
      // The line begun in earlier chunks ends in this one.
      from = chunk.indexOf(0x0a) + 1;
      this.keepPartial(chunk.subarray(0, from));
      const line = Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
      for (const l of linesOf(line)) if (!this.stopped) this.line(l);
    }
    for (const l of linesOf(chunk.subarray(from, nl + 1))) {
      if (this.stopped) return;
      this.line(l);
    }
    if (nl + 1 < chunk.length) this.keepPartial(chunk.subarray(nl + 1));
  }

  end(): FileFacts {
    if (this.partialBytes > 0 && !this.stopped) for (const l of linesOf(Buffer.concat(this.partial, this.partialBytes))) this.line(l);
    this.partial = [];
    return this.finish();
  }

  /** The whole file at once, as analyse() has it. */
  readAll(content: Buffer): FileFacts {
    this.write(content);
    return this.end();
  }

  /** Copies (the chunk is only lent) up to MAX_LINE_BYTES of an unfinished line. */
  private keepPartial(bytes: Buffer): void {
    const room = MAX_LINE_BYTES - this.partialBytes;
    if (room <= 0 || bytes.length === 0) return;
    const kept = Buffer.from(bytes.subarray(0, room));
    this.partial.push(kept);
    this.partialBytes += kept.length;
  }
}

/** A character a one-byte (Latin-1) string cannot hold. */
const NOT_LATIN1 = /[^\u0000-\u00ff]/;

/**
 * Counts the installed files one database file lists against MAX_OWNED_FILES_PER_FILE and
 * MAX_OWNED_PATH_BYTES_PER_FILE: the first paths are kept until either is reached, the rest only
 * counted, for the warning.
 */
export class OwnedFilesBound {
  kept = 0;
  dropped = 0;
  private held = 0;
  private twoByte = false;
  private byBytes = false;

  /** Whether to keep `path`, the next one listed. */
  admit(path: string): boolean {
    if (this.dropped === 0) {
      // A string of lines is two bytes a character once one of them needs it.
      if (!this.twoByte && NOT_LATIN1.test(path)) {
        this.twoByte = true;
        this.held *= 2;
      }
      const cost = (path.length + 1) * (this.twoByte ? 2 : 1);
      this.byBytes = this.held + cost > MAX_OWNED_PATH_BYTES_PER_FILE;
      if (this.kept < MAX_OWNED_FILES_PER_FILE && !this.byBytes) {
        this.kept++;
        this.held += cost;
        return true;
      }
    }
    this.dropped++;
    return false;
  }

  /** The warning for a file past the bound (`what` it is: "database", "package"), else undefined. */
  warning(path: string, what: string): string | undefined {
    if (this.dropped === 0) return undefined;
    const why = this.byBytes ? ` (${MAX_OWNED_PATH_BYTES_PER_FILE / (1 << 20)} MiB of paths)` : '';
    return `${path}: lists ${this.kept + this.dropped} installed files, more than any real ${what}; kept the first ${this.kept}${why}`;
  }
}

/**
 * Builds OwnedFiles.files, the paths one OS package installed, as one string: gathered a few
 * thousand at a time into a flat string, so that neither an array of every path nor the 64 KiB
 * blocks of text their slices point into stay alive.
 */
export class PathList {
  private pending: string[] = [];
  private sealed: string[] = [];

  add(path: string): void {
    this.pending.push(path);
    if (this.pending.length >= 4096) this.seal();
  }

  /** The paths added, each followed by a newline, and a fresh start. */
  take(): string {
    this.seal();
    const all = this.sealed.length === 1 ? this.sealed[0]! : this.sealed.join('');
    this.sealed = [];
    return all;
  }

  private seal(): void {
    if (this.pending.length === 0) return;
    this.sealed.push(`${this.pending.join('\n')}\n`);
    this.pending = [];
  }
}

/**
 * Most keys, key segments, tables and arrays a TOML lockfile may declare before it is parsed. The
 * TOML parser keeps two dictionary-mode objects and a record per key segment (about 600 bytes), so
 * memory follows their number, not the file's size: a 1 MiB file of dotted keys (`a1.b.c.d.e.f.g = 1`) took a scan
 * to 225 MB and 13 MiB to 1.8 GB. A large real poetry.lock (hundreds of packages with their wheel
 * hashes) has some 20,000 of them, a Cargo.lock of a thousand crates about 6,000.
 */
export const MAX_TOML_STRUCTURES = 100_000;

/**
 * A warning when `text` declares more than MAX_TOML_STRUCTURES keys, key segments, tables and arrays
 * (each `=`, `.`, `[` and `{` outside strings and comments, and every sixteenth `,`), else
 * undefined. One linear pass; it stops at the bound. Floats and dates count their dots too: the
 * count is an upper bound. A real poetry.lock has about one per 40 bytes, so the bound lets through
 * some 4 MB of it.
 */
export function tomlTooLarge(path: string, text: string): string | undefined {
  let count = 0;
  let commas = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    // An array element that is a plain value costs some 16 times less than a key or a table.
    if (c === 0x3d /* = */ || c === 0x2e /* . */ || c === 0x5b /* [ */ || c === 0x7b /* { */ || (c === 0x2c /* , */ && (++commas & 15) === 0)) {
      if (++count > MAX_TOML_STRUCTURES) {
        return `${path}: more than ${MAX_TOML_STRUCTURES} TOML keys and tables, more than any real lockfile; skipped`;
      }
    } else if (c === 0x23 /* # */) {
      const nl = text.indexOf('\n', i);
      i = nl < 0 ? n : nl;
    } else if (c === 0x22 /* " */ || c === 0x27 /* ' */) {
      i = tomlStringEnd(text, i, c);
    }
  }
  return undefined;
}

/** The index of the last character of the TOML string opening at `i` (or of the text, unclosed). */
function tomlStringEnd(text: string, i: number, quote: number): number {
  const n = text.length;
  const escapes = quote === 0x22;
  if (text.charCodeAt(i + 1) === quote && text.charCodeAt(i + 2) === quote) {
    // Multi-line: up to three closing quotes (a run of up to five ends it too, as in TOML).
    for (let j = i + 3; j < n; j++) {
      const c = text.charCodeAt(j);
      if (escapes && c === 0x5c /* \ */) j++;
      else if (c === quote && text.charCodeAt(j + 1) === quote && text.charCodeAt(j + 2) === quote) {
        let end = j + 2;
        while (end + 1 < n && end - j < 4 && text.charCodeAt(end + 1) === quote) end++;
        return end;
      }
    }
    return n;
  }
  for (let j = i + 1; j < n; j++) {
    const c = text.charCodeAt(j);
    if (escapes && c === 0x5c) j++;
    else if (c === quote || c === 0x0a /* a string cannot span lines */) return j;
  }
  return n;
}

/** Deepest nesting of arrays and objects accepted in JSON from an image; real lockfiles nest < 10. */
export const MAX_JSON_DEPTH = 1000;

/**
 * Most arrays and objects accepted in one JSON file from an image (every eighth comma counts as
 * one too: a plain array element costs less). A real package-lock.json has about one per 150
 * bytes, so this lets through some 35 MB of it; 16 MiB of `[],[],…` (5.6 million arrays) took a
 * scan to 477 MB.
 */
export const MAX_JSON_CONTAINERS = 250_000;

/**
 * A warning when `text` nests arrays and objects deeper than MAX_JSON_DEPTH or holds more than
 * MAX_JSON_CONTAINERS of them, else undefined: call it before JSON.parse on a file from an image.
 * JSON.parse holds every open level on its own stacks, so 16 MiB of `[[[[…` took a scan to 880 MB;
 * 16 MiB of 999-deep chains side by side took 592 MB (src/json-structure.ts does the counting).
 */
export function jsonTooLarge(path: string, text: string): string | undefined {
  const past = jsonPastBounds(text, { maxDepth: MAX_JSON_DEPTH, maxContainers: MAX_JSON_CONTAINERS });
  if (past === 'depth') return `${path}: JSON nested deeper than ${MAX_JSON_DEPTH} levels; skipped`;
  return past === 'containers' ? tooMany(path) : undefined;
}

/**
 * A JSON file from an image, parsed once its shape passed jsonTooLarge; otherwise the one-line
 * warning the analyser reports instead of packages.
 */
export function parseJsonFile(file: AnalyserFile): { doc: unknown } | { warning: string } {
  const text = fileText(file);
  const tooLarge = jsonTooLarge(file.path, text);
  if (tooLarge) return { warning: tooLarge };
  try {
    return { doc: JSON.parse(text) };
  } catch (e) {
    return { warning: `${file.path}: invalid JSON: ${oneLine(e)}` };
  }
}

function tooMany(path: string): string {
  return `${path}: more than ${MAX_JSON_CONTAINERS} JSON arrays and objects, more than any real lockfile; skipped`;
}
