import { PortcullisError } from '../errors.js';
import type { JobHandler } from '../jobs/index.js';
import type { JobRecord } from '../store/index.js';
import { isImageConfigMediaType, isManifestMediaType } from '../oci/index.js';
import { RegistryError, type IncomingManifest, type PushedManifest, type Principal, type RegistryExtensions, type ServedBlob, type ServedManifest, type ServedNote } from '../registry/index.js';
import { renderResult } from '../sbom/render.js';
import { listAllRepositories } from '../store/gc.js';
import { FsBlobStore, type BlobStore, type RegistryMetadata } from '../store/index.js';
import { recordSeenEcosystems, withVulnerabilities } from '../vulndb/index.js';
import type { GateEventType } from './event-types.js';
import { analyseStoredImage, decodeFacts, encodeFacts, indexKeyOfOsvPackage, matchKeyRows, packageIndexRows } from './facts.js';
import { deniedPullMessage, deniedPushMessage, pendingPullMessage } from './messages.js';
import type { PolicySource } from './policy-source.js';
import { GENERATOR_ANNOTATION, REPORT_ARTIFACT_TYPE, SBOM_ARTIFACT_TYPE, attachReferrer } from './referrers.js';
import { VerdictService, publicVerdict, type StoredVerdict, type VerdictChange } from './verdicts.js';
import { VulnDbHandle } from './vulndb-handle.js';
import { AnalysisProcess, AnalysisProcessDied, analysisWorkerFile } from './analysis-process.js';
import { reevaluateAfterUpdate } from './reevaluation.js';


/** How AnalysisProcessDied names a death by a signal that asks a process to stop. */
const STOP_SIGNAL_RE = /\(signal SIG(?:TERM|INT|HUP|QUIT)\)/;
export const ANALYSE_JOB = 'analyse';
/** Where the gate keeps how far it has followed the vulnerability database's change log. */
const DATABASE_CHECKPOINT = 'vulndb-checkpoint';
interface DatabaseCheckpoint {
  lineage: string;
  generation: number;
}
/** A push is what a developer waits for: it runs before any bulk re-evaluation. */
export const PUSH_PRIORITY = 10;

export function analysisJobKey(repository: string, digest: string): string {
  return `${ANALYSE_JOB}:${repository}@${digest}`;
}

/** The gate's own referrers are marked by their annotation (and the report by its type); a push of either is refused. */
function refuseForgedReferrer(m: IncomingManifest): void {
  const marked = m.annotations !== null && Object.hasOwn(m.annotations, GENERATOR_ANNOTATION);
  if (!marked && m.artifactType !== REPORT_ARTIFACT_TYPE) return;
  throw new RegistryError(
    'DENIED',
    `${m.repository}@${m.digest}: the annotation ${GENERATOR_ANNOTATION} and the artifact type ${REPORT_ARTIFACT_TYPE} are reserved ` +
      "for the registry's own SBOM and report referrers; attach your own under another annotation and type",
    { detail: { repository: m.repository, digest: m.digest } },
  );
}

/** Image manifests are analysed and gated; indexes, SBOMs, signatures and other artifacts are not. */
export function isImageManifest(mediaType: string, artifactType: string | null): boolean {
  // The registry refuses an image manifest that declares an artifactType, so for an image the
  // stored artifact type is its config's media type.
  return isManifestMediaType(mediaType) && artifactType !== null && isImageConfigMediaType(artifactType);
}

/** What the gate publishes; each `type` is one of GATE_EVENT_TYPES (checked below). */
export type GateEvent =
  | { type: 'pushed'; repository: string; digest: string; tag?: string; principal: string }
  | { type: 'analysed'; repository: string; digest: string; status: string; ms: number }
  | ({ type: 'verdict_changed' } & Omit<VerdictChange, 'failReasons'> & { reasons: string[] })
  /** `blob`: set when a layer or config of the image was asked for by digest, not its manifest. */
  | { type: 'pull_denied'; repository: string; digest: string; blob?: string; principal: string; status: string }
  | { type: 'push_denied'; repository: string; digest: string; tag?: string; principal: string; status: string }
  | { type: 'blocked_pull_allowed'; repository: string; digest: string; principal: string; status: string }
  | {
      type: 'new_advisory_affects';
      advisory: string;
      aliases: string[];
      severity: string;
      fixAvailable: boolean;
      artifacts: { repository: string; digest: string; package: string; installedVersion: string; fixedVersions: string[] }[];
    };

// A new event type must be listed in event-types.ts, where the config and the API read the names.
type _EveryEventListed = GateEvent['type'] extends GateEventType ? (GateEventType extends GateEvent['type'] ? true : never) : never;
const _everyEventListed: _EveryEventListed = true;
void _everyEventListed;

export interface GateOptions {
  metadata: RegistryMetadata;
  blobs: BlobStore;
  dataDir: string;
  policy: PolicySource;
  projectOf: (repository: string) => string;
  /** Where clients reach the server; report links in refusals point here. */
  publicUrl: string;
  /** Images without a verdict yet: refused (default, fails closed) or served. */
  pending?: 'deny' | 'allow';
  onEvent?: (event: GateEvent) => void;
  /**
   * Enforce on push: the manifest PUT waits up to `budgetMs` for the verdict and refuses a failing
   * image before anything is stored; past the budget the image is stored as pending.
   */
  enforceOnPush?: { budgetMs: number };
  /** Tells the job runner that work was queued in this process. */
  notify?: () => void;
  now?: () => Date;
  /**
   * Analyse in a child process (default, when the compiled analysis entry is present and blobs
   * are on the filesystem), so a large image does not stall requests; false: on the event loop.
   */
  analysisProcess?: boolean;
}

/**
 * The curated registry's gate: analysis on arrival (a durable job per pushed image), verdicts
 * from the one policy engine, OCI referrers for the SBOM and the report, and the link in the
 * manifest GET chain that refuses what fails. It fails closed: no verdict, an analysis that
 * failed, or a policy that cannot be evaluated all refuse the pull with the reason.
 */
export class Gate {
  readonly vulndb: VulnDbHandle;
  readonly verdicts: VerdictService;

  private readonly analysisProcess: AnalysisProcess | undefined;

  constructor(private readonly options: GateOptions) {
    const workerFile = options.analysisProcess === false || !(options.blobs instanceof FsBlobStore) ? null : analysisWorkerFile();
    this.analysisProcess = workerFile ? new AnalysisProcess(workerFile) : undefined;
    this.analysisProcess?.warm();
    this.vulndb = new VulnDbHandle(options.dataDir);
    this.verdicts = new VerdictService({
      metadata: options.metadata,
      policy: options.policy,
      vulndb: this.vulndb,
      projectOf: options.projectOf,
      ...(options.now ? { now: options.now } : {}),
      onChange: (c) =>
        this.emit({
          type: 'verdict_changed',
          repository: c.repository,
          digest: c.digest,
          from: c.from,
          to: c.to,
          reasons: c.failReasons,
        }),
    });
  }

  private emit(event: GateEvent): void {
    try {
      this.options.onEvent?.(event);
    } catch {
      // An event listener must never break a push or a pull.
    }
  }

  reportUrl(repository: string, digest: string): string {
    return `${this.options.publicUrl}/api/v1/repositories/${repository}/artifacts/${digest}`;
  }

  async enqueueAnalysis(repository: string, digest: string, priority = PUSH_PRIORITY): Promise<void> {
    await this.options.metadata.jobs.enqueue(ANALYSE_JOB, { repository, digest }, { key: analysisJobKey(repository, digest), priority });
    this.options.notify?.();
  }

  extensions(): RegistryExtensions {
    return {
      beforeManifestRecorded: (m: IncomingManifest) => this.checkPush(m),
      manifestPushed: async (m: PushedManifest) => {
        this.emit({ type: 'pushed', repository: m.repository, digest: m.digest, ...(m.tag !== undefined ? { tag: m.tag } : {}), principal: m.principal });
        if (isImageManifest(m.mediaType, m.artifactType)) await this.enqueueAnalysis(m.repository, m.digest);
      },
      beforeManifestServed: (m: ServedManifest) => this.checkPull(m),
      beforeBlobServed: (b: ServedBlob) => this.checkBlobPull(b),
    };
  }

  /**
   * Enforce on push: refuses a failing image within the time budget; otherwise lets it be stored.
   * Before that, any manifest that claims to be the gate's own SBOM or report is refused: clients
   * and people trust those referrers for what the registry found, so nobody else may write one.
   */
  async checkPush(m: IncomingManifest): Promise<void> {
    refuseForgedReferrer(m);
    const budget = this.options.enforceOnPush?.budgetMs;
    if (budget === undefined || !isImageManifest(m.mediaType, m.artifactType)) return;
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => (timer = setTimeout(() => resolve('late'), budget)));
    const work = (async () => {
      await this.ensureFacts(m.repository, m.digest, m.mediaType, m.manifest);
      return this.verdicts.evaluate(m.repository, m.digest);
    })();
    // Past the budget the analysis goes on; the job queued after the push finds its facts.
    const outcome = await Promise.race([work.catch(() => null), late]);
    clearTimeout(timer);
    if (outcome === 'late' || outcome === null || outcome.status === 'pass' || outcome.status === 'warn') return;
    this.emit({ type: 'push_denied', repository: m.repository, digest: m.digest, ...(m.tag !== undefined ? { tag: m.tag } : {}), principal: m.principal, status: outcome.status });
    throw new RegistryError('DENIED', deniedPushMessage(m.repository, m.tag, m.digest, outcome), {
      detail: { repository: m.repository, digest: m.digest, verdict: outcome.status },
    });
  }

  /** Extracts and stores the facts of a digest unless they are known; failures to analyse are recorded. */
  private async ensureFacts(repository: string, digest: string, mediaType: string, manifest?: Buffer, signal?: AbortSignal): Promise<void> {
    const { metadata, blobs, dataDir } = this.options;
    if (await metadata.artifacts.getFacts(digest)) return;
    let bytes = manifest;
    if (!bytes) {
      const chunks: Buffer[] = [];
      for await (const c of await blobs.open(digest)) chunks.push(c as Buffer);
      bytes = Buffer.concat(chunks);
    }
    try {
      const result =
        this.analysisProcess && blobs instanceof FsBlobStore
          ? await this.analysisProcess.analyse({ repository, digest, mediaType, manifest: bytes, blobRoot: blobs.root, dataDir }, signal)
          : await analyseStoredImage({ repository, digest, mediaType, manifest: bytes, openBlob: (d) => blobs.open(d) }, dataDir);
      await metadata.artifacts.putFacts(digest, encodeFacts(result), packageIndexRows(result), matchKeyRows(result));
      // What `db update` fetches by default: the ecosystems stored images need.
      recordSeenEcosystems(dataDir, [result]);
    } catch (err) {
      // Content that cannot be analysed (a bomb, a corrupt layer) will not improve on retry:
      // record why, and the gate refuses it with that reason. Anything else is retried.
      if (!(err instanceof PortcullisError)) throw err;
      await metadata.artifacts.putFailure(digest, err.message);
    }
  }

  /** The pull gate: throws DENIED unless the image's current verdict allows it. */
  async checkPull(m: ServedManifest): Promise<ServedNote | undefined> {
    if (!isImageManifest(m.mediaType, m.artifactType)) return undefined;
    const decision = await this.decidePull(m.repository, m.digest, m.principal);
    const principal = m.principal?.name ?? 'anonymous';
    if (decision.allowed === true) return undefined;
    if (decision.allowed === 'override') {
      // Forensics: an administrator may fetch what is blocked; the event and the audit row say so.
      this.emit({ type: 'blocked_pull_allowed', repository: m.repository, digest: m.digest, principal, status: decision.status });
      return { auditOutcome: 'blocked-override', detail: `verdict=${decision.status}; an administrator pulled a blocked image` };
    }
    this.emit({ type: 'pull_denied', repository: m.repository, digest: m.digest, principal, status: decision.status });
    throw this.deniedPull(m.repository, m.digest, decision.verdict);
  }

  /** Whether `principal` may pull the image: its verdict allows it, or an administrator overrides. */
  private async decidePull(
    repository: string,
    digest: string,
    who: Principal | null,
  ): Promise<{ allowed: true; pending?: true } | { allowed: 'override' | false; status: string; verdict: StoredVerdict | null }> {
    const verdict = await this.verdicts.current(repository, digest);
    if (verdict && (verdict.status === 'pass' || verdict.status === 'warn')) return { allowed: true };
    if (!verdict && this.options.pending === 'allow') return { allowed: true, pending: true };
    const status = verdict?.status ?? 'pending';
    const admin = who && who.kind !== 'robot' && who.kind !== 'anonymous' && (who.admin === true || (await this.options.metadata.getUser(who.name))?.admin === true);
    return { allowed: admin ? 'override' : false, status, verdict };
  }

  private deniedPull(repository: string, digest: string, verdict: StoredVerdict | null): RegistryError {
    const url = this.reportUrl(repository, digest);
    const message = verdict ? deniedPullMessage(repository, digest, verdict, url) : pendingPullMessage(repository, digest, url);
    return new RegistryError('DENIED', message, { detail: { repository, digest, verdict: verdict?.status ?? 'pending', report: url } });
  }

  /**
   * The pull gate for blobs: a blob of this repository's images is served when at least one image
   * that uses it may be pulled (a shared base layer stays available), or when no image uses it
   * (an upload whose manifest is not pushed yet, an artifact's blob). Otherwise DENIED, as the
   * manifest GET would be: without this, a layer of a refused image (say, one holding a secret)
   * could be fetched by its digest, which the findings API shows.
   */
  async checkBlobPull(b: ServedBlob): Promise<void> {
    const images = (await this.options.metadata.referencingManifests(b.repository, b.digest, 'blob')).filter((m) => isImageManifest(m.mediaType, m.artifactType));
    let refused: { digest: string; status: string; verdict: StoredVerdict | null } | undefined;
    for (const m of images) {
      const decision = await this.decidePull(b.repository, m.digest, b.principal);
      // An override is not announced per blob: the manifest GET before it was.
      if (decision.allowed === 'override' || (decision.allowed === true && !decision.pending)) return;
      if (decision.allowed === false) refused ??= { digest: m.digest, status: decision.status, verdict: decision.verdict };
    }
    // With `pending: allow`, an image not judged yet does not release a blob that a refused image
    // also holds: otherwise pushing any manifest over a blocked layer would make it fetchable.
    if (!refused) return;
    if (!b.mount) {
      this.emit({ type: 'pull_denied', repository: b.repository, digest: refused.digest, blob: b.digest, principal: b.principal?.name ?? 'anonymous', status: refused.status });
    }
    const why = this.deniedPull(b.repository, refused.digest, refused.verdict);
    throw new RegistryError('DENIED', `blob ${b.digest} belongs only to images that may not be pulled; ${why.message}`, {
      detail: { repository: b.repository, digest: b.digest, images: images.map((m) => m.digest) },
    });
  }

  /**
   * Queues analysis for stored images that have no verdict (pushed while the gate was off, or
   * recorded just before a crash that lost nothing but the enqueue). Queued jobs survive restarts
   * by themselves; this closes the remaining gap, so no image stays pending forever.
   */
  async recover(): Promise<number> {
    const { metadata } = this.options;
    let queued = 0;
    for (const repository of await listAllRepositories(metadata)) {
      for (const m of await metadata.listManifests(repository)) {
        if (!isImageManifest(m.mediaType, m.artifactType)) continue;
        if (await metadata.artifacts.getVerdict(repository, m.digest)) continue;
        await this.enqueueAnalysis(repository, m.digest);
        queued++;
      }
    }
    return queued;
  }

  /** The job handlers this gate runs. */
  handlers(): Record<string, JobHandler> {
    return {
      [ANALYSE_JOB]: async (job, signal) => {
        const { repository, digest } = job.payload as { repository: string; digest: string };
        try {
          await this.analyse(repository, digest, signal);
        } catch (err) {
          if (!(await this.gaveUpAnalysing(job, digest, err))) throw err;
          // Now with the failure recorded: the verdict is `error` with the reason.
          await this.analyse(repository, digest, signal);
        }
      },
    };
  }

  /**
   * Records the analysis of an image on which the analysis process died twice in a row as the
   * image's failure, as a bomb the analysis refuses is: the image gets an `error` verdict with the
   * reason. A process that dies twice on the same image has run out of memory on it, most likely
   * (an image of millions of files with long paths does that): every attempt costs a core and
   * gigabytes for a minute, and when the job's attempts were used up the image had no verdict, so
   * pulls said "still being analysed" for ever. A single death (the process killed by an operator,
   * or out of memory for another reason) is retried as before; so are other errors (a transient
   * one must not mark an image for good).
   */
  private async gaveUpAnalysing(job: JobRecord, digest: string, err: unknown): Promise<boolean> {
    if (!(err instanceof AnalysisProcessDied) || job.lastError?.startsWith(AnalysisProcessDied.PREFIX) !== true) return false;
    // A stop signal is an operator's, not the image's doing: Ctrl-C, or systemd stopping the
    // service's whole control group, reaches the analysis process with the server, before the
    // server gives the job back. Two restarts during one image's analysis must not refuse it.
    if (STOP_SIGNAL_RE.test(err.message) || STOP_SIGNAL_RE.test(job.lastError)) return false;
    const artifacts = this.options.metadata.artifacts;
    // Facts are there: what failed came after the analysis (evaluation, referrers) and is retried.
    if (await artifacts.getFacts(digest)) return false;
    const attempts = job.attempts === 2 ? 'both attempts' : `attempts ${job.attempts - 1} and ${job.attempts}`;
    await artifacts.putFailure(digest, `${err.message} on ${attempts} to analyse it; out of memory, most likely: the image is refused rather than analysed again`);
    return true;
  }

  /** Extracts facts (once per digest), evaluates, and attaches the SBOM and report as referrers. */
  /** `signal` (the server stopping) abandons the analysis: the job is given back, not failed. */
  async analyse(repository: string, digest: string, signal?: AbortSignal): Promise<StoredVerdict | null> {
    const { metadata, blobs } = this.options;
    const record = await metadata.getManifest(repository, digest);
    if (!record) return null; // deleted since the push
    const started = Date.now();
    await this.ensureFacts(repository, digest, record.mediaType, undefined, signal);
    const facts = await metadata.artifacts.getFacts(digest);
    const verdict = await this.verdicts.evaluate(repository, digest);
    if (verdict && facts?.facts) {
      const subject = { digest, mediaType: record.mediaType, size: record.size };
      const { store } = this.vulndb.get();
      const base = decodeFacts(facts.facts);
      const result = store ? withVulnerabilities(base, store) : base;
      const sbom = Buffer.from(await renderResult(result, 'cyclonedx'));
      await attachReferrer({ metadata, blobs }, repository, subject, SBOM_ARTIFACT_TYPE, sbom, 'sbom.cdx.json');
      const report = Buffer.from(JSON.stringify({ subject: { repository, digest }, verdict: publicVerdict(verdict) }, null, 2));
      await attachReferrer({ metadata, blobs }, repository, subject, REPORT_ARTIFACT_TYPE, report, 'portcullis-report.json');
    }
    this.emit({ type: 'analysed', repository, digest, status: verdict?.status ?? 'error', ms: Date.now() - started });
    return verdict;
  }

  /**
   * Artifacts an advisory affects now: its packages looked up in the index, each candidate matched
   * against the current database (read-only: no verdict is stored by a search).
   */
  async artifactsAffectedBy(advisory: string): Promise<{ repository: string; digest: string; package: string; installedVersion: string; fixedVersions: string[]; severity: string }[]> {
    const { store } = this.vulndb.get();
    if (!store) return [];
    const artifacts = this.options.metadata.artifacts;
    const digests = new Set<string>();
    const named = [...new Set([advisory, ...store.recordsNaming(advisory)])];
    const records = new Set(named.map((r) => r.toUpperCase()));
    for (const record of named) {
      for (const p of store.packagesOfRecord(record)) {
        const key = indexKeyOfOsvPackage(p.ecosystem, p.name);
        if (key) for (const d of await artifacts.digestsWithPackage(key.type, key.name)) digests.add(d);
      }
    }
    const out: { repository: string; digest: string; package: string; installedVersion: string; fixedVersions: string[]; severity: string }[] = [];
    for (const digest of [...digests].sort()) {
      const facts = await artifacts.getFacts(digest);
      if (!facts?.facts) continue;
      const matched = withVulnerabilities(decodeFacts(facts.facts), store);
      const hits = (matched.vulnerabilities ?? []).filter((f) => records.has(f.id.toUpperCase()) || f.aliases.some((a) => records.has(a.toUpperCase())));
      if (hits.length === 0) continue;
      for (const v of await artifacts.verdictsForDigest(digest)) {
        for (const f of hits) {
          out.push({ repository: v.repository, digest, package: f.package.name, installedVersion: f.installedVersion, fixedVersions: f.fixedVersions, severity: f.severity });
        }
      }
    }
    return out;
  }

  private monitorTimer: NodeJS.Timeout | undefined;
  private monitoring: Promise<unknown> | undefined;
  private seenVersion: string | undefined;
  /** The database's generation when the monitor started: where to begin when no checkpoint is stored yet. */
  private startGeneration = 0;

  /**
   * Watches the vulnerability database (`db update`/`db import` from any process replace it): on a
   * new version, re-evaluates the images that hold a package the new or changed advisories name
   * (found through their match keys, no layer read), so verdict_changed and new_advisory_affects
   * go out within about a second of the import. The first look compares with the stored
   * checkpoint, so updates made while the server was down are caught up at start.
   */
  startMonitor(intervalMs = 500, onError?: (err: unknown) => void): void {
    try {
      this.startGeneration = this.vulndb.get().store?.generation() ?? 0;
    } catch (err) {
      onError?.(err);
    }
    this.monitorTimer = setInterval(() => {
      this.monitoring ??= this.checkDatabase()
        .catch((err: unknown) => onError?.(err))
        .finally(() => {
          this.monitoring = undefined;
        });
    }, intervalMs);
    this.monitorTimer.unref();
  }

  /**
   * One look at the database; returns how many verdicts were decided again. The stored checkpoint
   * (database lineage and generation) says how far the registry has followed the change log; a
   * server moves it forward with a compare-and-set before it does the work, so with several
   * replicas only one re-decides and announces each update. A crash during that work loses its
   * events, not correctness: a verdict on an older database is evaluated again when it is read.
   */
  async checkDatabase(): Promise<number> {
    const version = this.vulndb.version();
    if (version === this.seenVersion) return 0;
    const { store } = this.vulndb.get();
    this.seenVersion = version;
    if (!store) return 0;
    const artifacts = this.options.metadata.artifacts;
    const lineage = store.lineage();
    const generation = store.generation();
    const saved = await artifacts.getGateState(DATABASE_CHECKPOINT);
    const from = saved !== null ? (JSON.parse(saved) as DatabaseCheckpoint) : { lineage, generation: this.startGeneration };
    const next = JSON.stringify({ lineage, generation } satisfies DatabaseCheckpoint);
    if (from.lineage === lineage && from.generation >= generation) {
      if (saved === null) await artifacts.compareAndSetGateState(DATABASE_CHECKPOINT, null, next);
      return 0;
    }
    if (!(await artifacts.compareAndSetGateState(DATABASE_CHECKPOINT, saved, next))) return 0;
    // Another database (deleted and imported again): its log says nothing about what changed since.
    const changes = from.lineage === lineage ? store.changesSince(from.generation) : null;
    const { metadata, policy, projectOf } = this.options;
    const report = await reevaluateAfterUpdate({ metadata, verdicts: this.verdicts, policy, projectOf, now: this.options.now ?? (() => new Date()) }, store, changes);
    // Without a change log there is no telling which advisories are new: verdicts only.
    for (const { finding, artifacts } of report.affects.values()) {
      this.emit({
        type: 'new_advisory_affects',
        advisory: finding.id,
        aliases: finding.aliases,
        severity: finding.severity,
        fixAvailable: artifacts.some((a) => a.fixedVersions.length > 0),
        artifacts,
      });
    }
    return report.evaluated;
  }

  async close(): Promise<void> {
    clearInterval(this.monitorTimer);
    await this.monitoring;
    await this.analysisProcess?.close();
    this.vulndb.close();
  }
}
