import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { run } from '../helpers/docker-registry.js';
import { FIXTURE_SKIP_REASON, FIXTURES, HAVE_FIXTURES, REPO_ROOT, fixtureImage } from '../helpers/fixtures.js';
import { writeOciLayout } from '../helpers/image-builder.js';

// Through the built CLI (npm run build first), as CI would run it.
const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-policy-cli-'));
const data = join(tmp, 'data');
const cleanImage = join(tmp, 'clean');
const secretImage = join(tmp, 'secret');
function runIn(cwd: string, args: string[]) {
  // The CLI reads ./portcullis.yaml from its working folder; run it from a folder the test owns.
  return run('sh', ['-c', `cd "$1" && shift && exec node "$@"`, 'sh', cwd, CLI, ...args]);
}

const write = (name: string, text: string) => {
  const path = join(tmp, name);
  writeFileSync(path, text);
  return path;
};

interface VerdictJson {
  status: string;
  reasons: Array<{ ruleId: string; action: string; remedy: string; findings: Array<{ id: string; fixedVersion?: string; package?: { name: string } }> }>;
  exceptionsApplied: Array<{ id: string }>;
  expiredExceptions: Array<{ id: string; expires: string }>;
  context: { project?: string; repository?: string; digest?: string };
}
const verdictOf = (stdout: string) => JSON.parse(stdout) as VerdictJson;

// A random token of the right shape, so no allowlist of documented examples can hide it.
const TOKEN = `ghp_${randomBytes(27).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 36)}`;

const RECORDS = [
  {
    id: 'ALPINE-CVE-2026-1000',
    modified: '2026-01-01T00:00:00Z',
    published: '2026-01-01T00:00:00Z',
    upstream: ['CVE-2026-1000'],
    affected: [{ package: { ecosystem: 'Alpine:v3.20', name: 'musl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.2.5-r1' }] }] }],
  },
  {
    id: 'ALPINE-CVE-2026-1001',
    modified: '2026-01-01T00:00:00Z',
    affected: [{ package: { ecosystem: 'Alpine:v3.20', name: 'zlib' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }] }] }],
  },
  { id: 'CVE-2026-1000', modified: '2026-01-01T00:00:00Z', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] },
];

const ALPINE_LAYER = [
  { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n' },
  { name: 'lib/apk/db/installed', content: 'P:musl\nV:1.2.5-r0\no:musl\n\nP:zlib\nV:1.3.1-r1\no:zlib\n' },
];

beforeAll(async () => {
  const base = { User: '1000', Healthcheck: { Test: ['CMD', 'true'] }, Labels: { 'org.opencontainers.image.base.name': 'docker.io/library/alpine:3.20' } };
  await writeOciLayout(cleanImage, [ALPINE_LAYER], { config: base });
  await writeOciLayout(secretImage, [[{ name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' }, { name: 'app/config.env', content: `GITHUB_TOKEN=${TOKEN}\n` }]], {
    config: base,
  });
  const osv = join(tmp, 'osv');
  mkdirSync(osv);
  for (const r of RECORDS) writeFileSync(join(osv, `${r.id}.json`), JSON.stringify(r));
  const imported = await runIn(tmp, ['db', 'import', osv, '--data', data]);
  expect(imported.code, imported.stderr).toBe(0);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const test = (image: string, ...args: string[]) => runIn(tmp, ['policy', 'test', `oci:${image}`, '--data', data, ...args]);

describe('portcullis policy show', () => {
  it('prints the built-in policy when none is configured', async () => {
    const r = await runIn(tmp, ['policy', 'show']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^# policy in force: built-in policy\n# The built-in Portcullis policy/);
    expect(r.stdout).toMatch(/id: no-secrets/);
  });

  it('prints a policy file normalised, and the effective policy of a project', async () => {
    const file = write(
      'show.yaml',
      'version: 1\nrules:\n  - { id: crit, action: fail, vulnerability: { severity: critical } }\nprojects:\n  "team-*":\n    rules:\n      - { id: crit, action: warn, vulnerability: { severity: critical } }\n',
    );
    const plain = await runIn(tmp, ['policy', 'show', '--policy', file]);
    expect(plain.code, plain.stderr).toBe(0);
    expect(plain.stdout).toMatch(/defaultAction: warn/);
    expect(plain.stdout).toMatch(/projects:/);
    const project = await runIn(tmp, ['policy', 'show', '--policy', file, '--project', 'team-a']);
    expect(project.stdout).toMatch(/# project: team-a; overrides applied: team-\*/);
    expect(project.stdout).toMatch(/action: warn/);
    expect(project.stdout).not.toMatch(/projects:/);
  });

  it('reads the policy: key of portcullis.yaml, as a path relative to it or inline', async () => {
    const dir = join(tmp, 'configured');
    mkdirSync(join(dir, 'policies'), { recursive: true });
    writeFileSync(join(dir, 'policies', 'p.yaml'), 'version: 1\nname: from-file\n');
    writeFileSync(join(dir, 'portcullis.yaml'), 'policy: policies/p.yaml\n');
    const byPath = await runIn(dir, ['policy', 'show']);
    expect(byPath.code, byPath.stderr).toBe(0);
    expect(byPath.stdout).toMatch(/name: from-file/);

    const inline = join(tmp, 'inline');
    mkdirSync(inline);
    writeFileSync(join(inline, 'portcullis.yaml'), 'data: ./data\npolicy:\n  version: 1\n  name: inline\n  defaultAction: fail\n');
    const r = await runIn(inline, ['policy', 'show']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/# policy in force: portcullis\.yaml: policy/);
    expect(r.stdout).toMatch(/defaultAction: fail/);

    writeFileSync(join(inline, 'portcullis.yaml'), 'policy:\n  version: 1\n  rules:\n    - id: x\n      action: block\n      secret: {}\n');
    const bad = await runIn(inline, ['policy', 'show']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/portcullis\.yaml:5: policy\.rules\[0\]\.action: action must be fail or warn/);
  });

  it('an invalid policy file is an error (exit 2) naming the file and line', async () => {
    const file = write('bad.yaml', 'version: 1\nexceptions:\n  - id: CVE-1\n    scope: global\n');
    const r = await runIn(tmp, ['policy', 'show', '--policy', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.yaml:3: exceptions\[0\]\.reason: is required/);
  });
});

describe('portcullis policy test', () => {
  it('fails closed: no vulnerability database is an error, never a pass', async () => {
    const r = await runIn(tmp, ['policy', 'test', `oci:${cleanImage}`, '--data', join(tmp, 'empty')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no vulnerability database/);
  });

  it('an invalid policy is an error before any scan', async () => {
    const file = write('broken.yaml', 'version: 1\nrules:\n  - { id: x, action: fail }\n');
    const r = await test(cleanImage, '--policy', file);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/broken\.yaml:3: rules\[0\]: rule "x" needs one condition/);
  });

  it('the built-in policy fails a fixable critical vulnerability, with the upgrade to make (exit 1)', async () => {
    const r = await test(cleanImage);
    expect(r.code, r.stderr).toBe(1);
    expect(r.stdout).toMatch(/^FAIL {2}oci:/);
    expect(r.stdout).toMatch(/FAIL {2}critical-fixable: 1 vulnerability/);
    expect(r.stdout).toMatch(/fix: upgrade musl 1\.2\.5-r0 to 1\.2\.5-r1 \(musl@1\.2\.5-r1\)/);
    expect(r.stdout).toMatch(/WARN {2}default: 1 vulnerability no rule matched/);
    const json = verdictOf((await test(cleanImage, '--format', 'json')).stdout);
    expect(json.status).toBe('fail');
    expect(json.reasons.map((x) => `${x.action} ${x.ruleId}`)).toEqual(['fail critical-fixable', 'warn default']);
    expect(json.reasons[0]!.findings[0]).toMatchObject({ id: 'ALPINE-CVE-2026-1000', fixedVersion: '1.2.5-r1' });
    expect(json.context.digest).toMatch(/^sha256:/);
  });

  it('the built-in policy fails any secret', async () => {
    const r = await test(secretImage, '--format', 'json');
    expect(r.code, r.stderr).toBe(1);
    const v = verdictOf(r.stdout);
    expect(v.reasons[0]).toMatchObject({ ruleId: 'no-secrets', action: 'fail' });
    expect(v.reasons[0]!.remedy).toMatch(/rotate/);
    expect(r.stdout).not.toContain(TOKEN);
  });

  it('warn exits 0, or 1 with --fail-on-warn; -o writes the verdict to a file', async () => {
    const file = write('warn.yaml', 'version: 1\ndefaultAction: ignore\nrules:\n  - { id: any, action: warn, vulnerability: {} }\n');
    const r = await test(cleanImage, '--policy', file);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^WARN/);
    expect((await test(cleanImage, '--policy', file, '--fail-on-warn')).code).toBe(1);
    const out = join(tmp, 'verdict.json');
    expect((await test(cleanImage, '--policy', file, '--format', 'json', '-o', out)).stdout).toBe('');
  });

  it('exceptions apply in their scope (repository, project from the repository), and expire by themselves', async () => {
    const file = (expires: string) =>
      write(
        `exc-${expires}.yaml`,
        `version: 1
defaultAction: ignore
rules:
  - { id: crit, action: fail, vulnerability: { severity: critical } }
exceptions:
  - id: CVE-2026-1000
    scope: { project: team }
    reason: musl is not reachable from the entrypoint
    author: alice@example.com
    expires: ${expires}
`,
      );
    const applies = await test(cleanImage, '--policy', file('2999-01-01'), '--repository', 'team/api', '--format', 'json');
    expect(applies.code, applies.stderr).toBe(0);
    const v = verdictOf(applies.stdout);
    expect(v).toMatchObject({ status: 'pass', context: { project: 'team', repository: 'team/api' } });
    expect(v.exceptionsApplied.map((e) => e.id)).toEqual(['CVE-2026-1000']);

    expect((await test(cleanImage, '--policy', file('2999-01-01'), '--project', 'other')).code).toBe(1);

    const expired = await test(cleanImage, '--policy', file('2020-01-01'), '--repository', 'team/api');
    expect(expired.code).toBe(1);
    expect(expired.stdout).toMatch(/expired exceptions \(no longer applied; renew or remove them\):\n {2}CVE-2026-1000 \(project team\) expired 2020-01-01/);
  });

  it('base image rules read the recorded base name', async () => {
    const allowed = write('base-ok.yaml', 'version: 1\ndefaultAction: ignore\nrules:\n  - { id: base, action: fail, baseImage: { allowed: [alpine] } }\n');
    expect((await test(cleanImage, '--policy', allowed)).code).toBe(0);
    const denied = write('base-no.yaml', 'version: 1\ndefaultAction: ignore\nrules:\n  - { id: base, action: fail, baseImage: { allowed: ["cgr.dev/*"] } }\n');
    const r = await test(cleanImage, '--policy', denied);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/base image docker\.io\/library\/alpine:3\.20 is not allowed/);
  });

  it('refuses Dockerfiles and manifests: those are scanned with portcullis scan', async () => {
    const r = await runIn(tmp, ['policy', 'test', 'dockerfile:./Dockerfile']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/policy test evaluates images/);
  });
});

describe.skipIf(!HAVE_FIXTURES)(`portcullis policy test on the fixture images${FIXTURE_SKIP_REASON}`, () => {
  const fixtureData = join(tmp, 'fixture-data');
  const fixture = (name: string, ...args: string[]) =>
    runIn(tmp, ['policy', 'test', `oci-archive:${fixtureImage(`${name}.tar`)}`, '--data', fixtureData, ...args]);
  const fixablePolicy = (exception = '') =>
    write(
      `fixable-${exception === '' ? 'plain' : exception.length}.yaml`,
      `version: 1
defaultAction: ignore
rules:
  - id: any-fixable
    action: fail
    vulnerability: { severity: any, fixAvailable: true }
${exception}`,
    );
  const exception = (expires: string) => `exceptions:
  - id: ALPINE-CVE-2022-37434
    scope: global
    reason: zlib inflate is not used with untrusted input here
    author: alice@example.com
    expires: ${expires}
`;

  beforeAll(async () => {
    const zips = ['Alpine', 'npm'].map((e) => join(FIXTURES, 'vulndb', e, 'all.zip'));
    const r = await runIn(tmp, ['db', 'import', ...zips, '--data', fixtureData]);
    expect(r.code, r.stderr).toBe(0);
  }, 120_000);

  it('alpine-3.11 fails "any advisory with a fix available" with ALPINE-CVE-2022-37434 on zlib, remedy zlib 1.2.11-r4', async () => {
    const r = await fixture('alpine-3.11', '--policy', fixablePolicy(), '--format', 'json');
    expect(r.code, r.stderr).toBe(1);
    const v = verdictOf(r.stdout);
    expect(v.status).toBe('fail');
    expect(v.reasons).toHaveLength(1);
    expect(v.reasons[0]!.findings.map((f) => `${f.id} ${f.package?.name} ${f.fixedVersion}`)).toEqual(['ALPINE-CVE-2022-37434 zlib 1.2.11-r4']);
    expect(v.reasons[0]!.remedy).toBe('upgrade zlib 1.2.11-r3 to 1.2.11-r4 (zlib@1.2.11-r4)');
  });

  it('alpine-3.11 passes a "critical severity" policy: the fixture\'s Alpine records carry no severity', async () => {
    const critical = write('critical.yaml', 'version: 1\ndefaultAction: ignore\nrules:\n  - { id: critical, action: fail, vulnerability: { severity: critical } }\n');
    const r = await fixture('alpine-3.11', '--policy', critical, '--format', 'json');
    expect(r.code, r.stderr).toBe(0);
    expect(verdictOf(r.stdout).status).toBe('pass');
  });

  it('an exception for ALPINE-CVE-2022-37434 lets it pass; an expired one does not', async () => {
    const ok = await fixture('alpine-3.11', '--policy', fixablePolicy(exception('2999-12-31')), '--format', 'json');
    expect(ok.code, ok.stderr).toBe(0);
    expect(verdictOf(ok.stdout)).toMatchObject({ status: 'pass', exceptionsApplied: [{ id: 'ALPINE-CVE-2022-37434' }] });

    const stale = await fixture('alpine-3.11', '--policy', fixablePolicy(exception('2021-01-01')), '--format', 'json');
    expect(stale.code).toBe(1);
    const v = verdictOf(stale.stdout);
    expect(v.status).toBe('fail');
    expect(v.expiredExceptions).toMatchObject([{ id: 'ALPINE-CVE-2022-37434', expires: '2021-01-01' }]);
  });

  it('node-app fails the built-in policy because of its secrets', async () => {
    const r = await fixture('node-app', '--format', 'json');
    expect(r.code, r.stderr).toBe(1);
    const v = verdictOf(r.stdout);
    const secrets = v.reasons.find((x) => x.ruleId === 'no-secrets');
    expect(secrets?.action).toBe('fail');
    expect(secrets!.findings.map((f) => f.id)).toEqual(expect.arrayContaining(['github-pat', 'aws-access-key-id', 'npm-access-token']));
  });
});
