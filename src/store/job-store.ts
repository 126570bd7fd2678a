import { sql, type Generated, type Kysely, type Selectable } from 'kysely';

/**
 * The durable job queue's storage. Jobs live in the metadata database, so a crash loses none: a
 * claimed job carries a lease, and a job whose lease ran out (its worker died) is claimed again.
 * Claiming is one short write transaction (on PostgreSQL it becomes `FOR UPDATE SKIP LOCKED`), so
 * several workers, in one process or several replicas, never run the same job at once.
 */

export type JobState = 'queued' | 'running' | 'done' | 'failed';

export interface JobRecord {
  id: number;
  kind: string;
  /** Jobs with the same key are one job while queued or running (a second enqueue returns the first). */
  key: string | null;
  payload: unknown;
  /** Higher runs first: what a developer waits for (a push) before bulk re-evaluation. */
  priority: number;
  state: JobState;
  attempts: number;
  maxAttempts: number;
  runAfter: string;
  leaseOwner: string | null;
  leaseUntil: string | null;
  lastError: string | null;
  createdAt: string;
  finishedAt: string | null;
}

export interface EnqueueOptions {
  key?: string;
  priority?: number;
  maxAttempts?: number;
  /** Not before this time (ISO). */
  runAfter?: string;
}

export interface JobStore {
  enqueue(kind: string, payload: unknown, options?: EnqueueOptions): Promise<JobRecord>;
  /**
   * Takes the most urgent runnable job of `kinds` (queued and due, or running with an expired
   * lease) and leases it to `owner`. A job whose lease expired on its last allowed attempt is
   * marked failed instead, so a job that kills its worker every time cannot loop forever.
   */
  claim(owner: string, kinds: readonly string[], leaseMs: number): Promise<JobRecord | null>;
  /** Extends a lease; false when the job is no longer this owner's (it expired and was re-claimed). */
  heartbeat(id: number, owner: string, leaseMs: number): Promise<boolean>;
  complete(id: number, owner: string): Promise<boolean>;
  /** Records a failure: queued again after `retryInMs` while attempts remain, else failed. */
  fail(id: number, owner: string, error: string, retryInMs: number): Promise<JobState | null>;
  /**
   * Gives back a job its worker stopped before it finished (the server is shutting down): queued
   * again at once, the attempt not counted, since the job did not fail. False when it is not
   * this owner's any more.
   */
  release(id: number, owner: string): Promise<boolean>;
  get(id: number): Promise<JobRecord | null>;
  /** The newest job with this key, whatever its state. */
  latestByKey(key: string): Promise<JobRecord | null>;
  list(query?: { state?: JobState; kind?: string; limit?: number }): Promise<JobRecord[]>;
  counts(): Promise<Record<JobState, number>>;
  /** Deletes finished (done or failed) jobs that finished before `before` (ISO). */
  prune(before: string): Promise<number>;
}

export interface JobTables {
  jobs: {
    id: Generated<number>;
    kind: string;
    job_key: string | null;
    payload: string;
    priority: number;
    state: string;
    attempts: number;
    max_attempts: number;
    run_after: string;
    lease_owner: string | null;
    lease_until: string | null;
    last_error: string | null;
    created_at: string;
    finished_at: string | null;
  };
}

/** Creates the jobs table (a metadata migration calls this). */
export async function createJobTables(db: Kysely<unknown>): Promise<void> {
  await db.schema
    .createTable('jobs')
    .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
    .addColumn('kind', 'text', (c) => c.notNull())
    .addColumn('job_key', 'text')
    .addColumn('payload', 'text', (c) => c.notNull())
    .addColumn('priority', 'integer', (c) => c.notNull())
    .addColumn('state', 'text', (c) => c.notNull())
    .addColumn('attempts', 'integer', (c) => c.notNull())
    .addColumn('max_attempts', 'integer', (c) => c.notNull())
    .addColumn('run_after', 'text', (c) => c.notNull())
    .addColumn('lease_owner', 'text')
    .addColumn('lease_until', 'text')
    .addColumn('last_error', 'text')
    .addColumn('created_at', 'text', (c) => c.notNull())
    .addColumn('finished_at', 'text')
    .execute();
  await db.schema.createIndex('jobs_runnable').on('jobs').columns(['state', 'priority', 'id']).execute();
  await db.schema.createIndex('jobs_key').on('jobs').columns(['job_key', 'state']).execute();
}

const iso = (ms: number) => new Date(ms).toISOString();

function toJob(row: Selectable<JobTables['jobs']>): JobRecord {
  return {
    id: Number(row.id),
    kind: row.kind,
    key: row.job_key,
    payload: JSON.parse(row.payload) as unknown,
    priority: Number(row.priority),
    state: row.state as JobState,
    attempts: Number(row.attempts),
    maxAttempts: Number(row.max_attempts),
    runAfter: row.run_after,
    leaseOwner: row.lease_owner,
    leaseUntil: row.lease_until,
    lastError: row.last_error,
    createdAt: row.created_at,
    finishedAt: row.finished_at,
  };
}

/** The JobStore on the SQLite metadata database. `immediate` runs a `BEGIN IMMEDIATE` transaction. */
export class SqliteJobStore implements JobStore {
  constructor(
    private readonly db: Kysely<JobTables>,
    private readonly immediate: <T>(fn: (db: Kysely<JobTables>) => Promise<T>) => Promise<T>,
    private readonly now: () => number = Date.now,
  ) {}

  async enqueue(kind: string, payload: unknown, options: EnqueueOptions = {}): Promise<JobRecord> {
    const t = this.now();
    return this.immediate(async (db) => {
      if (options.key !== undefined) {
        const existing = await db
          .selectFrom('jobs')
          .selectAll()
          .where('job_key', '=', options.key)
          .where('state', 'in', ['queued', 'running'])
          .executeTakeFirst();
        if (existing) {
          // A more urgent request for the same work raises the queued job's priority.
          if (options.priority !== undefined && options.priority > Number(existing.priority) && existing.state === 'queued') {
            await db.updateTable('jobs').set({ priority: options.priority }).where('id', '=', existing.id).execute();
            existing.priority = options.priority;
          }
          return toJob(existing);
        }
      }
      const row = await db
        .insertInto('jobs')
        .values({
          kind,
          job_key: options.key ?? null,
          payload: JSON.stringify(payload ?? null),
          priority: options.priority ?? 0,
          state: 'queued',
          attempts: 0,
          max_attempts: options.maxAttempts ?? 5,
          run_after: options.runAfter ?? iso(t),
          lease_owner: null,
          lease_until: null,
          last_error: null,
          created_at: iso(t),
          finished_at: null,
        })
        .returningAll()
        .executeTakeFirstOrThrow();
      return toJob(row);
    });
  }

  async claim(owner: string, kinds: readonly string[], leaseMs: number): Promise<JobRecord | null> {
    if (kinds.length === 0) return null;
    return this.immediate(async (db) => {
      for (;;) {
        const t = iso(this.now());
        const row = await db
          .selectFrom('jobs')
          .selectAll()
          .where('kind', 'in', [...kinds])
          .where((eb) =>
            eb.or([
              eb.and([eb('state', '=', 'queued'), eb('run_after', '<=', t)]),
              eb.and([eb('state', '=', 'running'), eb('lease_until', '<', t)]),
            ]),
          )
          .orderBy('priority', 'desc')
          .orderBy('id')
          .limit(1)
          .executeTakeFirst();
        if (!row) return null;
        if (row.state === 'running' && Number(row.attempts) >= Number(row.max_attempts)) {
          await db
            .updateTable('jobs')
            .set({ state: 'failed', finished_at: t, lease_owner: null, lease_until: null, last_error: `worker stopped (lease expired) on all ${row.max_attempts} attempts` })
            .where('id', '=', row.id)
            .execute();
          continue;
        }
        const updated = await db
          .updateTable('jobs')
          .set({ state: 'running', attempts: sql`attempts + 1`, lease_owner: owner, lease_until: iso(this.now() + leaseMs) })
          .where('id', '=', row.id)
          .returningAll()
          .executeTakeFirstOrThrow();
        return toJob(updated);
      }
    });
  }

  async heartbeat(id: number, owner: string, leaseMs: number): Promise<boolean> {
    const r = await this.db
      .updateTable('jobs')
      .set({ lease_until: iso(this.now() + leaseMs) })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async complete(id: number, owner: string): Promise<boolean> {
    const r = await this.db
      .updateTable('jobs')
      .set({ state: 'done', finished_at: iso(this.now()), lease_owner: null, lease_until: null })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async fail(id: number, owner: string, error: string, retryInMs: number): Promise<JobState | null> {
    return this.immediate(async (db) => {
      const row = await db.selectFrom('jobs').selectAll().where('id', '=', id).where('lease_owner', '=', owner).where('state', '=', 'running').executeTakeFirst();
      if (!row) return null;
      const t = this.now();
      const retry = Number(row.attempts) < Number(row.max_attempts);
      await db
        .updateTable('jobs')
        .set({
          state: retry ? 'queued' : 'failed',
          run_after: retry ? iso(t + retryInMs) : row.run_after,
          finished_at: retry ? null : iso(t),
          lease_owner: null,
          lease_until: null,
          last_error: error.slice(0, 2000),
        })
        .where('id', '=', id)
        .execute();
      return retry ? 'queued' : 'failed';
    });
  }

  async release(id: number, owner: string): Promise<boolean> {
    const r = await this.db
      .updateTable('jobs')
      .set({ state: 'queued', attempts: sql`max(attempts - 1, 0)`, run_after: iso(this.now()), lease_owner: null, lease_until: null })
      .where('id', '=', id)
      .where('lease_owner', '=', owner)
      .where('state', '=', 'running')
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async get(id: number): Promise<JobRecord | null> {
    const row = await this.db.selectFrom('jobs').selectAll().where('id', '=', id).executeTakeFirst();
    return row ? toJob(row) : null;
  }

  async latestByKey(key: string): Promise<JobRecord | null> {
    const row = await this.db.selectFrom('jobs').selectAll().where('job_key', '=', key).orderBy('id', 'desc').limit(1).executeTakeFirst();
    return row ? toJob(row) : null;
  }

  async list(query: { state?: JobState; kind?: string; limit?: number } = {}): Promise<JobRecord[]> {
    let q = this.db.selectFrom('jobs').selectAll().orderBy('id', 'desc').limit(Math.min(query.limit ?? 100, 10_000));
    if (query.state !== undefined) q = q.where('state', '=', query.state);
    if (query.kind !== undefined) q = q.where('kind', '=', query.kind);
    return (await q.execute()).map(toJob);
  }

  async counts(): Promise<Record<JobState, number>> {
    const rows = await this.db.selectFrom('jobs').select(['state', (eb) => eb.fn.countAll<number>().as('n')]).groupBy('state').execute();
    const out: Record<JobState, number> = { queued: 0, running: 0, done: 0, failed: 0 };
    for (const r of rows) out[r.state as JobState] = Number(r.n);
    return out;
  }

  async prune(before: string): Promise<number> {
    const r = await this.db.deleteFrom('jobs').where('state', 'in', ['done', 'failed']).where('finished_at', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }
}
