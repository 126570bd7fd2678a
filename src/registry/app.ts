import { randomUUID } from 'node:crypto';
import { Readable } from 'node:stream';
import Fastify, { type FastifyBaseLogger, type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OciError, PortcullisError } from '../errors.js';
import { jsonPastBounds, MAX_DOCUMENT_DEPTH } from '../json-structure.js';
import {
  DescriptorSchema,
  IndexSchema,
  ManifestSchema,
  MediaType,
  digestOf,
  isImageConfigMediaType,
  isIndexMediaType,
  isManifestMediaType,
  isSchema1,
  parseDigest,
  parseJson,
  type Descriptor,
} from '../oci/index.js';
import {
  FsBlobStore,
  SqliteRegistryMetadata,
  blobRoot,
  isDatabaseBusy,
  isStorageFull,
  isStorageUnwritable,
  writeBlobBytes,
  type BlobStore,
  type BlobWriter,
  type ManifestRecord,
  type ManifestRef,
  type RegistryMetadata,
  type UploadRecord,
} from '../store/index.js';
import { isAnonymous, type ChallengeScope, type Principal, type RegistryAction, type RegistryAuditEvent, type RegistryAuditHook, type RegistryAuth } from './auth-hook.js';
import { RegistryError, isOciErrorCode } from './errors.js';
import { projectOf } from './access/policy.js';
import { NO_EXTENSIONS, type RegistryExtensions, type ServedNote } from './extensions.js';
import { BudgetAbandonedError, BudgetBusyError, BudgetShares, ByteBudget } from './byte-budget.js';
import { KeyedLock } from './keyed-lock.js';
import { ThrottledTouch } from './throttled-touch.js';
import { RegistryReadCache } from './read-cache.js';
import { immutableRuleFor, immutableTagError, quotaError } from './project-rules.js';
import { TAG_RE, isValidRepositoryName, parseRegistryPath, validateRepositoryName, type RegistryRoute } from './routes.js';
import { pageCursors } from './page-cursor.js';
import { REPOSITORY_SCAN_LIMIT, listProjectRepositories, scanRepositories, type RepositoryScan } from './repository-scan.js';
import { deniedMessage } from './denial.js';
import { bodyUnfinished, closeAfterAnswer } from './refused-body.js';

/** Manifests are JSON documents; anything bigger than this is an attack or a mistake. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
/**
 * Manifest bytes that PUTs may hold at once: eight of the largest allowed (about 3x that in memory
 * with their parses), or thousands of ordinary ones. Past it a PUT waits, holding only its socket.
 */
const MANIFEST_BUDGET_BYTES = 8 * MAX_MANIFEST_BYTES;
/** PUTs that may wait for room; past this they are answered 429. */
const MAX_MANIFESTS_WAITING = 1024;
/** What one account's manifest PUTs may claim at once (two of the largest); past it, 429. */
const MANIFEST_BUDGET_PER_ACCOUNT = MANIFEST_BUDGET_BYTES / 4;
/**
 * What the PUTs into one project's repositories may claim at once, whoever sends them (four of the
 * largest): an owner can make as many robots as it likes, each an account with its own quarter.
 */
const MANIFEST_BUDGET_PER_PROJECT = MANIFEST_BUDGET_BYTES / 2;
/**
 * How long a manifest body may take to arrive once its PUT holds a claim: a client that sends a
 * few bytes a minute would otherwise keep its claim for good (the server has no request timeout,
 * since layer uploads may rightly take hours).
 */
const MANIFEST_BODY_DEADLINE_MS = 30_000;
/** Unfinished upload sessions an account may have; past this, starting another is answered 429. */
const MAX_UPLOADS_PER_ACCOUNT = 1000;
/** Unfinished upload sessions a project's repositories may have, whoever started them. */
const MAX_UPLOADS_PER_PROJECT = 10_000;
/** Upload sessions whose file stays open between requests (see keepWriter). */
const MAX_OPEN_WRITERS = 256;
/**
 * Descriptors per referrers response. More follow through a `Link: <...>; rel="next"` header, as
 * the spec asks when the list cannot be one index: a subject with many referrers (signatures,
 * attestations per build) must not become an unbounded JSON document in memory.
 */
export const REFERRERS_PAGE_SIZE = 256;
const DEFAULT_PAGE = 1000;
const MAX_PAGE = 10_000;
/** An upload writer untouched this long is closed; its session resumes from disk when it returns. */
const IDLE_WRITER_MS = 10 * 60_000;
/** How long a push waits for a garbage collection to finish deleting a digest it needs. */
const GC_WAIT_TRIES = 100;
const GC_WAIT_MS = 50;
const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

export interface RegistryContext {
  metadata: RegistryMetadata;
  blobs: BlobStore;
}

export interface BuildRegistryOptions {
  dataDir: string;
  /** The auth hook, or a factory that needs the metadata (Basic auth reads users from it). */
  auth: RegistryAuth | ((ctx: RegistryContext) => RegistryAuth | Promise<RegistryAuth>);
  /** A pino logger; omitted means no request logging (tests). */
  logger?: FastifyBaseLogger;
  /** Injected stores (tests, other backends); by default opened under `dataDir`. */
  metadata?: RegistryMetadata;
  blobs?: BlobStore;
  /** Told about every manifest push, pull (GET) and delete, and refusals of them. */
  audit?: RegistryAuditHook;
  /**
   * Close a connection that sends nothing for this long (default 2 minutes): a stalled client must
   * not hold a socket and an upload lock forever, while a slow but moving upload is never cut.
   */
  idleTimeoutMs?: number;
  /** How long a manifest body may take once its PUT holds a budget claim (default 30 s; tests shorten it). */
  manifestBodyDeadlineMs?: number;
  /** Scan on push and the pull gate (src/gate); by default none. */
  extensions?: RegistryExtensions;
  /** Serve HTTPS with this PEM certificate and key instead of plain HTTP. */
  tls?: { cert: Buffer; key: Buffer };
  /**
   * Proxies whose X-Forwarded-* headers are believed (addresses or CIDR blocks); none by default,
   * so a client cannot forge the address that the audit log and login rate limit use.
   */
  trustProxy?: string[];
}

declare module 'fastify' {
  interface FastifyInstance {
    registry: RegistryContext;
  }
}

const IndexWithSubjectSchema = IndexSchema.extend({
  artifactType: z.string().optional(),
  subject: DescriptorSchema.optional(),
});

// Clients that do not know the manifest type send these (fetch and curl defaults among them);
// the body's own mediaType decides then.
const GENERIC_CONTENT_TYPES = new Set(['application/json', 'application/octet-stream', 'text/plain', 'application/x-www-form-urlencoded', '']);

function firstHeader(v: string | string[] | undefined): string | undefined {
  return Array.isArray(v) ? v[0] : v;
}

/** The request's Content-Length when it is a plain non-negative integer; undefined otherwise. */
function contentLengthOf(req: FastifyRequest): number | undefined {
  const text = firstHeader(req.headers['content-length']);
  return text !== undefined && /^\d{1,15}$/.test(text) ? Number(text) : undefined;
}

/** The request body as a stream; never buffered, except manifests (capped) by the caller. */
function bodyStream(req: FastifyRequest): Readable {
  return req.body instanceof Readable ? req.body : req.raw;
}

/**
 * The body as one buffer, refused past `max` bytes (413) or when it has not all arrived within
 * `deadlineMs` (408).
 */
function readCapped(stream: Readable, max: number, deadlineMs?: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let settled = false;
    let timer: NodeJS.Timeout | undefined;
    const settle = (err?: Error) => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      stream.off('data', onData);
      if (err) reject(err);
      else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) {
        chunks.push(chunk);
        return;
      }
      // Not destroyed, which would reset the connection before the client read the 413: paused,
      // and the onSend hook closes the connection after the answer (refused-body.ts), reading
      // a bounded amount more of a body that may never end.
      stream.pause();
      settle(new RegistryError('SIZE_INVALID', `manifest is larger than ${max} bytes`, { status: 413, detail: { limit: max } }));
    };
    stream.on('data', onData);
    stream.once('end', () => settle());
    // Kept after settling: an error event nobody listens to would take the process down.
    stream.on('error', (err) => settle(err));
    if (deadlineMs !== undefined) {
      timer = setTimeout(() => {
        // Not destroyed, which would reset the connection before the answer went out: paused, and
        // the onSend hook closes the connection once the 408 has been sent (refused-body.ts).
        stream.pause();
        settle(
          new RegistryError('MANIFEST_INVALID', `the manifest body did not arrive within ${deadlineMs / 1000} s`, {
            status: 408,
            headers: { connection: 'close' },
          }),
        );
      }, deadlineMs);
    }
  });
}

function checkDigest(digest: string): string {
  try {
    parseDigest(digest);
  } catch {
    throw new RegistryError('DIGEST_INVALID', `invalid digest "${digest}": expected sha256:<64 hex> or sha512:<128 hex>`, {
      detail: { digest },
    });
  }
  return digest;
}

function parsePageQuery(query: Record<string, string | undefined>): { n: number; last?: string } {
  let n = DEFAULT_PAGE;
  if (query.n !== undefined) {
    if (!/^\d+$/.test(query.n)) throw new RegistryError('UNSUPPORTED', `n must be a whole number, got "${query.n}"`, { status: 400 });
    n = Math.min(Number(query.n), MAX_PAGE);
  }
  return { n, ...(query.last !== undefined ? { last: query.last } : {}) };
}

function nextLink(path: string, n: number, last: string): string {
  return `<${path}?n=${n}&last=${encodeURIComponent(last)}>; rel="next"`;
}

/** `Content-Range`/`Range` values `start-end` (optionally with a `bytes ` prefix and `/total`). */
function parseChunkRange(header: string | undefined): { start: number; end: number } | undefined {
  if (header === undefined) return undefined;
  const m = /^(?:bytes[ =])?(\d+)-(\d+)(?:\/(?:\d+|\*))?$/.exec(header.trim());
  // 416 as for a chunk out of order; the code must be one of the spec's, which has no range error.
  if (!m) throw new RegistryError('BLOB_UPLOAD_INVALID', `malformed Content-Range "${header}"`, { status: 416 });
  const start = Number(m[1]);
  const end = Number(m[2]);
  if (end < start) throw new RegistryError('BLOB_UPLOAD_INVALID', `Content-Range "${header}" ends before it starts`, { status: 416 });
  return { start, end };
}

/**
 * Whether the client's `If-None-Match` names this content (its ETag is the quoted digest), so a
 * 304 without a body answers: a cache or proxy in front of the registry revalidates a tag that
 * way. Checked after access and the gate, so a 304 says nothing a 200 would not.
 */
function alreadyHeld(req: FastifyRequest, digest: string): boolean {
  const header = firstHeader(req.headers['if-none-match']);
  if (header === undefined) return false;
  return header.split(',').some((tag) => {
    const t = tag.trim();
    return t === '*' || t === `"${digest}"` || t === `W/"${digest}"`;
  });
}

/**
 * HTTP `Range: bytes=...` for blob reads, one range only; undefined when the header is to be
 * ignored and the whole blob served. RFC 9110 (14.2) has a server ignore a range unit it does not
 * know (`items=0-5`), and lets it ignore what it cannot parse or does not support (a list of
 * ranges, `bytes=5-2`); only a well-formed range that starts past the end, or an empty suffix,
 * is 416 with the size.
 */
function parseReadRange(header: string, size: number): { start: number; end: number } | undefined {
  const m = /^bytes=(\d*)-(\d*)$/i.exec(header.trim());
  if (!m || (m[1] === '' && m[2] === '') || (m[1] !== '' && m[2] !== '' && Number(m[2]) < Number(m[1]))) return undefined;
  const unsatisfiable = () =>
    new RegistryError('SIZE_INVALID', `range "${header}" cannot be served from a ${size}-byte blob`, {
      status: 416,
      headers: { 'content-range': `bytes */${size}` },
    });
  let start: number;
  let end: number;
  if (m[1] === '') {
    const suffix = Number(m[2]);
    if (suffix === 0) throw unsatisfiable();
    // Satisfiable, as RFC 9110 has it, yet no 206 can carry no bytes: the whole (empty) blob.
    if (size === 0) return undefined;
    start = Math.max(0, size - suffix);
    end = size - 1;
  } else {
    start = Number(m[1]);
    end = m[2] === '' ? size - 1 : Math.min(Number(m[2]), size - 1);
  }
  if (start >= size) throw unsatisfiable();
  return { start, end };
}

function uploadRange(offset: number): string {
  // The spec writes an empty session as `0-0`; afterwards the last byte received is inclusive.
  return `0-${Math.max(0, offset - 1)}`;
}

/**
 * What a pushed manifest references, each digest once. A manifest may name one small blob tens of
 * thousands of times (27,000 in the review's 4 MiB example); every check and record below costs a
 * query or a file stat per entry, so repeats would multiply the work of a push for nothing.
 */
interface ParsedManifest {
  mediaType: string;
  refs: ManifestRef[];
  /** Blobs the manifest needs in this repository (config, layers). */
  blobs: Descriptor[];
  /** Child manifests an index needs in this repository. */
  children: Descriptor[];
  subject?: Descriptor;
  artifactType: string | null;
  annotations: Record<string, string> | null;
}

/** The descriptors with the first of each digest kept, in order. */
function distinctDigests(descriptors: Descriptor[]): Descriptor[] {
  const seen = new Set<string>();
  return descriptors.filter((d) => !seen.has(d.digest) && seen.add(d.digest) !== undefined);
}

/** Validates a pushed manifest and works out what it references. */
function parseManifest(bytes: Buffer, contentType: string | undefined, subject: string): ParsedManifest {
  let raw: unknown;
  const text = bytes.toString('utf8');
  // Checked before JSON.parse, which would spend some 230 MB on 4 MiB of nested brackets.
  if (jsonPastBounds(text, { maxDepth: MAX_DOCUMENT_DEPTH })) {
    throw new RegistryError('MANIFEST_INVALID', `${subject}: JSON nested deeper than ${MAX_DOCUMENT_DEPTH} levels; no manifest is`);
  }
  try {
    raw = JSON.parse(text);
  } catch (err) {
    throw new RegistryError('MANIFEST_INVALID', `${subject}: not valid JSON (${(err as Error).message})`);
  }
  if (typeof raw !== 'object' || raw === null || Array.isArray(raw)) {
    throw new RegistryError('MANIFEST_INVALID', `${subject}: a manifest must be a JSON object`);
  }
  const doc = raw as Record<string, unknown>;
  const header = contentType?.split(';')[0]?.trim().toLowerCase() ?? '';
  const bodyType = typeof doc.mediaType === 'string' ? doc.mediaType : undefined;
  if (isSchema1(header) || isSchema1(bodyType) || doc.schemaVersion === 1) {
    throw new RegistryError(
      'MANIFEST_INVALID',
      'Docker schema 1 manifests are not accepted: the format is deprecated and its signatures are not verifiable. ' +
        'Convert the image first, e.g. `skopeo copy --format v2s2` or `--format oci`.',
    );
  }
  const declared = GENERIC_CONTENT_TYPES.has(header) ? undefined : header;
  if (declared && bodyType && declared !== bodyType) {
    throw new RegistryError('MANIFEST_INVALID', `${subject}: Content-Type ${declared} does not match the manifest's mediaType ${bodyType}`);
  }
  const mediaType = declared ?? bodyType;
  // Only the four manifest types a runtime or a registry client acts on. Anything else stored
  // would be served under its own Content-Type (text/html included) and passed by the gate,
  // which judges images only.
  if (mediaType !== undefined && !isManifestMediaType(mediaType) && !isIndexMediaType(mediaType)) {
    throw new RegistryError(
      'MANIFEST_INVALID',
      `${subject}: media type ${mediaType} is not a manifest type this registry accepts ` +
        `(${[MediaType.ociManifest, MediaType.ociIndex, MediaType.dockerManifest, MediaType.dockerManifestList].join(', ')})`,
    );
  }
  const looksLikeIndex = isIndexMediaType(mediaType) || (!isManifestMediaType(mediaType) && Array.isArray(doc.manifests));
  try {
    if (looksLikeIndex) {
      const index = parseJson(IndexWithSubjectSchema, bytes, subject);
      const children = distinctDigests(index.manifests);
      return {
        mediaType: mediaType ?? MediaType.ociIndex,
        refs: children.map((d) => ({ digest: d.digest, kind: 'manifest' as const })),
        blobs: [],
        children,
        ...(index.subject ? { subject: index.subject } : {}),
        artifactType: index.artifactType ?? null,
        annotations: index.annotations ?? null,
      };
    }
    const manifest = parseJson(ManifestSchema, bytes, subject);
    // An image is what its config says it is. One that also claims an artifactType would be
    // listed as an artifact, which the gate does not judge, and still run as an image: refused.
    if (manifest.artifactType !== undefined && isImageConfigMediaType(manifest.config.mediaType)) {
      throw new RegistryError(
        'MANIFEST_INVALID',
        `${subject}: an image manifest (config ${manifest.config.mediaType}) must not declare artifactType ${manifest.artifactType}; ` +
          'artifacts use their own config media type or the empty config (application/vnd.oci.empty.v1+json)',
      );
    }
    const blobs = distinctDigests([manifest.config, ...manifest.layers]);
    return {
      mediaType: mediaType ?? MediaType.ociManifest,
      refs: blobs.map((d) => ({ digest: d.digest, kind: 'blob' as const })),
      // Foreign (non-distributable) layers live at their URLs, not in any registry.
      blobs: blobs.filter((d) => !(d.urls?.length && /nondistributable|foreign/.test(d.mediaType))),
      children: [],
      ...(manifest.subject ? { subject: manifest.subject } : {}),
      // The referrers API reports a manifest's artifactType, else its config media type.
      artifactType: manifest.artifactType ?? manifest.config.mediaType,
      annotations: manifest.annotations ?? null,
    };
  } catch (err) {
    if (err instanceof OciError) throw new RegistryError('MANIFEST_INVALID', err.message);
    throw err;
  }
}

/** Maps any thrown value to the OCI error body and status. */
function toRegistryError(err: unknown): RegistryError {
  if (err instanceof RegistryError) return err;
  if (err instanceof PortcullisError) {
    if (err.code === 'SIZE_MISMATCH') return new RegistryError('SIZE_INVALID', err.message);
    if (err.code === 'DIGEST_MISMATCH') return new RegistryError('DIGEST_INVALID', err.message);
    if (isOciErrorCode(err.code)) return new RegistryError(err.code, err.message);
  }
  const e = err as { statusCode?: number; message?: string; code?: string };
  if (isStorageFull(e)) {
    // Said plainly: "internal error" sent pushers to a server log that only the operator can read.
    return new RegistryError('UNSUPPORTED', "the registry's storage is full; this request was not stored (an operator must free space, e.g. with `portcullis gc`, or grow the volume)", {
      status: 507,
    });
  }
  if (isStorageUnwritable(e)) {
    // The operator's problem, said to the pusher in words; pulls go on working meanwhile.
    return new RegistryError('UNSUPPORTED', `the registry's storage cannot be written (read-only or failing: ${e.code}); this request was not stored, pulls still work (an operator must check the data folder's volume)`, {
      status: 503,
    });
  }
  if (isDatabaseBusy(e)) {
    // "internal error" sent pushers to a log they cannot read, for something a retry fixes.
    return new RegistryError(
      'UNSUPPORTED',
      "the registry's metadata database is busy: another process (such as `portcullis gc`) held its write lock for longer than 5 s; try again",
      { status: 503, headers: { 'retry-after': '5' } },
    );
  }
  if (typeof e?.statusCode === 'number' && e.statusCode < 500) {
    return new RegistryError('UNSUPPORTED', e.message ?? 'request refused', { status: e.statusCode });
  }
  return new RegistryError('UNSUPPORTED', 'internal error; see the server log', { status: 500 });
}

/**
 * Builds the OCI Distribution v1.1 registry: one catch-all route under /v2/ (repository names
 * have slashes, so the path is parsed here, not by the router), bodies streamed to the blob store.
 */
/**
 * Manifest bytes by digest. Content under a digest never changes, and a manifest GET that opened
 * and streamed a file cost more than everything else in the request; the metadata lookup before
 * it still decides whether the manifest exists, so a deleted one is never served from here.
 */
class ManifestCache {
  private readonly entries = new Map<string, Buffer>();
  private bytes = 0;
  constructor(
    private readonly blobs: BlobStore,
    private readonly maxBytes = 64 * 1024 * 1024,
  ) {}

  async get(digest: string, size: number): Promise<Buffer> {
    const hit = this.entries.get(digest);
    if (hit) return hit;
    const chunks: Buffer[] = [];
    for await (const c of await this.blobs.open(digest)) chunks.push(c as Buffer);
    const data = Buffer.concat(chunks);
    if (data.length !== size) return data; // never cache what does not match the record
    while (this.bytes + data.length > this.maxBytes && this.entries.size > 0) {
      const [oldest, buf] = this.entries.entries().next().value as [string, Buffer];
      this.entries.delete(oldest);
      this.bytes -= buf.length;
    }
    if (data.length <= this.maxBytes) {
      this.entries.set(digest, data);
      this.bytes += data.length;
    }
    return data;
  }
}

export async function buildRegistry(options: BuildRegistryOptions): Promise<FastifyInstance> {
  const ownsMetadata = options.metadata === undefined;
  const metadata = options.metadata ?? (await SqliteRegistryMetadata.open(options.dataDir));
  const blobs = options.blobs ?? new FsBlobStore(blobRoot(options.dataDir));
  const ctx: RegistryContext = { metadata, blobs };
  const auth = typeof options.auth === 'function' ? await options.auth(ctx) : options.auth;

  const app = Fastify({
    ...(options.logger ? { loggerInstance: options.logger } : { logger: false }),
    // Digests and long repository names make long paths; the router must not cut them off.
    routerOptions: { maxParamLength: 4096 },
    // Uploads can take long on slow links; Node's request timeout would cut large layers.
    requestTimeout: 0,
    connectionTimeout: options.idleTimeoutMs ?? 120_000,
    ...(options.trustProxy?.length ? { trustProxy: options.trustProxy } : {}),
    // The instance is typed for HTTP; with `https` Fastify builds a TLS server with the same API.
    ...((options.tls ? { https: { cert: options.tls.cert, key: options.tls.key } } : {}) as object),
  });
  app.decorate('registry', ctx);

  const manifestBytes = new ManifestCache(blobs);
  // Pull-path lookups answered from memory while the metadata's change stamp stays put.
  const readCache = metadata.changeStamp ? new RegistryReadCache(() => metadata.changeStamp!()) : undefined;
  /** The manifest a tag or digest names in `name`, or null. */
  async function lookupManifest(name: string, reference: string, byDigest: boolean): Promise<ManifestRecord | null> {
    const begun = readCache?.begin() ?? 0;
    let digest: string | null | undefined = byDigest ? reference : readCache?.tag(name, reference);
    if (digest === undefined) {
      digest = await metadata.getTag(name, reference);
      if (digest !== null) readCache?.setTag(begun, name, reference, digest);
    }
    if (digest === null) return null;
    const hit = readCache?.manifest(name, digest);
    if (hit) return hit;
    const record = await metadata.getManifest(name, digest);
    if (record) readCache?.setManifest(begun, record);
    return record;
  }
  /** A blob linked to `name` and present in the store, or null. */
  async function lookupBlob(name: string, digest: string): Promise<{ digest: string; size: number } | null> {
    const begun = readCache?.begin() ?? 0;
    const size = readCache?.blobSize(name, digest);
    if (size !== undefined) return { digest, size };
    const info = (await metadata.blobLinked(name, digest)) ? await blobs.stat(digest) : null;
    if (info) readCache?.setBlobSize(begun, name, digest, info.size);
    return info;
  }
  const extensions = options.extensions ?? NO_EXTENSIONS;
  const manifestBodyDeadlineMs = options.manifestBodyDeadlineMs ?? MANIFEST_BODY_DEADLINE_MS;
  const repoLocks = new KeyedLock();
  const manifestBudget = new ByteBudget(MANIFEST_BUDGET_BYTES, MAX_MANIFESTS_WAITING);
  /** Manifest bytes each account, and each project, has claimed (running or waiting). */
  const accountShares = new BudgetShares(MANIFEST_BUDGET_PER_ACCOUNT);
  const projectShares = new BudgetShares(MANIFEST_BUDGET_PER_PROJECT);
  /**
   * Runs a manifest PUT once its claim fits the budget. Before, 400 parallel PUTs of one 4 MiB
   * manifest held every body and parse at once while they queued for the repository's lock: the
   * review's server grew to 5.2 GB, and kept working through pushes whose clients had gone. One
   * account may claim at most a quarter of the budget, so a pusher that declares large bodies
   * and sends them slowly holds back its own pushes, not everyone's (helper-29's review: eight
   * such connections stalled every manifest PUT on the server); one project at most half, since
   * robots are accounts of their own and eight robots of one project did the same.
   */
  async function withinManifestBudget<T>(req: FastifyRequest, principal: Principal, repository: string, claim: number, task: () => Promise<T>): Promise<T> {
    const account = principal.name;
    const project = projectOf(repository);
    const busy = (who: string, held: number) =>
      new RegistryError('TOOMANYREQUESTS', `${who} already has ${held} bytes of manifests being pushed; retry in 1 second`, {
        headers: { 'retry-after': '1' },
      });
    if (!accountShares.take(account, claim)) throw busy(account, accountShares.held(account));
    if (!projectShares.take(project, claim)) {
      accountShares.give(account, claim);
      throw busy(`project ${project}`, projectShares.held(project));
    }
    try {
      return await manifestBudget.run(claim, task, () => req.raw.socket?.destroyed !== true);
    } catch (err) {
      if (err instanceof BudgetBusyError) {
        throw new RegistryError('TOOMANYREQUESTS', err.message, { headers: { 'retry-after': '1' } });
      }
      // Nobody reads this answer; a 4xx keeps the error log for the server's own failures.
      if (err instanceof BudgetAbandonedError) throw new RegistryError('TOOMANYREQUESTS', err.message);
      throw err;
    } finally {
      accountShares.give(account, claim);
      projectShares.give(project, claim);
    }
  }

  // Quota checks and the links they allow run one at a time per project (only for projects with a
  // quota), so two concurrent pushes cannot both fit into the same remaining space.
  const quotaLocks = new KeyedLock();
  const uploadLocks = new KeyedLock();
  // Open upload writers keep their running hash; after a restart (or once idle and closed) a
  // session is resumed from disk, so abandoned uploads do not pin file handles forever.
  const openWriters = new Map<string, BlobWriter>();
  const lastUsed = new Map<string, number>();
  /** Takes a session's open writer, if any, out of both maps; the caller closes or cancels it. */
  const forgetWriter = (uuid: string): BlobWriter | undefined => {
    const w = openWriters.get(uuid);
    openWriters.delete(uuid);
    lastUsed.delete(uuid);
    withHandles.delete(uuid);
    return w;
  };
  /**
   * Writers that may hold a file handle, least recently used first. Past MAX_OPEN_WRITERS the
   * oldest idle ones are suspended: synced and their handle closed, their running hash kept, so
   * their next request reopens the file and goes on. Before, one pusher opening sessions with a
   * byte each held a file handle per session for ten minutes, and at 20,000 the server answered
   * EMFILE to everyone; closing them outright instead made every later chunk of a busy upload
   * read its whole file again to rebuild the hash (helper-29's review).
   */
  const withHandles = new Map<string, BlobWriter>();
  const keepWriter = (uuid: string, writer: BlobWriter): void => {
    openWriters.set(uuid, writer);
    lastUsed.set(uuid, Date.now());
    withHandles.delete(uuid);
    withHandles.set(uuid, writer);
    if (withHandles.size <= MAX_OPEN_WRITERS) return;
    for (const [oldest, w] of withHandles) {
      if (withHandles.size <= MAX_OPEN_WRITERS) break;
      // A session a request holds right now keeps its handle.
      if (oldest === uuid || !uploadLocks.idle(oldest)) continue;
      withHandles.delete(oldest);
      // Under the session's lock: a request arriving meanwhile waits for the handle to be closed.
      void uploadLocks.run(oldest, () => w.suspend()).catch(() => undefined);
    }
  };
  // A data folder removed under the server is said in the log (once), and /readyz answers 503, so
  // that an orchestrator restarts it: until then everything written goes to deleted files.
  let lostReported = false;
  const reportLost = (why: string) => {
    if (lostReported) return;
    lostReported = true;
    app.log.error(`${why}; what is written now is lost when the server stops: restart it`);
  };
  const diskCheck = setInterval(() => {
    const lost = metadata.lostFromDisk?.();
    if (lost) reportLost(lost);
  }, 10_000);
  diskCheck.unref();
  const sweep = setInterval(() => {
    const cutoff = Date.now() - IDLE_WRITER_MS;
    const stale = [...lastUsed].filter(([, at]) => at < cutoff).map(([uuid]) => uuid);
    for (const uuid of stale) {
      // A session a request holds right now is left for the next sweep.
      if (!uploadLocks.idle(uuid)) continue;
      void forgetWriter(uuid)?.close();
    }
  }, IDLE_WRITER_MS / 2);
  sweep.unref();

  app.removeAllContentTypeParsers();
  // Every body reaches the handler as the raw stream: layers go to disk, never into memory.
  app.addContentTypeParser('*', (_req, payload, done) => done(null, payload));

  app.setErrorHandler((err, req, reply) => {
    const e = toRegistryError(err);
    if (e.status >= 500) {
      // A connection already gone (the client left mid-upload, or shutdown cut it after the drain
      // period) is not a server fault: one line without a stack, not an error to page anyone for.
      if (req.raw.socket?.destroyed) req.log.info({ reason: (err as { code?: string }).code ?? (err as Error).message }, 'request ended: its connection closed first');
      // Not this server's fault either: one line naming the cause, without a stack.
      else if (isDatabaseBusy(err)) req.log.warn("request refused with 503: another process held the metadata database's write lock for longer than 5 s");
      else req.log.error({ err }, 'registry request failed');
    }
    void reply
      .code(e.status)
      .headers(e.headers)
      .header('content-type', 'application/json')
      .send({ errors: [{ code: e.code, message: e.message, detail: e.detail ?? null }] });
  });

  // A request that arrives on a connection already closing after such an answer (pipelined behind
  // the refused body, and parsed while the rest of that body is read) can get no answer: it is not
  // run at all, where a DELETE or PUT would otherwise take effect unseen by its client, who was told
  // the connection closes and retries it elsewhere. One property read per request.
  app.addHook('onRequest', (req, reply, done) => {
    if (req.raw.socket?.writableEnded) {
      void reply.hijack();
      req.raw.socket.destroy();
    }
    done();
  });

  // Any answer sent while its request's body is still arriving (a refusal, the 404 of an unknown
  // route, a route that reads no body): Node's own way is to read the rest of the body however long
  // it goes on, which let one client hold a socket for ever. Instead the connection is closed after
  // a bounded read (refused-body.ts). Registered on the root, so the API's routes have it too; for a
  // request whose body has arrived (every GET) it costs one property read.
  //
  // An answer decided without any I/O (the 401 challenge to a request without a token, a chunk's
  // bad Content-Range) is ready before Node has parsed a body that came in the same packet as the
  // headers. Such a body is not still arriving: one turn of the event loop lets Node parse it, and
  // only a body still unfinished after that closes the connection. Without the turn, every 401 to
  // a PUT, PATCH or POST with a body closed its connection: 39 of them in one conformance run.
  app.addHook('onSend', (req, reply, payload, done) => {
    if (!bodyUnfinished(req.raw)) {
      done(null, payload);
      return;
    }
    setImmediate(() => {
      if (bodyUnfinished(req.raw)) {
        reply.header('connection', 'close');
        closeAfterAnswer(req.raw);
      }
      done(null, payload);
    });
  });

  app.addHook('onClose', async () => {
    clearInterval(sweep);
    clearInterval(diskCheck);
    for (const w of openWriters.values()) await w.close();
    openWriters.clear();
    if (ownsMetadata) await metadata.close();
  });

  const audit = options.audit;
  function auditManifest(
    req: FastifyRequest,
    principal: Principal | null,
    action: RegistryAuditEvent['action'],
    repository: string,
    reference: string,
    digest: string | null,
    outcome: RegistryAuditEvent['outcome'],
    detail?: string,
  ) {
    audit?.({ action, principal: principal?.name ?? 'anonymous', repository, reference, digest, clientIp: req.ip ?? null, outcome, ...(detail !== undefined ? { detail } : {}) });
  }

  /**
   * `audited`: a manifest operation whose refusal goes to the audit log (401 challenges do not: they are the normal start of the token flow).
   * `also`: further repositories the request reads, named in the challenge so that one token covers them.
   */
  async function guard(
    req: FastifyRequest,
    repo: string,
    actions: RegistryAction[],
    audited?: { action: RegistryAuditEvent['action']; reference: string },
    also?: ChallengeScope[],
  ): Promise<Principal> {
    const principal = await auth.authenticate(req);
    // `/v2/` and the catalog only need a known caller; the catalog then filters per repository.
    if (principal && !isAnonymous(principal) && repo === '') return principal;
    if (principal && repo !== '' && auth.authorize(principal, repo, actions)) return principal;
    if (isAnonymous(principal)) {
      throw new RegistryError('UNAUTHORIZED', 'authentication required', {
        headers: { 'www-authenticate': auth.challenge(repo === '' ? undefined : repo, actions, also ? { also } : undefined) },
        detail: repo === '' ? null : [{ type: 'repository', name: repo, action: actions.join(',') }],
      });
    }
    // A token scoped for less than its account may do (a client reusing its pull token for a
    // push, say): challenge for the wider scope rather than refuse for good.
    if (principal && repo !== '' && auth.mayWiden?.(principal, repo, actions)) {
      throw new RegistryError('UNAUTHORIZED', `the token does not grant ${actions.join(',')} on ${repo}; request a token with the challenged scope`, {
        headers: { 'www-authenticate': auth.challenge(repo, actions, { error: 'insufficient_scope', ...(also ? { also } : {}) }) },
        detail: [{ type: 'repository', name: repo, action: actions.join(',') }],
      });
    }
    if (audited) auditManifest(req, principal, audited.action, repo, audited.reference, null, 'denied');
    // Each action asked alone through the pure check: authorize may act on an answer (create a
    // project for a push), and the text of a refusal must change nothing.
    throw new RegistryError('DENIED', deniedMessage(principal!, repo, actions, (a) => auth.permits?.(principal!, repo, [a]) ?? false), {
      detail: [{ type: 'repository', name: repo, action: actions.join(',') }],
    });
  }

  async function uploadWriter(upload: UploadRecord): Promise<BlobWriter> {
    const cached = openWriters.get(upload.uuid);
    if (cached && cached.size === upload.offset) {
      keepWriter(upload.uuid, cached);
      return cached;
    }
    if (cached) {
      await cached.close();
      forgetWriter(upload.uuid);
    }
    const resumed = await blobs.resume(upload.uuid, upload.offset);
    if (!resumed) {
      await metadata.deleteUpload(upload.uuid);
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `upload ${upload.uuid} lost its data; start a new upload`);
    }
    keepWriter(upload.uuid, resumed);
    return resumed;
  }

  async function findUpload(name: string, uuid: string): Promise<UploadRecord> {
    const upload = /^[A-Za-z0-9_-]{1,128}$/.test(uuid) ? await metadata.getUpload(uuid) : null;
    if (!upload || upload.repository !== name) {
      throw new RegistryError('BLOB_UPLOAD_UNKNOWN', `no upload ${uuid} in ${name}`, { detail: { uuid } });
    }
    return upload;
  }

  function uploadHeaders(reply: FastifyReply, name: string, uuid: string, offset: number): FastifyReply {
    return reply
      .header('location', `/v2/${name}/blobs/uploads/${uuid}`)
      .header('range', uploadRange(offset))
      .header('docker-upload-uuid', uuid);
  }

  /** Appends a request body to an upload, enforcing `Content-Range` order (416 otherwise). */
  async function appendChunk(req: FastifyRequest, name: string, upload: UploadRecord, writer: BlobWriter) {
    const range = parseChunkRange(firstHeader(req.headers['content-range']));
    if (range && range.start !== upload.offset) {
      throw new RegistryError('BLOB_UPLOAD_INVALID', `chunk starts at ${range.start} but ${upload.offset} bytes were received so far`, {
        status: 416,
        headers: {
          location: `/v2/${name}/blobs/uploads/${upload.uuid}`,
          range: uploadRange(upload.offset),
          'docker-upload-uuid': upload.uuid,
        },
      });
    }
    const declared = range ? range.end - range.start + 1 : undefined;
    const contentLength = firstHeader(req.headers['content-length']);
    if (declared !== undefined && contentLength !== undefined && Number(contentLength) !== declared) {
      throw new RegistryError('SIZE_INVALID', `Content-Length ${contentLength} does not match Content-Range ${range!.start}-${range!.end}`);
    }
    const allowance = await uploadAllowance(name, declared ?? contentLengthOf(req));
    try {
      let appended: number;
      try {
        appended = await writer.append(bodyStream(req), {
          ...(declared !== undefined ? { maxBytes: declared } : {}),
          ...(allowance ? { onChunk: allowance.onChunk } : {}),
        });
      } catch (err) {
        // The writer is now unusable; the next request resumes from the recorded offset.
        forgetWriter(upload.uuid);
        if (range && err instanceof PortcullisError && err.code === 'SIZE_INVALID') {
          throw new RegistryError('SIZE_INVALID', `chunk is longer than its Content-Range ${range.start}-${range.end} (${declared} bytes)`);
        }
        throw err;
      }
      if (declared !== undefined && appended !== declared) {
        forgetWriter(upload.uuid);
        await writer.close();
        throw new RegistryError('SIZE_INVALID', `chunk has ${appended} bytes, Content-Range announced ${declared}`);
      }
      try {
        await metadata.setUploadOffset(upload.uuid, writer.size);
      } catch (err) {
        // The chunk is in the file but not on record. Cut it away now, not at the session's next
        // request: when the record failed on a full disk (SQLITE_FULL) those bytes are what fills
        // it, and every write of the registry fails until they go. The session goes on from its
        // recorded offset.
        forgetWriter(upload.uuid);
        await writer.cutBack(upload.offset).catch(() => undefined);
        throw err;
      }
    } finally {
      // After the offset is recorded: for a moment the bytes count twice, never zero times.
      allowance?.release();
    }
  }

  /** Waits (briefly) while GC deletes an older copy of `digest`, so a new commit writes fresh bytes. */
  async function waitForGcDeletion(digest: string): Promise<void> {
    for (let i = 0; i < GC_WAIT_TRIES && (await metadata.blobBeingDeleted(digest)); i++) await delay(GC_WAIT_MS);
  }

  /**
   * Links a stored blob unless GC is deleting it, then checks the bytes are still there: a commit
   * that found the file present may have raced a deletion. False when the blob is gone.
   */
  async function linkIfLive(name: string, digest: string, size: number): Promise<boolean> {
    if (!(await metadata.linkBlobIfLive(name, digest, size))) return false;
    if (await blobs.stat(digest)) return true;
    await metadata.unlinkBlob(name, digest);
    return false;
  }

  /**
   * Records a pushed manifest (and its tag) in one transaction that re-checks its blobs against
   * a concurrent GC, then makes sure its bytes and blobs are still stored: once recorded, GC keeps
   * them, so a check after the record is final.
   */
  async function recordManifest(name: string, record: Omit<ManifestRecord, 'createdAt'>, parsed: ParsedManifest, bytes: Buffer, tag: string | undefined) {
    const check = { blobs: parsed.blobs.map((d) => d.digest), manifests: parsed.children.map((d) => d.digest), ...(tag !== undefined ? { tag } : {}) };
    let inserted: boolean;
    for (let attempt = 0; ; attempt++) {
      const outcome = await metadata.putManifestChecked(record, parsed.refs, check);
      if (outcome.status === 'ok') {
        inserted = outcome.inserted;
        break;
      }
      if (outcome.status === 'missing') {
        throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${outcome.missing.length} blob(s) or manifest(s) not pushed to ${name}: ${outcome.missing.join(', ')}`, {
          detail: { missing: outcome.missing },
        });
      }
      // GC is deleting an older, unreferenced copy of these very bytes: let it finish, write again.
      if (attempt >= GC_WAIT_TRIES) throw new RegistryError('TOOMANYREQUESTS', 'garbage collection is busy with this manifest; retry', { status: 503 });
      await waitForGcDeletion(record.digest);
      await writeBlobBytes(blobs, bytes, record.digest);
    }
    const gone: string[] = [];
    for (const d of parsed.blobs) if (!(await blobs.stat(d.digest))) gone.push(d.digest);
    if (gone.length > 0) {
      // Only reachable when GC swept the blobs between the pre-check and the record (grace 0).
      if (inserted) await metadata.deleteManifest(name, record.digest);
      throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `blob(s) ${gone.join(', ')} were garbage-collected during the push; push them again`, {
        detail: { missing: gone },
      });
    }
    if (!(await blobs.stat(record.digest))) await writeBlobBytes(blobs, bytes, record.digest);
  }

  /**
   * Runs `store` when the bytes it adds fit the project's quota; `counted` says whether the
   * project already holds the digest (then it adds nothing). Projects without a quota skip all this.
   */
  async function withinQuota<T>(name: string, size: number, counted: (project: string) => Promise<boolean>, store: () => Promise<T>): Promise<T> {
    const project = await metadata.getProject(projectOf(name));
    if (!project || project.quotaBytes === null) return store();
    const quota = project.quotaBytes;
    return quotaLocks.run(project.name, async () => {
      if (!(await counted(project.name))) {
        const used = await metadata.projectUsage(project.name);
        if (used + size > quota) throw quotaError(project.name, used, quota, size);
      }
      return store();
    });
  }

  /** Upload bytes received by requests still streaming, per project with a quota. */
  const uploadingBytes = new Map<string, number>();

  /**
   * What an upload request may add under its project's quota, counted as the bytes arrive: the
   * project's stored bytes, the bytes its unfinished uploads hold, and those other requests are
   * receiving right now. Without this the quota was checked only when an upload was committed,
   * so a client could park any amount of data in sessions it never finished. Undefined for
   * projects without a quota.
   */
  async function uploadAllowance(name: string, declaredBytes?: number): Promise<{ onChunk: (bytes: number) => void; release: () => void } | undefined> {
    const project = await metadata.getProject(projectOf(name));
    if (!project || project.quotaBytes === null) return undefined;
    const { name: key, quotaBytes: quota } = project;
    const stored = await metadata.projectUsage(key);
    const parked = await metadata.projectUploadBytes(key);
    // A body that says its length and cannot fit is refused before any of it is read.
    const streamingNow = uploadingBytes.get(key) ?? 0;
    if (declaredBytes !== undefined && stored + parked + streamingNow + declaredBytes > quota) {
      throw quotaError(key, stored + parked + streamingNow, quota, declaredBytes);
    }
    let mine = 0;
    return {
      onChunk: (bytes) => {
        const streaming = uploadingBytes.get(key) ?? 0;
        if (stored + parked + streaming + bytes > quota) throw quotaError(key, stored + parked + streaming, quota, bytes);
        uploadingBytes.set(key, streaming + bytes);
        mine += bytes;
      },
      release: () => {
        const left = (uploadingBytes.get(key) ?? 0) - mine;
        mine = 0;
        if (left > 0) uploadingBytes.set(key, left);
        else uploadingBytes.delete(key);
      },
    };
  }

  const blobInProject = (digest: string) => async (project: string) =>
    (await metadata.repositoriesWithBlob(digest)).some((repo) => projectOf(repo) === project);

  async function finishBlob(reply: FastifyReply, name: string, writer: BlobWriter, digest: string) {
    try {
      await withinQuota(name, writer.size, blobInProject(digest), async () => {
        // GC safety: mark the digest in use before it appears in the store, and never link bytes
        // that a collection is deleting.
        await metadata.touchDigests([digest]);
        await waitForGcDeletion(digest);
        const info = await writer.commit(digest);
        if (!(await linkIfLive(name, info.digest, info.size))) {
          throw new RegistryError('BLOB_UPLOAD_INVALID', `blob ${digest} was garbage-collected while this upload finished; upload it again`);
        }
      });
    } catch (err) {
      // Refused or failed: the received bytes go and the file handle closes. After a commit there
      // is nothing left to remove, and the cancel finds nothing to do.
      await writer.cancel().catch(() => undefined);
      throw err;
    }
    return reply
      .code(201)
      .header('location', `/v2/${name}/blobs/${digest}`)
      .header('docker-content-digest', digest)
      .header('content-length', 0)
      .send();
  }

  async function handleManifest(req: FastifyRequest, reply: FastifyReply, route: Extract<RegistryRoute, { kind: 'manifest' }>) {
    const { name, reference } = route;
    const byDigest = reference.includes(':');
    if (byDigest) checkDigest(reference);
    else if (req.method === 'PUT' && !TAG_RE.test(reference)) {
      throw new RegistryError('MANIFEST_INVALID', `invalid tag "${reference}"`, { status: 400 });
    }
    // A GET, HEAD or DELETE with a string that cannot be a tag names no manifest: the lookup below
    // answers 404 MANIFEST_UNKNOWN (after the access check), as the spec asks for a missing manifest.
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        const principal = await guard(req, name, ['pull'], { action: 'pull', reference });
        const record = await lookupManifest(name, reference, byDigest);
        if (!record) {
          if (!(await metadata.repositoryExists(name))) throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known`);
          throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in ${name}`, { detail: { reference } });
        }
        let note: ServedNote | void = undefined;
        if (req.method === 'GET') {
          // The gate decides before any header is set, so a refusal is a clean error response.
          try {
            note = await extensions.beforeManifestServed({
              repository: name,
              reference,
              digest: record.digest,
              mediaType: record.mediaType,
              artifactType: record.artifactType,
              principal,
              clientIp: req.ip ?? null,
            });
          } catch (err) {
            auditManifest(req, principal, 'pull', name, reference, record.digest, 'denied');
            throw err;
          }
        }
        reply
          .header('content-type', record.mediaType)
          .header('docker-content-digest', record.digest)
          .header('etag', `"${record.digest}"`);
        if (alreadyHeld(req, record.digest)) {
          if (req.method === 'GET') auditManifest(req, principal, 'pull', name, reference, record.digest, note ? note.auditOutcome : 'success', note?.detail);
          return reply.code(304).send();
        }
        reply.header('content-length', record.size);
        if (req.method === 'HEAD') return reply.send();
        // GET only: clients HEAD first to resolve a tag, so counting both would double every pull.
        auditManifest(req, principal, 'pull', name, reference, record.digest, note ? note.auditOutcome : 'success', note?.detail);
        return reply.send(await manifestBytes.get(record.digest, record.size));
      }
      case 'PUT': {
        const principal = await guard(req, name, ['pull', 'push'], { action: 'push', reference });
        const declaredLength = Number(firstHeader(req.headers['content-length']) ?? '0');
        if (declaredLength > MAX_MANIFEST_BYTES) {
          throw new RegistryError('SIZE_INVALID', `manifest is larger than ${MAX_MANIFEST_BYTES} bytes`, {
            status: 413,
            detail: { limit: MAX_MANIFEST_BYTES },
          });
        }
        // The body, its parse and the checks below hold about three times the manifest's size
        // until the push ends (also while it waits for the repository's lock): claimed first.
        return withinManifestBudget(req, principal, name, declaredLength > 0 ? declaredLength : MAX_MANIFEST_BYTES, async () => {
          const bytes = await readCapped(bodyStream(req), MAX_MANIFEST_BYTES, manifestBodyDeadlineMs);
          const parsed = parseManifest(bytes, firstHeader(req.headers['content-type']), `manifest ${name}:${reference}`);
          const digest = byDigest ? reference : digestOf(bytes, 'sha256');
          if (byDigest) {
            const { algorithm } = parseDigest(reference);
            if (digestOf(bytes, algorithm) !== reference) {
              throw new RegistryError('DIGEST_INVALID', `manifest content does not match ${reference} (got ${digestOf(bytes, algorithm)})`, {
                detail: { digest: reference },
              });
            }
          }
          // Outside the repository lock: an enforcing gate may analyse the image here for seconds.
          await extensions.beforeManifestRecorded({
            repository: name,
            digest,
            mediaType: parsed.mediaType,
            artifactType: parsed.artifactType,
            annotations: parsed.annotations,
            manifest: bytes,
            tag: byDigest ? undefined : reference,
            principal: principal.name,
          });
          return repoLocks.run(name, async () => {
            if (!byDigest) {
              const rule = immutableRuleFor(await metadata.getProject(projectOf(name)), name, reference);
              const current = rule !== undefined ? await metadata.getTag(name, reference) : null;
              // Pushing the same image again is harmless (clients retry); moving the tag is not.
              if (rule !== undefined && current !== null && current !== digest) throw immutableTagError(name, reference, rule, 'overwritten');
            }
            // GC safety: a collection that starts after this touch keeps everything named here.
            await metadata.touchDigests([digest, ...parsed.blobs.map((d) => d.digest), ...parsed.children.map((d) => d.digest)]);
            const missing: string[] = [];
            for (const d of parsed.blobs) if (!(await metadata.blobLinked(name, d.digest)) || !(await blobs.stat(d.digest))) missing.push(d.digest);
            for (const d of parsed.children) if (!(await metadata.getManifest(name, d.digest))) missing.push(d.digest);
            if (missing.length > 0) {
              throw new RegistryError('MANIFEST_BLOB_UNKNOWN', `manifest references ${missing.length} blob(s) or manifest(s) not pushed to ${name}: ${missing.join(', ')}`, {
                detail: { missing },
              });
            }
            await withinQuota(name, bytes.length, async () => (await metadata.getManifest(name, digest)) !== null, async () => {
              await writeBlobBytes(blobs, bytes, digest);
              await recordManifest(
                name,
                {
                  repository: name,
                  digest,
                  mediaType: parsed.mediaType,
                  artifactType: parsed.artifactType,
                  subjectDigest: parsed.subject?.digest ?? null,
                  size: bytes.length,
                  annotations: parsed.annotations,
                },
                parsed,
                bytes,
                byDigest ? undefined : reference,
              );
            });
            if (parsed.subject) reply.header('oci-subject', parsed.subject.digest);
            auditManifest(req, principal, 'push', name, reference, digest, 'success');
            await extensions.manifestPushed({
              repository: name,
              digest,
              mediaType: parsed.mediaType,
              artifactType: parsed.artifactType,
              subjectDigest: parsed.subject?.digest ?? null,
              tag: byDigest ? undefined : reference,
              principal: principal.name,
            });
            return reply
              .code(201)
              .header('location', `/v2/${name}/manifests/${digest}`)
              .header('docker-content-digest', digest)
              .header('content-length', 0)
              .send();
          });
        });
      }
      case 'DELETE': {
        const principal = await guard(req, name, ['delete'], { action: 'delete', reference });
        return repoLocks.run(name, async () => {
          const project = await metadata.getProject(projectOf(name));
          // Deleting a manifest deletes its tags, so an immutable tag protects its manifest too.
          const tags = byDigest ? (await metadata.listTagTargets(name)).filter((t) => t.digest === reference).map((t) => t.tag) : [reference];
          for (const tag of tags) {
            const rule = immutableRuleFor(project, name, tag);
            if (rule !== undefined && (byDigest || (await metadata.getTag(name, tag)) !== null)) throw immutableTagError(name, tag, rule, 'deleted');
          }
          if (byDigest) await refuseIfIndexChild(name, reference);
          const deleted = byDigest ? await metadata.deleteManifest(name, reference) : await metadata.deleteTag(name, reference);
          if (!deleted) throw new RegistryError('MANIFEST_UNKNOWN', `manifest ${reference} is not in ${name}`);
          auditManifest(req, principal, 'delete', name, reference, byDigest ? reference : null, 'success');
          return reply.code(202).header('content-length', 0).send();
        });
      }
      default:
        throw new RegistryError('UNSUPPORTED', `${req.method} is not supported on manifests`, { status: 405 });
    }
  }

  /**
   * A blob that an image under an immutable tag needs stays linked: unlinking it would break
   * every pull of that tag, which the rule promises will keep giving the same image. (Blobs of
   * mutable images may be unlinked, as in distribution; their pulls then fail until re-pushed.)
   */
  async function refuseIfImmutableBlob(name: string, digest: string): Promise<void> {
    const project = await metadata.getProject(projectOf(name));
    if (!project || project.immutableTags.length === 0) return;
    const users = new Set<string>();
    for (const m of await metadata.referencingManifests(name, digest, 'blob')) {
      users.add(m.digest);
      // An index tagged immutable protects its children's blobs too.
      for (const parent of await metadata.referencingManifests(name, m.digest, 'manifest')) users.add(parent.digest);
    }
    if (users.size === 0) return;
    for (const t of await metadata.listTagTargets(name)) {
      if (!users.has(t.digest)) continue;
      const rule = immutableRuleFor(project, name, t.tag);
      if (rule === undefined) continue;
      throw new RegistryError(
        'DENIED',
        `blob ${digest} belongs to ${name}:${t.tag}, which is immutable (project rule "${rule}"); its blobs cannot be deleted`,
        { detail: { repository: name, digest, tag: t.tag, rule } },
      );
    }
  }

  /**
   * A manifest that an index of the repository lists stays while the index does: deleting it
   * would leave the index pointing at nothing (every pull of that platform fails, and an
   * immutable tag on the index would no longer protect what it names). Harbor refuses the same.
   */
  async function refuseIfIndexChild(name: string, digest: string): Promise<void> {
    const parents = (await metadata.referencingManifests(name, digest, 'manifest')).map((m) => m.digest);
    if (parents.length === 0) return;
    const tags = (await metadata.listTagTargets(name)).filter((t) => parents.includes(t.digest)).map((t) => t.tag);
    throw new RegistryError(
      'DENIED',
      `manifest ${digest} is part of the index ${parents[0]}${parents.length > 1 ? ` (and ${parents.length - 1} more)` : ''}` +
        `${tags.length > 0 ? `, tagged ${tags.slice(0, 5).join(', ')}` : ''} in ${name}; delete the index first`,
      { status: 409, detail: { digest, indexes: parents } },
    );
  }

  async function handleBlob(req: FastifyRequest, reply: FastifyReply, name: string, digestText: string) {
    const digest = checkDigest(digestText);
    switch (req.method) {
      case 'GET':
      case 'HEAD': {
        const principal = await guard(req, name, ['pull']);
        const info = await lookupBlob(name, digest);
        if (!info) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in ${name}`, { detail: { digest } });
        // HEAD says only that the blob is there, which a push needs to know; GET gives its bytes.
        if (req.method === 'GET') {
          try {
            await extensions.beforeBlobServed({ repository: name, digest, principal });
          } catch (err) {
            // Served blobs are not audited one by one (a pull fetches dozens), but a refused one
            // is: it is how a layer of a blocked image would be reached around its manifest.
            if (err instanceof RegistryError) auditManifest(req, principal, 'pull', name, digest, digest, 'denied', 'blob');
            throw err;
          }
        }
        // A client that finds the blob here skips its upload and pushes a manifest naming it
        // soon after: the touch keeps gc from dropping this link in between.
        else await headTouches.touch(digest);
        reply
          .header('content-type', 'application/octet-stream')
          .header('docker-content-digest', digest)
          .header('accept-ranges', 'bytes')
          .header('etag', `"${digest}"`);
        if (alreadyHeld(req, digest)) return reply.code(304).send();
        const rangeHeader = firstHeader(req.headers.range);
        const range = rangeHeader === undefined ? undefined : parseReadRange(rangeHeader, info.size);
        if (range !== undefined) {
          reply
            .code(206)
            .header('content-range', `bytes ${range.start}-${range.end}/${info.size}`)
            .header('content-length', range.end - range.start + 1);
          if (req.method === 'HEAD') return reply.send();
          return reply.send(await blobs.open(digest, range));
        }
        reply.header('content-length', info.size);
        if (req.method === 'HEAD') return reply.send();
        // The size is known, so the stream need not ask the file for it: one filesystem round
        // trip fewer on every blob a pull fetches.
        return reply.send(await blobs.open(digest, { start: 0, end: info.size - 1 }));
      }
      case 'DELETE': {
        await guard(req, name, ['delete']);
        await refuseIfImmutableBlob(name, digest);
        // Only the repository's link goes; the bytes stay until garbage collection finds them unused.
        if (!(await metadata.unlinkBlob(name, digest))) throw new RegistryError('BLOB_UNKNOWN', `blob ${digest} is not in ${name}`);
        return reply.code(202).header('content-length', 0).send();
      }
      default:
        throw new RegistryError('UNSUPPORTED', `${req.method} is not supported on blobs`, { status: 405 });
    }
  }

  const headTouches = new ThrottledTouch((digests) => metadata.touchDigests(digests));

  async function blobServable(repository: string, digest: string, principal: Principal): Promise<boolean> {
    try {
      await extensions.beforeBlobServed({ repository, digest, principal, mount: true });
      return true;
    } catch (err) {
      if (err instanceof RegistryError) return false;
      throw err;
    }
  }

  async function tryMount(principal: Principal, name: string, digest: string, from: string | undefined): Promise<boolean> {
    const candidates = from !== undefined ? [from] : await metadata.repositoriesWithBlob(digest);
    for (const repo of candidates) {
      if (!auth.authorize(principal, repo, ['pull'])) continue;
      if (!(await metadata.blobLinked(repo, digest))) continue;
      // A blob the gate withholds from this caller there is not theirs to mount either: mounted
      // into a repository of their own, it would be served without any refused image around it.
      if (!(await blobServable(repo, digest, principal))) continue;
      const info = await blobs.stat(digest);
      if (!info) return false;
      await metadata.touchDigests([digest]);
      return withinQuota(name, info.size, blobInProject(digest), () => linkIfLive(name, digest, info.size));
    }
    return false;
  }

  async function handleUploads(req: FastifyRequest, reply: FastifyReply, name: string, query: Record<string, string | undefined>) {
    if (req.method !== 'POST') throw new RegistryError('UNSUPPORTED', `${req.method} is not supported here; POST starts an upload`, { status: 405 });
    // A mount from another repository needs pull there too: the challenge asks for both scopes, so a
    // token client gets one token that lets the mount succeed instead of falling back to an upload.
    const mountSource = query.mount !== undefined && query.from !== undefined && isValidRepositoryName(query.from) ? query.from : undefined;
    const principal = await guard(req, name, ['pull', 'push'], undefined, mountSource ? [{ repo: mountSource, actions: ['pull'] }] : undefined);
    // A token for the target alone (clients cache them) while the account may read the source: ask
    // for the wider token, so the mount answers 201, rather than quietly start an upload.
    if (mountSource && !auth.authorize(principal, mountSource, ['pull']) && auth.mayWiden?.(principal, mountSource, ['pull'])) {
      throw new RegistryError('UNAUTHORIZED', `the token does not grant pull on ${mountSource}, the mount's source; request a token with the challenged scope`, {
        headers: { 'www-authenticate': auth.challenge(name, ['pull', 'push'], { error: 'insufficient_scope', also: [{ repo: mountSource, actions: ['pull'] }] }) },
        detail: [{ type: 'repository', name: mountSource, action: 'pull' }],
      });
    }
    if (query.mount !== undefined) {
      const digest = checkDigest(query.mount);
      if (query.from !== undefined) validateRepositoryName(query.from);
      if (await tryMount(principal, name, digest, query.from)) {
        return reply
          .code(201)
          .header('location', `/v2/${name}/blobs/${digest}`)
          .header('docker-content-digest', digest)
          .header('content-length', 0)
          .send();
      }
      // Not mountable (absent, or the caller may not read it): the spec says start an upload.
    }
    if (query.digest !== undefined) {
      const digest = checkDigest(query.digest);
      const writer = await blobs.writer();
      let allowance: Awaited<ReturnType<typeof uploadAllowance>>;
      try {
        allowance = await uploadAllowance(name, contentLengthOf(req));
        await writer.append(bodyStream(req), allowance ? { onChunk: allowance.onChunk } : {});
      } catch (err) {
        await writer.cancel();
        throw err;
      } finally {
        // The commit below checks the whole blob against the quota again, under the project's lock.
        allowance?.release();
      }
      return finishBlob(reply, name, writer, digest);
    }
    // Sessions live until finished, cancelled or idle for a day; without a bound one pusher could
    // leave tens of thousands of them (rows, temp files) in an afternoon. Counted per account, so
    // one pusher cannot use up what others of the project need (helper-29's review), and per
    // project, which many robots of one project cannot multiply. The store counts and records in
    // one step, so parallel POSTs cannot all pass the count first; a refused start makes no file.
    const project = projectOf(name);
    const uuid = randomUUID();
    const start = await metadata.startUpload(uuid, name, principal.name, {
      project,
      perPrincipal: MAX_UPLOADS_PER_ACCOUNT,
      perProject: MAX_UPLOADS_PER_PROJECT,
    });
    if ('refused' in start) {
      const who = start.refused === 'principal' ? principal.name : `project ${project}`;
      const advice = start.refused === 'principal' ? 'finish or cancel some (DELETE their Location) before starting more' : 'finish or cancel some before starting more';
      throw new RegistryError('TOOMANYREQUESTS', `${who} has ${start.open} unfinished uploads; ${advice}; sessions idle for a day are removed`, {
        headers: { 'retry-after': '60' },
      });
    }
    let writer: BlobWriter;
    try {
      writer = await blobs.writer(uuid);
    } catch (err) {
      // The writer's error is the answer (on a full disk the delete may fail too); a row left
      // behind is removed with the other idle sessions.
      await metadata.deleteUpload(uuid).catch(() => undefined);
      throw err;
    }
    // No file handle yet: the writer opens its file at the first append (keepWriter then).
    openWriters.set(uuid, writer);
    lastUsed.set(uuid, Date.now());
    return uploadHeaders(reply.code(202), name, uuid, 0).header('content-length', 0).send();
  }

  async function handleUpload(req: FastifyRequest, reply: FastifyReply, name: string, uuid: string, query: Record<string, string | undefined>) {
    await guard(req, name, ['pull', 'push']);
    return uploadLocks.run(uuid, async () => {
      const upload = await findUpload(name, uuid);
      switch (req.method) {
        case 'GET':
        case 'HEAD':
          return uploadHeaders(reply.code(204), name, uuid, upload.offset).send();
        case 'PATCH': {
          const writer = await uploadWriter(upload);
          await appendChunk(req, name, upload, writer);
          return uploadHeaders(reply.code(202), name, uuid, writer.size).header('content-length', 0).send();
        }
        case 'PUT': {
          if (query.digest === undefined) throw new RegistryError('DIGEST_INVALID', 'finishing an upload needs ?digest=');
          const digest = checkDigest(query.digest);
          const writer = await uploadWriter(upload);
          await appendChunk(req, name, upload, writer);
          forgetWriter(uuid);
          try {
            return await finishBlob(reply, name, writer, digest);
          } finally {
            // Success or a failure both end the session; finishBlob has released the writer.
            await metadata.deleteUpload(uuid);
          }
        }
        case 'DELETE': {
          // The open writer, if any, is the one to cancel: dropping it would keep its file handle,
          // and with it the deleted temp file's disk space, until a garbage collection.
          const writer = forgetWriter(uuid) ?? (await blobs.resume(uuid, 0));
          await writer?.cancel();
          await metadata.deleteUpload(uuid);
          return reply.code(204).send();
        }
        default:
          throw new RegistryError('UNSUPPORTED', `${req.method} is not supported on uploads`, { status: 405 });
      }
    });
  }

  async function handleTags(req: FastifyRequest, reply: FastifyReply, name: string, query: Record<string, string | undefined>) {
    if (req.method !== 'GET' && req.method !== 'HEAD') throw new RegistryError('UNSUPPORTED', 'tags/list only answers GET', { status: 405 });
    await guard(req, name, ['pull']);
    if (!(await metadata.repositoryExists(name))) throw new RegistryError('NAME_UNKNOWN', `repository ${name} is not known`);
    const { n, last } = parsePageQuery(query);
    const rows = n === 0 ? [] : await metadata.listTags(name, { n: n + 1, ...(last !== undefined ? { last } : {}) });
    const tags = rows.slice(0, n);
    if (rows.length > n) reply.header('link', nextLink(`/v2/${name}/tags/list`, n, tags[tags.length - 1]!));
    return reply.header('content-type', 'application/json').send({ name, tags });
  }

  async function handleCatalog(req: FastifyRequest, reply: FastifyReply, query: Record<string, string | undefined>) {
    if (req.method !== 'GET') throw new RegistryError('UNSUPPORTED', '_catalog only answers GET', { status: 405 });
    const principal = await guard(req, '', ['pull']);
    const { n, last } = parsePageQuery(query);
    // Only repositories the caller may pull are listed. The scan reads names in batches of 500 and
    // examines at most REPOSITORY_SCAN_LIMIT per request, whatever n is: past that the page is
    // short (even empty), and its Link continues from where the scan stopped, sealed, since that
    // may be a repository the caller may not see (page-cursor.ts).
    const listable = auth.canList
      ? (repo: string) => auth.canList!(principal, repo)
      : (repo: string) => auth.authorize(principal, repo, ['pull']);
    const after = last !== undefined && pageCursors.isSealed(last) ? pageCursors.open(last) : last;
    if (last !== undefined && after === undefined) {
      throw new RegistryError('UNSUPPORTED', 'this catalog continuation has expired (the server restarted, or another one made it); list again from the start', { status: 400 });
    }
    // With the caller's projects known, only their names are read: nothing hidden is examined,
    // so no bound or sealed continuation is needed and `last` may be anything.
    const projects = auth.listableProjects?.(principal);
    const scan: RepositoryScan =
      n === 0
        ? { found: [] }
        : projects === undefined
          ? await scanRepositories(metadata, { after, want: n + 1, keep: listable, limit: REPOSITORY_SCAN_LIMIT })
          : projects === 'all'
            ? await scanRepositories(metadata, { after, want: n + 1, keep: () => true, limit: Number.MAX_SAFE_INTEGER })
            : { found: await listProjectRepositories(metadata, projects, { after, want: n + 1 }) };
    const repositories = scan.found.slice(0, n);
    if (scan.found.length > n) reply.header('link', nextLink('/v2/_catalog', n, repositories[repositories.length - 1]!));
    else if (scan.stoppedAt !== undefined) reply.header('link', nextLink('/v2/_catalog', n, pageCursors.seal(scan.stoppedAt)));
    return reply.header('content-type', 'application/json').send({ repositories });
  }

  async function handleReferrers(req: FastifyRequest, reply: FastifyReply, name: string, digestText: string, query: Record<string, string | undefined>) {
    if (req.method !== 'GET') throw new RegistryError('UNSUPPORTED', 'referrers only answers GET', { status: 405 });
    const digest = checkDigest(digestText);
    await guard(req, name, ['pull']);
    const artifactType = query.artifactType;
    // `last` only ever comes from our own Link header: the digest the previous page ended with.
    const last = query.last === undefined ? undefined : checkDigest(query.last);
    const records = await metadata.listReferrers(name, digest, artifactType, { n: REFERRERS_PAGE_SIZE + 1, ...(last !== undefined ? { last } : {}) });
    if (artifactType !== undefined) reply.header('oci-filters-applied', 'artifactType');
    if (records.length > REFERRERS_PAGE_SIZE) {
      records.length = REFERRERS_PAGE_SIZE;
      const next = new URLSearchParams({ ...(artifactType !== undefined ? { artifactType } : {}), last: records[records.length - 1]!.digest });
      reply.header('link', `</v2/${name}/referrers/${digest}?${next.toString()}>; rel="next"`);
    }
    const manifests = records.map((r) => ({
      mediaType: r.mediaType,
      digest: r.digest,
      size: r.size,
      ...(r.artifactType ? { artifactType: r.artifactType } : {}),
      ...(r.annotations ? { annotations: r.annotations } : {}),
    }));
    return reply
      .header('content-type', MediaType.ociIndex)
      .send(Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests })));
  }

  // For load balancers and Kubernetes probes, which carry no credentials: nothing here reveals
  // more than that the server runs. /readyz also asks the metadata store, which every request needs.
  app.get('/healthz', async (_req, reply) => reply.header('cache-control', 'no-store').send({ status: 'ok' }));
  app.get('/readyz', async (req, reply) => {
    reply.header('cache-control', 'no-store');
    const lost = metadata.lostFromDisk?.();
    if (lost) {
      reportLost(lost);
      return reply.code(503).send({ status: 'unavailable', reason: 'the data folder was removed or replaced; restart the server' });
    }
    try {
      await metadata.countUsers();
      return reply.send({ status: 'ready' });
    } catch (err) {
      req.log.error({ err }, 'readiness check: the metadata store did not answer');
      return reply.code(503).send({ status: 'unavailable', reason: 'the metadata store did not answer' });
    }
  });

  app.route({
    method: ['GET', 'HEAD', 'PUT', 'POST', 'PATCH', 'DELETE'],
    url: '/v2/*',
    handler: async (req, reply) => dispatch(req, reply),
  });
  app.route({
    method: ['GET', 'HEAD'],
    url: '/v2',
    handler: async (req, reply) => dispatch(req, reply),
  });

  async function dispatch(req: FastifyRequest, reply: FastifyReply) {
    reply.header('docker-distribution-api-version', 'registry/2.0');
    const url = new URL(req.url, 'http://registry.invalid');
    // Paths are taken verbatim from the request line (no normalisation of `..`), so a name like
    // `a/../b` reaches the grammar check and is refused rather than silently rewritten.
    const rawPath = req.url.split('?')[0]!;
    const query: Record<string, string | undefined> = {};
    for (const [k, v] of url.searchParams) if (!(k in query)) query[k] = v;
    const route = parseRegistryPath(rawPath);
    if (!route) throw new RegistryError('UNSUPPORTED', `no such endpoint ${rawPath}`, { status: 404 });
    if ('name' in route) validateRepositoryName(route.name);
    switch (route.kind) {
      case 'base':
        await guard(req, '', []);
        return reply.header('content-type', 'application/json').send('{}');
      case 'catalog':
        return handleCatalog(req, reply, query);
      case 'manifest':
        return handleManifest(req, reply, route);
      case 'blob':
        return handleBlob(req, reply, route.name, route.digest);
      case 'uploads':
        return handleUploads(req, reply, route.name, query);
      case 'upload':
        return handleUpload(req, reply, route.name, route.uuid, query);
      case 'tags':
        return handleTags(req, reply, route.name, query);
      case 'referrers':
        return handleReferrers(req, reply, route.name, route.digest, query);
    }
  }

  return app;
}
