import { randomUUID } from 'node:crypto';
import { rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import type BetterSqlite3 from 'better-sqlite3';
import { HeaderBudget, type HeaderBlobs, type HeaderLimits } from './header.js';

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

/** What sqlite_schema says about the name `Packages`; SQLite resolves names case-blind. */
interface SchemaRow {
  type: string;
  rootpage: number | null;
}

/** One column of `PRAGMA table_xinfo`: `hidden` is 2 or 3 for generated columns. */
interface ColumnInfo {
  name: string;
  hidden: number;
}

/**
 * Refuses any `Packages` that is not a plain stored table, as rpm creates it. A view (or a
 * virtual table, or a generated column) computes its rows when read, so a hostile database could
 * make reading it endless or make each row arbitrarily large; a stored table's rows come from the
 * file itself.
 */
function checkPackagesTable(db: BetterSqlite3.Database): void {
  const objects = db
    .prepare(
      "SELECT type, rootpage FROM sqlite_schema WHERE name = 'Packages' COLLATE NOCASE AND type IN ('table', 'view')",
    )
    .all() as SchemaRow[];
  if (objects.length === 0) throw new Error('no Packages table');
  const kinds = objects.map((o) =>
    o.type === 'table' && (o.rootpage ?? 0) === 0 ? 'virtual table' : o.type,
  );
  if (kinds.length !== 1 || kinds[0] !== 'table') {
    throw new Error(`Packages is a ${kinds.join(' and a ')}, not a stored table; not read`);
  }
  const columns = db.prepare("SELECT name, hidden FROM pragma_table_xinfo('Packages')").all() as ColumnInfo[];
  const generated = columns.find((c) => c.hidden !== 0);
  if (generated) throw new Error(`Packages column ${generated.name} is computed, not stored; not read`);
}

/**
 * Reads every header blob from an rpm 4.16+ `rpmdb.sqlite` (table `Packages(hnum, blob)`), in
 * install order. The content is written to a uniquely named scratch file because better-sqlite3
 * opens files; the file (and any side file SQLite made) is removed afterwards, also on error.
 * Throws on anything SQLite or the schema rejects; the caller turns that into a warning.
 *
 * `Packages` must be a stored table (see checkPackagesTable). better-sqlite3 offers no progress
 * handler, so the work is bounded per row instead: rows are stepped through one at a time, at most
 * `limits.maxBlobs` of them, and each blob is charged to `limits.maxBytes` before SQLite loads it.
 * Past either limit the reader stops and says so in `stopped`.
 */
export function readSqliteHeaderBlobs(
  content: Buffer,
  scratchDir: string,
  limits?: HeaderLimits,
): HeaderBlobs {
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
    // Nothing in the file's schema may call functions with side effects; corrupt cells fail early.
    db.pragma('trusted_schema = OFF');
    db.pragma('cell_size_check = ON');
    checkPackagesTable(db);
    const budget = new HeaderBudget(limits);
    // Called by SQLite for each row before it loads the blob: length() reads only the record
    // header, so a blob over the budget is never materialised.
    db.function('portcullis_take', { deterministic: false }, (size: unknown) =>
      typeof size === 'number' && budget.take(size) ? 1 : 0,
    );
    const query = db
      .prepare(
        "SELECT hnum, CASE WHEN typeof(blob) = 'blob' AND portcullis_take(length(blob)) THEN blob END FROM Packages",
      )
      .raw();
    const rows: { hnum: unknown; blob: unknown; seq: number }[] = [];
    for (const [hnum, blob] of query.iterate() as IterableIterator<unknown[]>) {
      if (budget.reason !== undefined) break;
      if (rows.length >= budget.limits.maxBlobs) {
        budget.stopAtCount();
        break;
      }
      rows.push({ hnum, blob, seq: rows.length });
    }
    // rpm's hnum is the INTEGER PRIMARY KEY, so this is normally the order the rows came in. The
    // query itself has no ORDER BY: sorting would make SQLite read every row before the first.
    rows.sort((x, y) => compareHnum(x.hnum, y.hnum) || x.seq - y.seq);
    const result: HeaderBlobs = { blobs: [], problems: [] };
    rows.forEach((row, i) => {
      if (Buffer.isBuffer(row.blob)) result.blobs.push(row.blob);
      else result.problems.push(`Packages row ${i + 1} holds no blob`);
    });
    if (budget.reason !== undefined) result.stopped = budget.reason;
    return result;
  } finally {
    try {
      db?.close();
    } finally {
      for (const suffix of ['', '-journal', '-wal', '-shm']) rmSync(file + suffix, { force: true });
    }
  }
}

/** Orders numbers ascending, anything else after them. */
function compareHnum(a: unknown, b: unknown): number {
  const x = typeof a === 'number' ? a : Infinity;
  const y = typeof b === 'number' ? b : Infinity;
  return x === y ? 0 : x < y ? -1 : 1;
}
