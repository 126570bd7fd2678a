import type { StoredVerdict } from './verdicts.js';

const MAX_FINDINGS_PER_REASON = 3;

/**
 * The text a refused pull carries. docker, podman and skopeo print the registry's message as it
 * is, on one line, so it says in order: what was refused, each failed rule with its top findings
 * and their remedies, and where the whole report is.
 */
export function deniedPullMessage(repository: string, digest: string, v: StoredVerdict, reportUrl: string): string {
  const what = `pull of ${repository}@${digest} refused by policy`;
  if (v.status === 'error') return `${what}: ${v.error ?? 'the verdict could not be computed'}. Report: ${reportUrl}`;
  const parts: string[] = [];
  for (const reason of v.verdict?.reasons ?? []) {
    if (reason.action !== 'fail') continue;
    const shown = reason.findings.slice(0, MAX_FINDINGS_PER_REASON).map((f) => `${f.message} -> ${f.remedy}`);
    const more = reason.findings.length > shown.length ? ` (+${reason.findings.length - shown.length} more)` : '';
    parts.push(`[${reason.ruleId}] ${reason.message}: ${shown.join('; ')}${more}`);
  }
  const source = v.policySource ? ` (${v.policySource})` : '';
  return `${what}${source}: ${parts.join(' | ')}. Report: ${reportUrl}`;
}

/** The refusal of an enforced push: nothing was stored, so the developer fixes and pushes again. */
export function deniedPushMessage(repository: string, tag: string | undefined, digest: string, v: StoredVerdict): string {
  const pull = deniedPullMessage(repository, digest, v, '').replace(/\. Report: $/, '');
  return `push of ${repository}${tag !== undefined ? `:${tag}` : ''} refused: ${pull.replace(/^pull of \S+ refused by policy/, 'the image fails the policy')}. Nothing was stored; fix the image and push again.`;
}

export function pendingPullMessage(repository: string, digest: string, reportUrl: string): string {
  return `pull of ${repository}@${digest} refused: the image is still being analysed and has no verdict yet; pull again in a few seconds. Status: ${reportUrl}`;
}
