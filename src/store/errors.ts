import { PortcullisError } from '../errors.js';

/**
 * Errors of the storage layer (blobs and metadata). Codes reuse the OCI vocabulary where one fits
 * (DIGEST_INVALID, BLOB_UNKNOWN) so the registry maps them without a translation table.
 */
export class StoreError extends PortcullisError {}

/**
 * No space or quota left on the data folder's file system: for a file (ENOSPC, EDQUOT) or for
 * SQLite (SQLITE_FULL). Such a write fails through no fault of the request, and says so.
 */
export function isStorageFull(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return code === 'ENOSPC' || code === 'EDQUOT' || code === 'SQLITE_FULL';
}

/**
 * Another process (a `portcullis gc`, a second server, a script) held the metadata database's
 * write lock for longer than a statement waits for it (SQLITE_BUSY). Nothing is wrong with the
 * request or the server, and trying again later works.
 */
export function isDatabaseBusy(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && code.startsWith('SQLITE_BUSY');
}

/**
 * The data folder's file system refuses writes: mounted (or, after an error, remounted) read-only
 * (EROFS, SQLITE_READONLY) or failing (EIO, SQLITE_IOERR). Reads may still work.
 */
export function isStorageUnwritable(err: unknown): boolean {
  const code = (err as { code?: unknown } | null | undefined)?.code;
  return typeof code === 'string' && (code === 'EROFS' || code === 'EIO' || code.startsWith('SQLITE_READONLY') || code.startsWith('SQLITE_IOERR'));
}
