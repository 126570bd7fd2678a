import { describe, expect, it } from 'vitest';
import type { Package } from '../../src/sbom/model.js';
import type { ScanResult } from '../../src/sbom/result.js';
import { PolicyError, builtinPolicy, evaluate, parsePolicyText, type EvaluationContext } from '../../src/policy/index.js';
import { LAYER, check, finding, secret } from './helpers.js';

const NOW = new Date('2025-06-01T12:00:00Z');
const DIGEST = `sha256:${'b'.repeat(64)}`;

function pkg(over: Partial<Package> & { name: string }): Package {
  return {
    type: 'deb',
    version: '1.0-1',
    purl: `pkg:deb/debian/${over.name}@${over.version ?? '1.0-1'}`,
    paths: ['var/lib/dpkg/status'],
    licenses: [],
    layer: LAYER,
    foundBy: 'dpkg',
    ...over,
  };
}


function scan(over: Partial<ScanResult> = {}): ScanResult {
  return {
    schemaVersion: 1,
    generator: { name: 'portcullis', version: 'test' },
    scannedAt: NOW.toISOString(),
    image: { reference: 'oci:img', manifestDigest: DIGEST, configDigest: '', layers: [LAYER] },
    os: null,
    packages: [],
    warnings: [],
    vulnerabilities: [],
    secrets: [],
    misconfigurations: [],
    ...over,
  };
}

const policy = (yaml: string) => parsePolicyText(`version: 1\n${yaml}`, 'test.yaml');
const ctx = (over: Partial<EvaluationContext> = {}): EvaluationContext => ({ now: NOW, ...over });

const CRITICAL_FIXED = finding({ id: 'CVE-2024-0001', severity: 'critical', fixedVersions: ['3.0.13-1'] });
const CRITICAL_UNFIXED = finding({ id: 'CVE-2024-0002', severity: 'critical', fixedVersions: [] });
const UNKNOWN_FIXED = finding({
  id: 'ALPINE-CVE-2022-37434',
  aliases: ['CVE-2022-37434'],
  severity: 'unknown',
  ecosystem: 'Alpine:v3.11',
  installedVersion: '1.2.11-r3',
  fixedVersions: ['1.2.11-r4'],
  package: { type: 'apk', namespace: 'alpine', name: 'zlib', version: '1.2.11-r3', purl: 'pkg:apk/alpine/zlib@1.2.11-r3' },
});

describe('evaluate: vulnerability rules', () => {
  it('fails on a fixable advisory of any severity, with the version to upgrade to', () => {
    const v = evaluate(
      scan({ vulnerabilities: [UNKNOWN_FIXED] }),
      policy('defaultAction: ignore\nrules:\n  - { id: fixable, action: fail, vulnerability: { severity: any, fixAvailable: true } }'),
      ctx(),
    );
    expect(v.status).toBe('fail');
    expect(v.reasons).toHaveLength(1);
    const [r] = v.reasons;
    expect(r).toMatchObject({ ruleId: 'fixable', action: 'fail', kind: 'vulnerability' });
    expect(r!.findings[0]).toMatchObject({ id: 'ALPINE-CVE-2022-37434', fixedVersion: '1.2.11-r4', installedVersion: '1.2.11-r3' });
    expect(r!.remedy).toBe('upgrade zlib 1.2.11-r3 to 1.2.11-r4 (zlib@1.2.11-r4)');
  });

  it('a minimum severity does not match findings of unknown severity; "any" does', () => {
    const result = scan({ vulnerabilities: [UNKNOWN_FIXED] });
    const critical = policy('defaultAction: ignore\nrules:\n  - { id: crit, action: fail, vulnerability: { severity: critical } }');
    expect(evaluate(result, critical, ctx()).status).toBe('pass');
    expect(evaluate(scan({ vulnerabilities: [CRITICAL_FIXED] }), critical, ctx()).status).toBe('fail');
    const low = policy('defaultAction: ignore\nrules:\n  - { id: low, action: fail, vulnerability: { severity: low } }');
    expect(evaluate(result, low, ctx()).status).toBe('pass');
    const exact = policy('defaultAction: ignore\nrules:\n  - { id: u, action: warn, vulnerability: { severities: [unknown] } }');
    expect(evaluate(result, exact, ctx()).status).toBe('warn');
  });

  it('fixAvailable: true matches only fixable findings, false only unfixed ones', () => {
    const result = scan({ vulnerabilities: [CRITICAL_FIXED, CRITICAL_UNFIXED] });
    const ids = (yaml: string) =>
      evaluate(result, policy(`defaultAction: ignore\nrules:\n  - ${yaml}`), ctx()).reasons.flatMap((r) => r.findings.map((f) => f.id));
    expect(ids('{ id: a, action: fail, vulnerability: { fixAvailable: true } }')).toEqual(['CVE-2024-0001']);
    expect(ids('{ id: a, action: fail, vulnerability: { fixAvailable: false } }')).toEqual(['CVE-2024-0002']);
    expect(ids('{ id: a, action: fail, vulnerability: {} }')).toEqual(['CVE-2024-0001', 'CVE-2024-0002']);
    expect(ids('{ id: a, action: fail, vulnerability: { ids: [cve-2024-0002] } }')).toEqual(['CVE-2024-0002']);
  });

  it('olderThanDays uses the published date; findings without one are noted, not matched', () => {
    const old = finding({ id: 'CVE-OLD', published: '2025-04-01T00:00:00Z' });
    const fresh = finding({ id: 'CVE-NEW', published: '2025-05-25T00:00:00Z' });
    const undated = finding({ id: 'CVE-UNDATED' });
    const v = evaluate(
      scan({ vulnerabilities: [old, fresh, undated] }),
      policy('defaultAction: ignore\nrules:\n  - { id: stale, action: fail, vulnerability: { olderThanDays: 30 } }'),
      ctx(),
    );
    expect(v.reasons[0]!.findings.map((f) => f.id)).toEqual(['CVE-OLD']);
    expect(v.notes).toEqual(['rule "stale": 1 vulnerability without a published date could not be checked against olderThanDays']);
  });

  it('the remedy picks the lowest fix above the installed version, and one upgrade per package', () => {
    const a = finding({ id: 'CVE-A', installedVersion: '2.0.0', fixedVersions: ['1.9.9', '2.0.5'], ecosystem: 'npm', package: { type: 'npm', name: 'lib', version: '2.0.0', purl: 'pkg:npm/lib@2.0.0' } });
    const b = finding({ id: 'CVE-B', installedVersion: '2.0.0', fixedVersions: ['2.0.10'], ecosystem: 'npm', package: { type: 'npm', name: 'lib', version: '2.0.0', purl: 'pkg:npm/lib@2.0.0' } });
    const v = evaluate(scan({ vulnerabilities: [b, a] }), policy('defaultAction: ignore\nrules:\n  - { id: all, action: fail, vulnerability: {} }'), ctx());
    expect(v.reasons[0]!.findings.map((f) => [f.id, f.fixedVersion])).toEqual([
      ['CVE-A', '2.0.5'],
      ['CVE-B', '2.0.10'],
    ]);
    // 2.0.10 > 2.0.5 in SemVer, though not as text.
    expect(v.reasons[0]!.remedy).toBe('upgrade lib 2.0.0 to 2.0.10 (lib@2.0.10)');
  });

  it('fails closed when the scan has no vulnerability data', () => {
    const p = policy('rules:\n  - { id: crit, action: fail, vulnerability: { severity: critical } }');
    expect(() => evaluate(scan({ vulnerabilities: undefined }), p, ctx())).toThrow(PolicyError);
    expect(() => evaluate(scan({ vulnerabilities: undefined }), p, ctx())).toThrow(/rule "crit" needs vulnerabilities.*portcullis db update.*never passes/);
    expect(() => evaluate(scan({ secrets: undefined }), builtinPolicy(), ctx())).toThrow(/needs secret findings/);
  });
});

describe('evaluate: secret, misconfiguration, package, licence rules', () => {
  it('secret: any secret fails; a rule list narrows it; the remedy says remove and rotate', () => {
    const result = scan({ secrets: [secret(), secret({ ruleId: 'github-pat', title: 'GitHub token', location: 'config', target: 'Env[0]', line: undefined, layer: undefined })] });
    const any = evaluate(result, policy('defaultAction: ignore\nrules:\n  - { id: s, action: fail, secret: {} }'), ctx());
    expect(any.status).toBe('fail');
    // Sorted by where they are (config fields sort before layer paths).
    expect(any.reasons[0]!.findings.map((f) => f.id)).toEqual(['github-pat', 'aws-access-key-id']);
    expect(any.reasons[0]!.findings[1]!.remedy).toMatch(/remove the secret from app\/\.env \(line 2\).*rotate the AWS access key ID/);
    expect(any.reasons[0]!.findings[0]!.remedy).toMatch(/remove it from Env\[0\] and pass it at run time/);
    expect(JSON.stringify(any)).not.toMatch(/AKIAIOSFODNN7EXAMPLE/);
    const narrow = evaluate(result, policy('defaultAction: ignore\nrules:\n  - { id: s, action: fail, secret: { rules: [github-*] } }'), ctx());
    expect(narrow.reasons[0]!.findings.map((f) => f.id)).toEqual(['github-pat']);
    expect(evaluate(scan(), policy('rules:\n  - { id: s, action: fail, secret: {} }'), ctx()).status).toBe('pass');
  });

  it('misconfiguration: chosen check ids fail, with the check remedy and where to change it', () => {
    const result = scan({ misconfigurations: [check(), check({ id: 'PC-DF-001', title: 'x', target: 'Dockerfile', line: 7, remedy: 'Pin the version.' })] });
    const v = evaluate(result, policy('defaultAction: ignore\nrules:\n  - { id: m, action: fail, misconfiguration: { ids: [PC-DF-*] } }'), ctx());
    expect(v.reasons[0]!.findings).toHaveLength(1);
    expect(v.reasons[0]!.findings[0]!.remedy).toBe('Pin the version. (Dockerfile:7)');
    const none = evaluate(result, policy('defaultAction: ignore\nrules:\n  - { id: m, action: fail, misconfiguration: { ids: [PC-IMG-003] } }'), ctx());
    expect(none.status).toBe('pass');
  });

  it('package: denied names, optionally by type', () => {
    const result = scan({
      packages: [pkg({ name: 'openssh-server' }), pkg({ name: 'sudo', type: 'apk', purl: 'pkg:apk/alpine/sudo@1' }), pkg({ name: 'bash' })],
    });
    const v = evaluate(result, policy('rules:\n  - { id: deny, action: fail, package: { names: [openssh-server, sudo] } }'), ctx());
    expect(v.reasons[0]!.findings.map((f) => f.id)).toEqual(['openssh-server', 'sudo']);
    expect(v.reasons[0]!.findings[0]!.remedy).toMatch(/^remove openssh-server from the image \(installed in layer 0/);
    const debOnly = evaluate(result, policy('rules:\n  - { id: deny, action: fail, package: { names: [sudo], types: [deb] } }'), ctx());
    expect(debOnly.status).toBe('pass');
  });

  it('licence: denied ids in expressions; an OR with an allowed choice is fine', () => {
    const result = scan({
      packages: [
        pkg({ name: 'a', licenses: ['GPL-3.0-only'] }),
        pkg({ name: 'b', licenses: ['MIT OR GPL-3.0-only'] }),
        pkg({ name: 'c', licenses: ['MIT AND GPL-3.0-or-later'] }),
        pkg({ name: 'd', licenses: ['MIT'] }),
      ],
    });
    const v = evaluate(result, policy('rules:\n  - { id: lic, action: warn, licence: { denied: ["GPL-3.0-*"] } }'), ctx());
    expect(v.status).toBe('warn');
    expect(v.reasons[0]!.findings.map((f) => `${f.package!.name}:${f.id}`)).toEqual(['a:GPL-3.0-only', 'c:GPL-3.0-or-later']);
  });
});

describe('evaluate: base image and signature rules', () => {
  const base = (name?: string, where: 'labels' | 'annotations' = 'annotations') =>
    scan({
      image: {
        reference: 'oci:img',
        manifestDigest: DIGEST,
        configDigest: '',
        layers: [LAYER],
        ...(name !== undefined ? { [where]: { 'org.opencontainers.image.base.name': name } } : {}),
      },
    });
  const allowed = policy('defaultAction: ignore\nrules:\n  - { id: base, action: fail, baseImage: { allowed: ["alpine", "cgr.dev/chainguard/*"] } }');

  it('allows listed bases (short names normalised, no tag = any tag), from annotations or labels', () => {
    expect(evaluate(base('docker.io/library/alpine:3.20'), allowed, ctx()).status).toBe('pass');
    expect(evaluate(base('alpine:3.20', 'labels'), allowed, ctx()).status).toBe('pass');
    expect(evaluate(base('cgr.dev/chainguard/static:latest'), allowed, ctx()).status).toBe('pass');
    const bad = evaluate(base('ubuntu:24.04'), allowed, ctx());
    expect(bad.status).toBe('fail');
    expect(bad.reasons[0]!.findings[0]).toMatchObject({ id: 'ubuntu:24.04', remedy: 'rebuild FROM one of: alpine, cgr.dev/chainguard/*' });
    // A pattern with a tag pins it.
    const pinned = policy('defaultAction: ignore\nrules:\n  - { id: base, action: fail, baseImage: { allowed: ["alpine:3.20"] } }');
    expect(evaluate(base('alpine:3.19'), pinned, ctx()).status).toBe('fail');
  });

  it('an unrecorded base image takes the rule action unless whenUnknown says otherwise', () => {
    expect(evaluate(base(), allowed, ctx()).status).toBe('fail');
    expect(evaluate(base(), allowed, ctx()).reasons[0]!.findings[0]!.remedy).toMatch(/LABEL org\.opencontainers\.image\.base\.name=/);
    const lenient = policy('defaultAction: ignore\nrules:\n  - { id: base, action: fail, baseImage: { allowed: [alpine], whenUnknown: warn } }');
    expect(evaluate(base(), lenient, ctx()).status).toBe('warn');
  });

  it('signature: not verifiable yet, so the policy decides; a verified signature passes', () => {
    const required = policy('defaultAction: ignore\nrules:\n  - { id: signed, action: fail, signature: {} }');
    const v = evaluate(scan(), required, ctx());
    expect(v.status).toBe('fail');
    expect(v.reasons[0]!.findings[0]!.message).toMatch(/cannot be verified yet/);
    const later = policy('defaultAction: ignore\nrules:\n  - { id: signed, action: fail, signature: { whenUnverifiable: ignore } }');
    expect(evaluate(scan(), later, ctx()).status).toBe('pass');
    expect(evaluate(scan(), required, ctx({ signature: { verified: true, detail: 'key k1' } })).status).toBe('pass');
    expect(evaluate(scan(), required, ctx({ signature: { verified: false, detail: 'no signature found' } })).reasons[0]!.findings[0]!.message).toBe(
      'no valid signature: no signature found',
    );
  });
});

describe('evaluate: default action', () => {
  const result = scan({ vulnerabilities: [CRITICAL_FIXED, UNKNOWN_FIXED], misconfigurations: [check()] });

  it('findings no rule matched warn by default, one reason per kind, after the rule reasons', () => {
    const v = evaluate(result, policy('rules:\n  - { id: crit, action: fail, vulnerability: { severity: critical } }'), ctx());
    expect(v.status).toBe('fail');
    expect(v.reasons.map((r) => `${r.action} ${r.ruleId} ${r.kind} ${r.findings.map((f) => f.id).join(',')}`)).toEqual([
      'fail crit vulnerability CVE-2024-0001',
      'warn default vulnerability ALPINE-CVE-2022-37434',
      'warn default misconfiguration PC-IMG-001',
    ]);
  });

  it('defaultAction fail and ignore', () => {
    expect(evaluate(result, policy('defaultAction: fail'), ctx()).status).toBe('fail');
    expect(evaluate(result, policy('defaultAction: ignore'), ctx())).toMatchObject({ status: 'pass', reasons: [] });
    expect(evaluate(scan(), policy('defaultAction: warn'), ctx()).status).toBe('pass');
  });

  it('the built-in policy: fails on fixable criticals, secrets and SSH servers, warns on the rest', () => {
    expect(evaluate(scan({ vulnerabilities: [CRITICAL_UNFIXED] }), builtinPolicy(), ctx()).status).toBe('warn');
    expect(evaluate(scan({ vulnerabilities: [CRITICAL_FIXED] }), builtinPolicy(), ctx()).status).toBe('fail');
    expect(evaluate(scan({ secrets: [secret()] }), builtinPolicy(), ctx()).status).toBe('fail');
    expect(evaluate(scan({ misconfigurations: [check({ id: 'PC-IMG-003' })] }), builtinPolicy(), ctx()).status).toBe('fail');
    expect(evaluate(scan({ misconfigurations: [check()] }), builtinPolicy(), ctx()).status).toBe('warn');
    expect(evaluate(scan(), builtinPolicy(), ctx()).status).toBe('pass');
  });

  it('is deterministic: the same inputs in another order give the same verdict', () => {
    const p = policy('rules:\n  - { id: crit, action: fail, vulnerability: {} }');
    const a = evaluate(scan({ vulnerabilities: [CRITICAL_FIXED, UNKNOWN_FIXED, CRITICAL_UNFIXED] }), p, ctx());
    const b = evaluate(scan({ vulnerabilities: [CRITICAL_UNFIXED, UNKNOWN_FIXED, CRITICAL_FIXED] }), p, ctx());
    expect(b).toEqual(a);
  });
});

describe('evaluate: exceptions', () => {
  const result = scan({ vulnerabilities: [UNKNOWN_FIXED] });
  const withException = (exception: string) =>
    policy(`defaultAction: ignore
rules:
  - { id: fixable, action: fail, vulnerability: { severity: any, fixAvailable: true } }
exceptions:
  - ${exception}
`);

  it('an exception by advisory id or alias lets the image pass, and is reported', () => {
    for (const id of ['ALPINE-CVE-2022-37434', 'cve-2022-37434']) {
      const v = evaluate(result, withException(`{ id: ${id}, scope: global, reason: not reachable, author: alice, expires: 2025-12-31 }`), ctx());
      expect(v.status).toBe('pass');
      expect(v.exceptionsApplied).toHaveLength(1);
      expect(v.exceptionsApplied[0]).toMatchObject({ id, reason: 'not reachable', author: 'alice', expires: '2025-12-31', origin: 'exceptions[0]' });
      expect(v.exceptionsApplied[0]!.matches.map((m) => `${m.ruleId} ${m.finding.id}`)).toEqual(['fixable ALPINE-CVE-2022-37434']);
    }
  });

  it('an exception naming a rule id covers that rule', () => {
    const v = evaluate(result, withException('{ id: fixable, scope: global, reason: accepted for now }'), ctx());
    expect(v.status).toBe('pass');
  });

  it('an exception scoped to a project, repository or digest applies only there', () => {
    const project = withException('{ id: CVE-2022-37434, scope: { project: "team-*" }, reason: r }');
    expect(evaluate(result, project, ctx({ project: 'team-web' })).status).toBe('pass');
    expect(evaluate(result, project, ctx({ project: 'other' })).status).toBe('fail');
    expect(evaluate(result, project, ctx()).status).toBe('fail');

    const repository = withException('{ id: CVE-2022-37434, scope: { repository: team/api }, reason: r }');
    expect(evaluate(result, repository, ctx({ repository: 'team/api' })).status).toBe('pass');
    expect(evaluate(result, repository, ctx({ repository: 'team/web' })).status).toBe('fail');

    const digest = withException(`{ id: CVE-2022-37434, scope: { digest: "${DIGEST}" }, reason: r }`);
    expect(evaluate(result, digest, ctx()).status).toBe('pass');
    expect(evaluate(result, digest, ctx({ digest: `sha256:${'c'.repeat(64)}` })).status).toBe('fail');

    const both = withException('{ id: CVE-2022-37434, scope: { project: team, repository: team/api }, reason: r }');
    expect(evaluate(result, both, ctx({ project: 'team', repository: 'team/web' })).status).toBe('fail');
    expect(evaluate(result, both, ctx({ project: 'team', repository: 'team/api' })).status).toBe('pass');
  });

  it('an expired exception stops applying by itself and is reported as expired', () => {
    const p = withException('{ id: ALPINE-CVE-2022-37434, scope: global, reason: waiting for the fix, expires: 2025-06-01 }');
    // 2025-06-01 means until 00:00 UTC that day; NOW is noon.
    const v = evaluate(result, p, ctx());
    expect(v.status).toBe('fail');
    expect(v.exceptionsApplied).toEqual([]);
    expect(v.expiredExceptions).toHaveLength(1);
    expect(v.expiredExceptions[0]).toMatchObject({ id: 'ALPINE-CVE-2022-37434', expires: '2025-06-01' });
    expect(v.expiredExceptions[0]!.matches).toHaveLength(1);
    // The day before, it still applied.
    expect(evaluate(result, p, ctx({ now: new Date('2025-05-31T23:59:59Z') })).status).toBe('pass');
    // A date-time expiry is exact.
    const exact = withException('{ id: ALPINE-CVE-2022-37434, scope: global, reason: r, expires: "2025-06-01T13:00:00Z" }');
    expect(evaluate(result, exact, ctx()).status).toBe('pass');
  });

  it('exceptions cover default-action findings too; project override exceptions are scoped to the project', () => {
    const p = policy(`rules: []
projects:
  web:
    exceptions:
      - { id: ALPINE-CVE-2022-37434, reason: tracked in JIRA-1 }
`);
    expect(evaluate(result, p, ctx({ project: 'web' })).status).toBe('pass');
    expect(evaluate(result, p, ctx({ project: 'api' })).status).toBe('warn');
  });

  it('per-project overrides change the verdict for that project only', () => {
    const p = policy(`defaultAction: ignore
rules:
  - { id: fixable, action: fail, vulnerability: { fixAvailable: true } }
projects:
  sandbox:
    rules:
      - { id: fixable, action: warn, vulnerability: { fixAvailable: true } }
`);
    expect(evaluate(result, p, ctx({ project: 'prod' })).status).toBe('fail');
    const v = evaluate(result, p, ctx({ project: 'sandbox' }));
    expect(v.status).toBe('warn');
    expect(v.policy.overrides).toEqual(['sandbox']);
  });
});
