import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type RunningServer } from '../../src/cli/serve-command.js';
import { hashPassword } from '../../src/registry/index.js';
import { SqliteRegistryMetadata } from '../../src/store/index.js';
import { importOsv } from '../../src/vulndb/index.js';
import { freePort, onPath, run } from '../helpers/docker-registry.js';
import { FIXTURES, HAVE_FIXTURES, REPO_ROOT, fixtureImage } from '../helpers/fixtures.js';
import { writeOciLayout } from '../helpers/image-builder.js';
import { waitFor } from './gate-harness.js';

const skipReason = !onPath('skopeo') ? 'skopeo not installed (apt-get install skopeo)' : !HAVE_FIXTURES ? '../shared/fixtures is absent' : undefined;

const ADMIN_PW = 'gate-skopeo-admin';
const DEV_PW = 'gate-skopeo-dev';
const FIXABLE = 'version: 1\nname: fixable\ndefaultAction: ignore\nrules:\n  - id: fixable\n    action: fail\n    vulnerability: { severity: any, fixAvailable: true }\n';
const CRITICAL = 'version: 1\nname: critical\ndefaultAction: ignore\nrules:\n  - id: critical\n    action: fail\n    vulnerability: { severity: critical }\n';
const exception = (expires: string) =>
  `exceptions:\n  - id: ALPINE-CVE-2022-37434\n    scope: { repository: library/alpine }\n    reason: zlib's inflate is not reachable in this image\n    author: security@example.com\n    expires: ${expires}\n`;

describe.skipIf(skipReason !== undefined)(`the gate with skopeo and the fixture images${skipReason ? ` [SKIPPED: ${skipReason}]` : ''}`, () => {
  let root: string;
  let data: string;
  let policyFile: string;
  let server: RunningServer;
  let host: string;
  const hooks: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
  const receiver = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      hooks.push({ headers: req.headers, body });
      res.end();
    });
  });
  const HOOK_SECRET = 'gate-skopeo-webhook-secret';

  const skopeo = (args: string[]) => run('skopeo', ['--insecure-policy', ...args]);
  const pullAsDev = (ref: string) => skopeo(['inspect', '--raw', '--tls-verify=false', '--creds', `dev:${DEV_PW}`, `docker://${host}/${ref}`]);
  const verdictOf = async (repo: string, digest: string) => {
    const r = await fetch(`http://${host}/api/v1/repositories/${repo}/artifacts/${digest}`, {
      headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PW}`).toString('base64')}` },
    });
    return ((await r.json()) as { verdict: { status: string } | null }).verdict?.status;
  };
  // The policy file is re-read within a second of a change; wait until a pull sees the new one.
  const setPolicy = async (text: string, expectOk: boolean) => {
    writeFileSync(policyFile, text);
    await waitFor(`the policy to apply (${expectOk ? 'pass' : 'refuse'})`, async () => ((await pullAsDev('library/alpine:3.11')).code === 0) === expectOk, 10_000);
  };

  beforeAll(async () => {
    root = await mkdtemp(join(tmpdir(), 'portcullis-gate-skopeo-'));
    data = join(root, 'data');
    policyFile = join(root, 'policy.yaml');
    writeFileSync(policyFile, FIXABLE);
    await importOsv(data, [join(FIXTURES, 'vulndb', 'Alpine', 'all.zip')]);
    host = `127.0.0.1:${await freePort()}`;
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const config = join(root, 'portcullis.yaml');
    writeFileSync(
      config,
      `serve:\n  webhooks:\n    - url: http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook\n      secretEnv: GATE_TEST_HOOK_SECRET\n      events: [verdict_changed, new_advisory_affects]\n`,
    );
    process.env.GATE_TEST_HOOK_SECRET = HOOK_SECRET;
    server = await startServe({ listen: host, data, policy: policyFile, config }, { PORTCULLIS_ADMIN_PASSWORD: ADMIN_PW, PORTCULLIS_LOG_LEVEL: 'silent' });
    const meta = await SqliteRegistryMetadata.open(data);
    try {
      await meta.putUser({ name: 'dev', passwordHash: await hashPassword(DEV_PW), admin: false });
      await meta.createProject({ name: 'library', public: false, createdBy: 'admin' }, 'admin');
      await meta.putProjectMember('library', 'dev', 'reader');
    } finally {
      await meta.close();
    }
  }, 60_000);
  afterAll(async () => {
    await server?.close();
    receiver.close();
    await rm(root, { recursive: true, force: true });
  });

  it('refuses alpine-3.11 with ALPINE-CVE-2022-37434 on zlib and the fix 1.2.11-r4, and serves an image without vulnerable packages', async () => {
    const push = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN_PW}`, `oci-archive:${fixtureImage('alpine-3.11.tar')}`, `docker://${host}/library/alpine:3.11`]);
    expect(push.code, push.output).toBe(0);
    const digest = JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--creds', `admin:${ADMIN_PW}`, `docker://${host}/library/alpine:3.11`])).stdout).Digest as string;
    await waitFor('the verdict', async () => (await verdictOf('library/alpine', digest)) === 'fail', 30_000);

    const refused = await skopeo(['copy', '--src-tls-verify=false', '--src-creds', `dev:${DEV_PW}`, `docker://${host}/library/alpine:3.11`, `oci:${join(root, 'out')}:x`]);
    expect(refused.code).not.toBe(0);
    expect(refused.output).toContain('denied: pull of library/alpine@');
    expect(refused.output).toMatch(/ALPINE-CVE-2022-37434 \(unknown\) in zlib 1\.2\.11-r3, fixed in 1\.2\.11-r4/);
    expect(refused.output).toContain(`Report: http://${host}/api/v1/repositories/library/alpine/artifacts/${digest}`);

    const clean = join(root, 'clean');
    mkdirSync(clean);
    await writeOciLayout(clean, [[{ name: 'srv/hello.txt', content: 'hello\n' }]], { config: { User: '1000' }, tag: 'latest' });
    const pushClean = await skopeo(['copy', '--dest-tls-verify=false', '--dest-creds', `admin:${ADMIN_PW}`, `oci:${clean}:latest`, `docker://${host}/library/clean:1`]);
    expect(pushClean.code, pushClean.output).toBe(0);
    await waitFor('the clean image to pull', async () => (await pullAsDev('library/clean:1')).code === 0, 30_000);
  });

  it('lets alpine-3.11 pull under an exception, and refuses it again once the exception expires', async () => {
    await setPolicy(FIXABLE + exception('2999-12-31'), true);
    const expires = new Date(Date.now() + 4000).toISOString();
    await setPolicy(FIXABLE + exception(expires), true);
    await waitFor('the exception to expire', async () => (await pullAsDev('library/alpine:3.11')).code !== 0, 15_000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expires));
    const again = await pullAsDev('library/alpine:3.11');
    expect(again.output).toContain('ALPINE-CVE-2022-37434');
  });

  it('refuses it under a critical-severity policy once a CVE record gives CVE-2022-37434 its CVSS vector', async () => {
    // The fixture's Alpine records carry no severity: nothing is critical yet.
    await setPolicy(CRITICAL, true);
    const cve = join(root, 'cve');
    mkdirSync(cve);
    writeFileSync(
      join(cve, 'CVE-2022-37434.json'),
      JSON.stringify({ id: 'CVE-2022-37434', modified: '2022-08-05T00:00:00Z', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] }),
    );
    // `db import` from another process while the server runs, as an operator would.
    const imported = await run(process.execPath, [join(REPO_ROOT, 'bin', 'portcullis.js'), 'db', 'import', cve, '--data', data]);
    expect(imported.code, imported.output).toBe(0);
    const refused = await waitFor('the refusal', async () => {
      const r = await pullAsDev('library/alpine:3.11');
      return r.code !== 0 ? r : undefined;
    }, 10_000);
    expect(refused.output).toMatch(/\[critical\].*ALPINE-CVE-2022-37434 \(critical\) in zlib 1\.2\.11-r3/);
  });

  it('gives the same verdict as portcullis policy test in CI for the same image and policy', async () => {
    writeFileSync(policyFile, FIXABLE);
    const digest = JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--creds', `admin:${ADMIN_PW}`, `docker://${host}/library/alpine:3.11`])).stdout).Digest as string;
    type V = { status: string; reasons: { ruleId: string; findings: { id: string }[] }[] };
    // The server re-reads the policy file within a second.
    const gate = await waitFor('the new policy', async () => {
      const api = await fetch(`http://${host}/api/v1/repositories/library/alpine/artifacts/${digest}`, {
        headers: { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PW}`).toString('base64')}` },
      });
      const v = ((await api.json()) as { verdict: { verdict: V } }).verdict.verdict;
      return v.reasons[0]?.ruleId === 'fixable' ? v : undefined;
    }, 10_000);
    const ci = await run(process.execPath, [
      join(REPO_ROOT, 'bin', 'portcullis.js'), 'policy', 'test', `oci-archive:${fixtureImage('alpine-3.11.tar')}`,
      '--policy', policyFile, '--repository', 'library/alpine', '--data', data, '--format', 'json', '--no-cache',
    ]);
    expect(ci.code, ci.stderr).toBe(1);
    const cli = JSON.parse(ci.stdout) as V;
    const shape = (v: V) => ({ status: v.status, reasons: v.reasons.map((r) => [r.ruleId, r.findings.map((f) => f.id)]) });
    expect(shape(cli)).toEqual(shape(gate));
    expect(shape(gate)).toEqual({ status: 'fail', reasons: [['fixable', ['ALPINE-CVE-2022-37434']]] });
  });

  it('with that exception in place, turns alpine-3.11 to fail within 2 s of a new advisory, signs the webhook and finds it by advisory', async () => {
    await setPolicy(FIXABLE + exception('2999-12-31'), true);
    const digest = JSON.parse((await skopeo(['inspect', '--tls-verify=false', '--creds', `admin:${ADMIN_PW}`, `docker://${host}/library/alpine:3.11`])).stdout).Digest as string;
    await waitFor('the pass to be stored', async () => (await verdictOf('library/alpine', digest)) === 'pass', 10_000);
    hooks.length = 0;
    const osv = join(root, 'new-advisory');
    mkdirSync(osv);
    writeFileSync(
      join(osv, 'ALPINE-CVE-2026-9999.json'),
      JSON.stringify({
        id: 'ALPINE-CVE-2026-9999',
        modified: '2026-12-01T00:00:00Z',
        summary: 'written for the gate test',
        affected: [{ package: { ecosystem: 'Alpine:v3.11', name: 'musl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.1.24-r99' }] }] }],
      }),
    );
    const imported = await run(process.execPath, [join(REPO_ROOT, 'bin', 'portcullis.js'), 'db', 'import', osv, '--data', data]);
    expect(imported.code, imported.output).toBe(0);
    const importedAt = Date.now();
    const meta = await SqliteRegistryMetadata.open(data);
    try {
      const stored = await waitFor('the stored verdict to turn fail', async () => {
        const v = await meta.artifacts.getVerdict('library/alpine', digest);
        return v?.status === 'fail' ? v : undefined;
      }, 2000);
      expect(Date.parse(stored.evaluatedAt) - importedAt).toBeLessThan(2000);
    } finally {
      await meta.close();
    }
    const hook = await waitFor('verdict_changed at the receiver', async () => hooks.find((h) => h.headers['x-portcullis-event'] === 'verdict_changed'), 5000);
    expect(hook.headers['x-portcullis-signature-256']).toBe(`sha256=${createHmac('sha256', HOOK_SECRET).update(hook.body).digest('hex')}`);
    expect(JSON.parse(hook.body).data).toMatchObject({ repository: 'library/alpine', digest, from: 'pass', to: 'fail' });
    const search = await fetch(`http://${host}/api/v1/search?advisory=ALPINE-CVE-2026-9999`, {
      headers: { authorization: `Basic ${Buffer.from(`dev:${DEV_PW}`).toString('base64')}` },
    });
    const found = (await search.json()) as { artifacts: { repository: string; digest: string; package: string }[] };
    expect(found.artifacts).toContainEqual(expect.objectContaining({ repository: 'library/alpine', digest, package: 'musl' }));
    // The CVE a distro advisory is built on finds the same image.
    const byCve = await fetch(`http://${host}/api/v1/search?advisory=CVE-2022-37434`, {
      headers: { authorization: `Basic ${Buffer.from(`dev:${DEV_PW}`).toString('base64')}` },
    });
    const cveHits = (await byCve.json()) as { artifacts: { repository: string; digest: string; package: string }[] };
    expect(cveHits.artifacts).toContainEqual(expect.objectContaining({ repository: 'library/alpine', digest, package: 'zlib' }));
  });
});
