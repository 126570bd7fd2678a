import { mkdirSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { Kysely, Migrator, SqliteDialect, sql, type Migration, type MigrationProvider } from 'kysely';
import { StoreError } from './errors.js';

/** One manifest as the registry serves it; the bytes live in the blob store under `digest`. */
export interface ManifestRecord {
  repository: string;
  digest: string;
  mediaType: string;
  /** The manifest's `artifactType`, else its config media type (what the referrers API reports). */
  artifactType: string | null;
  subjectDigest: string | null;
  size: number;
  /** JSON of the manifest's annotations, for referrers responses. */
  annotations: Record<string, string> | null;
  createdAt: string;
}

/** What a manifest points at: blobs (config, layers) and child manifests (index entries). */
export interface ManifestRef {
  digest: string;
  kind: 'blob' | 'manifest';
}

export interface UploadRecord {
  uuid: string;
  repository: string;
  /** Bytes durably received so far. */
  offset: number;
  createdAt: string;
  updatedAt: string;
}

export interface UserRecord {
  name: string;
  passwordHash: string;
  admin: boolean;
}

export interface Page {
  n?: number;
  last?: string;
}

/**
 * Registry metadata: repositories, manifests, tags, upload sessions and users. Kept behind this
 * interface so a PostgreSQL implementation can follow with the same shared test suite.
 */
export interface RegistryMetadata {
  ensureRepository(name: string): Promise<void>;
  repositoryExists(name: string): Promise<boolean>;
  listRepositories(page?: Page): Promise<string[]>;

  /** Records that `digest` is part of `repository` (uploaded or mounted there). */
  linkBlob(repository: string, digest: string, size: number): Promise<void>;
  unlinkBlob(repository: string, digest: string): Promise<boolean>;
  blobLinked(repository: string, digest: string): Promise<boolean>;
  repositoriesWithBlob(digest: string): Promise<string[]>;

  putManifest(record: Omit<ManifestRecord, 'createdAt'>, refs: ManifestRef[]): Promise<void>;
  getManifest(repository: string, digest: string): Promise<ManifestRecord | null>;
  /** Deletes the manifest and every tag pointing at it; false when it was not there. */
  deleteManifest(repository: string, digest: string): Promise<boolean>;
  manifestRefs(repository: string, digest: string): Promise<ManifestRef[]>;
  listReferrers(repository: string, subjectDigest: string, artifactType?: string): Promise<ManifestRecord[]>;

  putTag(repository: string, tag: string, digest: string): Promise<void>;
  getTag(repository: string, tag: string): Promise<string | null>;
  deleteTag(repository: string, tag: string): Promise<boolean>;
  listTags(repository: string, page?: Page): Promise<string[]>;

  createUpload(uuid: string, repository: string): Promise<UploadRecord>;
  getUpload(uuid: string): Promise<UploadRecord | null>;
  setUploadOffset(uuid: string, offset: number): Promise<void>;
  deleteUpload(uuid: string): Promise<void>;

  getUser(name: string): Promise<UserRecord | null>;
  putUser(user: UserRecord): Promise<void>;
  countUsers(): Promise<number>;

  close(): Promise<void>;
}

interface Tables {
  repositories: { name: string; created_at: string };
  repository_blobs: { repository: string; digest: string; size: number; created_at: string };
  manifests: {
    repository: string;
    digest: string;
    media_type: string;
    artifact_type: string | null;
    subject_digest: string | null;
    size: number;
    annotations: string | null;
    created_at: string;
  };
  manifest_refs: { repository: string; manifest_digest: string; ref_digest: string; kind: string };
  tags: { repository: string; name: string; digest: string; updated_at: string };
  uploads: { uuid: string; repository: string; offset: number; created_at: string; updated_at: string };
  users: { name: string; password_hash: string; admin: number; created_at: string };
}

/**
 * Inline migrations: names sort in order, and each one only ever moves forward. Columns use
 * portable types so the same steps translate to PostgreSQL.
 */
const MIGRATIONS: Record<string, Migration> = {
  '0001_registry_core': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .createTable('repositories')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('repository_blobs')
        .addColumn('repository', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('repository_blobs_pk', ['repository', 'digest'])
        .execute();
      await db.schema.createIndex('repository_blobs_digest').on('repository_blobs').column('digest').execute();
      await db.schema
        .createTable('manifests')
        .addColumn('repository', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('media_type', 'text', (c) => c.notNull())
        .addColumn('artifact_type', 'text')
        .addColumn('subject_digest', 'text')
        .addColumn('size', 'integer', (c) => c.notNull())
        .addColumn('annotations', 'text')
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('manifests_pk', ['repository', 'digest'])
        .execute();
      await db.schema
        .createIndex('manifests_subject')
        .on('manifests')
        .columns(['repository', 'subject_digest'])
        .execute();
      await db.schema
        .createTable('manifest_refs')
        .addColumn('repository', 'text', (c) => c.notNull())
        .addColumn('manifest_digest', 'text', (c) => c.notNull())
        .addColumn('ref_digest', 'text', (c) => c.notNull())
        .addColumn('kind', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('manifest_refs_pk', ['repository', 'manifest_digest', 'ref_digest', 'kind'])
        .execute();
      await db.schema.createIndex('manifest_refs_ref').on('manifest_refs').column('ref_digest').execute();
      await db.schema
        .createTable('tags')
        .addColumn('repository', 'text', (c) => c.notNull())
        .addColumn('name', 'text', (c) => c.notNull())
        .addColumn('digest', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('tags_pk', ['repository', 'name'])
        .execute();
      await db.schema.createIndex('tags_digest').on('tags').columns(['repository', 'digest']).execute();
      await db.schema
        .createTable('uploads')
        .addColumn('uuid', 'text', (c) => c.primaryKey())
        .addColumn('repository', 'text', (c) => c.notNull())
        .addColumn('offset', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addColumn('updated_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('users')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('password_hash', 'text', (c) => c.notNull())
        .addColumn('admin', 'integer', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
    },
  },
};

class InlineMigrations implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return MIGRATIONS;
  }
}

const now = () => new Date().toISOString();
const DEFAULT_PAGE = 1000;
const MAX_PAGE = 10_000;

function pageSize(page: Page | undefined): number {
  return Math.min(page?.n ?? DEFAULT_PAGE, MAX_PAGE);
}

function toManifest(row: Tables['manifests']): ManifestRecord {
  return {
    repository: row.repository,
    digest: row.digest,
    mediaType: row.media_type,
    artifactType: row.artifact_type,
    subjectDigest: row.subject_digest,
    size: Number(row.size),
    annotations: row.annotations ? (JSON.parse(row.annotations) as Record<string, string>) : null,
    createdAt: row.created_at,
  };
}

function toUpload(row: Tables['uploads']): UploadRecord {
  return {
    uuid: row.uuid,
    repository: row.repository,
    offset: Number(row.offset),
    createdAt: row.created_at,
    updatedAt: row.updated_at,
  };
}

/** RegistryMetadata on SQLite (WAL), through Kysely so the queries carry over to PostgreSQL. */
export class SqliteRegistryMetadata implements RegistryMetadata {
  private constructor(private readonly db: Kysely<Tables>) {}

  /** Opens (creating when needed) `<dataDir>/registry/meta.sqlite` and migrates it to the latest schema. */
  static async open(dataDir: string): Promise<SqliteRegistryMetadata> {
    const dir = join(dataDir, 'registry');
    mkdirSync(dir, { recursive: true });
    return SqliteRegistryMetadata.openFile(join(dir, 'meta.sqlite'));
  }

  static async openFile(file: string): Promise<SqliteRegistryMetadata> {
    const sqlite = new Database(file);
    sqlite.pragma('journal_mode = WAL');
    // WAL + NORMAL is durable across application crashes; blobs are fsynced separately.
    sqlite.pragma('synchronous = NORMAL');
    sqlite.pragma('busy_timeout = 5000');
    const db = new Kysely<Tables>({ dialect: new SqliteDialect({ database: sqlite }) });
    const migrator = new Migrator({ db, provider: new InlineMigrations() });
    const { error, results } = await migrator.migrateToLatest();
    if (error) {
      await db.destroy();
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new StoreError('METADATA_MIGRATION_FAILED', `metadata migration ${failed} failed in ${file}: ${String(error)}`, {
        cause: error,
      });
    }
    return new SqliteRegistryMetadata(db);
  }

  async appliedMigrations(): Promise<string[]> {
    const migrator = new Migrator({ db: this.db, provider: new InlineMigrations() });
    return (await migrator.getMigrations()).filter((m) => m.executedAt).map((m) => m.name);
  }

  async ensureRepository(name: string): Promise<void> {
    await this.db
      .insertInto('repositories')
      .values({ name, created_at: now() })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }

  async repositoryExists(name: string): Promise<boolean> {
    return !!(await this.db.selectFrom('repositories').select('name').where('name', '=', name).executeTakeFirst());
  }

  async listRepositories(page?: Page): Promise<string[]> {
    let q = this.db.selectFrom('repositories').select('name').orderBy('name').limit(pageSize(page));
    if (page?.last !== undefined) q = q.where('name', '>', page.last);
    return (await q.execute()).map((r) => r.name);
  }

  async linkBlob(repository: string, digest: string, size: number): Promise<void> {
    await this.ensureRepository(repository);
    await this.db
      .insertInto('repository_blobs')
      .values({ repository, digest, size, created_at: now() })
      .onConflict((oc) => oc.columns(['repository', 'digest']).doNothing())
      .execute();
  }

  async unlinkBlob(repository: string, digest: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('repository_blobs')
      .where('repository', '=', repository)
      .where('digest', '=', digest)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async blobLinked(repository: string, digest: string): Promise<boolean> {
    return !!(await this.db
      .selectFrom('repository_blobs')
      .select('digest')
      .where('repository', '=', repository)
      .where('digest', '=', digest)
      .executeTakeFirst());
  }

  async repositoriesWithBlob(digest: string): Promise<string[]> {
    return (
      await this.db.selectFrom('repository_blobs').select('repository').where('digest', '=', digest).orderBy('repository').execute()
    ).map((r) => r.repository);
  }

  async putManifest(record: Omit<ManifestRecord, 'createdAt'>, refs: ManifestRef[]): Promise<void> {
    await this.db.transaction().execute(async (tx) => {
      await tx
        .insertInto('repositories')
        .values({ name: record.repository, created_at: now() })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      await tx
        .insertInto('manifests')
        .values({
          repository: record.repository,
          digest: record.digest,
          media_type: record.mediaType,
          artifact_type: record.artifactType,
          subject_digest: record.subjectDigest,
          size: record.size,
          annotations: record.annotations ? JSON.stringify(record.annotations) : null,
          created_at: now(),
        })
        // Same digest means same bytes, so a re-push changes nothing.
        .onConflict((oc) => oc.columns(['repository', 'digest']).doNothing())
        .execute();
      for (const ref of refs) {
        await tx
          .insertInto('manifest_refs')
          .values({ repository: record.repository, manifest_digest: record.digest, ref_digest: ref.digest, kind: ref.kind })
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
    });
  }

  async getManifest(repository: string, digest: string): Promise<ManifestRecord | null> {
    const row = await this.db
      .selectFrom('manifests')
      .selectAll()
      .where('repository', '=', repository)
      .where('digest', '=', digest)
      .executeTakeFirst();
    return row ? toManifest(row) : null;
  }

  async deleteManifest(repository: string, digest: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const r = await tx
        .deleteFrom('manifests')
        .where('repository', '=', repository)
        .where('digest', '=', digest)
        .executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      await tx.deleteFrom('tags').where('repository', '=', repository).where('digest', '=', digest).execute();
      await tx
        .deleteFrom('manifest_refs')
        .where('repository', '=', repository)
        .where('manifest_digest', '=', digest)
        .execute();
      return true;
    });
  }

  async manifestRefs(repository: string, digest: string): Promise<ManifestRef[]> {
    const rows = await this.db
      .selectFrom('manifest_refs')
      .select(['ref_digest', 'kind'])
      .where('repository', '=', repository)
      .where('manifest_digest', '=', digest)
      .orderBy('ref_digest')
      .execute();
    return rows.map((r) => ({ digest: r.ref_digest, kind: r.kind === 'manifest' ? 'manifest' : 'blob' }));
  }

  async listReferrers(repository: string, subjectDigest: string, artifactType?: string): Promise<ManifestRecord[]> {
    let q = this.db
      .selectFrom('manifests')
      .selectAll()
      .where('repository', '=', repository)
      .where('subject_digest', '=', subjectDigest)
      .orderBy('digest');
    if (artifactType !== undefined) q = q.where('artifact_type', '=', artifactType);
    return (await q.execute()).map(toManifest);
  }

  async putTag(repository: string, tag: string, digest: string): Promise<void> {
    await this.db
      .insertInto('tags')
      .values({ repository, name: tag, digest, updated_at: now() })
      .onConflict((oc) => oc.columns(['repository', 'name']).doUpdateSet({ digest, updated_at: now() }))
      .execute();
  }

  async getTag(repository: string, tag: string): Promise<string | null> {
    const row = await this.db
      .selectFrom('tags')
      .select('digest')
      .where('repository', '=', repository)
      .where('name', '=', tag)
      .executeTakeFirst();
    return row?.digest ?? null;
  }

  async deleteTag(repository: string, tag: string): Promise<boolean> {
    const r = await this.db.deleteFrom('tags').where('repository', '=', repository).where('name', '=', tag).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listTags(repository: string, page?: Page): Promise<string[]> {
    let q = this.db
      .selectFrom('tags')
      .select('name')
      .where('repository', '=', repository)
      .orderBy('name')
      .limit(pageSize(page));
    if (page?.last !== undefined) q = q.where('name', '>', page.last);
    return (await q.execute()).map((r) => r.name);
  }

  async createUpload(uuid: string, repository: string): Promise<UploadRecord> {
    const t = now();
    await this.ensureRepository(repository);
    await this.db.insertInto('uploads').values({ uuid, repository, offset: 0, created_at: t, updated_at: t }).execute();
    return { uuid, repository, offset: 0, createdAt: t, updatedAt: t };
  }

  async getUpload(uuid: string): Promise<UploadRecord | null> {
    const row = await this.db.selectFrom('uploads').selectAll().where('uuid', '=', uuid).executeTakeFirst();
    return row ? toUpload(row) : null;
  }

  async setUploadOffset(uuid: string, offset: number): Promise<void> {
    await this.db.updateTable('uploads').set({ offset, updated_at: now() }).where('uuid', '=', uuid).execute();
  }

  async deleteUpload(uuid: string): Promise<void> {
    await this.db.deleteFrom('uploads').where('uuid', '=', uuid).execute();
  }

  async getUser(name: string): Promise<UserRecord | null> {
    const row = await this.db.selectFrom('users').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? { name: row.name, passwordHash: row.password_hash, admin: Number(row.admin) === 1 } : null;
  }

  async putUser(user: UserRecord): Promise<void> {
    await this.db
      .insertInto('users')
      .values({ name: user.name, password_hash: user.passwordHash, admin: user.admin ? 1 : 0, created_at: now() })
      .onConflict((oc) => oc.column('name').doUpdateSet({ password_hash: user.passwordHash, admin: user.admin ? 1 : 0 }))
      .execute();
  }

  async countUsers(): Promise<number> {
    const row = await this.db.selectFrom('users').select(sql<number>`count(*)`.as('n')).executeTakeFirstOrThrow();
    return Number(row.n);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}
