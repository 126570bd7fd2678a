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
