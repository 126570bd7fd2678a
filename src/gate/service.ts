import { PortcullisError } from '../errors.js';
import type { JobHandler } from '../jobs/index.js';
import { MediaType, isManifestMediaType } from '../oci/index.js';
import { RegistryError, type PushedManifest, type RegistryExtensions, type ServedManifest } from '../registry/index.js';
import { renderResult } from '../sbom/render.js';
import type { BlobStore, RegistryMetadata } from '../store/index.js';
import { withVulnerabilities } from '../vulndb/index.js';
import { analyseStoredImage, decodeFacts, encodeFacts, packageIndexRows } from './facts.js';
import { deniedPullMessage, pendingPullMessage } from './messages.js';
import type { PolicySource } from './policy-source.js';
import { REPORT_ARTIFACT_TYPE, SBOM_ARTIFACT_TYPE, attachReferrer } from './referrers.js';
import { VerdictService, type StoredVerdict, type VerdictChange } from './verdicts.js';
import { VulnDbHandle } from './vulndb-handle.js';

export const ANALYSE_JOB = 'analyse';
/** A push is what a developer waits for: it runs before any bulk re-evaluation. */
export const PUSH_PRIORITY = 10;

export function analysisJobKey(repository: string, digest: string): string {
  return `${ANALYSE_JOB}:${repository}@${digest}`;
}

const IMAGE_CONFIG_TYPES: ReadonlySet<string> = new Set([MediaType.ociConfig, MediaType.dockerConfig]);

/** Image manifests are analysed and gated; indexes, SBOMs, signatures and other artifacts are not. */
export function isImageManifest(mediaType: string, artifactType: string | null): boolean {
  return isManifestMediaType(mediaType) && artifactType !== null && IMAGE_CONFIG_TYPES.has(artifactType);
}

export type GateEvent =
  | { type: 'pushed'; repository: string; digest: string; tag?: string; principal: string }
  | { type: 'analysed'; repository: string; digest: string; status: string; ms: number }
  | ({ type: 'verdict_changed' } & Omit<VerdictChange, 'verdict'> & { reasons: string[] })
  | { type: 'pull_denied'; repository: string; digest: string; principal: string; status: string }
  | { type: 'blocked_pull_allowed'; repository: string; digest: string; principal: string; status: string };

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
  /** Tells the job runner that work was queued in this process. */
  notify?: () => void;
  now?: () => Date;
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

  constructor(private readonly options: GateOptions) {
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
          reasons: (c.verdict.verdict?.reasons ?? []).filter((r) => r.action === 'fail').map((r) => r.ruleId),
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
      manifestPushed: async (m: PushedManifest) => {
        this.emit({ type: 'pushed', repository: m.repository, digest: m.digest, ...(m.tag !== undefined ? { tag: m.tag } : {}), principal: m.principal });
        if (isImageManifest(m.mediaType, m.artifactType)) await this.enqueueAnalysis(m.repository, m.digest);
      },
      beforeManifestServed: (m: ServedManifest) => this.checkPull(m),
    };
  }

  /** The pull gate: throws DENIED unless the image's current verdict allows it. */
  async checkPull(m: ServedManifest): Promise<void> {
    if (!isImageManifest(m.mediaType, m.artifactType)) return;
    const verdict = await this.verdicts.current(m.repository, m.digest);
    const principal = m.principal?.name ?? 'anonymous';
    if (verdict && (verdict.status === 'pass' || verdict.status === 'warn')) return;
    if (!verdict && this.options.pending === 'allow') return;
    const status = verdict?.status ?? 'pending';
    if (m.principal && m.principal.kind !== 'robot' && m.principal.kind !== 'anonymous' && (m.principal.admin === true || (await this.options.metadata.getUser(m.principal.name))?.admin === true)) {
      // Forensics: an administrator may fetch what is blocked; the event and the audit row say so.
      this.emit({ type: 'blocked_pull_allowed', repository: m.repository, digest: m.digest, principal, status });
      return;
    }
    this.emit({ type: 'pull_denied', repository: m.repository, digest: m.digest, principal, status });
    const url = this.reportUrl(m.repository, m.digest);
    const message = verdict ? deniedPullMessage(m.repository, m.digest, verdict, url) : pendingPullMessage(m.repository, m.digest, url);
    throw new RegistryError('DENIED', message, { detail: { repository: m.repository, digest: m.digest, verdict: status, report: url } });
  }

  /**
   * Queues analysis for stored images that have no verdict (pushed while the gate was off, or
   * recorded just before a crash that lost nothing but the enqueue). Queued jobs survive restarts
   * by themselves; this closes the remaining gap, so no image stays pending forever.
   */
  async recover(): Promise<number> {
    const { metadata } = this.options;
    let queued = 0;
    let last: string | undefined;
    for (;;) {
      const repos = await metadata.listRepositories({ n: 1000, ...(last !== undefined ? { last } : {}) });
      for (const repository of repos) {
        for (const m of await metadata.listManifests(repository)) {
          if (!isImageManifest(m.mediaType, m.artifactType)) continue;
          if (await metadata.artifacts.getVerdict(repository, m.digest)) continue;
          await this.enqueueAnalysis(repository, m.digest);
          queued++;
        }
      }
      if (repos.length < 1000) return queued;
      last = repos[repos.length - 1];
    }
  }

  /** The job handlers this gate runs. */
  handlers(): Record<string, JobHandler> {
    return {
      [ANALYSE_JOB]: async (job) => {
        const { repository, digest } = job.payload as { repository: string; digest: string };
        await this.analyse(repository, digest);
      },
    };
  }

  /** Extracts facts (once per digest), evaluates, and attaches the SBOM and report as referrers. */
  async analyse(repository: string, digest: string): Promise<StoredVerdict | null> {
    const { metadata, blobs, dataDir } = this.options;
    const record = await metadata.getManifest(repository, digest);
    if (!record) return null; // deleted since the push
    const started = Date.now();
    let facts = await metadata.artifacts.getFacts(digest);
    if (!facts) {
      const chunks: Buffer[] = [];
      for await (const c of await blobs.open(digest)) chunks.push(c as Buffer);
      try {
        const result = await analyseStoredImage(
          { repository, digest, mediaType: record.mediaType, manifest: Buffer.concat(chunks), openBlob: (d) => blobs.open(d) },
          dataDir,
        );
        await metadata.artifacts.putFacts(digest, encodeFacts(result), packageIndexRows(result));
      } catch (err) {
        // Content that cannot be analysed (a bomb, a corrupt layer) will not improve on retry:
        // record why, and the gate refuses it with that reason. Anything else is retried.
        if (!(err instanceof PortcullisError)) throw err;
        await metadata.artifacts.putFailure(digest, err.message);
      }
      facts = await metadata.artifacts.getFacts(digest);
    }
    const verdict = await this.verdicts.evaluate(repository, digest);
    if (verdict && facts?.facts) {
      const subject = { digest, mediaType: record.mediaType, size: record.size };
      const { store } = this.vulndb.get();
      const base = decodeFacts(facts.facts);
      const result = store ? withVulnerabilities(base, store) : base;
      const sbom = Buffer.from(await renderResult(result, 'cyclonedx'));
      await attachReferrer({ metadata, blobs }, repository, subject, SBOM_ARTIFACT_TYPE, sbom, 'sbom.cdx.json');
      const report = Buffer.from(JSON.stringify({ subject: { repository, digest }, verdict }, null, 2));
      await attachReferrer({ metadata, blobs }, repository, subject, REPORT_ARTIFACT_TYPE, report, 'portcullis-report.json');
    }
    this.emit({ type: 'analysed', repository, digest, status: verdict?.status ?? 'error', ms: Date.now() - started });
    return verdict;
  }

  close(): void {
    this.vulndb.close();
  }
}
