import { execFileSync } from 'node:child_process';
import { createHmac } from 'node:crypto';
import { statSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { gzipSync } from 'node:zlib';
import { afterEach, describe, expect, it } from 'vitest';
import { REPORT_ARTIFACT_TYPE, SBOM_ARTIFACT_TYPE } from '../../src/gate/index.js';
import { sha256 } from '../registry/push-client.js';
import { pushTestImage, startGatedRegistry, waitFor, type GatedRegistry } from './gate-harness.js';

const FIXABLE_POLICY = `version: 1
name: fixable
defaultAction: ignore
rules:
  - id: fixable
    action: fail
    vulnerability: { severity: any, fixAvailable: true }
`;

const withException = (expires: string) => `${FIXABLE_POLICY}exceptions:
  - id: ALPINE-CVE-2026-2000
    scope: { project: team }
    reason: musl is not reachable from the entry point
    author: sec@example.com
    expires: ${expires}
`;

const RECORDS = [
  {
    id: 'ALPINE-CVE-2026-2000',
    modified: '2026-01-01T00:00:00Z',
    affected: [{ package: { ecosystem: 'Alpine:v3.20', name: 'musl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.2.5-r1' }] }] }],
  },
];

const ALPINE = (musl: string) => [
  { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' },
  { name: 'lib/apk/db/installed', content: `P:musl\nV:${musl}\no:musl\n\nP:zlib\nV:1.3.1-r1\no:zlib\n` },
];

const errorOf = (body: Buffer) => (JSON.parse(body.toString()) as { errors: { code: string; message: string }[] }).errors[0]!;
const pull = (reg: GatedRegistry, ref: string, who: 'dev' | 'admin' = 'dev') =>
  reg[who].call('GET', `/v2/team/app/manifests/${ref}`, undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });

let reg: GatedRegistry | undefined;
afterEach(async () => {
  await reg?.stop();
  reg = undefined;
});

describe('the gate: analysis on push and the pull check', () => {
  it('refuses a failing image with the advisory, the package and the fix, serves a clean one, and lets an admin through', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY);
    await reg.importRecords(RECORDS);
    const bad = await pushTestImage(reg.admin, 'team/app', 'bad', [ALPINE('1.2.5-r0')]);
    const good = await pushTestImage(reg.admin, 'team/app', 'good', [ALPINE('1.2.5-r1')]);
    await waitFor('both verdicts', async () => (await reg!.gate.verdicts.current('team/app', bad.digest)) && (await reg!.gate.verdicts.current('team/app', good.digest)));

    const refused = await pull(reg, 'bad');
    expect(refused.status).toBe(403);
    const err = errorOf(refused.body);
    expect(err.code).toBe('DENIED');
    expect(err.message).toContain(`pull of team/app@${bad.digest} refused by policy`);
    expect(err.message).toMatch(/\[fixable\].*ALPINE-CVE-2026-2000 .* in musl 1\.2\.5-r0, fixed in 1\.2\.5-r1 -> upgrade musl .*1\.2\.5-r1/);
    expect(err.message).toContain(`Report: http://registry.test/api/v1/repositories/team/app/artifacts/${bad.digest}`);
    // By digest too, and HEAD (tag resolution) stays open: only the content is withheld.
    expect((await pull(reg, bad.digest)).status).toBe(403);
    expect((await reg.dev.call('HEAD', '/v2/team/app/manifests/bad')).status).toBe(200);

    const served = await pull(reg, 'good');
    expect(served.status).toBe(200);
    expect(sha256(served.body)).toBe(good.digest);

    const forensics = await pull(reg, 'bad', 'admin');
    expect(forensics.status).toBe(200);
    expect(reg.events).toContainEqual(expect.objectContaining({ type: 'blocked_pull_allowed', principal: 'admin', digest: bad.digest }));
    // One audit row for the override, with what the client asked for and from where; no second 'success' row.
    const adminPulls = reg.audit.filter((e) => e.action === 'pull' && e.principal === 'admin' && e.digest === bad.digest);
    expect(adminPulls).toEqual([
      expect.objectContaining({ outcome: 'blocked-override', reference: 'bad', clientIp: '127.0.0.1', detail: 'verdict=fail; an administrator pulled a blocked image' }),
    ]);
    expect(reg.events).toContainEqual(expect.objectContaining({ type: 'pull_denied', principal: 'dev', digest: bad.digest, status: 'fail' }));
    expect(reg.events).toContainEqual(expect.objectContaining({ type: 'verdict_changed', digest: bad.digest, from: null, to: 'fail', reasons: ['fixable'] }));
  });

  it("withholds a refused image's own blobs from whom the manifest GET refuses; shared layers and HEAD stay open", async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY);
    await reg.importRecords(RECORDS);
    // A fixed mtime: built twice, a tar stamped with the packing time can differ by a second.
    const BASE = [{ name: 'etc/motd', content: 'a base layer both images share\n', mtime: new Date(0) }];
    const bad = await pushTestImage(reg.admin, 'team/app', 'bad', [BASE, ALPINE('1.2.5-r0')]);
    const good = await pushTestImage(reg.admin, 'team/app', 'good', [BASE, ALPINE('1.2.5-r1')]);
    await waitFor('both verdicts', async () => (await reg!.gate.verdicts.current('team/app', bad.digest)) && (await reg!.gate.verdicts.current('team/app', good.digest)));
    const blobsOf = (m: Buffer) => {
      const doc = JSON.parse(m.toString()) as { config: { digest: string }; layers: { digest: string }[] };
      return { config: doc.config.digest, layers: doc.layers.map((l) => l.digest) };
    };
    const b = blobsOf(bad.manifest);
    const g = blobsOf(good.manifest);
    expect(b.layers[0]).toBe(g.layers[0]);
    const blob = (digest: string, who: 'dev' | 'admin' = 'dev', method = 'GET') => reg![who].call(method, `/v2/team/app/blobs/${digest}`);

    for (const digest of [b.layers[1]!, b.config]) {
      const refused = await blob(digest);
      expect(refused.status, digest).toBe(403);
      const err = errorOf(refused.body);
      expect(err.code).toBe('DENIED');
      expect(err.message).toContain(`blob ${digest} belongs only to images that may not be pulled; pull of team/app@${bad.digest} refused by policy`);
      expect((await blob(digest, 'dev', 'HEAD')).status).toBe(200);
      expect((await blob(digest, 'admin')).status).toBe(200);
    }
    // The base layer is part of an image that passes, and the passing image's own blobs are served.
    for (const digest of [b.layers[0]!, g.layers[1]!, g.config]) expect((await blob(digest)).status, digest).toBe(200);
    // Each refusal is audited and announced, naming the blob and the image that holds it.
    for (const digest of [b.layers[1]!, b.config]) {
      expect(reg.audit).toContainEqual(expect.objectContaining({ action: 'pull', principal: 'dev', repository: 'team/app', digest, outcome: 'denied', detail: 'blob' }));
      expect(reg.events).toContainEqual(expect.objectContaining({ type: 'pull_denied', principal: 'dev', digest: bad.digest, blob: digest, status: 'fail' }));
    }
    const blobDenials = () => reg!.events.filter((e) => e.type === 'pull_denied' && e.blob !== undefined).length;
    expect(blobDenials()).toBe(2);
    // Nor can the withheld layer be mounted into another repository to be fetched there: the
    // mount falls back to an upload (202), and the shared base layer mounts (201). A refused
    // mount is how a push of a shared layer starts, not a pull: no event.
    const mount = (digest: string) => reg!.dev.call('POST', `/v2/team/copy/blobs/uploads/?mount=${digest}&from=team/app`);
    expect((await mount(b.layers[1]!)).status).toBe(202);
    expect((await reg.dev.call('GET', `/v2/team/copy/blobs/${b.layers[1]}`)).status).toBe(404);
    expect((await mount(b.layers[0]!)).status).toBe(201);
    expect(blobDenials()).toBe(2);
  });

  it('with pending: allow, an image not judged yet does not release the layer of a refused one', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY, { pending: 'allow' });
    await reg.importRecords(RECORDS);
    const fixed = (entries: { name: string; content: string }[]) => entries.map((e) => ({ ...e, mtime: new Date(0) }));
    const bad = await pushTestImage(reg.admin, 'team/app', 'bad', [fixed(ALPINE('1.2.5-r0'))]);
    await waitFor('the verdict', async () => (await reg!.gate.verdicts.current('team/app', bad.digest))?.status === 'fail');
    const layer = (JSON.parse(bad.manifest.toString()) as { layers: { digest: string }[] }).layers[0]!.digest;
    expect((await reg.dev.call('GET', `/v2/team/app/blobs/${layer}`)).status).toBe(403);

    // Analysis stalls; a second manifest over the same layer is pending, and pending images may be pulled.
    await reg.runner.stop();
    const sneaky = await pushTestImage(reg.dev, 'team/app', 'sneaky', [fixed(ALPINE('1.2.5-r0'))], { config: { User: '1001' } });
    expect((JSON.parse(sneaky.manifest.toString()) as { layers: { digest: string }[] }).layers[0]!.digest).toBe(layer);
    expect(sneaky.digest).not.toBe(bad.digest);
    expect((await pull(reg, 'sneaky')).status).toBe(200);
    const refused = await reg.dev.call('GET', `/v2/team/app/blobs/${layer}`);
    expect(refused.status).toBe(403);
    expect(errorOf(refused.body).message).toContain(`pull of team/app@${bad.digest} refused by policy`);
  });

  it('attaches the SBOM and the report as OCI referrers that any client can list and fetch', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY);
    await reg.importRecords(RECORDS);
    const img = await pushTestImage(reg.admin, 'team/app', 'v1', [ALPINE('1.2.5-r0')]);
    const list = await waitFor('referrers', async () => {
      const r = await reg!.dev.call('GET', `/v2/team/app/referrers/${img.digest}`);
      const index = JSON.parse(r.body.toString()) as { manifests: { digest: string; artifactType: string }[] };
      return index.manifests.length === 2 ? index : undefined;
    });
    expect(list.manifests.map((m) => m.artifactType).sort()).toEqual([SBOM_ARTIFACT_TYPE, REPORT_ARTIFACT_TYPE].sort());
    const sbomRef = list.manifests.find((m) => m.artifactType === SBOM_ARTIFACT_TYPE)!;
    // Referrers are artifacts, not images: the gate never withholds them.
    const manifest = await reg.dev.call('GET', `/v2/team/app/manifests/${sbomRef.digest}`, undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });
    expect(manifest.status).toBe(200);
    const layer = (JSON.parse(manifest.body.toString()) as { layers: { digest: string }[]; subject: { digest: string } });
    expect(layer.subject.digest).toBe(img.digest);
    const sbom = JSON.parse((await reg.dev.call('GET', `/v2/team/app/blobs/${layer.layers[0]!.digest}`)).body.toString()) as {
      bomFormat: string;
      components: { name: string; version: string }[];
      vulnerabilities?: { id: string }[];
    };
    expect(sbom.bomFormat).toBe('CycloneDX');
    expect(sbom.components.map((c) => `${c.name}@${c.version}`)).toEqual(expect.arrayContaining(['musl@1.2.5-r0', 'zlib@1.3.1-r1']));
    expect(sbom.vulnerabilities?.map((v) => v.id)).toContain('ALPINE-CVE-2026-2000');
  });

  it("refuses pushes that pose as the gate's own SBOM or report, and accepts a user's own SBOM", async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY);
    const img = await pushTestImage(reg.admin, 'team/app', 'v1', [ALPINE('1.2.5-r1')]);
    const empty = Buffer.from('{}');
    const content = Buffer.from('{"status":"pass"}');
    for (const b of [empty, content]) await reg.dev.pushBlob('team/app', b);
    const referrer = (artifactType: string, annotations: Record<string, string>) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: sha256(empty), size: empty.length },
        layers: [{ mediaType: 'application/json', digest: sha256(content), size: content.length }],
        subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: img.digest, size: img.manifest.length },
        annotations,
      });
    for (const forged of [referrer(REPORT_ARTIFACT_TYPE, {}), referrer(SBOM_ARTIFACT_TYPE, { 'dev.portcullis.generated-by': 'portcullis' })]) {
      const r = await reg.dev.putManifest('team/app', sha256(forged), forged);
      expect(r.status).toBe(403);
      expect(errorOf(r.body).message).toMatch(/reserved for the registry's own SBOM and report referrers/);
    }
    const own = referrer(SBOM_ARTIFACT_TYPE, { 'org.example.tool': 'syft' });
    expect((await reg.dev.putManifest('team/app', sha256(own), own)).status).toBe(201);
  });

  it('refuses an image that has no verdict yet, then serves it once the analysis is done', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY, { startRunner: false });
    await reg.importRecords(RECORDS);
    await pushTestImage(reg.admin, 'team/app', 'new', [ALPINE('1.2.5-r1')]);
    const pending = await pull(reg, 'new');
    expect(pending.status).toBe(403);
    expect(errorOf(pending.body).message).toMatch(/still being analysed and has no verdict yet; pull again in a few seconds/);
    reg.runner.start();
    await waitFor('the image to pull', async () => (await pull(reg!, 'new')).status === 200);
  });

  it('applies an exception added to the policy file without a restart, and refuses again once it expires', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY);
    await reg.importRecords(RECORDS);
    await pushTestImage(reg.admin, 'team/app', 'v1', [ALPINE('1.2.5-r0')]);
    await waitFor('the refusal', async () => (await pull(reg!, 'v1')).status === 403 && errorOf((await pull(reg!, 'v1')).body).message.includes('[fixable]'));

    const expires = new Date(Date.now() + 2500).toISOString();
    writeFileSync(reg.policyFile, withException(expires));
    await waitFor('the exception to apply', async () => (await pull(reg!, 'v1')).status === 200, 5000);
    await waitFor('the exception to expire', async () => (await pull(reg!, 'v1')).status === 403, 8000);
    expect(Date.now()).toBeGreaterThanOrEqual(Date.parse(expires));
  });

  it('applies an edit of the policy file that keeps its size and modification time (cp -p, touch -r, rsync -t --inplace)', async () => {
    reg = await startGatedRegistry(withException('2020-01-01T00:00:00.000Z'));
    await reg.importRecords(RECORDS);
    await pushTestImage(reg.admin, 'team/app', 'v1', [ALPINE('1.2.5-r0')]);
    await waitFor('the refusal under the expired exception', async () => (await pull(reg!, 'v1')).status === 403 && errorOf((await pull(reg!, 'v1')).body).message.includes('[fixable]'));
    const before = statSync(reg.policyFile);
    const reference = `${reg.policyFile}.times`;
    execFileSync('touch', ['-r', reg.policyFile, reference]);
    // The same number of bytes written over the same file, then its times put back.
    writeFileSync(reg.policyFile, withException('2099-01-01T00:00:00.000Z'));
    execFileSync('touch', ['-r', reference, reg.policyFile]);
    const after = statSync(reg.policyFile);
    expect([after.ino, after.size, after.mtimeMs]).toEqual([before.ino, before.size, before.mtimeMs]);
    await waitFor('the renewed exception to apply', async () => (await pull(reg!, 'v1')).status === 200, 3000);
  });

  it('uses a new vulnerability database at the next pull, without a restart', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY);
    // A database that knows nothing about musl yet.
    await reg.importRecords([{ ...RECORDS[0], id: 'ALPINE-CVE-2026-0001', affected: [{ package: { ecosystem: 'Alpine:v3.20', name: 'busybox' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '9' }] }] }] }]);
    await pushTestImage(reg.admin, 'team/app', 'v1', [ALPINE('1.2.5-r0')]);
    await waitFor('a pass', async () => (await pull(reg!, 'v1')).status === 200);
    await reg.importRecords(RECORDS);
    const refused = await pull(reg, 'v1');
    expect(refused.status).toBe(403);
    expect(errorOf(refused.body).message).toContain('ALPINE-CVE-2026-2000');
  });

  it('fails closed: an image that cannot be analysed, and a policy that cannot be answered, are refused with the reason', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY);
    // No vulnerability database: a vulnerability rule cannot be answered.
    await pushTestImage(reg.admin, 'team/app', 'nodb', [ALPINE('1.2.5-r1')]);
    const noDb = await waitFor('a refusal', async () => {
      const r = await pull(reg!, 'nodb');
      return r.status === 403 && !errorOf(r.body).message.includes('still being analysed') ? r : undefined;
    });
    expect(errorOf(noDb.body).message).toMatch(/the policy cannot be evaluated: .*no vulnerability database: run `portcullis db update`/);

    await reg.importRecords(RECORDS);
    const corrupt = Buffer.concat([gzipSync(Buffer.alloc(1024)).subarray(0, 10), Buffer.from('this is not deflate data at all')]);
    const img = await pushTestImage(reg.admin, 'team/app', 'corrupt', [], { rawLayer: corrupt });
    const r = await waitFor('a refusal', async () => {
      const res = await pull(reg!, 'corrupt');
      return res.status === 403 && !errorOf(res.body).message.includes('still being analysed') ? res : undefined;
    });
    expect(errorOf(r.body).message).toMatch(new RegExp(`pull of team/app@${img.digest} refused by policy: the image could not be analysed: .*`));
  });
});

describe('continuous monitoring', () => {
  it('turns a stored image to fail within 2 s of an import that affects it, signs the webhook, and finds it by advisory', async () => {
    const received: { headers: Record<string, string | string[] | undefined>; body: string }[] = [];
    const receiver = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ headers: req.headers, body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    const secret = 'a-webhook-secret-of-some-length';
    try {
      reg = await startGatedRegistry(withException('2999-01-01'), {
        webhooks: [{ url: `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hook`, secret, format: 'json', events: ['verdict_changed', 'new_advisory_affects'] }],
      });
      await reg.importRecords(RECORDS);
      const img = await pushTestImage(reg.admin, 'team/app', 'v1', [ALPINE('1.2.5-r0')]);
      await waitFor('a pass under the exception', async () => (await pull(reg!, 'v1')).status === 200);
      received.length = 0;

      const started = Date.now();
      await reg.importRecords([
        {
          id: 'ALPINE-CVE-2026-3000',
          modified: '2026-06-01T00:00:00Z',
          affected: [{ package: { ecosystem: 'Alpine:v3.20', name: 'zlib' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.3.1-r2' }] }] }],
        },
      ]);
      const stored = await waitFor('the stored verdict to turn fail', async () => {
        const v = await reg!.app.registry.metadata.artifacts.getVerdict('team/app', img.digest);
        return v?.status === 'fail' ? v : undefined;
      }, 2000);
      expect(Date.parse(stored.evaluatedAt) - started).toBeLessThan(2000);

      // The first verdict's own webhook (none to pass) is delivered in the background and may land
      // after `received` was emptied: wait for the change this import made.
      const hook = await waitFor(
        'the webhook',
        async () =>
          received.find((r) => r.headers['x-portcullis-event'] === 'verdict_changed' && (JSON.parse(r.body) as { data?: { to?: string } }).data?.to === 'fail'),
        5000,
      );
      expect(hook.headers['x-portcullis-signature-256']).toBe(`sha256=${createHmac('sha256', secret).update(hook.body).digest('hex')}`);
      expect(JSON.parse(hook.body)).toMatchObject({ type: 'verdict_changed', data: { repository: 'team/app', digest: img.digest, from: 'pass', to: 'fail', reasons: ['fixable'] } });
      const affects = await waitFor('new_advisory_affects', async () => received.find((r) => r.headers['x-portcullis-event'] === 'new_advisory_affects'), 5000);
      expect(JSON.parse(affects.body).data).toMatchObject({ advisory: 'ALPINE-CVE-2026-3000', fixAvailable: true, artifacts: [{ repository: 'team/app', digest: img.digest, package: 'zlib', installedVersion: '1.3.1-r1' }] });

      const search = await reg.dev.call('GET', '/api/v1/search?advisory=ALPINE-CVE-2026-3000');
      expect(search.status).toBe(200);
      expect(JSON.parse(search.body.toString())).toMatchObject({ artifacts: [{ repository: 'team/app', digest: img.digest, package: 'zlib', fixedVersions: ['1.3.1-r2'] }] });
      const byPackage = JSON.parse((await reg.dev.call('GET', '/api/v1/search?package=zlib&type=apk')).body.toString()) as { artifacts: { digest: string; versions: string[] }[] };
      expect(byPackage.artifacts).toEqual([expect.objectContaining({ digest: img.digest, versions: ['1.3.1-r1'] })]);
      expect((await reg.dev.call('GET', '/api/v1/search')).status).toBe(400);
      const anonymous = await fetch(`${reg.base}/api/v1/search?advisory=ALPINE-CVE-2026-3000`);
      expect(anonymous.status).toBe(401);
    } finally {
      receiver.close();
    }
  });
});

describe('enforce on push', () => {
  it('refuses a failing image at the manifest PUT with the reasons and stores nothing; a passing one is stored with its verdict', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY, { enforceOnPushMs: 10_000 });
    await reg.importRecords(RECORDS);
    const before = await pushTestImage(reg.admin, 'team/app', 'v1', [ALPINE('1.2.5-r1')]);
    // The verdict was computed during the PUT: no waiting for the queue.
    expect((await reg.gate.verdicts.current('team/app', before.digest))?.status).toBe('pass');

    const err = await pushTestImage(reg.admin, 'team/app', 'v1', [ALPINE('1.2.5-r0')]).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    const body = (err as Error).message.replace(/^push team\/app:v1: 403 /, '');
    const refusal = errorOf(Buffer.from(body));
    expect(refusal.code).toBe('DENIED');
    expect(refusal.message).toMatch(/^push of team\/app:v1 refused: the image fails the policy .*ALPINE-CVE-2026-2000 .*fixed in 1\.2\.5-r1.*Nothing was stored; fix the image and push again\.$/);
    // The tag still points at the good image.
    expect((await reg.dev.call('HEAD', '/v2/team/app/manifests/v1')).headers.get('docker-content-digest')).toBe(before.digest);
    expect(reg.events).toContainEqual(expect.objectContaining({ type: 'push_denied', repository: 'team/app', tag: 'v1', status: 'fail' }));
  });

  it('stores an image as pending when its analysis outlasts the budget', async () => {
    reg = await startGatedRegistry(FIXABLE_POLICY, { enforceOnPushMs: 1 });
    await reg.importRecords(RECORDS);
    const img = await pushTestImage(reg.admin, 'team/app', 'slow', [ALPINE('1.2.5-r0')]);
    expect((await reg.dev.call('HEAD', '/v2/team/app/manifests/slow')).headers.get('docker-content-digest')).toBe(img.digest);
    await waitFor('the verdict from the queue', async () => (await reg!.gate.verdicts.current('team/app', img.digest))?.status === 'fail');
  });
});
