import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { PortcullisError } from '../errors.js';

/**
 * Where the vulnerability database lives, and the error for when it is not there. Kept apart from
 * the store so that a scan without a database can say so without loading SQLite and the matcher.
 */

/** Errors about the local vulnerability database: missing, unreadable, too new, failed import or download. */
export class VulnDbError extends PortcullisError {}

export const DB_FILE_NAME = 'osv.sqlite';

export function vulnDbDir(dataDir: string): string {
  return join(dataDir, 'vulndb');
}

export function vulnDbPath(dataDir: string): string {
  return join(vulnDbDir(dataDir), DB_FILE_NAME);
}

/** The DB_MISSING error when the data folder has no database, else undefined. */
export function missingDatabase(dataDir: string): VulnDbError | undefined {
  const file = vulnDbPath(dataDir);
  if (existsSync(file)) return undefined;
  return new VulnDbError(
    'DB_MISSING',
    `no vulnerability database at ${file}; run \`portcullis db update\` to download one, ` +
      'or `portcullis db import PATH` to load OSV files you already have',
    { subject: file },
  );
}
