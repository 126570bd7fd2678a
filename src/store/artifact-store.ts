import { sql, type Generated, type Kysely, type Selectable } from 'kysely';

/**
 * What the registry learned about each stored artifact: the facts an analysis extracted (packages,
 * secrets, misconfigurations: per digest, since content decides them), an index of packages by
 * name (so a new advisory finds every affected artifact without reading a layer), and the verdict
 * per repository (exceptions and policies are scoped by project and repository).
 */

export type AnalysisState = 'analysed' | 'failed';
export type VerdictStatus = 'pass' | 'warn' | 'fail' | 'error';

export interface ArtifactFacts {
  digest: string;
  state: AnalysisState;
  /** The analysis result (JSON, compressed by the caller); null when the analysis failed. */
  facts: Buffer | null;
  error: string | null;
  analysedAt: string;
}

export interface IndexedPackage {
  /** The package type as the SBOM model names it (apk, deb, npm, pypi...). */
  type: string;
  name: string;
  version: string;
  purl: string;
  /** Source/origin package of an OS package, which distro advisories name. */
  sourceName: string | null;
}

export interface VerdictRecord {
  repository: string;
  digest: string;
  status: VerdictStatus;
  /** The verdict document (JSON text). */
  verdict: string;
  evaluatedAt: string;
  /** What a re-evaluation needs without reading the document (null when not known). */
  policyHash?: string | null;
  staticBits?: number | null;
  /** The failed database-independent reasons (JSON). */
  staticFail?: string | null;
  staleAt?: string | null;
  /**
   * Set when a bulk re-evaluation decided the status without a document (JSON, see
   * putDeferredVerdicts): `verdict` is then the last full document, of an older status.
   */
  deferred?: string | null;
}

/** A status decided without a document: only the narrow summary row is written. */
export interface DeferredVerdictRecord {
  repository: string;
  digest: string;
  status: VerdictStatus;
  staleAt: string | null;
  /** What the deferred decision knows (JSON: failed rules, database version, time). */
  deferred: string;
}

/** A verdict without its document: what a bulk re-evaluation reads. */
export interface VerdictSummary {
  repository: string;
  digest: string;
  status: VerdictStatus;
  policyHash: string | null;
  /** The actions of the verdict's reasons that do not depend on the vulnerability database. */
  staticBits: number | null;
  /** Those reasons that fail (JSON: rule id and kind, in verdict order). */
  staticFail: string | null;
  staleAt: string | null;
}

/**
 * What a package is looked up by in the vulnerability database (the matcher's MatchKey): every
 * package with the same key has the same findings. Keys are stored once and numbered; each image
 * keeps the numbers of its keys.
 */
export interface MatchKeyRow {
  ecosystem: string;
  os: boolean;
  name: string;
  version: string;
}

export interface StoredMatchKey extends MatchKeyRow {
  id: number;
}

export interface EventRecord {
  id: number;
  type: string;
  time: string;
  /** The event document (JSON text). */
  payload: string;
}

export interface ArtifactStore {
  /** Stores the facts, the package index rows and (when given) the image's match keys, in one transaction. */
  putFacts(digest: string, facts: Buffer, packages: IndexedPackage[], matchKeys?: MatchKeyRow[]): Promise<void>;
  putMatchKeys(digest: string, matchKeys: MatchKeyRow[]): Promise<void>;
  /** Analysed digests whose match keys are not stored (analysed before keys were kept). */
  digestsWithoutMatchKeys(): Promise<string[]>;
  /** Every stored match key, by number. */
  matchKeys(): Promise<Map<number, StoredMatchKey>>;
  /** The numbers of the keys named `name` in any of these ecosystems. */
  matchKeyIds(ecosystems: string[], name: string): Promise<number[]>;
  /** Every image's key numbers (sorted, distinct). */
  imageMatchKeys(): Promise<Array<{ digest: string; ids: Uint32Array }>>;
  /** The verdicts kept for these digests, without their documents. */
  verdictSummaries(digests: string[]): Promise<VerdictSummary[]>;
  /**
   * Stores statuses decided without documents, in one transaction. Only the summary rows are
   * written: replacing documents (hundreds of kilobytes each) made SQLite free and rewrite their
   * overflow pages, most of the cost of an update that moved thousands of statuses.
   */
  putDeferredVerdicts(records: DeferredVerdictRecord[]): Promise<void>;
  /** A value the gate keeps across restarts (shared by replicas); null when never set. */
  getGateState(key: string): Promise<string | null>;
  /** Sets it only if it still holds `expected` (null: not set yet); false when someone else changed it first. */
  compareAndSetGateState(key: string, expected: string | null, value: string): Promise<boolean>;
  putFailure(digest: string, error: string): Promise<void>;
  getFacts(digest: string): Promise<ArtifactFacts | null>;
  /** Stores the verdict and returns the status it replaced (null when there was none). */
  putVerdict(record: VerdictRecord): Promise<VerdictStatus | null>;
  /** `putVerdict` for many records in one transaction; the replaced statuses in input order. */
  putVerdicts(records: VerdictRecord[]): Promise<(VerdictStatus | null)[]>;
  getVerdict(repository: string, digest: string): Promise<VerdictRecord | null>;
  /** Statuses, without the documents (each can be hundreds of kilobytes). */
  listVerdicts(query?: { repository?: string; status?: VerdictStatus }): Promise<Omit<VerdictRecord, 'verdict'>[]>;
  /** Digests of analysed artifacts holding a package of this type named `name` (or whose source package is `name`). */
  digestsWithPackage(type: string, name: string): Promise<string[]>;
  packagesOf(digest: string): Promise<IndexedPackage[]>;
  /** Every verdict kept for a digest (one per repository holding it). */
  verdictsForDigest(digest: string): Promise<VerdictRecord[]>;
  appendEvent(type: string, payload: string, time?: string): Promise<number>;
  listEvents(query?: { after?: number; type?: string; limit?: number }): Promise<EventRecord[]>;
}

export interface ArtifactTables {
  artifact_facts: { digest: string; state: string; facts: Buffer | null; error: string | null; analysed_at: string };
  artifact_packages: { digest: string; type: string; name: string; version: string; purl: string; source_name: string | null };
  artifact_verdicts: { repository: string; digest: string; status: string; verdict: string; evaluated_at: string };
  artifact_verdict_summaries: {
    repository: string;
    digest: string;
    status: string;
    deferred: string | null;
    policy_hash: string | null;
    static_bits: number | null;
    static_fail: string | null;
    stale_at: string | null;
  };
  match_keys: { id: Generated<number>; ecosystem: string; os: number; name: string; version: string };
  artifact_match_keys: { digest: string; ids: Buffer };
  gate_state: { key: string; value: string };
  events: { id: Generated<number>; type: string; time: string; payload: string };
}

export async function createEventTables(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('events')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('time', 'text', (c) => c.notNull())
    .addColumn('payload', 'text', (c) => c.notNull())
    .execute();
  await db.schema.createIndex('events_type').on('events').columns(['type', 'id']).execute();
}

export async function createArtifactTables(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('artifact_facts')
    .addColumn('digest', 'text', (c) => c.primaryKey())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('facts', 'blob')
    .addColumn('error', 'text')
    .addColumn('analysed_at', 'text', (c) => c.notNull())
    .execute();
  await db.schema
    .createTable('artifact_packages')
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('type', 'text', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addColumn('purl', 'text', (c) => c.notNull())
    .addColumn('source_name', 'text')
    .addPrimaryKeyConstraint('artifact_packages_pk', ['digest', 'purl'])
    .execute();
  await db.schema.createIndex('artifact_packages_name').on('artifact_packages').columns(['type', 'name']).execute();
  await db.schema.createIndex('artifact_packages_source').on('artifact_packages').columns(['type', 'source_name']).execute();
  await db.schema
    .createTable('artifact_verdicts')
    .addColumn('repository', 'text', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('verdict', 'text', (c) => c.notNull())
    .addColumn('evaluated_at', 'text', (c) => c.notNull())
    .addPrimaryKeyConstraint('artifact_verdicts_pk', ['repository', 'digest'])
    .execute();
  await db.schema.createIndex('artifact_verdicts_digest').on('artifact_verdicts').column('digest').execute();
}

export async function createMatchKeyTables(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('match_keys')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('ecosystem', 'text', (c) => c.notNull())
    .addColumn('os', 'integer', (c) => c.notNull())
    .addColumn('name', 'text', (c) => c.notNull())
    .addColumn('version', 'text', (c) => c.notNull())
    .addUniqueConstraint('match_keys_unique', ['name', 'ecosystem', 'version', 'os'])
    .execute();
  await db.schema.createTable('artifact_match_keys').addColumn('digest', 'text', (c) => c.primaryKey()).addColumn('ids', 'blob', (c) => c.notNull()).execute();
  // What a bulk re-evaluation reads instead of the documents. Its own table: a column added to
  // artifact_verdicts would sit after the document in each row, and reading it walked the
  // document's overflow pages (hundreds of kilobytes each; 1.5 s for 10,000 verdicts).
  await db.schema
    .createTable('artifact_verdict_summaries')
    .addColumn('repository', 'text', (c) => c.notNull())
    .addColumn('digest', 'text', (c) => c.notNull())
    // The status in force; artifact_verdicts.status is its document's, older when deferred is set.
    .addColumn('status', 'text', (c) => c.notNull())
    .addColumn('deferred', 'text')
    .addColumn('policy_hash', 'text')
    .addColumn('static_bits', 'integer')
    .addColumn('static_fail', 'text')
    .addColumn('stale_at', 'text')
    .addPrimaryKeyConstraint('artifact_verdict_summaries_pk', ['repository', 'digest'])
    .execute();
}

/** Key numbers as stored: little-endian unsigned 32-bit integers, sorted, each once. */
function encodeIds(ids: Iterable<number>): Buffer {
  const sorted = [...new Set(ids)].sort((a, b) => a - b);
  const out = Buffer.alloc(sorted.length * 4);
  sorted.forEach((id, i) => out.writeUInt32LE(id, i * 4));
  return out;
}

function decodeIds(bytes: Uint8Array): Uint32Array {
  const out = new Uint32Array(bytes.length >>> 2);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  for (let i = 0; i < out.length; i++) out[i] = view.getUint32(i * 4, true);
  return out;
}

export async function createGateStateTable(db: Kysely<unknown>): Promise<void> {
  await db.schema.createTable('gate_state').addColumn('key', 'text', (c) => c.primaryKey()).addColumn('value', 'text', (c) => c.notNull()).execute();
}

function toVerdict(row: Selectable<ArtifactTables['artifact_verdicts']>): VerdictRecord {
  return { repository: row.repository, digest: row.digest, status: row.status as VerdictStatus, verdict: row.verdict, evaluatedAt: row.evaluated_at };
}

export class SqliteArtifactStore implements ArtifactStore {
  constructor(private readonly db: Kysely<ArtifactTables>) {}

  async putFacts(digest: string, facts: Buffer, packages: IndexedPackage[], matchKeys?: MatchKeyRow[]): Promise<void> {
    const t = new Date().toISOString();
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('artifact_facts')
        .values({ digest, state: 'analysed', facts, error: null, analysed_at: t })
        .onConflict((oc) => oc.column('digest').doUpdateSet({ state: 'analysed', facts, error: null, analysed_at: t }))
        .execute();
      await tx.deleteFrom('artifact_packages').where('digest', '=', digest).execute();
      const seen = new Set<string>();
      const rows = packages.filter((p) => !seen.has(p.purl) && seen.add(p.purl));
      // Chunks keep each statement under SQLite's variable limit.
      for (let i = 0; i < rows.length; i += 100) {
        await tx
          .insertInto('artifact_packages')
          .values(rows.slice(i, i + 100).map((p) => ({ digest, type: p.type, name: p.name, version: p.version, purl: p.purl, source_name: p.sourceName })))
          .execute();
      }
      if (matchKeys) await this.writeMatchKeys(tx, digest, matchKeys);
    });
  }

  async putMatchKeys(digest: string, matchKeys: MatchKeyRow[]): Promise<void> {
    await this.db.transaction().execute((tx) => this.writeMatchKeys(tx, digest, matchKeys));
  }

  private async writeMatchKeys(tx: Kysely<ArtifactTables>, digest: string, matchKeys: MatchKeyRow[]): Promise<void> {
    const ids: number[] = [];
    const unique = new Map(matchKeys.map((k) => [`${k.ecosystem}\0${k.name}\0${k.version}\0${k.os ? 1 : 0}`, k]));
    const rows = [...unique.values()];
    for (let i = 0; i < rows.length; i += 100) {
      const chunk = rows.slice(i, i + 100).map((k) => ({ ecosystem: k.ecosystem, os: k.os ? 1 : 0, name: k.name, version: k.version }));
      // The no-op update makes RETURNING give the numbers of keys already stored too.
      const returned = await tx
        .insertInto('match_keys')
        .values(chunk)
        .onConflict((oc) => oc.columns(['name', 'ecosystem', 'version', 'os']).doUpdateSet({ os: (eb) => eb.ref('excluded.os') }))
        .returning('id')
        .execute();
      for (const r of returned) ids.push(Number(r.id));
    }
    const bytes = encodeIds(ids);
    await tx
      .insertInto('artifact_match_keys')
      .values({ digest, ids: bytes })
      .onConflict((oc) => oc.column('digest').doUpdateSet({ ids: bytes }))
      .execute();
  }

  async digestsWithoutMatchKeys(): Promise<string[]> {
    const rows = await this.db
      .selectFrom('artifact_facts')
      .select('digest')
      .where('state', '=', 'analysed')
      .where('digest', 'not in', (eb) => eb.selectFrom('artifact_match_keys').select('digest'))
      .orderBy('digest')
      .execute();
    return rows.map((r) => r.digest);
  }

  async matchKeys(): Promise<Map<number, StoredMatchKey>> {
    const rows = await this.db.selectFrom('match_keys').selectAll().execute();
    return new Map(rows.map((r) => [Number(r.id), { id: Number(r.id), ecosystem: r.ecosystem, os: r.os === 1, name: r.name, version: r.version }]));
  }

  async matchKeyIds(ecosystems: string[], name: string): Promise<number[]> {
    if (ecosystems.length === 0) return [];
    const rows = await this.db.selectFrom('match_keys').select('id').where('name', '=', name).where('ecosystem', 'in', ecosystems).execute();
    return rows.map((r) => Number(r.id));
  }

  async imageMatchKeys(): Promise<Array<{ digest: string; ids: Uint32Array }>> {
    const rows = await this.db.selectFrom('artifact_match_keys').selectAll().execute();
    return rows.map((r) => ({ digest: r.digest, ids: decodeIds(r.ids) }));
  }

  async getGateState(key: string): Promise<string | null> {
    const row = await this.db.selectFrom('gate_state').select('value').where('key', '=', key).executeTakeFirst();
    return row?.value ?? null;
  }

  async compareAndSetGateState(key: string, expected: string | null, value: string): Promise<boolean> {
    if (expected === null) {
      const r = await this.db.insertInto('gate_state').values({ key, value }).onConflict((oc) => oc.column('key').doNothing()).executeTakeFirst();
      return Number(r.numInsertedOrUpdatedRows ?? 0) === 1;
    }
    const r = await this.db.updateTable('gate_state').set({ value }).where('key', '=', key).where('value', '=', expected).executeTakeFirst();
    return Number(r.numUpdatedRows) === 1;
  }

  async verdictSummaries(digests: string[]): Promise<VerdictSummary[]> {
    const out: VerdictSummary[] = [];
    // Chunks keep each statement under SQLite's variable limit.
    for (let i = 0; i < digests.length; i += 500) {
      const rows = await this.db
        .selectFrom('artifact_verdicts as v')
        .leftJoin('artifact_verdict_summaries as s', (j) => j.onRef('s.repository', '=', 'v.repository').onRef('s.digest', '=', 'v.digest'))
        .select(['v.repository', 'v.digest', sql<string>`coalesce(s.status, v.status)`.as('status'), 's.policy_hash', 's.static_bits', 's.static_fail', 's.stale_at'])
        .where('v.digest', 'in', digests.slice(i, i + 500))
        .orderBy('v.digest')
        .orderBy('v.repository')
        .execute();
      for (const r of rows) {
        out.push({ repository: r.repository, digest: r.digest, status: r.status as VerdictStatus, policyHash: r.policy_hash, staticBits: r.static_bits, staticFail: r.static_fail, staleAt: r.stale_at });
      }
    }
    return out;
  }

  async putDeferredVerdicts(records: DeferredVerdictRecord[]): Promise<void> {
    if (records.length === 0) return;
    await this.db.transaction().execute(async (tx) => {
      // Many rows per statement: at thousands of rows, per-statement overhead was the cost left.
      for (let i = 0; i < records.length; i += 200) {
        await tx
          .insertInto('artifact_verdict_summaries')
          .values(records.slice(i, i + 200).map((r) => ({ repository: r.repository, digest: r.digest, status: r.status, deferred: r.deferred, stale_at: r.staleAt, policy_hash: null, static_bits: null, static_fail: null })))
          .onConflict((oc) =>
            oc.columns(['repository', 'digest']).doUpdateSet({
              status: (eb) => eb.ref('excluded.status'),
              deferred: (eb) => eb.ref('excluded.deferred'),
              stale_at: (eb) => eb.ref('excluded.stale_at'),
            }),
          )
          .execute();
      }
    });
  }

  async putFailure(digest: string, error: string): Promise<void> {
    const t = new Date().toISOString();
    await this.db
      .insertInto('artifact_facts')
      .values({ digest, state: 'failed', facts: null, error, analysed_at: t })
      .onConflict((oc) => oc.column('digest').doUpdateSet({ state: 'failed', facts: null, error, analysed_at: t }))
      .execute();
  }

  async getFacts(digest: string): Promise<ArtifactFacts | null> {
    const row = await this.db.selectFrom('artifact_facts').selectAll().where('digest', '=', digest).executeTakeFirst();
    if (!row) return null;
    return { digest: row.digest, state: row.state as AnalysisState, facts: row.facts ? Buffer.from(row.facts) : null, error: row.error, analysedAt: row.analysed_at };
  }

  async putVerdict(record: VerdictRecord): Promise<VerdictStatus | null> {
    return (await this.putVerdicts([record]))[0] ?? null;
  }

  async putVerdicts(records: VerdictRecord[]): Promise<(VerdictStatus | null)[]> {
    if (records.length === 0) return [];
    return this.db.transaction().execute(async (tx) => {
      const out: (VerdictStatus | null)[] = [];
      for (const record of records) {
        const previous = await tx
          .selectFrom('artifact_verdicts as v')
          .leftJoin('artifact_verdict_summaries as s', (j) => j.onRef('s.repository', '=', 'v.repository').onRef('s.digest', '=', 'v.digest'))
          .select(sql<string>`coalesce(s.status, v.status)`.as('status'))
          .where('v.repository', '=', record.repository)
          .where('v.digest', '=', record.digest)
          .executeTakeFirst();
        const key = { repository: record.repository, digest: record.digest };
        const update = { status: record.status, verdict: record.verdict, evaluated_at: record.evaluatedAt };
        await tx
          .insertInto('artifact_verdicts')
          .values({ ...key, ...update })
          .onConflict((oc) => oc.columns(['repository', 'digest']).doUpdateSet(update))
          .execute();
        const summary = {
          status: record.status,
          deferred: null,
          policy_hash: record.policyHash ?? null,
          static_bits: record.staticBits ?? null,
          static_fail: record.staticFail ?? null,
          stale_at: record.staleAt ?? null,
        };
        await tx
          .insertInto('artifact_verdict_summaries')
          .values({ ...key, ...summary })
          .onConflict((oc) => oc.columns(['repository', 'digest']).doUpdateSet(summary))
          .execute();
        out.push(previous ? (previous.status as VerdictStatus) : null);
      }
      return out;
    });
  }

  async getVerdict(repository: string, digest: string): Promise<VerdictRecord | null> {
    const row = await this.db
      .selectFrom('artifact_verdicts as v')
      .leftJoin('artifact_verdict_summaries as s', (j) => j.onRef('s.repository', '=', 'v.repository').onRef('s.digest', '=', 'v.digest'))
      .select(['v.repository', 'v.digest', 'v.verdict', 'v.evaluated_at', sql<string>`coalesce(s.status, v.status)`.as('status'), 's.deferred'])
      .where('v.repository', '=', repository)
      .where('v.digest', '=', digest)
      .executeTakeFirst();
    return row ? { ...toVerdict(row), deferred: row.deferred } : null;
  }

  async listVerdicts(query: { repository?: string; status?: VerdictStatus } = {}): Promise<Omit<VerdictRecord, 'verdict'>[]> {
    // The columns before the document only: SQLite then never reads its overflow pages.
    const status = sql<string>`coalesce(s.status, v.status)`;
    let q = this.db
      .selectFrom('artifact_verdicts as v')
      .leftJoin('artifact_verdict_summaries as s', (j) => j.onRef('s.repository', '=', 'v.repository').onRef('s.digest', '=', 'v.digest'))
      .select(['v.repository', 'v.digest', status.as('status'), 'v.evaluated_at'])
      .orderBy('v.repository')
      .orderBy('v.digest');
    if (query.repository !== undefined) q = q.where('v.repository', '=', query.repository);
    if (query.status !== undefined) q = q.where(status, '=', query.status);
    return (await q.execute()).map((r) => ({ repository: r.repository, digest: r.digest, status: r.status as VerdictStatus, evaluatedAt: r.evaluated_at }));
  }

  async digestsWithPackage(type: string, name: string): Promise<string[]> {
    // Two indexed lookups joined by UNION (which also removes duplicates): with `name = ? OR
    // source_name = ?` SQLite used only the type prefix of an index and read every package of
    // that type, a quarter of a second per advisory at 10,000 stored images.
    const byName = this.db.selectFrom('artifact_packages').select('digest').where('type', '=', type).where('name', '=', name);
    const bySource = this.db.selectFrom('artifact_packages').select('digest').where('type', '=', type).where('source_name', '=', name);
    const rows = await byName.union(bySource).orderBy('digest').execute();
    return rows.map((r) => r.digest);
  }

  async verdictsForDigest(digest: string): Promise<VerdictRecord[]> {
    const rows = await this.db.selectFrom('artifact_verdicts').selectAll().where('digest', '=', digest).orderBy('repository').execute();
    return rows.map(toVerdict);
  }

  async appendEvent(type: string, payload: string, time = new Date().toISOString()): Promise<number> {
    const row = await this.db.insertInto('events').values({ type, time, payload }).returning('id').executeTakeFirstOrThrow();
    return Number(row.id);
  }

  async listEvents(query: { after?: number; type?: string; limit?: number } = {}): Promise<EventRecord[]> {
    let q = this.db.selectFrom('events').selectAll().orderBy('id').limit(Math.min(query.limit ?? 100, 10_000));
    if (query.after !== undefined) q = q.where('id', '>', query.after);
    if (query.type !== undefined) q = q.where('type', '=', query.type);
    return (await q.execute()).map((r) => ({ id: Number(r.id), type: r.type, time: r.time, payload: r.payload }));
  }

  async packagesOf(digest: string): Promise<IndexedPackage[]> {
    const rows = await this.db.selectFrom('artifact_packages').selectAll().where('digest', '=', digest).orderBy('purl').execute();
    return rows.map((r) => ({ type: r.type, name: r.name, version: r.version, purl: r.purl, sourceName: r.source_name }));
  }
}
