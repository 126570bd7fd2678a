import { statSync } from 'node:fs';
import { AdvisoryStore, vulnDbPath } from '../vulndb/index.js';

/**
 * The vulnerability database as the server sees it. `db update` and `db import` replace the file
 * atomically (a rename), possibly from another process: the file's identity is the database's
 * version, and a new identity reopens the store, so the server uses new data without a restart.
 */
export class VulnDbHandle {
  private store: AdvisoryStore | null = null;
  private openedVersion = '';

  constructor(private readonly dataDir: string) {}

  /** `none` when there is no database; otherwise changes with every import or update. */
  version(): string {
    try {
      const s = statSync(vulnDbPath(this.dataDir));
      return `${s.ino}:${s.mtimeMs}:${s.size}`;
    } catch {
      return 'none';
    }
  }

  /** The store for the current version (null without a database). */
  get(): { store: AdvisoryStore | null; version: string } {
    const version = this.version();
    if (version !== this.openedVersion) {
      this.store?.close();
      this.store = version === 'none' ? null : AdvisoryStore.open(this.dataDir);
      this.openedVersion = version;
    }
    return { store: this.store, version };
  }

  close(): void {
    this.store?.close();
    this.store = null;
    this.openedVersion = '';
  }
}
