import { evaluate, expiryTime, staticPart, type StaticFailReason, type Verdict } from '../policy/index.js';
import type { ScanResult } from '../sbom/result.js';
import type { RegistryMetadata, VerdictRecord, VerdictStatus } from '../store/index.js';
import { withVulnerabilities } from '../vulndb/index.js';
import { decodeFacts } from './facts.js';
import type { PolicySource } from './policy-source.js';
import type { VulnDbHandle } from './vulndb-handle.js';

function verdictRecord(repository: string, digest: string, stored: StoredVerdict): VerdictRecord {
  return {
    repository,
    digest,
    status: stored.status,
    // The summary columns below hold staticBits/staticFail; the document does not repeat them.
    verdict: JSON.stringify(publicVerdict(stored)),
    evaluatedAt: stored.evaluatedAt,
    policyHash: stored.policyHash,
    staticBits: stored.staticBits ?? null,
    staticFail: stored.staticFail ? JSON.stringify(stored.staticFail) : null,
    staleAt: stored.staleAt,
  };
}

/** A verdict as the API and the report show it: without what only re-evaluation reads. */
export function publicVerdict(stored: StoredVerdict): Omit<StoredVerdict, 'staticBits' | 'staticFail'> {
  const { staticBits: _bits, staticFail: _fail, ...rest } = stored;
  return rest;
}

/** What is stored per repository and digest: the verdict and what it was computed from. */
export interface StoredVerdict {
  status: VerdictStatus;
  verdict?: Verdict;
  /** Why there is no verdict (analysis failed, policy invalid or not answerable). */
  error?: string;
  policyHash: string | null;
  policySource: string | null;
  dbVersion: string;
  /** The earliest expiry among the exceptions the verdict relied on: after it, evaluate again. */
  staleAt: string | null;
  /** The actions of the reasons that do not depend on the vulnerability database (see `staticPart`). */
  staticBits?: number;
  /** Those reasons that fail. */
  staticFail?: StaticFailReason[];
  counts: { packages: number; vulnerabilities: number; secrets: number; misconfigurations: number };
  evaluatedAt: string;
}

export interface VerdictChange {
  repository: string;
  digest: string;
  from: VerdictStatus | null;
  to: VerdictStatus;
  /** The ids of the rules that fail now. */
  failReasons: string[];
}

/** A status decided by a bulk re-evaluation, stored without its document (see putDeferredVerdicts). */
export interface DeferredVerdict {
  repository: string;
  digest: string;
  from: VerdictStatus;
  status: VerdictStatus;
  failReasons: string[];
  dbVersion: string;
  staleAt: string | null;
}

export interface VerdictServiceOptions {
  metadata: RegistryMetadata;
  policy: PolicySource;
  vulndb: VulnDbHandle;
  projectOf: (repository: string) => string;
  now?: () => Date;
  onChange?: (change: VerdictChange) => void;
}

/**
 * Computes and keeps verdicts: facts (extracted once per digest) + the current vulnerability
 * database + the current policy. A stored verdict is used while all three are unchanged and no
 * exception it relied on has expired; otherwise it is computed again, so a pull, `policy test` in
 * CI and the API never disagree.
 */
export class VerdictService {
  private readonly now: () => Date;
  // Parsed verdicts by repository@digest: a pull of an image must not parse its verdict document
  // again. Entries are checked for staleness like stored ones, and replaced by every evaluation.
  private readonly cache = new Map<string, StoredVerdict>();

  constructor(private readonly options: VerdictServiceOptions) {
    this.now = options.now ?? (() => new Date());
  }

  /** Matches, evaluates and stores the verdict; null when the digest has not been analysed yet. */
  async evaluate(repository: string, digest: string): Promise<StoredVerdict | null> {
    return (await this.evaluateWithFindings(repository, digest))?.stored ?? null;
  }

  /** `evaluate`, also giving the matched scan result (for events that name the findings). */
  async evaluateWithFindings(repository: string, digest: string): Promise<{ stored: StoredVerdict; result: ScanResult | null } | null> {
    const computed = await this.compute(repository, digest);
    if (!computed) return null;
    const { stored } = computed;
    const previous = await this.options.metadata.artifacts.putVerdict(verdictRecord(repository, digest, stored));
    this.recorded(repository, digest, stored, previous, true);
    return computed;
  }

  /**
   * `evaluateWithFindings` for many images at once, as a database update needs: the verdicts are
   * written in one transaction (a commit per image was a third of the time at 10,000 images), and
   * a verdict is kept in the in-memory cache only when that image's was there already, so a bulk
   * re-evaluation does not fill the cache with documents nobody pulls. Results are in input order.
   */
  async evaluateMany(items: { repository: string; digest: string }[]): Promise<({ stored: StoredVerdict; result: ScanResult | null } | null)[]> {
    const out: ({ stored: StoredVerdict; result: ScanResult | null } | null)[] = [];
    for (const { repository, digest } of items) out.push(await this.compute(repository, digest));
    const written = items.flatMap((item, i) => {
      const stored = out[i]?.stored;
      return stored ? [{ ...item, stored }] : [];
    });
    if (written.length === 0) return out;
    const previous = await this.options.metadata.artifacts.putVerdicts(written.map(({ repository, digest, stored }) => verdictRecord(repository, digest, stored)));
    written.forEach(({ repository, digest, stored }, i) => this.recorded(repository, digest, stored, previous[i] ?? null, false));
    return out;
  }

  /** The version of the vulnerability database verdicts are computed on now. */
  databaseVersion(): string {
    return this.options.vulndb.version();
  }

  /**
   * Stores statuses a bulk re-evaluation decided, without documents, in one transaction, and
   * announces each change; returns how many changed.
   */
  async recordDeferred(items: DeferredVerdict[]): Promise<number> {
    if (items.length === 0) return 0;
    const evaluatedAt = this.now().toISOString();
    await this.options.metadata.artifacts.putDeferredVerdicts(
      items.map((d) => ({
        repository: d.repository,
        digest: d.digest,
        status: d.status,
        staleAt: d.staleAt,
        deferred: JSON.stringify({ failReasons: d.failReasons, dbVersion: d.dbVersion, evaluatedAt }),
      })),
    );
    let changed = 0;
    for (const d of items) {
      // The cached document is outdated: the next read evaluates it in full.
      this.cache.delete(`${d.repository}@${d.digest}`);
      if (d.from !== d.status) {
        changed++;
        this.options.onChange?.({ repository: d.repository, digest: d.digest, from: d.from, to: d.status, failReasons: d.failReasons });
      }
    }
    return changed;
  }

  /** After a verdict was written: the cache, and the change event when the status moved. */
  private recorded(repository: string, digest: string, stored: StoredVerdict, previous: VerdictStatus | null, addToCache: boolean): void {
    const key = `${repository}@${digest}`;
    if (addToCache || this.cache.has(key)) {
      if (this.cache.size >= 10_000) this.cache.clear();
      this.cache.set(key, stored);
    }
    if (previous !== stored.status) {
      const failReasons = (stored.verdict?.reasons ?? []).filter((r) => r.action === 'fail').map((r) => r.ruleId);
      this.options.onChange?.({ repository, digest, from: previous, to: stored.status, failReasons });
    }
  }

  /** Matches and evaluates, without storing: null when the digest has not been analysed yet. */
  private async compute(repository: string, digest: string): Promise<{ stored: StoredVerdict; result: ScanResult | null } | null> {
    let matched: ScanResult | null = null;
    const facts = await this.options.metadata.artifacts.getFacts(digest);
    if (!facts) return null;
    const now = this.now();
    const { store, version } = this.options.vulndb.get();
    let stored: StoredVerdict;
    const base = { dbVersion: version, evaluatedAt: now.toISOString() };
    if (facts.state === 'failed' || !facts.facts) {
      stored = {
        ...base,
        status: 'error',
        error: `the image could not be analysed: ${facts.error ?? 'unknown error'}`,
        policyHash: null,
        policySource: null,
        staleAt: null,
        counts: { packages: 0, vulnerabilities: 0, secrets: 0, misconfigurations: 0 },
      };
    } else {
      let result: ScanResult = decodeFacts(facts.facts);
      if (store) result = withVulnerabilities(result, store);
      matched = result;
      const counts = {
        packages: result.packages.length,
        vulnerabilities: result.vulnerabilities?.length ?? 0,
        secrets: result.secrets?.length ?? 0,
        misconfigurations: result.misconfigurations?.length ?? 0,
      };
      try {
        const policy = await this.options.policy.get();
        try {
          const verdict = evaluate(result, policy.policy, { project: this.options.projectOf(repository), repository, digest, now });
          const expiries = verdict.exceptionsApplied.flatMap((e) => (e.expires !== undefined ? [expiryTime(e.expires)] : [])).filter((t) => !Number.isNaN(t));
          const fixed = staticPart(verdict);
          stored = {
            ...base,
            status: verdict.status,
            verdict,
            policyHash: policy.hash,
            policySource: policy.source,
            staleAt: expiries.length > 0 ? new Date(Math.min(...expiries)).toISOString() : null,
            staticBits: fixed.bits,
            staticFail: fixed.failReasons,
            counts,
          };
        } catch (err) {
          const why = err instanceof Error ? err.message : String(err);
          const hint = store ? '' : ' (no vulnerability database: run `portcullis db update` or `portcullis db import`)';
          stored = { ...base, status: 'error', error: `the policy cannot be evaluated: ${why}${hint}`, policyHash: policy.hash, policySource: policy.source, staleAt: null, counts };
        }
      } catch (err) {
        stored = { ...base, status: 'error', error: `the policy cannot be loaded: ${(err as Error).message}`, policyHash: null, policySource: null, staleAt: null, counts };
      }
    }
    return { stored, result: matched };
  }

  /** The verdict in force now: the stored one when still valid, else a fresh evaluation. */
  async current(repository: string, digest: string): Promise<StoredVerdict | null> {
    let stored = this.cache.get(`${repository}@${digest}`);
    if (!stored) {
      const record = await this.options.metadata.artifacts.getVerdict(repository, digest);
      // A deferred status has no document yet: this read evaluates it.
      if (!record || record.deferred) return this.evaluate(repository, digest);
      stored = JSON.parse(record.verdict) as StoredVerdict;
    }
    if (await this.isStale(stored)) return this.evaluate(repository, digest);
    return stored;
  }

  private async isStale(stored: StoredVerdict): Promise<boolean> {
    if (stored.dbVersion !== this.options.vulndb.version()) return true;
    if (stored.staleAt !== null && this.now().getTime() >= Date.parse(stored.staleAt)) return true;
    let hash: string | null;
    try {
      hash = (await this.options.policy.get()).hash;
    } catch {
      hash = null;
    }
    return hash !== stored.policyHash;
  }
}
