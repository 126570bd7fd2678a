import { mkdirSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { CompiledQuery, Kysely, Migrator, SqliteDialect, sql, type DatabaseConnection, type Driver, type QueryResult, type Generated, type Migration, type MigrationResult, type RawBuilder, type MigrationProvider, type Selectable, type Updateable } from 'kysely';
import { StoreError, isDatabaseBusy } from './errors.js';
import { SqliteArtifactStore, createArtifactTables, createEventTables, createMatchKeyTables, createGateStateTable, type ArtifactStore, type ArtifactTables } from './artifact-store.js';
import { SqliteJobStore, createJobTables, type JobStore, type JobTables } from './job-store.js';

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

/** The bounds a new upload session must stay within (see RegistryMetadata.startUpload). */
export interface UploadCaps {
  /** The project whose repositories' sessions count against `perProject`. */
  project: string;
  /** Unfinished sessions the starting account may have. */
  perPrincipal: number;
  /** Unfinished sessions the project's repositories may have, whoever started them. */
  perProject: number;
}

/** A started session, or which cap refused it and how many sessions it already counts. */
export type UploadStart = { started: UploadRecord } | { refused: 'principal' | 'project'; open: number };

export interface UserRecord {
  name: string;
  passwordHash: string;
  admin: boolean;
}

export interface Page {
  n?: number;
  last?: string;
}

/** A page of repository names within [from, before), after `last`. */
export interface NameRangePage extends Page {
  from?: string;
  before?: string;
}

/** A user's role inside one project; each role includes the rights of the ones after it. */
export type ProjectRole = 'admin' | 'maintainer' | 'developer' | 'reader';
export const PROJECT_ROLES: readonly ProjectRole[] = ['admin', 'maintainer', 'developer', 'reader'];

/** A user as listings show it: never the password hash. */
export interface UserSummary {
  name: string;
  admin: boolean;
  /** May push to a project that does not exist yet, which creates it (with them as its admin). */
  canCreateProjects: boolean;
  createdAt: string;
}

/** A project: the first path segment of its repositories' names. */
export interface ProjectRecord {
  name: string;
  public: boolean;
  createdBy: string;
  createdAt: string;
  /**
   * Tag immutability rules: `TAG_GLOB` (every repository of the project) or `REPO_GLOB:TAG_GLOB`
   * (repository path inside the project). A tag they match can be pushed once and never moved or
   * deleted.
   */
  immutableTags: string[];
  /** Storage quota in bytes (distinct blobs and manifests of the project's repositories); null = none. */
  quotaBytes: number | null;
}

/** What `createProject` needs; the rules start empty and the quota unset unless given. */
export type NewProject = Omit<ProjectRecord, 'createdAt' | 'immutableTags' | 'quotaBytes'> &
  Partial<Pick<ProjectRecord, 'immutableTags' | 'quotaBytes'>>;

/** A change to a project's settings; omitted fields stay as they are. */
export interface ProjectSettings {
  public?: boolean;
  immutableTags?: string[];
  quotaBytes?: number | null;
}

export interface ProjectMemberRecord {
  project: string;
  user: string;
  role: ProjectRole;
}

/** A robot account (`robot$<project>+<name>`): a secret for CI, bound to one project. */
export interface RobotRecord {
  name: string;
  project: string;
  secretHash: string;
  actions: string[];
  /** ISO time after which the robot is refused; null = never. */
  expiresAt: string | null;
  revoked: boolean;
  createdBy: string;
  createdAt: string;
}

/** One audit log row. `principal` is a name (or `anonymous`), never a credential. */
export interface AuditRecord {
  id?: number;
  time: string;
  principal: string;
  action: string;
  repository: string | null;
  /** The tag or digest the client named. */
  reference: string | null;
  /** The manifest digest it resolved to, when known. */
  digest: string | null;
  clientIp: string | null;
  outcome: string;
  detail: string | null;
}

export interface AuditQuery {
  /** ISO time; only rows at or after it. */
  since?: string;
  /** Newest rows first, at most this many (default 100). */
  limit?: number;
}

/** A blob's link to a repository (what lets the repository serve it). */
export interface BlobLinkRecord {
  repository: string;
  digest: string;
  size: number;
  createdAt: string;
}

export type PutManifestOutcome =
  | { status: 'ok'; inserted: boolean }
  | { status: 'missing'; missing: string[] }
  /** GC is deleting an older copy of the manifest's own bytes: write them again and retry. */
  | { status: 'deleting' };

/**
 * Registry metadata: repositories, manifests, tags, upload sessions and users. Kept behind this
 * interface so a PostgreSQL implementation can follow with the same shared test suite.
 */
export interface RegistryMetadata {
  /** The durable job queue kept in the same database. */
  readonly jobs: JobStore;
  /** What analyses found per artifact, and the verdicts. */
  readonly artifacts: ArtifactStore;
  /**
   * Why what is written now would not be found after a restart (the database file was deleted or
   * replaced under the running server), or undefined while it is where it was opened.
   */
  lostFromDisk?(): string | undefined;
  ensureRepository(name: string): Promise<void>;
  repositoryExists(name: string): Promise<boolean>;
  listRepositories(page?: NameRangePage): Promise<string[]>;

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
  /**
   * The manifests of `repository` that reference `digest`, in digest order: as a config or layer
   * (`blob`), or as an index's child (`manifest`).
   */
  referencingManifests(repository: string, digest: string, kind: ManifestRef['kind']): Promise<ManifestRecord[]>;
  /** In digest order; `page` returns at most `n` records after the digest `last`. */
  listReferrers(repository: string, subjectDigest: string, artifactType?: string, page?: { n: number; last?: string }): Promise<ManifestRecord[]>;

  putTag(repository: string, tag: string, digest: string): Promise<void>;
  getTag(repository: string, tag: string): Promise<string | null>;
  deleteTag(repository: string, tag: string): Promise<boolean>;
  listTags(repository: string, page?: Page): Promise<string[]>;

  /** Records an upload session; the repository is recorded only when a blob is linked or a manifest pushed. */
  createUpload(uuid: string, repository: string, principal?: string): Promise<UploadRecord>;
  /**
   * createUpload when both caps leave room, with the counts and the insert as one step: parallel
   * starts by one account must not all count the same open sessions and then all insert (40 at
   * once went 28 past the 1,000). An implementation on PostgreSQL needs a lock for this (an
   * advisory lock per account and project, say): under READ COMMITTED a count does not see
   * another transaction's uncommitted insert.
   */
  startUpload(uuid: string, repository: string, principal: string, caps: UploadCaps): Promise<UploadStart>;
  getUpload(uuid: string): Promise<UploadRecord | null>;
  setUploadOffset(uuid: string, offset: number): Promise<void>;
  deleteUpload(uuid: string): Promise<void>;

  getUser(name: string): Promise<UserRecord | null>;
  putUser(user: UserRecord): Promise<void>;
  countUsers(): Promise<number>;

  // Access control (projects, members, robots) and the audit log.
  listUsers(): Promise<UserSummary[]>;
  /** Every user's stored password hash, for the registry's access snapshot (it keeps only a fingerprint). */
  listUserPasswordHashes(): Promise<{ name: string; passwordHash: string }[]>;
  /** Removes the user and their project memberships; false when there was no such user. */
  deleteUser(name: string): Promise<boolean>;
  setUserCanCreateProjects(name: string, allowed: boolean): Promise<boolean>;
  /** Makes a user a system admin or not; false when there is no such user. Never demotes the only admin (LAST_ADMIN). */
  setUserAdmin(name: string, admin: boolean): Promise<boolean>;
  /** Creates the project (and, when given, its first admin) at once; false when it already existed. */
  createProject(project: NewProject, admin?: string): Promise<boolean>;
  getProject(name: string): Promise<ProjectRecord | null>;
  listProjects(): Promise<ProjectRecord[]>;
  setProjectPublic(name: string, isPublic: boolean): Promise<boolean>;
  /** Changes visibility, tag immutability rules or quota; false when there is no such project. */
  updateProject(name: string, settings: ProjectSettings): Promise<boolean>;
  /**
   * Bytes the project's repositories hold: each distinct blob and manifest counted once, however
   * many of its repositories link it (what its quota is measured against).
   */
  projectUsage(name: string): Promise<number>;
  putProjectMember(project: string, user: string, role: ProjectRole): Promise<void>;
  removeProjectMember(project: string, user: string): Promise<boolean>;
  listProjectMembers(project?: string): Promise<ProjectMemberRecord[]>;
  createRobot(robot: Omit<RobotRecord, 'createdAt' | 'revoked'>): Promise<void>;
  getRobot(name: string): Promise<RobotRecord | null>;
  listRobots(project?: string): Promise<RobotRecord[]>;
  revokeRobot(name: string): Promise<boolean>;
  /** Replaces a robot's secret (and expiry, when given); false when there is no such robot. The old secret stops working. */
  refreshRobotSecret(name: string, secretHash: string, expiresAt?: string | null): Promise<boolean>;
  /** Deletes a robot, so its name can be used again; false when there was none. */
  deleteRobot(name: string): Promise<boolean>;
  /**
   * A number that changes whenever users, projects, members or robots change, from any process
   * sharing the database; servers compare it to know when their cached access data is stale.
   */
  accessVersion(): Promise<number>;
  /**
   * Optional, read synchronously and cheaply: a number that changes whenever anything stored here
   * may have changed, written by this process or by another one sharing the database. The registry
   * keeps tag, manifest and blob-link lookups in memory only while it stays the same; without it,
   * every request asks the database.
   */
  changeStamp?(): number;
  appendAudit(records: AuditRecord[]): Promise<void>;
  listAudit(query?: AuditQuery): Promise<AuditRecord[]>;

  // Garbage collection (src/store/gc.ts). Pushes and GC never share a lock: each GC decision is one
  // short IMMEDIATE transaction that re-checks the facts a concurrent push could have changed.
  /** Marks digests as in use by a push right now; a collection that started earlier keeps them. */
  touchDigests(digests: string[]): Promise<void>;
  /** Digests touched at or after `since` (ISO time). */
  touchedSince(since: string): Promise<Set<string>>;
  /** Forgets touches older than `before`; returns how many went. */
  pruneTouches(before: string): Promise<number>;
  /**
   * Forgets the analyses (facts, package index, match keys) of digests no repository holds any
   * more, analysed before `before`; returns how many went. (Verdicts go with their manifest.)
   */
  pruneAnalyses(before: string): Promise<number>;
  /** Like linkBlob, but refuses (false) while GC is deleting the digest. */
  linkBlobIfLive(repository: string, digest: string, size: number): Promise<boolean>;
  blobBeingDeleted(digest: string): Promise<boolean>;
  /**
   * putManifest (and the tag, when given) in one transaction that first checks that every blob is
   * linked to the repository and not being collected, and every child manifest is stored.
   */
  putManifestChecked(
    record: Omit<ManifestRecord, 'createdAt'>,
    refs: ManifestRef[],
    check: { tag?: string; blobs: string[]; manifests: string[] },
  ): Promise<PutManifestOutcome>;
  listManifests(repository: string): Promise<ManifestRecord[]>;
  /** Every tag of a repository with the digest it points at. */
  listTagTargets(repository: string): Promise<{ tag: string; digest: string }[]>;
  /** Every (manifest → ref) row of a repository. */
  listManifestRefs(repository: string): Promise<(ManifestRef & { manifestDigest: string })[]>;
  listBlobLinks(repository?: string): Promise<BlobLinkRecord[]>;
  listUploads(): Promise<UploadRecord[]>;
  /** Bytes received by the unfinished uploads of a project's repositories (what its quota must also count). */
  projectUploadBytes(project: string): Promise<number>;
  /** Unfinished upload sessions an account started. */
  principalUploadCount(principal: string): Promise<number>;
  /** Unfinished upload sessions of a project's repositories. */
  projectUploadCount(project: string): Promise<number>;
  /**
   * Deletes an untagged manifest created before `cutoff` when nothing in its repository still
   * needs it: no tag, no manifest referencing it, its subject (if any) no longer stored, no touch
   * at or after `cutoff`. False when any of these holds now.
   */
  deleteManifestIfUnused(repository: string, digest: string, cutoff: string): Promise<boolean>;
  /**
   * Removes a repository's link to a blob that none of its manifests is or references, linked
   * before `cutoff` and untouched since; false when any of that no longer holds. The link is what
   * a project's quota counts, so a blob another project still uses must not keep it.
   */
  unlinkBlobIfUnreferenced(repository: string, digest: string, cutoff: string): Promise<boolean>;
  /** Forgets a repository that holds nothing (no manifest, link or upload) and was made before `cutoff`. */
  deleteRepositoryIfEmpty(repository: string, cutoff: string): Promise<boolean>;
  /**
   * Starts deleting a blob no manifest references, untouched and unlinked since `cutoff`: records
   * it as being deleted and removes its repository links; returns the links removed, or null when
   * the blob must be kept. The caller deletes the file, then calls endBlobDeletion.
   */
  beginBlobDeletion(digest: string, cutoff: string): Promise<number | null>;
  endBlobDeletion(digest: string): Promise<void>;
  /** Deletions a crashed collection left unfinished. */
  pendingBlobDeletions(): Promise<string[]>;

  close(): Promise<void>;
}

interface Tables extends JobTables, ArtifactTables {
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
  uploads: { uuid: string; repository: string; offset: number; created_at: string; updated_at: string; principal: string | null };
  gc_activity: { digest: string; touched_at: string };
  gc_deleting: { digest: string; started_at: string };
  users: { name: string; password_hash: string; admin: number; created_at: string; can_create_projects: Generated<number> };
  projects: {
    name: string;
    public: number;
    created_by: string;
    created_at: string;
    immutable_tags: Generated<string | null>;
    quota_bytes: Generated<number | null>;
  };
  project_members: { project: string; user_name: string; role: string; created_at: string };
  robots: {
    name: string;
    project: string;
    secret_hash: string;
    actions: string;
    expires_at: string | null;
    revoked: number;
    created_by: string;
    created_at: string;
  };
  access_state: { id: number; version: number };
  audit: {
    id: Generated<number>;
    time: string;
    principal: string;
    action: string;
    repository: string | null;
    reference: string | null;
    digest: string | null;
    client_ip: string | null;
    outcome: string;
    detail: string | null;
  };
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
  '002_gc_activity': {
    async up(db: Kysely<unknown>) {
      // When pushes last used a digest: GC keeps anything touched after it started (minus grace).
      await db.schema
        .createTable('gc_activity')
        .addColumn('digest', 'text', (c) => c.primaryKey())
        .addColumn('touched_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('gc_activity_touched').on('gc_activity').column('touched_at').execute();
      // Blobs GC has decided to delete: no link or manifest may name them until the row is gone.
      await db.schema
        .createTable('gc_deleting')
        .addColumn('digest', 'text', (c) => c.primaryKey())
        .addColumn('started_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('manifest_refs_repo_ref').on('manifest_refs').columns(['repository', 'ref_digest']).execute();
    },
  },
  '003_access_control': {
    async up(db: Kysely<unknown>) {
      await db.schema
        .alterTable('users')
        .addColumn('can_create_projects', 'integer', (c) => c.notNull().defaultTo(0))
        .execute();
      await db.schema
        .createTable('projects')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('public', 'integer', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema
        .createTable('project_members')
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('user_name', 'text', (c) => c.notNull())
        .addColumn('role', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .addPrimaryKeyConstraint('project_members_pk', ['project', 'user_name'])
        .execute();
      await db.schema.createIndex('project_members_user').on('project_members').column('user_name').execute();
      await db.schema
        .createTable('robots')
        .addColumn('name', 'text', (c) => c.primaryKey())
        .addColumn('project', 'text', (c) => c.notNull())
        .addColumn('secret_hash', 'text', (c) => c.notNull())
        .addColumn('actions', 'text', (c) => c.notNull())
        .addColumn('expires_at', 'text')
        .addColumn('revoked', 'integer', (c) => c.notNull())
        .addColumn('created_by', 'text', (c) => c.notNull())
        .addColumn('created_at', 'text', (c) => c.notNull())
        .execute();
      await db.schema.createIndex('robots_project').on('robots').column('project').execute();
      await db.schema
        .createTable('access_state')
        .addColumn('id', 'integer', (c) => c.primaryKey())
        .addColumn('version', 'integer', (c) => c.notNull())
        .execute();
      await sql`INSERT INTO access_state (id, version) VALUES (1, 0)`.execute(db);
      // Triggers rather than bumps in each method: the CLI, the server and putUser (older code) all
      // change these tables, and every path must invalidate the servers' cached access data.
      for (const table of ['users', 'projects', 'project_members', 'robots']) {
        for (const op of ['INSERT', 'UPDATE', 'DELETE']) {
          await sql
            .raw(
              `CREATE TRIGGER access_bump_${table}_${op.toLowerCase()} AFTER ${op} ON ${table} ` +
                'BEGIN UPDATE access_state SET version = version + 1 WHERE id = 1; END',
            )
            .execute(db);
        }
      }
      await db.schema
        .createTable('audit')
        .addColumn('id', 'integer', (c) => c.primaryKey().autoIncrement())
        .addColumn('time', 'text', (c) => c.notNull())
        .addColumn('principal', 'text', (c) => c.notNull())
        .addColumn('action', 'text', (c) => c.notNull())
        .addColumn('repository', 'text')
        .addColumn('reference', 'text')
        .addColumn('digest', 'text')
        .addColumn('client_ip', 'text')
        .addColumn('outcome', 'text', (c) => c.notNull())
        .addColumn('detail', 'text')
        .execute();
      await db.schema.createIndex('audit_time').on('audit').column('time').execute();
    },
  },
  '004_project_settings': {
    async up(db: Kysely<unknown>) {
      // JSON array of patterns; NULL and '[]' both mean no rule.
      await db.schema.alterTable('projects').addColumn('immutable_tags', 'text').execute();
      await db.schema.alterTable('projects').addColumn('quota_bytes', 'integer').execute();
    },
  },
  '005_jobs': {
    async up(db: Kysely<unknown>) {
      await createJobTables(db);
    },
  },
  '006_artifact_analysis': {
    async up(db: Kysely<unknown>) {
      await createArtifactTables(db);
    },
  },
  '007_events': {
    async up(db: Kysely<unknown>) {
      await createEventTables(db);
    },
  },
  '008_match_keys': {
    async up(db: Kysely<unknown>) {
      await createMatchKeyTables(db);
    },
  },
  '009_gate_state': {
    async up(db: Kysely<unknown>) {
      await createGateStateTable(db);
    },
  },
  '010_uploads_by_repository': {
    async up(db: Kysely<unknown>) {
      // Quota checks sum a project's unfinished uploads (a range of repository names).
      await db.schema.createIndex('uploads_repository').on('uploads').column('repository').execute();
    },
  },
  '011_uploads_by_account': {
    async up(db: Kysely<unknown>) {
      // Who started a session: starting one counts the account's unfinished ones. Sessions from
      // before have none and count for nobody; they are purged after a day idle as ever.
      await db.schema.alterTable('uploads').addColumn('principal', 'text').execute();
      await db.schema.createIndex('uploads_principal').on('uploads').column('principal').execute();
    },
  },
};

/** Whether a blob store folder (`<alg>/<2 hex>/<hex>`) holds at least one file. */
function holdsBlobs(blobsDir: string): boolean {
  const list = (dir: string) => {
    try {
      return readdirSync(dir);
    } catch {
      return [];
    }
  };
  for (const algorithm of list(blobsDir)) {
    for (const prefix of list(join(blobsDir, algorithm))) if (list(join(blobsDir, algorithm, prefix)).length > 0) return true;
  }
  return false;
}

/** What the write-ahead log is cut back to once a checkpoint emptied it (bytes). */
export const WAL_SIZE_LIMIT = 16 * 1024 * 1024;

/** How long a statement waits in all for another process's write lock before failing with SQLITE_BUSY. */
export const LOCK_WAIT_MS = 5000;

/** Kysely's one-connection mutex, which the driver below may also give up while it waits. */
class ConnectionMutex {
  private held: Promise<void> | undefined;
  private release: (() => void) | undefined;

  async lock(): Promise<void> {
    while (this.held) await this.held;
    this.held = new Promise<void>((resolve) => (this.release = resolve));
  }

  unlock(): void {
    const release = this.release;
    this.held = undefined;
    this.release = undefined;
    release?.();
  }
}

/**
 * Kysely's SQLite driver, changed in two ways.
 *
 * Every transaction here writes, and Kysely begins them DEFERRED: such a transaction takes a read
 * snapshot at its first statement and asks for the write lock only at its first write. When
 * another process (a second server, `portcullis gc`, the user CLI) wrote in between, SQLite
 * answers SQLITE_BUSY or SQLITE_BUSY_SNAPSHOT at once, without the busy timeout, since waiting
 * could deadlock: the gate's analysis jobs failed with "database is locked" next to a second
 * server. So transactions begin IMMEDIATE, taking the write lock first.
 *
 * Waiting for that lock is asynchronous. better-sqlite3 is synchronous, so SQLite's own busy
 * timeout waited inside the call and stopped the event loop: while `portcullis gc` or a script
 * held the write lock for 3 s, every request to the server, even GET /v2/, took up to 3 s. The
 * database runs with no busy timeout instead; a statement outside a transaction (BEGIN IMMEDIATE
 * itself, or a single write) that finds the lock taken is retried after a growing pause, for up
 * to LOCK_WAIT_MS in all, and the connection is free for other statements during the pause.
 * That is safe: a statement outside a transaction that failed with SQLITE_BUSY changed nothing,
 * and the connection is not inside anybody's transaction while it is lent out. Inside a
 * transaction the write lock is already held, so SQLITE_BUSY there is not waited on.
 */
class LockWaitingSqliteDriver implements Driver {
  private readonly mutex = new ConnectionMutex();
  private readonly connection: DatabaseConnection;

  /** `sqlite` runs the statements (the statement cache below); `raw` is the database itself, for its state. */
  constructor(
    private readonly sqlite: Database.Database,
    private readonly raw: Database.Database,
  ) {
    const execute = <R>(query: CompiledQuery): Promise<QueryResult<R>> => this.execute<R>(query);
    this.connection = {
      executeQuery: execute,
      // Nothing here streams; Kysely's interface asks for the method.
      streamQuery: async function* <R>(query: CompiledQuery): AsyncIterableIterator<QueryResult<R>> {
        yield await execute<R>(query);
      },
    };
  }

  async init(): Promise<void> {}

  async acquireConnection(): Promise<DatabaseConnection> {
    await this.mutex.lock();
    return this.connection;
  }

  async beginTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('begin immediate'));
  }

  async commitTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('commit'));
  }

  async rollbackTransaction(connection: DatabaseConnection): Promise<void> {
    await connection.executeQuery(CompiledQuery.raw('rollback'));
  }

  async releaseConnection(): Promise<void> {
    this.mutex.unlock();
  }

  async destroy(): Promise<void> {
    this.raw.close();
  }

  private async execute<R>(query: CompiledQuery): Promise<QueryResult<R>> {
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (let pause = 2; ; pause = Math.min(pause * 2, 50)) {
      try {
        return this.run<R>(query);
      } catch (err) {
        if (!isDatabaseBusy(err) || this.raw.inTransaction || Date.now() >= deadline) throw err;
      }
      // The caller holds the connection; lend it out while waiting, and take it back after.
      this.mutex.unlock();
      await new Promise((resolve) => setTimeout(resolve, Math.min(pause, Math.max(1, deadline - Date.now()))));
      await this.mutex.lock();
    }
  }

  private run<R>(query: CompiledQuery): QueryResult<R> {
    const stmt = this.sqlite.prepare(query.sql);
    const parameters = query.parameters as unknown[];
    if (stmt.reader) return { rows: stmt.all(parameters) as R[] };
    const { changes, lastInsertRowid } = stmt.run(parameters);
    return { numAffectedRows: BigInt(changes), insertId: BigInt(lastInsertRowid), rows: [] };
  }
}

class LockWaitingSqliteDialect extends SqliteDialect {
  constructor(
    private readonly sqlite: Database.Database,
    private readonly raw: Database.Database,
  ) {
    super({ database: sqlite });
  }

  override createDriver(): Driver {
    return new LockWaitingSqliteDriver(this.sqlite, this.raw);
  }
}

/**
 * Kysely takes no migration lock on SQLite, so two processes opening a new data folder at once
 * (two servers, or a server and `portcullis user add`) both ran 0001 and one failed with "table
 * already exists". When something is pending, the whole migration runs in one IMMEDIATE
 * transaction instead: the second process waits for the first, then finds nothing left to do, and
 * a failed migration leaves nothing behind. An up-to-date database takes no lock at all.
 */
async function migrateExclusively(sqlite: Database.Database, migrator: Migrator): Promise<{ error?: unknown; results?: MigrationResult[] | undefined }> {
  const known = await migrator.getMigrations().catch(() => undefined);
  if (known?.every((m) => m.executedAt !== undefined)) return {};
  sqlite.exec('begin immediate');
  const outcome: { error?: unknown; results?: MigrationResult[] | undefined } = await migrator.migrateToLatest().catch((err: unknown) => ({ error: err }));
  try {
    sqlite.exec(outcome.error ? 'rollback' : 'commit');
  } catch (err) {
    outcome.error ??= err;
  }
  return outcome;
}

class InlineMigrations implements MigrationProvider {
  async getMigrations(): Promise<Record<string, Migration>> {
    return MIGRATIONS;
  }
}

const now = () => new Date().toISOString();
const DEFAULT_PAGE = 1000;
/**
 * One more than the registry's largest page (n=10,000): it asks for n+1 names to learn whether
 * more follow, and with 10,000 here tags/list?n=10000 on 10,001 tags sent no Link.
 */
const MAX_PAGE = 10_001;

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

function toRole(role: string): ProjectRole {
  return (PROJECT_ROLES as readonly string[]).includes(role) ? (role as ProjectRole) : 'reader';
}

function toProject(row: Selectable<Tables['projects']>): ProjectRecord {
  return {
    name: row.name,
    public: Number(row.public) === 1,
    createdBy: row.created_by,
    createdAt: row.created_at,
    immutableTags: row.immutable_tags ? (JSON.parse(row.immutable_tags) as string[]) : [],
    quotaBytes: row.quota_bytes === null ? null : Number(row.quota_bytes),
  };
}

/** Bounds that select a project's repositories (`p` itself and `p/...`) through the primary key. */
/** `column` names a repository of `project`: the project's own name, or one under `project/`. */
function inProject(project: string, column = 'repository') {
  // '/' is followed by '0' in code-point order, so `p/` <= name < `p0` is exactly the `p/` prefix.
  const ref = sql.ref(column);
  return sql<boolean>`(${ref} = ${project} OR (${ref} >= ${`${project}/`} AND ${ref} < ${`${project}0`}))`;
}

/** Unfinished upload sessions matching `where` (both counts use an index: uploads_principal, uploads_repository). */
async function countUploads(db: Kysely<Tables>, where: RawBuilder<boolean>): Promise<number> {
  const r = await db.selectFrom('uploads').select(sql<number>`COUNT(*)`.as('count')).where(where).executeTakeFirst();
  return Number(r?.count ?? 0);
}

/** LAST_ADMIN when `name` is the only admin: neither removing nor demoting it may leave none. */
async function refuseLastAdmin(db: Kysely<Tables>, name: string, hint = ''): Promise<void> {
  const admins = await db.selectFrom('users').select('name').where('admin', '=', 1).execute();
  if (admins.length === 1 && admins[0]!.name === name) {
    throw new StoreError('LAST_ADMIN', `${name} is the only admin; make another user admin first${hint}`);
  }
}

function toRobot(row: Tables['robots']): RobotRecord {
  return {
    name: row.name,
    project: row.project,
    secretHash: row.secret_hash,
    actions: row.actions === '' ? [] : row.actions.split(','),
    expiresAt: row.expires_at,
    revoked: Number(row.revoked) === 1,
    createdBy: row.created_by,
    createdAt: row.created_at,
  };
}

/** RegistryMetadata on SQLite (WAL), through Kysely so the queries carry over to PostgreSQL. */
export class SqliteRegistryMetadata implements RegistryMetadata {
  /** The durable job queue, in the same database (src/store/job-store.ts). */
  readonly jobs: JobStore;
  /** Analysis results, the package index and verdicts (src/store/artifact-store.ts). */
  readonly artifacts: ArtifactStore;

  private constructor(
    private readonly db: Kysely<Tables>,
    private readonly readStamp?: () => number,
    private readonly file?: { path: string; dev: number; ino: number },
  ) {
    this.artifacts = new SqliteArtifactStore(db as unknown as Kysely<ArtifactTables>);
    this.jobs = new SqliteJobStore(db as unknown as Kysely<JobTables>, (fn) => this.immediate((tx) => fn(tx as unknown as Kysely<JobTables>)));
  }

  /**
   * Opens (creating when needed) `<dataDir>/registry/meta.sqlite` and migrates it to the latest
   * schema. Refuses to create it anew next to stored blobs: SQLite takes a missing or empty file
   * for a new database, so a metadata file lost or truncated to nothing (a failed restore, a copy
   * cut short) started a registry that served no image, made a new admin user, and whose next gc
   * deleted every blob as unreferenced.
   */
  static async open(dataDir: string): Promise<SqliteRegistryMetadata> {
    const dir = join(dataDir, 'registry');
    mkdirSync(dir, { recursive: true });
    const file = join(dir, 'meta.sqlite');
    // Never empty once made: switching a new database to WAL writes its first page.
    const main = statSync(file, { throwIfNoEntry: false });
    if ((main?.size ?? 0) === 0 && holdsBlobs(join(dir, 'blobs'))) {
      throw new StoreError(
        'METADATA_MISSING',
        `${file} is ${main ? 'empty' : 'missing'}, but ${join(dir, 'blobs')} holds blobs: the registry's metadata was lost. Restore meta.sqlite from a backup (starting without it would serve no image, and gc would delete every blob); to start an empty registry on purpose, move ${dir} aside`,
      );
    }
    return SqliteRegistryMetadata.openFile(file);
  }

  static async openFile(file: string): Promise<SqliteRegistryMetadata> {
    const sqlite = new Database(file);
    // First, so that every step of opening waits for another process's lock instead of failing at once.
    sqlite.pragma(`busy_timeout = ${LOCK_WAIT_MS}`);
    try {
      sqlite.pragma('journal_mode = WAL');
    } catch (err) {
      sqlite.close();
      // better-sqlite3 says only "file is not a database", naming no file.
      const code = (err as { code?: string }).code;
      if (code === 'SQLITE_NOTADB' || code === 'SQLITE_CORRUPT') {
        throw new StoreError('METADATA_UNREADABLE', `${file}: not a readable SQLite database (${(err as Error).message}); restore it from a backup, or move it aside to start with empty metadata`, { cause: err });
      }
      throw err;
    }
    // WAL + NORMAL is durable across application crashes; blobs are fsynced separately.
    sqlite.pragma('synchronous = NORMAL');
    // The write-ahead log only grows while another process holds a read snapshot (a backup, an
    // sqlite3 shell): 13 MB per 10 s of pulls and pushes. SQLite reuses it afterwards but never
    // gives the space back, so it stayed at its peak for good; this cuts it back once it is reset.
    // Checkpoints keep it near 4 MiB otherwise, well below the limit.
    sqlite.pragma(`journal_size_limit = ${WAL_SIZE_LIMIT}`);
    const stamp = new ChangeStamp(sqlite);
    const db = new Kysely<Tables>({ dialect: new LockWaitingSqliteDialect(withStatementCache(sqlite, () => stamp.wrote()), sqlite) });
    const migrator = new Migrator({ db, provider: new InlineMigrations() });
    const { error, results } = await migrateExclusively(sqlite, migrator);
    if (error) {
      await db.destroy();
      const failed = results?.find((r) => r.status === 'Error')?.migrationName ?? 'unknown';
      throw new StoreError('METADATA_MIGRATION_FAILED', `metadata migration ${failed} failed in ${file}: ${String(error)}`, {
        cause: error,
      });
    }
    // From here on the driver waits for other processes' locks without stopping the event loop
    // (LockWaitingSqliteDriver); opening and migrating, before any request, waited in SQLite.
    sqlite.pragma('busy_timeout = 0');
    const opened = statSync(file);
    return new SqliteRegistryMetadata(db, () => stamp.read(), { path: file, dev: opened.dev, ino: opened.ino });
  }

  /**
   * SQLite goes on writing to a database file that was deleted (or replaced) under it, and the
   * blob store makes its folders anew: a server whose data folder was removed answered every push
   * 201 and lost all of it at restart. One stat of the path says so.
   */
  lostFromDisk(): string | undefined {
    if (!this.file) return undefined;
    const now = statSync(this.file.path, { throwIfNoEntry: false });
    if (!now) return `the metadata database ${this.file.path} was deleted while the server ran`;
    if (now.dev !== this.file.dev || now.ino !== this.file.ino) return `the metadata database ${this.file.path} was replaced while the server ran`;
    return undefined;
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

  async listRepositories(page?: NameRangePage): Promise<string[]> {
    let q = this.db.selectFrom('repositories').select('name').orderBy('name').limit(pageSize(page));
    if (page?.last !== undefined) q = q.where('name', '>', page.last);
    if (page?.from !== undefined) q = q.where('name', '>=', page.from);
    if (page?.before !== undefined) q = q.where('name', '<', page.before);
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
      // A deleted image has no verdict: a database update must not re-decide it or announce it.
      await tx.deleteFrom('artifact_verdicts').where('repository', '=', repository).where('digest', '=', digest).execute();
      await tx.deleteFrom('artifact_verdict_summaries').where('repository', '=', repository).where('digest', '=', digest).execute();
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

  async referencingManifests(repository: string, digest: string, kind: ManifestRef['kind']): Promise<ManifestRecord[]> {
    const rows = await this.db
      .selectFrom('manifest_refs')
      .innerJoin('manifests', (j) => j.onRef('manifests.repository', '=', 'manifest_refs.repository').onRef('manifests.digest', '=', 'manifest_refs.manifest_digest'))
      .selectAll('manifests')
      .where('manifest_refs.repository', '=', repository)
      .where('manifest_refs.ref_digest', '=', digest)
      .where('manifest_refs.kind', '=', kind)
      .orderBy('manifests.digest')
      .execute();
    return rows.map(toManifest);
  }

  async listReferrers(repository: string, subjectDigest: string, artifactType?: string, page?: { n: number; last?: string }): Promise<ManifestRecord[]> {
    let q = this.db
      .selectFrom('manifests')
      .selectAll()
      .where('repository', '=', repository)
      .where('subject_digest', '=', subjectDigest)
      .orderBy('digest');
    if (artifactType !== undefined) q = q.where('artifact_type', '=', artifactType);
    if (page?.last !== undefined) q = q.where('digest', '>', page.last);
    if (page) q = q.limit(page.n);
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
    // The distribution spec wants tags in lexical order, "case-insensitive alphanumeric order", so
    // `B` sorts after `a`; the exact name breaks ties (`A` and `a`), which keeps `last` paging exact.
    let q = this.db
      .selectFrom('tags')
      .select('name')
      .where('repository', '=', repository)
      .orderBy(sql`lower(name)`)
      .orderBy('name')
      .limit(pageSize(page));
    const last = page?.last;
    if (last !== undefined) q = q.where(sql<boolean>`(lower(name) > lower(${last}) OR (lower(name) = lower(${last}) AND name > ${last}))`);
    return (await q.execute()).map((r) => r.name);
  }

  async createUpload(uuid: string, repository: string, principal?: string): Promise<UploadRecord> {
    const t = now();
    // No repository row yet: an upload session alone must not make a repository appear in the
    // catalog. Linking the finished blob (or pushing a manifest) records the repository.
    await this.db
      .insertInto('uploads')
      .values({ uuid, repository, offset: 0, created_at: t, updated_at: t, principal: principal ?? null })
      .execute();
    return { uuid, repository, offset: 0, createdAt: t, updatedAt: t };
  }

  async startUpload(uuid: string, repository: string, principal: string, caps: UploadCaps): Promise<UploadStart> {
    // Immediate: the write lock is taken at BEGIN, so no other writer (in this process or another)
    // can insert a session between the counts and the insert.
    return this.immediate(async (tx) => {
      const mine = await countUploads(tx, sql<boolean>`${sql.ref('principal')} = ${principal}`);
      if (mine >= caps.perPrincipal) return { refused: 'principal', open: mine };
      const project = await countUploads(tx, inProject(caps.project));
      if (project >= caps.perProject) return { refused: 'project', open: project };
      const t = now();
      await tx.insertInto('uploads').values({ uuid, repository, offset: 0, created_at: t, updated_at: t, principal }).execute();
      return { started: { uuid, repository, offset: 0, createdAt: t, updatedAt: t } };
    });
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

  async listUsers(): Promise<UserSummary[]> {
    const rows = await this.db.selectFrom('users').select(['name', 'admin', 'can_create_projects', 'created_at']).orderBy('name').execute();
    return rows.map((r) => ({
      name: r.name,
      admin: Number(r.admin) === 1,
      canCreateProjects: Number(r.can_create_projects) === 1,
      createdAt: r.created_at,
    }));
  }

  async listUserPasswordHashes(): Promise<{ name: string; passwordHash: string }[]> {
    const rows = await this.db.selectFrom('users').select(['name', 'password_hash']).execute();
    return rows.map((r) => ({ name: r.name, passwordHash: r.password_hash }));
  }

  async deleteUser(name: string): Promise<boolean> {
    // Immediate: two removals (or demotions) at once must serialise on the admin count, not both
    // read it and then fail on the write with "database is locked".
    return this.immediate(async (tx) => {
      // Checked in the same transaction as the delete, so two removals cannot each leave the other.
      await refuseLastAdmin(tx, name, ' (`portcullis user set NAME --admin`)');
      const r = await tx.deleteFrom('users').where('name', '=', name).executeTakeFirst();
      if (Number(r.numDeletedRows) === 0) return false;
      // A later user with the same name must not inherit the old one's project roles.
      await tx.deleteFrom('project_members').where('user_name', '=', name).execute();
      return true;
    });
  }

  async setUserAdmin(name: string, admin: boolean): Promise<boolean> {
    return this.immediate(async (tx) => {
      if (!admin) await refuseLastAdmin(tx, name);
      const r = await tx
        .updateTable('users')
        .set({ admin: admin ? 1 : 0 })
        .where('name', '=', name)
        .executeTakeFirst();
      return Number(r.numUpdatedRows) > 0;
    });
  }

  async setUserCanCreateProjects(name: string, allowed: boolean): Promise<boolean> {
    const r = await this.db
      .updateTable('users')
      .set({ can_create_projects: allowed ? 1 : 0 })
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async createProject(project: NewProject, admin?: string): Promise<boolean> {
    return this.db.transaction().execute(async (tx) => {
      const t = now();
      const r = await tx
        .insertInto('projects')
        .values({
          name: project.name,
          public: project.public ? 1 : 0,
          created_by: project.createdBy,
          created_at: t,
          immutable_tags: project.immutableTags?.length ? JSON.stringify(project.immutableTags) : null,
          quota_bytes: project.quotaBytes ?? null,
        })
        .onConflict((oc) => oc.column('name').doNothing())
        .executeTakeFirst();
      if (Number(r.numInsertedOrUpdatedRows ?? 0n) === 0) return false;
      if (admin !== undefined) {
        await tx
          .insertInto('project_members')
          .values({ project: project.name, user_name: admin, role: 'admin', created_at: t })
          .onConflict((oc) => oc.columns(['project', 'user_name']).doUpdateSet({ role: 'admin' }))
          .execute();
      }
      return true;
    });
  }

  async getProject(name: string): Promise<ProjectRecord | null> {
    const row = await this.db.selectFrom('projects').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toProject(row) : null;
  }

  async listProjects(): Promise<ProjectRecord[]> {
    return (await this.db.selectFrom('projects').selectAll().orderBy('name').execute()).map(toProject);
  }

  async setProjectPublic(name: string, isPublic: boolean): Promise<boolean> {
    const r = await this.db.updateTable('projects').set({ public: isPublic ? 1 : 0 }).where('name', '=', name).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async updateProject(name: string, settings: ProjectSettings): Promise<boolean> {
    const set: Updateable<Tables['projects']> = {};
    if (settings.public !== undefined) set.public = settings.public ? 1 : 0;
    if (settings.immutableTags !== undefined) set.immutable_tags = settings.immutableTags.length ? JSON.stringify(settings.immutableTags) : null;
    if (settings.quotaBytes !== undefined) set.quota_bytes = settings.quotaBytes;
    if (Object.keys(set).length === 0) return (await this.getProject(name)) !== null;
    const r = await this.db.updateTable('projects').set(set).where('name', '=', name).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async projectUsage(name: string): Promise<number> {
    // One row per distinct digest, so layers shared by several repositories count once.
    const r = await sql<{ total: number | null }>`
      SELECT SUM(size) AS total FROM (
        SELECT digest, MAX(size) AS size FROM (
          SELECT digest, size FROM repository_blobs WHERE ${inProject(name)}
          UNION ALL
          SELECT digest, size FROM manifests WHERE ${inProject(name)}
        ) GROUP BY digest
      )`.execute(this.db);
    return Number(r.rows[0]?.total ?? 0);
  }

  async putProjectMember(project: string, user: string, role: ProjectRole): Promise<void> {
    await this.db
      .insertInto('project_members')
      .values({ project, user_name: user, role, created_at: now() })
      .onConflict((oc) => oc.columns(['project', 'user_name']).doUpdateSet({ role }))
      .execute();
  }

  async removeProjectMember(project: string, user: string): Promise<boolean> {
    const r = await this.db
      .deleteFrom('project_members')
      .where('project', '=', project)
      .where('user_name', '=', user)
      .executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async listProjectMembers(project?: string): Promise<ProjectMemberRecord[]> {
    let q = this.db.selectFrom('project_members').select(['project', 'user_name', 'role']).orderBy('project').orderBy('user_name');
    if (project !== undefined) q = q.where('project', '=', project);
    return (await q.execute()).map((r) => ({ project: r.project, user: r.user_name, role: toRole(r.role) }));
  }

  async createRobot(robot: Omit<RobotRecord, 'createdAt' | 'revoked'>): Promise<void> {
    await this.db
      .insertInto('robots')
      .values({
        name: robot.name,
        project: robot.project,
        secret_hash: robot.secretHash,
        actions: robot.actions.join(','),
        expires_at: robot.expiresAt,
        revoked: 0,
        created_by: robot.createdBy,
        created_at: now(),
      })
      .execute();
  }

  async getRobot(name: string): Promise<RobotRecord | null> {
    const row = await this.db.selectFrom('robots').selectAll().where('name', '=', name).executeTakeFirst();
    return row ? toRobot(row) : null;
  }

  async listRobots(project?: string): Promise<RobotRecord[]> {
    let q = this.db.selectFrom('robots').selectAll().orderBy('name');
    if (project !== undefined) q = q.where('project', '=', project);
    return (await q.execute()).map(toRobot);
  }

  async revokeRobot(name: string): Promise<boolean> {
    const r = await this.db.updateTable('robots').set({ revoked: 1 }).where('name', '=', name).executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async refreshRobotSecret(name: string, secretHash: string, expiresAt?: string | null): Promise<boolean> {
    const r = await this.db
      .updateTable('robots')
      .set({ secret_hash: secretHash, ...(expiresAt !== undefined ? { expires_at: expiresAt } : {}) })
      .where('name', '=', name)
      .executeTakeFirst();
    return Number(r.numUpdatedRows) > 0;
  }

  async deleteRobot(name: string): Promise<boolean> {
    const r = await this.db.deleteFrom('robots').where('name', '=', name).executeTakeFirst();
    return Number(r.numDeletedRows) > 0;
  }

  async accessVersion(): Promise<number> {
    const row = await this.db.selectFrom('access_state').select('version').where('id', '=', 1).executeTakeFirst();
    return Number(row?.version ?? 0);
  }

  changeStamp(): number {
    return this.readStamp ? this.readStamp() : Number.NaN;
  }

  async appendAudit(records: AuditRecord[]): Promise<void> {
    // Rows go in slices: one multi-row INSERT per slice keeps a burst to a few statements while
    // staying far below SQLite's bound-parameter limit.
    for (let i = 0; i < records.length; i += 200) {
      const slice = records.slice(i, i + 200).map((r) => ({
        time: r.time,
        principal: r.principal,
        action: r.action,
        repository: r.repository,
        reference: r.reference,
        digest: r.digest,
        client_ip: r.clientIp,
        outcome: r.outcome,
        detail: r.detail,
      }));
      await this.db.insertInto('audit').values(slice).execute();
    }
  }

  async listAudit(query: AuditQuery = {}): Promise<AuditRecord[]> {
    let q = this.db
      .selectFrom('audit')
      .selectAll()
      .orderBy('id', 'desc')
      .limit(Math.min(Math.max(1, query.limit ?? 100), MAX_PAGE));
    if (query.since !== undefined) q = q.where('time', '>=', query.since);
    return (await q.execute()).map((r) => ({
      id: Number(r.id),
      time: r.time,
      principal: r.principal,
      action: r.action,
      repository: r.repository,
      reference: r.reference,
      digest: r.digest,
      clientIp: r.client_ip,
      outcome: r.outcome,
      detail: r.detail,
    }));
  }

  /**
   * A write transaction that takes SQLite's write lock at BEGIN, so its checks and writes see one
   * state even against another process (a `portcullis gc` next to the server).
   */
  private async immediate<T>(fn: (db: Kysely<Tables>) => Promise<T>): Promise<T> {
    return this.db.connection().execute(async (conn) => {
      await sql`begin immediate`.execute(conn);
      try {
        const result = await fn(conn);
        await sql`commit`.execute(conn);
        return result;
      } catch (err) {
        await sql`rollback`.execute(conn).catch(() => undefined);
        throw err;
      }
    });
  }

  async touchDigests(digests: string[]): Promise<void> {
    if (digests.length === 0) return;
    const t = now();
    await this.db.transaction().execute(async (tx) => {
      for (const digest of new Set(digests)) {
        await tx
          .insertInto('gc_activity')
          .values({ digest, touched_at: t })
          .onConflict((oc) => oc.column('digest').doUpdateSet({ touched_at: t }))
          .execute();
      }
    });
  }

  async touchedSince(since: string): Promise<Set<string>> {
    const rows = await this.db.selectFrom('gc_activity').select('digest').where('touched_at', '>=', since).execute();
    return new Set(rows.map((r) => r.digest));
  }

  async pruneTouches(before: string): Promise<number> {
    const r = await this.db.deleteFrom('gc_activity').where('touched_at', '<', before).executeTakeFirst();
    return Number(r.numDeletedRows);
  }

  async pruneAnalyses(before: string): Promise<number> {
    return this.immediate(async (db) => {
      // The grace period covers an image analysed while its push is still being recorded (enforce on push).
      const orphans = (
        await db
          .selectFrom('artifact_facts')
          .select('digest')
          .where('analysed_at', '<', before)
          .where('digest', 'not in', (eb) => eb.selectFrom('manifests').select('digest'))
          .execute()
      ).map((r) => r.digest);
      for (let i = 0; i < orphans.length; i += 500) {
        const chunk = orphans.slice(i, i + 500);
        await db.deleteFrom('artifact_packages').where('digest', 'in', chunk).execute();
        await db.deleteFrom('artifact_match_keys').where('digest', 'in', chunk).execute();
        await db.deleteFrom('artifact_facts').where('digest', 'in', chunk).execute();
      }
      return orphans.length;
    });
  }

  async linkBlobIfLive(repository: string, digest: string, size: number): Promise<boolean> {
    return this.immediate(async (db) => {
      if (await db.selectFrom('gc_deleting').select('digest').where('digest', '=', digest).executeTakeFirst()) return false;
      await db
        .insertInto('repositories')
        .values({ name: repository, created_at: now() })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      await db
        .insertInto('repository_blobs')
        .values({ repository, digest, size, created_at: now() })
        .onConflict((oc) => oc.columns(['repository', 'digest']).doNothing())
        .execute();
      return true;
    });
  }

  async blobBeingDeleted(digest: string): Promise<boolean> {
    return !!(await this.db.selectFrom('gc_deleting').select('digest').where('digest', '=', digest).executeTakeFirst());
  }

  async putManifestChecked(
    record: Omit<ManifestRecord, 'createdAt'>,
    refs: ManifestRef[],
    check: { tag?: string; blobs: string[]; manifests: string[] },
  ): Promise<PutManifestOutcome> {
    return this.immediate(async (db) => {
      const deleting = async (digest: string) =>
        !!(await db.selectFrom('gc_deleting').select('digest').where('digest', '=', digest).executeTakeFirst());
      if (await deleting(record.digest)) return { status: 'deleting' as const };
      const missing: string[] = [];
      for (const digest of check.blobs) {
        const linked = await db
          .selectFrom('repository_blobs')
          .select('digest')
          .where('repository', '=', record.repository)
          .where('digest', '=', digest)
          .executeTakeFirst();
        if (!linked || (await deleting(digest))) missing.push(digest);
      }
      for (const digest of check.manifests) {
        const child = await db
          .selectFrom('manifests')
          .select('digest')
          .where('repository', '=', record.repository)
          .where('digest', '=', digest)
          .executeTakeFirst();
        if (!child) missing.push(digest);
      }
      if (missing.length > 0) return { status: 'missing' as const, missing };
      const existed = await db
        .selectFrom('manifests')
        .select('digest')
        .where('repository', '=', record.repository)
        .where('digest', '=', record.digest)
        .executeTakeFirst();
      const t = now();
      await db
        .insertInto('repositories')
        .values({ name: record.repository, created_at: t })
        .onConflict((oc) => oc.column('name').doNothing())
        .execute();
      if (!existed) {
        await db
          .insertInto('manifests')
          .values({
            repository: record.repository,
            digest: record.digest,
            media_type: record.mediaType,
            artifact_type: record.artifactType,
            subject_digest: record.subjectDigest,
            size: record.size,
            annotations: record.annotations ? JSON.stringify(record.annotations) : null,
            created_at: t,
          })
          .execute();
      }
      for (const ref of refs) {
        await db
          .insertInto('manifest_refs')
          .values({ repository: record.repository, manifest_digest: record.digest, ref_digest: ref.digest, kind: ref.kind })
          .onConflict((oc) => oc.doNothing())
          .execute();
      }
      if (check.tag !== undefined) {
        await db
          .insertInto('tags')
          .values({ repository: record.repository, name: check.tag, digest: record.digest, updated_at: t })
          .onConflict((oc) => oc.columns(['repository', 'name']).doUpdateSet({ digest: record.digest, updated_at: t }))
          .execute();
      }
      return { status: 'ok' as const, inserted: !existed };
    });
  }

  async listManifests(repository: string): Promise<ManifestRecord[]> {
    const rows = await this.db.selectFrom('manifests').selectAll().where('repository', '=', repository).orderBy('digest').execute();
    return rows.map(toManifest);
  }

  async listTagTargets(repository: string): Promise<{ tag: string; digest: string }[]> {
    const rows = await this.db
      .selectFrom('tags')
      .select(['name', 'digest'])
      .where('repository', '=', repository)
      .orderBy('name')
      .execute();
    return rows.map((r) => ({ tag: r.name, digest: r.digest }));
  }

  async listManifestRefs(repository: string): Promise<(ManifestRef & { manifestDigest: string })[]> {
    const rows = await this.db
      .selectFrom('manifest_refs')
      .select(['manifest_digest', 'ref_digest', 'kind'])
      .where('repository', '=', repository)
      .execute();
    return rows.map((r) => ({ manifestDigest: r.manifest_digest, digest: r.ref_digest, kind: r.kind === 'manifest' ? 'manifest' : 'blob' }));
  }

  async listBlobLinks(repository?: string): Promise<BlobLinkRecord[]> {
    let q = this.db.selectFrom('repository_blobs').selectAll().orderBy('repository').orderBy('digest');
    if (repository !== undefined) q = q.where('repository', '=', repository);
    return (await q.execute()).map((r) => ({ repository: r.repository, digest: r.digest, size: Number(r.size), createdAt: r.created_at }));
  }

  async listUploads(): Promise<UploadRecord[]> {
    return (await this.db.selectFrom('uploads').selectAll().orderBy('uuid').execute()).map(toUpload);
  }

  async projectUploadBytes(project: string): Promise<number> {
    const r = await this.db.selectFrom('uploads').select(sql<number | null>`SUM("offset")`.as('total')).where(inProject(project)).executeTakeFirst();
    return Number(r?.total ?? 0);
  }

  async projectUploadCount(project: string): Promise<number> {
    return countUploads(this.db, inProject(project));
  }

  async principalUploadCount(principal: string): Promise<number> {
    return countUploads(this.db, sql<boolean>`${sql.ref('principal')} = ${principal}`);
  }


  async deleteManifestIfUnused(repository: string, digest: string, cutoff: string): Promise<boolean> {
    return this.immediate(async (db) => {
      const m = await db
        .selectFrom('manifests')
        .select(['created_at', 'subject_digest'])
        .where('repository', '=', repository)
        .where('digest', '=', digest)
        .executeTakeFirst();
      if (!m || m.created_at >= cutoff) return false;
      const tagged = await db.selectFrom('tags').select('name').where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst();
      if (tagged) return false;
      const referenced = await db
        .selectFrom('manifest_refs')
        .select('manifest_digest')
        .where('repository', '=', repository)
        .where('ref_digest', '=', digest)
        .where('manifest_digest', '!=', digest)
        .executeTakeFirst();
      if (referenced) return false;
      if (m.subject_digest) {
        // A referrer (signature, SBOM) lives as long as its subject does.
        const subject = await db
          .selectFrom('manifests')
          .select('digest')
          .where('repository', '=', repository)
          .where('digest', '=', m.subject_digest)
          .executeTakeFirst();
        if (subject) return false;
      }
      const touched = await db
        .selectFrom('gc_activity')
        .select('digest')
        .where('digest', '=', digest)
        .where('touched_at', '>=', cutoff)
        .executeTakeFirst();
      if (touched) return false;
      await db.deleteFrom('manifests').where('repository', '=', repository).where('digest', '=', digest).execute();
      await db.deleteFrom('manifest_refs').where('repository', '=', repository).where('manifest_digest', '=', digest).execute();
      await db.deleteFrom('artifact_verdicts').where('repository', '=', repository).where('digest', '=', digest).execute();
      await db.deleteFrom('artifact_verdict_summaries').where('repository', '=', repository).where('digest', '=', digest).execute();
      return true;
    });
  }

  async unlinkBlobIfUnreferenced(repository: string, digest: string, cutoff: string): Promise<boolean> {
    return this.immediate(async (db) => {
      const used =
        (await db.selectFrom('manifest_refs').select('ref_digest').where('repository', '=', repository).where('ref_digest', '=', digest).executeTakeFirst()) ??
        (await db.selectFrom('manifests').select('digest').where('repository', '=', repository).where('digest', '=', digest).executeTakeFirst()) ??
        (await db.selectFrom('gc_activity').select('digest').where('digest', '=', digest).where('touched_at', '>=', cutoff).executeTakeFirst());
      if (used) return false;
      const r = await db
        .deleteFrom('repository_blobs')
        .where('repository', '=', repository)
        .where('digest', '=', digest)
        .where('created_at', '<', cutoff)
        .executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async deleteRepositoryIfEmpty(repository: string, cutoff: string): Promise<boolean> {
    return this.immediate(async (db) => {
      const held =
        (await db.selectFrom('manifests').select('digest').where('repository', '=', repository).executeTakeFirst()) ??
        (await db.selectFrom('tags').select('name').where('repository', '=', repository).executeTakeFirst()) ??
        (await db.selectFrom('repository_blobs').select('digest').where('repository', '=', repository).executeTakeFirst()) ??
        (await db.selectFrom('uploads').select('uuid').where('repository', '=', repository).executeTakeFirst());
      if (held) return false;
      const r = await db.deleteFrom('repositories').where('name', '=', repository).where('created_at', '<', cutoff).executeTakeFirst();
      return Number(r.numDeletedRows) > 0;
    });
  }

  async beginBlobDeletion(digest: string, cutoff: string): Promise<number | null> {
    return this.immediate(async (db) => {
      const ref = await db.selectFrom('manifest_refs').select('ref_digest').where('ref_digest', '=', digest).executeTakeFirst();
      if (ref) return null;
      const manifest = await db.selectFrom('manifests').select('digest').where('digest', '=', digest).executeTakeFirst();
      if (manifest) return null;
      const touched = await db
        .selectFrom('gc_activity')
        .select('digest')
        .where('digest', '=', digest)
        .where('touched_at', '>=', cutoff)
        .executeTakeFirst();
      if (touched) return null;
      const recentLink = await db
        .selectFrom('repository_blobs')
        .select('digest')
        .where('digest', '=', digest)
        .where('created_at', '>=', cutoff)
        .executeTakeFirst();
      if (recentLink) return null;
      await db
        .insertInto('gc_deleting')
        .values({ digest, started_at: now() })
        .onConflict((oc) => oc.column('digest').doNothing())
        .execute();
      const r = await db.deleteFrom('repository_blobs').where('digest', '=', digest).executeTakeFirst();
      return Number(r.numDeletedRows);
    });
  }

  async endBlobDeletion(digest: string): Promise<void> {
    await this.db.deleteFrom('gc_deleting').where('digest', '=', digest).execute();
  }

  async pendingBlobDeletions(): Promise<string[]> {
    return (await this.db.selectFrom('gc_deleting').select('digest').orderBy('digest').execute()).map((r) => r.digest);
  }

  async close(): Promise<void> {
    await this.db.destroy();
  }
}

/**
 * The change stamp: SQLite's `data_version` (it moves when another connection, such as a CLI
 * command or a collection, commits) plus a count of the write statements this connection ran. Both
 * only grow, so the sum changes whenever either does. The count is exact and immediate; the pragma
 * is read at most once per event-loop turn (a statement per request was a tenth of a manifest GET),
 * so another process's commit is seen from the next turn on: within one turn nothing orders it
 * against the requests already being handled anyway. A failed read gives NaN, which equals
 * nothing: caches then neither trust nor store anything.
 */
class ChangeStamp {
  private writes = 0;
  private external: number | undefined;
  private readonly dataVersion: Database.Statement;
  private readonly forget = () => {
    this.external = undefined;
  };

  constructor(sqlite: Database.Database) {
    this.dataVersion = sqlite.prepare('PRAGMA data_version').pluck();
  }

  wrote(): void {
    this.writes++;
  }

  read(): number {
    if (this.external === undefined) {
      try {
        this.external = Number(this.dataVersion.get());
      } catch {
        return Number.NaN;
      }
      setImmediate(this.forget).unref();
    }
    return this.external + this.writes;
  }
}

/**
 * Kysely asks better-sqlite3 to prepare every query anew; preparing was the largest single cost of
 * a manifest GET. Queries come from a fixed set of builders, so caching statements by SQL text is
 * bounded in practice (and capped here anyway). better-sqlite3 runs a statement synchronously to
 * completion, so reusing one is safe.
 */
function withStatementCache(sqlite: Database.Database, onWrite: () => void): Database.Database {
  const cache = new Map<string, Database.Statement>();
  const prepare = sqlite.prepare.bind(sqlite);
  return new Proxy(sqlite, {
    get(target, prop, receiver) {
      if (prop === 'prepare') {
        return (source: string) => {
          let stmt = cache.get(source);
          if (!stmt) {
            stmt = prepare(source);
            if (!stmt.reader) {
              // Counted once it ran (or failed), for the change stamp; BEGIN and COMMIT count too.
              const run = stmt.run.bind(stmt);
              stmt.run = (...params: unknown[]) => {
                try {
                  return run(...params);
                } finally {
                  onWrite();
                }
              };
            }
            if (cache.size >= 500) cache.clear();
            cache.set(source, stmt);
          }
          return stmt;
        };
      }
      const value = Reflect.get(target, prop, receiver) as unknown;
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
}
