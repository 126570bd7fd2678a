import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import type { HeaderBlobs } from './header.js';

/** Every SQLite database starts with this 16-byte string. */
export const SQLITE_MAGIC = Buffer.from('SQLite format 3\0', 'latin1');

/**
 * better-sqlite3 (a native addon, about 9 ms to load here) is loaded by the first rpm database
 * found, not by every scan and `sbom` that has none.
 */
let sqlite: typeof BetterSqlite3 | undefined;
const requireHere = createRequire(import.meta.url);
function openReadOnly(file: string): BetterSqlite3.Database {
  sqlite ??= requireHere('better-sqlite3') as typeof BetterSqlite3;
  return new sqlite(file, { readonly: true, fileMustExist: true });
}

export function isSqlite(content: Buffer): boolean {
  return (
    content.length >= SQLITE_MAGIC.length && content.subarray(0, SQLITE_MAGIC.length).equals(SQLITE_MAGIC)
  );
}

/**
 * Reads every header blob from an rpm 4.16+ `rpmdb.sqlite` (table `Packages(hnum, blob)`), in
 * install order. The content is written to a uniquely named scratch file because better-sqlite3
 * opens files; the file (and any side file SQLite made) is removed afterwards, also on error.
 * Throws on anything SQLite or the schema rejects; the caller turns that into a warning.
 */
export function readSqliteHeaderBlobs(content: Buffer, scratchDir: string): HeaderBlobs {
  const file = join(scratchDir, `rpmdb-${randomUUID()}.sqlite`);
  const copy = Buffer.from(content);
  // rpm puts its database in WAL mode (header bytes 18/19 = 2). Opening a WAL database, even
  // read-only, makes SQLite create -wal/-shm files; we never have the image's WAL anyway (it is
  // checkpointed when rpm exits cleanly), so mark the copy as a rollback-journal database.
  if (copy.length >= 20 && copy[18] === 2 && copy[19] === 2) {
    copy[18] = 1;
    copy[19] = 1;
  }
  let db: BetterSqlite3.Database | undefined;
  try {
    writeFileSync(file, copy, { flag: 'wx' });
    db = openReadOnly(file);
    const rows = db.prepare('SELECT blob FROM Packages ORDER BY hnum').raw().all() as unknown[][];
    const result: HeaderBlobs = { blobs: [], problems: [] };
    rows.forEach((row, i) => {
      const blob = row[0];
      if (Buffer.isBuffer(blob)) result.blobs.push(blob);
      else result.problems.push(`Packages row ${i + 1} holds no blob`);
    });
    return result;
  } finally {
    try {
      db?.close();
    } finally {
      for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(file + suffix, { force: true });
    }
  }
}
