import Database from 'better-sqlite3';
import { VulnDbError, missingDatabase, vulnDbPath } from './location.js';

export { DB_FILE_NAME, VulnDbError, vulnDbDir, vulnDbPath } from './location.js';

/**
 * Version of the on-disk layout below. Bump it whenever a table or a stored JSON shape changes;
 * an older binary then refuses the file instead of misreading it.
 */
export const SCHEMA_VERSION = 1;

/**
 * Tables. Everything the matcher reads per package is one compact JSON text so a lookup is one
 * indexed read and one JSON.parse per row, and the file stays small (no per-event rows).
 */
export const SCHEMA_SQL = `
CREATE TABLE IF NOT EXISTS meta (
  key   TEXT PRIMARY KEY,
  value TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS records (
  id          TEXT PRIMARY KEY,
  modified    TEXT NOT NULL,
  modified_ms REAL NOT NULL,
  source      TEXT NOT NULL,
  data        TEXT NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS affected (
  record_id TEXT NOT NULL,
  ecosystem TEXT NOT NULL,
  name      TEXT NOT NULL,
  name_key  TEXT NOT NULL,
  data      TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS affected_package ON affected (ecosystem, name_key);
CREATE INDEX IF NOT EXISTS affected_record ON affected (record_id);
CREATE TABLE IF NOT EXISTS cve_severity (
  cve_id      TEXT PRIMARY KEY,
  vectors     TEXT NOT NULL,
  score       REAL,
  source      TEXT NOT NULL,
  modified_ms REAL NOT NULL
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS ecosystems (
  ecosystem       TEXT PRIMARY KEY,
  records         INTEGER NOT NULL,
  newest_modified TEXT,
  source          TEXT NOT NULL,
  imported_at     TEXT NOT NULL
) WITHOUT ROWID;
`;

export interface StoredSeverity {
  type: string;
  score: string;
}

export interface StoredRecord {
  id: string;
  aliases: string[];
  upstream: string[];
  summary?: string;
  modified: string;
  published?: string;
  withdrawn?: string;
  severity: StoredSeverity[];
  /** Free-text severity from `database_specific.severity` (GHSA: LOW/MODERATE/HIGH/CRITICAL). */
  databaseSeverity?: string;
  references: string[];
  /** Where the record was imported from (file path or download URL). */
  source: string;
}

export type StoredEvent = { introduced?: string; fixed?: string; last_affected?: string; limit?: string };

export interface StoredRange {
  type: 'SEMVER' | 'ECOSYSTEM';
  events: StoredEvent[];
}

export interface StoredAffected {
  record: StoredRecord;
  /** The package name exactly as the record spells it. */
  name: string;
  ranges: StoredRange[];
  versions: string[];
  /** Per-package severity (`affected[].severity`), when the record has one. */
  severity?: StoredSeverity[];
  ecosystemSpecific?: unknown;
}

export interface EcosystemStatus {
  ecosystem: string;
  records: number;
  newestModified?: string;
  source: string;
  importedAt: string;
}

/**
 * Lookup key for a package name. PyPI names compare under PEP 503 normalisation (`Jinja2`,
 * `jinja2` and `jinja_2` are one project), so both sides are reduced the same way; every other
 * ecosystem compares names exactly as written (Maven, Go module paths are case-sensitive).
 */
export function packageKey(ecosystem: string, name: string): string {
  if (ecosystem === 'PyPI' || ecosystem.startsWith('PyPI:')) {
    return name.toLowerCase().replace(/[-_.]+/g, '-');
  }
  return name;
}

/** Reads meta.schema_version and refuses files written by a newer Portcullis. */
export function checkSchemaVersion(db: Database.Database, file: string): number {
  let raw: string | undefined;
  try {
    const row = db.prepare("SELECT value FROM meta WHERE key = 'schema_version'").get() as
      { value: string } | undefined;
    raw = row?.value;
  } catch (err) {
    throw new VulnDbError(
      'DB_CORRUPT',
      `${file} is not a Portcullis vulnerability database (${(err as Error).message}); ` +
        'delete it and run `portcullis db update` or `portcullis db import PATH`',
      { subject: file, cause: err },
    );
  }
  const version = Number(raw);
  if (raw === undefined || !Number.isInteger(version)) {
    throw new VulnDbError(
      'DB_CORRUPT',
      `${file} has no schema_version; delete it and run \`portcullis db update\` or \`portcullis db import PATH\``,
      { subject: file },
    );
  }
  if (version > SCHEMA_VERSION) {
    throw new VulnDbError(
      'DB_SCHEMA_NEWER',
      `${file} has schema version ${version}, but this Portcullis understands up to ${SCHEMA_VERSION}; ` +
        'upgrade Portcullis, or delete the file and run `portcullis db update`',
      { subject: file },
    );
  }
  return version;
}

interface AffectedRow {
  record_id: string;
  name: string;
  data: string;
}

interface AffectedData {
  ranges?: StoredRange[];
  versions?: string[];
  severity?: StoredSeverity[];
  ecosystemSpecific?: unknown;
}

/** Read-only view of `<dataDir>/vulndb/osv.sqlite` used while matching. */
export class AdvisoryStore {
  readonly path: string;
  private readonly db: Database.Database;
  // Matching asks for the same advisories many times (one per package in many images); parsing
  // each record once keeps repeated lookups at a Map get.
  private readonly records = new Map<string, StoredRecord>();
  private readonly stmtAffected: Database.Statement<[string, string], AffectedRow>;
  private readonly stmtRecord: Database.Statement<[string], { id: string; source: string; data: string }>;
  private readonly stmtCve: Database.Statement<[string], { vectors: string }>;

  private constructor(path: string, db: Database.Database) {
    this.path = path;
    this.db = db;
    this.stmtAffected = db.prepare(
      'SELECT record_id, name, data FROM affected WHERE ecosystem = ? AND name_key = ? ORDER BY record_id, rowid',
    );
    this.stmtRecord = db.prepare('SELECT id, source, data FROM records WHERE id = ?');
    this.stmtCve = db.prepare('SELECT vectors FROM cve_severity WHERE cve_id = ?');
  }

  static open(dataDir: string): AdvisoryStore {
    const file = vulnDbPath(dataDir);
    const missing = missingDatabase(dataDir);
    if (missing) throw missing;
    let db: Database.Database;
    try {
      db = new Database(file, { readonly: true, fileMustExist: true });
    } catch (err) {
      throw new VulnDbError(
        'DB_CORRUPT',
        `cannot open vulnerability database ${file}: ${(err as Error).message}`,
        {
          subject: file,
          cause: err,
        },
      );
    }
    try {
      checkSchemaVersion(db, file);
      return new AdvisoryStore(file, db);
    } catch (err) {
      db.close();
      throw err;
    }
  }

  /**
   * Which database this is: its creation time, kept by every import that updates it. A database
   * deleted and imported again has another lineage, so its generations start over.
   */
  lineage(): string {
    return this.meta('created_at') ?? '';
  }

  /** How many imports built this database (0 before the change log existed). */
  generation(): number {
    return Number(this.meta('generation') ?? '0');
  }

  /**
   * What the imports after `since` changed: the packages their new or changed records name, and the
   * record ids. Null when the log no longer reaches back that far (then everything may have changed).
   */
  changesSince(since: number): { generation: number; packages: { ecosystem: string; name: string }[]; records: string[] } | null {
    const generation = this.generation();
    if (since >= generation) return { generation, packages: [], records: [] };
    const oldest = Number(this.meta('oldest_change_generation') ?? '1');
    if (since + 1 < oldest || since < 0) return null;
    const rows = this.db.prepare('SELECT kind, a, b FROM changes WHERE generation > ?').all(since) as { kind: string; a: string; b: string }[];
    const packages = new Map<string, { ecosystem: string; name: string }>();
    const records = new Set<string>();
    for (const r of rows) {
      if (r.kind === 'package') packages.set(`${r.a}\0${r.b}`, { ecosystem: r.a, name: r.b });
      else records.add(r.a);
    }
    return { generation, packages: [...packages.values()], records: [...records] };
  }

  /**
   * Ids of the records that are, or name, this advisory: the record itself, distro records built on
   * it (`ALPINE-CVE-…` for `CVE-…`) and records that list it among their aliases or upstream ids.
   * A scan of the records table: for searches, not for matching.
   */
  recordsNaming(advisory: string): string[] {
    const id = advisory.toUpperCase();
    const rows = this.db
      .prepare("SELECT id FROM records WHERE upper(id) = ? OR upper(id) LIKE ? ESCAPE '\\' OR instr(upper(data), ?) > 0")
      .all(id, `%-${id.replace(/[%_\\]/g, (c) => `\\${c}`)}`, `"${id}"`) as { id: string }[];
    return rows.map((r) => r.id);
  }

  /** The (ecosystem, name) pairs a record names. */
  packagesOfRecord(id: string): { ecosystem: string; name: string }[] {
    return this.db.prepare('SELECT DISTINCT ecosystem, name FROM affected WHERE record_id = ?').all(id) as { ecosystem: string; name: string }[];
  }

  private meta(key: string): string | undefined {
    try {
      return (this.db.prepare('SELECT value FROM meta WHERE key = ?').get(key) as { value: string } | undefined)?.value;
    } catch {
      return undefined;
    }
  }

  /** Every affected entry for (ecosystem, name); ecosystem is matched exactly (`Alpine:v3.20`, `npm`). */
  advisoriesFor(ecosystem: string, name: string): StoredAffected[] {
    const rows = this.stmtAffected.all(ecosystem, packageKey(ecosystem, name));
    const out: StoredAffected[] = [];
    for (const row of rows) {
      const data = JSON.parse(row.data) as AffectedData;
      // The record is parsed only when a caller reads it: most affected entries do not cover the
      // installed version, and parsing every record is most of a cold match's cost.
      const loadRecord = this.requireRecord.bind(this, row.record_id);
      const entry = {
        name: row.name,
        ranges: data.ranges ?? [],
        versions: data.versions ?? [],
        get record(): StoredRecord {
          return loadRecord();
        },
      } as StoredAffected;
      if (data.severity !== undefined) entry.severity = data.severity;
      if (data.ecosystemSpecific !== undefined) entry.ecosystemSpecific = data.ecosystemSpecific;
      out.push(entry);
    }
    return out;
  }

  private requireRecord(id: string): StoredRecord {
    const r = this.record(id);
    if (r === undefined) throw new VulnDbError('DB_CORRUPT', `${this.path}: advisory ${id} has no record`);
    return r;
  }

  /** One record by id (any ecosystem), or undefined. */
  record(id: string): StoredRecord | undefined {
    const cached = this.records.get(id);
    if (cached !== undefined) return cached;
    const row = this.stmtRecord.get(id);
    if (row === undefined) return undefined;
    const record = {
      ...(JSON.parse(row.data) as Omit<StoredRecord, 'id' | 'source'>),
      id: row.id,
      source: row.source,
    };
    this.records.set(id, record);
    return record;
  }

  /** CVSS vectors known for a CVE id (from OSV CVE records or NVD feeds), or undefined. */
  cveSeverity(cveId: string): StoredSeverity[] | undefined {
    const row = this.stmtCve.get(cveId.toUpperCase());
    return row === undefined ? undefined : (JSON.parse(row.vectors) as StoredSeverity[]);
  }

  ecosystems(): string[] {
    return (
      this.db
        .prepare('SELECT ecosystem FROM ecosystems WHERE records > 0 ORDER BY ecosystem')
        .all() as Array<{
        ecosystem: string;
      }>
    ).map((r) => r.ecosystem);
  }

  status(): EcosystemStatus[] {
    const rows = this.db
      .prepare(
        'SELECT ecosystem, records, newest_modified, source, imported_at FROM ecosystems ORDER BY ecosystem',
      )
      .all() as Array<{
      ecosystem: string;
      records: number;
      newest_modified: string | null;
      source: string;
      imported_at: string;
    }>;
    return rows.map((r) => {
      const s: EcosystemStatus = {
        ecosystem: r.ecosystem,
        records: r.records,
        source: r.source,
        importedAt: r.imported_at,
      };
      if (r.newest_modified !== null) s.newestModified = r.newest_modified;
      return s;
    });
  }

  /** Number of CVE ids with a stored severity. */
  cveCount(): number {
    return (this.db.prepare('SELECT COUNT(*) AS n FROM cve_severity').get() as { n: number }).n;
  }

  close(): void {
    this.records.clear();
    if (this.db.open) this.db.close();
  }
}
