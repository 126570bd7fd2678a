import {
  isAlias,
  isCollection,
  isMap,
  isPair,
  isSeq,
  parseAllDocuments,
  parseDocument,
  type Document,
  type DocumentOptions,
  type ParseOptions,
} from 'yaml';

/**
 * Loads a large, regular YAML file (a pnpm lockfile) a few hundred kilobytes at a time.
 *
 * The yaml package keeps a syntax tree of every token of a document until the document is
 * converted to plain values. For a lockfile that tree costs about 60 times the text (a 16 MB
 * pnpm-lock.yaml took 1 GB), so a large lockfile in an image, real or hostile, would push a scan
 * far past its memory target. Lockfiles are block mappings of many small entries, so the text is
 * cut before every entry of a top-level section (a line indented exactly as that section's first
 * entry: YAML gives any continuation of an entry a deeper indent), each piece is parsed on its own
 * under its section's key, and the pieces' plain values are merged. Anything this does not expect
 * (document markers with content, an anchor used across pieces, a syntax error in a piece) is
 * parsed the ordinary way, in one go, if the file is small enough for that to be cheap.
 */

/**
 * Bytes of entries parsed together. Each piece's text and syntax tree stay small, short-lived
 * objects; the 16 MB lockfile of bench/hostile took 6.0-6.9 s with 64 KiB pieces, 8.6 s with 256 KiB.
 */
const PIECE_BYTES = 64 * 1024;
/** Largest text parsed in one go when reading in pieces did not work. */
const WHOLE_PARSE_LIMIT = 4 * 1024 * 1024;

type Plain = unknown;

/**
 * uniqueKeys is off because the yaml package checks each new key against every earlier key of its
 * map: a lockfile with 40,000 packages took 34 s to parse with it on and 1.7 s with it off. The
 * later of two equal keys wins, as in JSON.parse. logLevel 'error' keeps the package from writing
 * warnings to the process's stderr (process.emitWarning), where a file in an image could put text
 * into a scan's output; nothing in a lockfile is worth one there.
 */
const OPTIONS: ParseOptions & DocumentOptions = { uniqueKeys: false, logLevel: 'error' };

/**
 * The file is too large to parse in one go and could not be read in pieces: not a syntax error,
 * so callers say so in their own words.
 */
export class LockYamlError extends Error {
  override readonly name = 'LockYamlError';
}

/** What loadLastYamlDocument left out of the plain values. */
export interface YamlLoadNotes {
  /**
   * Map entries whose key is a list or a map (`? [a]`, `{a: 1}: b`), dropped. Plain values can
   * only have string keys: the yaml package would make one up by printing the collection, and
   * warn on stderr; no lockfile key is a collection, so such an entry names nothing.
   */
  collectionKeys: number;
  /**
   * Top-level sections that held more than LoadOptions.maxEntries entries: only their first
   * entries (the bound and at most a piece more) were parsed, the rest left unread.
   */
  cutSections?: string[];
}

export interface LoadOptions {
  /**
   * Stop reading a top-level section (`packages:`, `snapshots:`) once it has more than this many
   * entries. Bounds the parse of a hostile lockfile by what its reader would keep, since the parse
   * is nearly all of the cost (4.3 s and 390 MB for 60,000 entries of each). Only a file read in
   * pieces is cut; one parsed whole is at most WHOLE_PARSE_LIMIT bytes.
   */
  maxEntries?: number;
}

/**
 * The last document of `text` as plain values (pnpm 9 may put an env lockfile document first).
 * Throws LockYamlError when the file is too large to read in one go and cannot be read in pieces,
 * and the yaml package's error for a syntax error.
 */
export function loadLastYamlDocument(text: string, notes?: YamlLoadNotes, options: LoadOptions = {}): Plain {
  const dropped: YamlLoadNotes = { collectionKeys: 0 };
  let value: Plain;
  try {
    const pieced = loadInPieces(text, dropped, options.maxEntries ?? Infinity);
    if (pieced.ok) value = pieced.value;
  } catch {
    // Fall through to the ordinary parse, which reports the error properly.
  }
  if (value === undefined) {
    if (text.length > WHOLE_PARSE_LIMIT) {
      throw new LockYamlError(`cannot be read in parts and is larger than ${WHOLE_PARSE_LIMIT} bytes`);
    }
    dropped.collectionKeys = 0; // what the pieces counted before they gave up
    dropped.cutSections = undefined;
    value = loadWhole(text, dropped);
  }
  if (notes) {
    notes.collectionKeys += dropped.collectionKeys;
    if (dropped.cutSections) notes.cutSections = [...(notes.cutSections ?? []), ...dropped.cutSections];
  }
  return value;
}

function loadWhole(text: string, dropped: YamlLoadNotes): Plain {
  const docs = parseAllDocuments(text, OPTIONS);
  const all = Array.isArray(docs) ? docs : [docs];
  const bad = all.find((d) => d.errors.length > 0);
  if (bad) throw bad.errors[0];
  const last = all.at(-1);
  return last === undefined ? undefined : toPlain(last, dropped);
}

/** The document as plain values, without the map entries whose key is a collection (YamlLoadNotes). */
function toPlain(doc: Document.Parsed, dropped: YamlLoadNotes): Plain {
  dropCollectionKeys(doc, doc.contents, dropped);
  return doc.toJS();
}

/**
 * Removes, under `node`, the map entries whose key is a list or map or an alias of one. A walk of
 * its own rather than the package's visit(), which calls back for every node of the 16 MB
 * lockfile of bench/hostile; this one only looks at collections.
 */
function dropCollectionKeys(doc: Document.Parsed, node: unknown, dropped: YamlLoadNotes): void {
  if (!isMap(node) && !isSeq(node)) return;
  const items: unknown[] = node.items;
  let kept = 0;
  for (const item of items) {
    if (isPair(item)) {
      const key = isAlias(item.key) ? item.key.resolve(doc) : item.key;
      if (isCollection(key)) {
        dropped.collectionKeys++;
        continue;
      }
      dropCollectionKeys(doc, item.value, dropped);
    } else dropCollectionKeys(doc, item, dropped);
    items[kept++] = item;
  }
  items.length = kept;
}

type PieceResult = { ok: true; value: Plain } | { ok: false };

function loadInPieces(text: string, dropped: YamlLoadNotes, maxEntries: number): PieceResult {
  const lines = text.split('\n');
  // Keep only the last document. A marker line with anything after it is left to the full parser.
  let first = 0;
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i] ?? '';
    if (!line.startsWith('---') && !line.startsWith('...')) continue;
    if (/^(---|\.\.\.)\s*$/.test(line)) first = i + 1;
    else if (/^(---|\.\.\.)(\s|$)/.test(line)) return { ok: false };
  }
  if (first > 0 && lines.slice(first).every((l) => isBlankOrComment(l))) return { ok: false };
  const body = lines.slice(first);
  if (body.some((l) => l.startsWith('%'))) return { ok: false }; // directives

  const out: Record<string, Plain> = {};
  let i = 0;
  let any = false;
  while (i < body.length) {
    const line = body[i] ?? '';
    if (isBlankOrComment(line)) {
      i++;
      continue;
    }
    if (/^\s/.test(line)) return { ok: false }; // content before any top-level key
    let end = i + 1;
    while (end < body.length && (isBlankOrComment(body[end] ?? '') || /^\s/.test(body[end] ?? ''))) end++;
    const section = loadSection(body, i, end, dropped, maxEntries);
    if (!section) return { ok: false };
    mergeInto(out, { [section.key]: section.value }); // a repeated top-level key: the later one wins
    any = true;
    i = end;
  }
  return any ? { ok: true, value: out } : { ok: false };
}

function isBlankOrComment(line: string): boolean {
  const t = line.trimStart();
  return t === '' || t === '\r' || t.startsWith('#');
}

/**
 * One top-level `key:` and the indented lines after it, parsed a piece at a time, until the pieces
 * parsed hold more than `maxEntries` entries (see LoadOptions).
 */
function loadSection(
  lines: readonly string[],
  start: number,
  end: number,
  dropped: YamlLoadNotes,
  maxEntries: number,
): { key: string; value: Plain } | undefined {
  const header = lines[start] ?? '';
  const entryIndent = firstEntryIndent(lines, start + 1, end);
  // `key: value` on one line, or a header with nothing under it: small, parsed as it is.
  if (entryIndent === undefined || !/^[^\s#][^#]*:\s*(#.*)?\r?$/.test(header)) {
    return singleKey(parsePiece(lines.slice(start, end).join('\n'), dropped));
  }
  let key: string | undefined;
  let value: Plain;
  let piece: string[] = [];
  let pieceBytes = 0;
  let entries = 0;
  const flush = (): boolean => {
    if (piece.length === 0) return true;
    const part = singleKey(parsePiece(`${header}\n${piece.join('\n')}`, dropped));
    piece = [];
    pieceBytes = 0;
    if (!part || (key !== undefined && part.key !== key)) return false;
    key = part.key;
    if (value === undefined) value = part.value;
    else if (Array.isArray(value) && Array.isArray(part.value)) value.push(...(part.value as unknown[]));
    else if (isRecord(value) && isRecord(part.value)) mergeInto(value, part.value);
    else return false;
    // Counted per piece: a key repeated in a later piece counts twice, so this is an upper bound.
    entries += Array.isArray(part.value) ? part.value.length : isRecord(part.value) ? Object.keys(part.value).length : 1;
    return true;
  };
  for (let i = start + 1; i < end; i++) {
    const line = lines[i] ?? '';
    if (pieceBytes >= PIECE_BYTES && startsEntry(line, entryIndent)) {
      if (!flush()) return undefined;
      if (entries > maxEntries) {
        (dropped.cutSections ??= []).push(key!);
        return { key: key!, value };
      }
    }
    piece.push(line);
    pieceBytes += line.length + 1;
  }
  if (!flush() || key === undefined) return undefined;
  return { key, value };
}

function firstEntryIndent(lines: readonly string[], from: number, end: number): number | undefined {
  for (let i = from; i < end; i++) {
    const line = lines[i] ?? '';
    if (isBlankOrComment(line)) continue;
    const indent = line.length - line.trimStart().length;
    return line.slice(0, indent).includes('\t') ? undefined : indent;
  }
  return undefined;
}

function startsEntry(line: string, indent: number): boolean {
  if (line.length <= indent || isBlankOrComment(line)) return false;
  for (let i = 0; i < indent; i++) if (line[i] !== ' ') return false;
  const c = line[indent];
  // `: value` after a `? key` line (js-yaml writes keys over 1,024 characters that way) and `- item`
  // (a sequence may sit at its key's indent) continue the entry above; neither starts one.
  if ((c === ':' || c === '-') && (line.length === indent + 1 || line[indent + 1] === ' ' || line[indent + 1] === '\r')) return false;
  return c !== ' ';
}

/**
 * One small piece of YAML (a flow collection or a quoted scalar of lock-yaml-lines.ts) as plain
 * values, entries keyed by a collection dropped and counted in `notes`. Throws on a syntax error.
 */
export function parseSmallYaml(text: string, notes?: YamlLoadNotes): Plain {
  return parsePiece(text, notes ?? { collectionKeys: 0 });
}

function parsePiece(text: string, dropped: YamlLoadNotes): Plain {
  const doc = parseDocument(text, OPTIONS);
  if (doc.errors.length > 0) throw doc.errors[0];
  return toPlain(doc, dropped);
}

function singleKey(value: Plain): { key: string; value: Plain } | undefined {
  if (!isRecord(value)) return undefined;
  const keys = Object.keys(value);
  if (keys.length !== 1 || keys[0] === undefined) return undefined;
  return { key: keys[0], value: value[keys[0]] };
}

/**
 * Copies `from`'s own keys onto `into` as own properties. Not Object.assign: a lockfile entry named
 * `__proto__` (an own key in what yaml gives) would set `into`'s prototype instead of becoming a key.
 */
function mergeInto(into: Record<string, Plain>, from: Record<string, Plain>): void {
  for (const key of Object.keys(from)) {
    Object.defineProperty(into, key, { value: from[key], writable: true, enumerable: true, configurable: true });
  }
}

function isRecord(v: Plain): v is Record<string, Plain> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}
