import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  VulnerabilityStatusPlan,
  evaluate,
  parsePolicyText,
  staticPart,
  statusOfBits,
  type EvaluationContext,
} from '../../src/policy/index.js';
import type { Finding, Severity } from '../../src/sbom/finding.js';
import type { ScanResult } from '../../src/sbom/result.js';
import { LAYER, check, finding, secret } from './helpers.js';

// The gate re-decides thousands of stored images after a database update with
// VulnerabilityStatusPlan (per match key) plus the database-independent part of the last verdict.
// That is only sound if it gives exactly the status `evaluate` gives: checked here on generated
// policies (rules, default actions, scoped and expiring exceptions) and findings.

const NOW = new Date('2025-06-01T12:00:00Z');
const DIGEST = `sha256:${'b'.repeat(64)}`;
const OTHER_DIGEST = `sha256:${'c'.repeat(64)}`;
const SEVERITIES: Severity[] = ['critical', 'high', 'medium', 'low', 'unknown'];
const IDS = ['CVE-2024-0001', 'CVE-2024-0002', 'GHSA-aaaa-bbbb-cccc', 'DSA-5001-1', 'ALPINE-CVE-2024-0003'];
const PACKAGES = ['openssl', 'zlib', 'curl'];

const daysAgo = (n: number) => new Date(NOW.getTime() - n * 86_400_000).toISOString().slice(0, 10);

const findingArb = fc
  .record({
    id: fc.constantFrom(...IDS),
    aliases: fc.subarray(IDS, { maxLength: 2 }),
    severity: fc.constantFrom(...SEVERITIES),
    fixed: fc.boolean(),
    published: fc.option(fc.integer({ min: -30, max: 400 }), { nil: undefined }),
    pkg: fc.constantFrom(...PACKAGES),
  })
  .map((f): Finding =>
    finding({
      id: f.id,
      aliases: f.aliases.filter((a) => a !== f.id),
      severity: f.severity,
      fixedVersions: f.fixed ? ['9.9-1'] : [],
      ...(f.published !== undefined ? { published: `${daysAgo(f.published)}T00:00:00Z` } : {}),
      package: { name: f.pkg, version: '1.0-1', purl: `pkg:deb/debian/${f.pkg}@1.0-1` },
    }),
  );

const vulnRuleArb = fc.record(
  {
    action: fc.constantFrom('fail', 'warn'),
    severity: fc.constantFrom<string | undefined>('critical', 'high', 'medium', 'low', 'any', undefined),
    severities: fc.option(fc.subarray(SEVERITIES, { minLength: 1 }), { nil: undefined }),
    fixAvailable: fc.option(fc.boolean(), { nil: undefined }),
    olderThanDays: fc.option(fc.integer({ min: 0, max: 365 }), { nil: undefined }),
    ids: fc.option(fc.subarray(IDS, { minLength: 1, maxLength: 2 }), { nil: undefined }),
  },
  { requiredKeys: ['action'] },
);

const exceptionArb = fc.record({
  id: fc.constantFrom(...IDS, 'r0', 'r1', 'default', 'secrets', 'aws-access-key-id'),
  scope: fc.constantFrom<unknown>(
    'global',
    { repository: 'team/app' },
    { repository: 'other/*' },
    { project: 'team' },
    { digest: DIGEST },
    { digest: OTHER_DIGEST },
  ),
  expires: fc.constantFrom<string | undefined>(undefined, daysAgo(3), daysAgo(-3)),
});

const policyArb = fc.record({
  defaultAction: fc.constantFrom('fail', 'warn', 'ignore'),
  rules: fc.array(vulnRuleArb, { maxLength: 4 }),
  secretRule: fc.option(fc.constantFrom('fail', 'warn'), { nil: undefined }),
  exceptions: fc.array(exceptionArb, { maxLength: 3 }),
});

type GeneratedPolicy = typeof policyArb extends fc.Arbitrary<infer T> ? T : never;

function policyText(p: GeneratedPolicy): string {
  const rules: unknown[] = p.rules.map((r, i) => {
    const condition: Record<string, unknown> = {};
    if (r.severities !== undefined) condition.severities = r.severities;
    else if (r.severity !== undefined) condition.severity = r.severity;
    if (r.fixAvailable !== undefined) condition.fixAvailable = r.fixAvailable;
    if (r.olderThanDays !== undefined) condition.olderThanDays = r.olderThanDays;
    if (r.ids !== undefined) condition.ids = r.ids;
    return { id: `r${i}`, action: r.action, vulnerability: condition };
  });
  // Between the vulnerability rules, so failed reasons interleave by policy order.
  if (p.secretRule !== undefined) rules.splice(Math.min(1, rules.length), 0, { id: 'secrets', action: p.secretRule, secret: {} });
  const exceptions = p.exceptions.map((e) => ({
    id: e.id,
    scope: e.scope,
    reason: 'generated',
    ...(e.expires !== undefined ? { expires: e.expires } : {}),
  }));
  // JSON is YAML: the text goes through the same parser and validation as a policy file.
  return JSON.stringify({ version: 1, defaultAction: p.defaultAction, rules, exceptions });
}


function scan(findings: Finding[], withSecret: boolean, withCheck: boolean): ScanResult {
  return {
    schemaVersion: 1,
    generator: { name: 'portcullis', version: 'test' },
    scannedAt: NOW.toISOString(),
    image: { reference: DIGEST, manifestDigest: DIGEST, configDigest: DIGEST, layers: [LAYER] },
    os: { family: 'debian', version: '12.5' },
    packages: [],
    warnings: [],
    vulnerabilities: findings,
    secrets: withSecret ? [secret()] : [],
    misconfigurations: withCheck ? [check()] : [],
  } as ScanResult;
}

describe('VulnerabilityStatusPlan', () => {
  it('gives the status evaluate gives, whole or split by package, for generated policies and findings', () => {
    fc.assert(
      fc.property(
        policyArb,
        // The matcher gives a package each advisory once (aliases merged): unique by (id, package).
        fc.uniqueArray(findingArb, { maxLength: 12, selector: (f) => `${f.id} ${f.package.name}` }),
        fc.boolean(),
        fc.boolean(),
        (p, findings, withSecret, withCheck) => {
          const policy = parsePolicyText(policyText(p), 'generated.yaml');
          const ctx: EvaluationContext = {
            project: 'team',
            repository: 'team/app',
            digest: DIGEST,
            now: NOW,
          };
          const verdict = evaluate(scan(findings, withSecret, withCheck), policy, ctx);
          const plan = new VulnerabilityStatusPlan(policy, ctx);
          expect(statusOfBits(staticPart(verdict).bits | plan.bitsOf(findings))).toBe(verdict.status);
          // Per package (what the gate does with match keys): the bits of the parts combine.
          let bits = staticPart(verdict).bits;
          let mask = 0;
          for (const name of PACKAGES) {
            const part = findings.filter((f) => f.package.name === name);
            bits |= plan.bitsOf(part);
            mask |= plan.maskOf(part);
          }
          expect(statusOfBits(bits)).toBe(verdict.status);
          // The failed rules, in the order the verdict lists them (what verdict_changed names).
          const failed = verdict.reasons.filter((r) => r.action === 'fail').map((r) => r.ruleId);
          expect(plan.failReasons(mask, staticPart(verdict).failReasons)).toEqual(failed);
        },
      ),
      { numRuns: 3000 },
    );
  });

  it('knows until when it holds: the earliest expiry of the exceptions in force', () => {
    const policy = parsePolicyText(
      policyText({
        defaultAction: 'warn',
        rules: [],
        secretRule: undefined,
        exceptions: [
          { id: 'CVE-2024-0001', scope: 'global', expires: daysAgo(-3) },
          { id: 'CVE-2024-0002', scope: 'global', expires: daysAgo(-10) },
          { id: 'CVE-2024-0002', scope: 'global', expires: daysAgo(2) },
        ],
      }),
      'p.yaml',
    );
    const plan = new VulnerabilityStatusPlan(policy, {
      project: 'team',
      repository: 'team/app',
      digest: DIGEST,
      now: NOW,
    });
    expect(plan.validUntil).toBe(Date.parse(`${daysAgo(-3)}T00:00:00Z`));
    expect(plan.bitsOf([finding({ id: 'CVE-2024-0001' })])).toBe(0);
    expect(statusOfBits(plan.bitsOf([finding({ id: 'CVE-2024-0003' })]))).toBe('warn');
  });
});
