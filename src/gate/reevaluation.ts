import { VulnerabilityStatusPlan, resolvePolicy, statusOfBits, type EffectivePolicy, type StaticFailReason } from '../policy/index.js';
import type { MatchKeyRow, RegistryMetadata, VerdictSummary } from '../store/index.js';
import { findingsForKey, packageKey, type AdvisoryStore, type KeyFinding } from '../vulndb/index.js';
import { decodeFacts, matchKeyRows } from './facts.js';
import type { PolicyInForce, PolicySource } from './policy-source.js';
import type { DeferredVerdict, VerdictService } from './verdicts.js';

/** What a database update changed (the store's change log), or null when everything may have. */
export type DatabaseChanges = { packages: { ecosystem: string; name: string }[]; records: string[] } | null;

export interface AffectedArtifact {
  repository: string;
  digest: string;
  /** The package as the advisory names it (for distro packages, the source package). */
  package: string;
  installedVersion: string;
  fixedVersions: string[];
}

export interface ReevaluationReport {
  /** Verdicts decided again (one per repository and digest). */
  evaluated: number;
  /** Of those, how many were evaluated in full because their summary could not be used. */
  fullyEvaluated: number;
  /** Of those, how many changed status. */
  changed: number;
  /** The changed advisories and the stored artifacts they affect now. */
  affects: Map<string, { finding: KeyFinding; artifacts: AffectedArtifact[] }>;
}

export interface ReevaluationDeps {
  metadata: RegistryMetadata;
  verdicts: VerdictService;
  policy: PolicySource;
  projectOf: (repository: string) => string;
  now: () => Date;
}

/** A turn of the event loop: long re-evaluations must not starve requests. */
const yieldToRequests = () => new Promise((r) => setImmediate(r));

/**
 * Re-decides the verdicts of the stored images a database update affects. Each image is known by
 * the numbers of its match keys, so finding the affected images is a scan of small integer lists,
 * and each distinct key is matched against the new database once for the whole fleet. An image's
 * status is its last full verdict's database-independent part combined with the vulnerability
 * part decided per key (`VulnerabilityStatusPlan`, the policy engine's own rule predicate).
 *
 * An image whose status moves gets a deferred verdict (status, failed rules, no document) and its
 * verdict_changed; one whose status stays keeps its verdict. Either way the document is evaluated
 * in full on the new database when someone reads it. Images without a usable summary (another
 * policy, an expired exception, an error) are evaluated in full here.
 */
export async function reevaluateAfterUpdate(deps: ReevaluationDeps, store: AdvisoryStore, changes: DatabaseChanges): Promise<ReevaluationReport> {
  const { metadata } = deps;
  const artifacts = metadata.artifacts;
  await backfillMatchKeys(metadata);
  const keys = await artifacts.matchKeys();
  let maxId = 0;
  for (const id of keys.keys()) maxId = Math.max(maxId, id);
  const changed = new Uint8Array(maxId + 1);
  if (changes === null) changed.fill(1);
  else {
    for (const p of changes.packages) {
      for (const id of await artifacts.matchKeyIds(ecosystemPrefixes(p.ecosystem), packageKey(p.ecosystem, p.name))) changed[id] = 1;
    }
  }
  const affectedImages = new Map<string, Uint32Array>();
  for (const image of await artifacts.imageMatchKeys()) {
    if (image.ids.some((id) => changed[id] === 1)) affectedImages.set(image.digest, image.ids);
  }
  const summaries = await artifacts.verdictSummaries([...affectedImages.keys()]);

  const findingsOf = (id: number): readonly KeyFinding[] => {
    const key = keys.get(id);
    return key ? findingsForKey(store, key) : [];
  };
  const report: ReevaluationReport = { evaluated: 0, fullyEvaluated: 0, changed: 0, affects: new Map() };
  const changedRecords = new Set(changes?.records ?? []);
  // The findings of changed keys that name a changed record, once per key.
  const newFindings = new Map<number, readonly KeyFinding[]>();
  const newFindingsOf = (id: number): readonly KeyFinding[] => {
    if (changed[id] !== 1) return [];
    let list = newFindings.get(id);
    if (!list) {
      list = findingsOf(id).filter((f) => changedRecords.has(f.id) || f.aliases.some((a) => changedRecords.has(a)));
      newFindings.set(id, list);
    }
    return list;
  };

  const full: VerdictSummary[] = [];
  let deferred: DeferredVerdict[] = [];
  const decider = await statusDecider(deps, findingsOf, maxId);
  const dbVersion = deps.verdicts.databaseVersion();
  for (const [i, summary] of summaries.entries()) {
    const ids = affectedImages.get(summary.digest)!;
    report.evaluated++;
    const decided = decider?.(summary, ids);
    if (decided === undefined) full.push(summary);
    else if (decided.status !== summary.status) {
      deferred.push({
        repository: summary.repository,
        digest: summary.digest,
        from: summary.status,
        status: decided.status,
        failReasons: decided.failReasons,
        dbVersion,
        staleAt: decided.staleAt,
      });
    }
    if (changedRecords.size > 0) recordAffects(report, summary, ids, newFindingsOf);
    if (i % 500 === 499) {
      report.changed += await deps.verdicts.recordDeferred(deferred);
      deferred = [];
      await yieldToRequests();
    }
  }
  report.changed += await deps.verdicts.recordDeferred(deferred);
  for (let i = 0; i < full.length; i += 20) {
    // Full evaluations write their verdicts a batch per transaction and emit verdict_changed.
    const batch = full.slice(i, i + 20);
    const results = await deps.verdicts.evaluateMany(batch.map(({ repository, digest }) => ({ repository, digest })));
    report.changed += results.filter((r, j) => r && r.stored.status !== batch[j]!.status).length;
    report.fullyEvaluated += batch.length;
    await yieldToRequests();
  }
  return report;
}

/** `Debian:12:security` is matched by keys of `Debian:12` and of `Debian` (the matcher's sub-ecosystem rule). */
function ecosystemPrefixes(ecosystem: string): string[] {
  const parts = ecosystem.split(':');
  return parts.map((_, i) => parts.slice(0, i + 1).join(':'));
}

interface Decided {
  status: VerdictSummary['status'];
  failReasons: string[];
  staleAt: string | null;
}

type Decider = (summary: VerdictSummary, ids: Uint32Array) => Decided | undefined;

/**
 * How the status of a stored verdict is decided again: undefined when its summary cannot be used
 * (it must be evaluated in full). Per-key rule masks are computed once per plan signature. No
 * decider at all when the policy cannot be loaded (every verdict is then evaluated in full, which
 * records why).
 */
async function statusDecider(deps: ReevaluationDeps, findingsOf: (id: number) => readonly KeyFinding[], maxId: number): Promise<Decider | undefined> {
  let policy: PolicyInForce;
  try {
    policy = await deps.policy.get();
  } catch {
    return undefined;
  }
  const now = deps.now();
  const effective = new Map<string, EffectivePolicy>();
  const keyMasks = new Map<string, Int32Array>();
  return (summary, ids) => {
    if (summary.policyHash !== policy.hash || summary.staticBits === null || summary.staticFail === null) return undefined;
    if (summary.status === 'error') return undefined;
    if (summary.staleAt !== null && now.getTime() >= Date.parse(summary.staleAt)) return undefined;
    const project = deps.projectOf(summary.repository);
    let resolved = effective.get(project);
    if (!resolved) {
      resolved = resolvePolicy(policy.policy, project);
      effective.set(project, resolved);
    }
    const plan = new VulnerabilityStatusPlan(resolved, { project, repository: summary.repository, digest: summary.digest, now });
    if (!plan.usable) return undefined;
    let memo = keyMasks.get(plan.signature);
    if (!memo) {
      memo = new Int32Array(maxId + 1).fill(-1);
      keyMasks.set(plan.signature, memo);
    }
    let mask = 0;
    for (const id of ids) {
      let m = memo[id]!;
      if (m < 0) {
        m = plan.maskOf(findingsOf(id));
        memo[id] = m;
      }
      mask |= m;
    }
    const status = statusOfBits(summary.staticBits | plan.bitsOfMask(mask));
    const stale = [summary.staleAt !== null ? Date.parse(summary.staleAt) : Infinity, plan.validUntil ?? Infinity];
    const staleAt = Math.min(...stale);
    return {
      status,
      failReasons: status === 'fail' ? plan.failReasons(mask, JSON.parse(summary.staticFail) as StaticFailReason[]) : [],
      staleAt: Number.isFinite(staleAt) ? new Date(staleAt).toISOString() : null,
    };
  };
}

function recordAffects(report: ReevaluationReport, summary: VerdictSummary, ids: Uint32Array, newFindingsOf: (id: number) => readonly KeyFinding[]): void {
  for (const id of ids) {
    for (const f of newFindingsOf(id)) {
      let entry = report.affects.get(f.id);
      if (!entry) {
        entry = { finding: f, artifacts: [] };
        report.affects.set(f.id, entry);
      }
      entry.artifacts.push({
        repository: summary.repository,
        digest: summary.digest,
        package: f.matchedName,
        installedVersion: f.installedVersion,
        fixedVersions: f.fixedVersions,
      });
    }
  }
}

/** Images analysed before match keys were kept get theirs from their stored facts, once. */
async function backfillMatchKeys(metadata: RegistryMetadata): Promise<void> {
  for (const digest of await metadata.artifacts.digestsWithoutMatchKeys()) {
    const facts = await metadata.artifacts.getFacts(digest);
    const rows: MatchKeyRow[] = facts?.facts ? matchKeyRows(decodeFacts(facts.facts)) : [];
    await metadata.artifacts.putMatchKeys(digest, rows);
  }
}
