import type { AnalyserFile } from '../types.js';

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
