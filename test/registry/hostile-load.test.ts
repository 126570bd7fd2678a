import { readdirSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { request as httpRequest, type ClientRequest } from 'node:http';
import { MAX_MANIFEST_BYTES, hashPassword } from '../../src/registry/index.js';
import { PushClient, imageOf, pushImage, randomLayer, sha256 } from './push-client.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

// Pushers who cost the server far more than their requests' size: many idle upload sessions, and
// manifests that name one blob tens of thousands of times. (The registry runs in this process.)
let reg: TestRegistry;
let client: PushClient;

beforeAll(async () => {
  reg = await startTestRegistry('hostile-load-pw');
  client = PushClient.basic(reg.base, 'admin', reg.password);
});
afterAll(async () => {
  await reg?.stop();
});

const openFiles = () => readdirSync('/proc/self/fd').length;

/**
 * A manifest PUT that declares the largest manifest and sends one byte, then stalls: it holds (or
 * asks for) that much of the manifest budget. Its status, once answered, goes to `statuses`.
 */
function stalledManifestPut(path: string, user: string, password: string, statuses: number[]): ClientRequest {
  const [hostname, port] = reg.host.split(':');
  const req = httpRequest({
    hostname,
    port: Number(port),
    method: 'PUT',
    path,
    headers: {
      authorization: `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`,
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'content-length': String(MAX_MANIFEST_BYTES),
    },
  });
  req.on('response', (res) => {
    statuses.push(res.statusCode ?? 0);
    res.resume();
  });
  req.on('error', () => undefined);
  req.write('{');
  return req;
}

describe.skipIf(process.platform !== 'linux')('hostile load (file handles counted in /proc)', () => {
  it('does not keep a file open per idle upload session, and an idle session still completes', async () => {
    const sessions: string[] = [];
    const before = openFiles();
    for (let i = 0; i < 400; i++) {
      const start = await client.call('POST', '/v2/load/sessions/blobs/uploads/');
      expect(start.status).toBe(202);
      const location = start.headers.get('location')!;
      const patch = await client.call('PATCH', location, 'x', { 'content-type': 'application/octet-stream', 'content-range': '0-0' });
      expect(patch.status).toBe(202);
      sessions.push(location);
    }
    // At most 256 sessions keep their file open (the rest resume from disk); before, all 400 did.
    expect(openFiles() - before).toBeLessThan(300);
    // The oldest session gave up its file handle to make room: it goes on where it was (with its
    // running hash: the file is not read again) and commits.
    const blobs = reg.app.registry.blobs;
    const resume = blobs.resume.bind(blobs);
    let resumed = 0;
    blobs.resume = (id: string, offset: number) => {
      resumed++;
      return resume(id, offset);
    };
    const first = sessions[0]!;
    const more = await client.call('PATCH', first, 'yz', { 'content-type': 'application/octet-stream', 'content-range': '1-2' });
    expect(more.status, more.body.toString()).toBe(202);
    const done = await client.call('PUT', `${first}${first.includes('?') ? '&' : '?'}digest=${sha256(Buffer.from('xyz'))}`);
    expect(done.status, done.body.toString()).toBe(201);
    expect((await client.call('GET', `/v2/load/sessions/blobs/${sha256(Buffer.from('xyz'))}`)).body.toString()).toBe('xyz');
    blobs.resume = resume;
    expect(resumed).toBe(0);
    for (const location of sessions.slice(1)) expect((await client.call('DELETE', location)).status).toBe(204);
    expect(await reg.app.registry.metadata.listUploads()).toEqual([]);
  });

  it('checks each distinct blob of a manifest once, however often it is named', async () => {
    const layer = Buffer.from('one small layer');
    const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
    const layerDigest = await client.pushBlob('load/repeats', layer);
    const configDigest = await client.pushBlob('load/repeats', config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
        layers: Array.from({ length: 20_000 }, () => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layerDigest, size: layer.length })),
      }),
    );
    const metadata = reg.app.registry.metadata;
    const original = metadata.blobLinked.bind(metadata);
    let checks = 0;
    metadata.blobLinked = async (repository: string, digest: string) => {
      checks++;
      return original(repository, digest);
    };
    try {
      const put = await client.putManifest('load/repeats', 'v1', manifest);
      expect(put.status, put.body.toString()).toBe(201);
    } finally {
      metadata.blobLinked = original;
    }
    // Two distinct blobs: two checks (20,001 before).
    expect(checks).toBe(2);
    const get = await client.call('GET', '/v2/load/repeats/manifests/v1', undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });
    expect(get.body.equals(manifest)).toBe(true);
    expect((await metadata.manifestRefs('load/repeats', sha256(manifest))).length).toBe(2);
  });

  it('bounds the unfinished upload sessions of an account, and no other account feels it', async () => {
    const sessions: string[] = [];
    for (let i = 0; i < 1000; i++) {
      const start = await client.call('POST', `/v2/capped/r${i % 10}/blobs/uploads/`);
      expect(start.status).toBe(202);
      sessions.push(start.headers.get('location')!);
    }
    const refused = await client.call('POST', '/v2/elsewhere/r0/blobs/uploads/');
    expect(refused.status).toBe(429);
    expect(refused.headers.get('retry-after')).toBe('60');
    expect(refused.body.toString()).toMatch(/TOOMANYREQUESTS.*admin has 1000 unfinished uploads/);
    // A single-request upload starts no session, and another account of the same project is not affected.
    const blob = Buffer.from('monolithic');
    expect((await client.call('POST', `/v2/capped/r0/blobs/uploads/?digest=${sha256(blob)}`, blob)).status).toBe(201);
    await reg.app.registry.metadata.putUser({ name: 'colleague', passwordHash: await hashPassword('colleague-password-1'), admin: true });
    const colleague = PushClient.basic(reg.base, 'colleague', 'colleague-password-1');
    const other = await colleague.call('POST', '/v2/capped/r0/blobs/uploads/');
    expect(other.status).toBe(202);
    expect((await colleague.call('DELETE', other.headers.get('location')!)).status).toBe(204);
    // Cancelling one makes room for one.
    expect((await client.call('DELETE', sessions.pop()!)).status).toBe(204);
    const again = await client.call('POST', '/v2/capped/r0/blobs/uploads/');
    expect(again.status).toBe(202);
    sessions.push(again.headers.get('location')!);
    for (const location of sessions) expect((await client.call('DELETE', location)).status).toBe(204);
  });

  it('parallel POSTs cannot start more sessions than an account may have', async () => {
    const metadata = reg.app.registry.metadata;
    // 990 already open; 40 more at once race for the last 10. Before, each counted the open
    // sessions before any of them was recorded, and all 40 started (1,030 of 1,000).
    for (let i = 0; i < 990; i++) await metadata.createUpload(`race-${i}`, `race/r${i % 3}`, 'admin');
    try {
      const starts = await Promise.all(Array.from({ length: 40 }, () => client.call('POST', '/v2/race/r0/blobs/uploads/')));
      const statuses = starts.map((s) => s.status);
      expect(statuses.filter((s) => s === 202).length).toBe(10);
      expect(statuses.filter((s) => s === 429).length).toBe(30);
      expect(await metadata.principalUploadCount('admin')).toBe(1000);
      for (const s of starts.filter((r) => r.status === 429)) expect(s.body.toString()).toMatch(/TOOMANYREQUESTS.*admin has 1000 unfinished uploads/);
    } finally {
      for (const u of await metadata.listUploads()) if (u.repository.startsWith('race/')) await metadata.deleteUpload(u.uuid);
    }
  }, 60_000);

  it('a pusher who declares large manifests and sends them slowly holds back its own pushes, not others\'', async () => {
    await reg.app.registry.metadata.putUser({ name: 'victim', passwordHash: await hashPassword('victim-password-1'), admin: true });
    const victim = PushClient.basic(reg.base, 'victim', 'victim-password-1');
    const statuses: number[] = [];
    const slow: ClientRequest[] = [];
    // Eight PUTs that each declare 4 MiB and send one byte: together the whole manifest budget.
    for (let i = 0; i < 8; i++) slow.push(stalledManifestPut(`/v2/load/slow/manifests/s${i}`, 'admin', reg.password, statuses));
    try {
      // Two are taken (a quarter of the budget per account), six are turned away at once.
      const until = Date.now() + 10_000;
      while (statuses.length < 6 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      expect(statuses).toEqual([429, 429, 429, 429, 429, 429]);
      const started = Date.now();
      await pushImage(victim, 'load/victim', 'v1', imageOf([randomLayer(1024)], 'victim'));
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const req of slow) req.destroy();
    }
  });

  it('many accounts of one project cannot take the whole manifest budget by declaring large manifests', async () => {
    const metadata = reg.app.registry.metadata;
    // Eight accounts working for one project (robots of it, say), each within its own quarter.
    const crowd = Array.from({ length: 9 }, (_, i) => ({ name: `crowd-${i}`, password: `crowd-password-${i}` }));
    for (const a of crowd) await metadata.putUser({ name: a.name, passwordHash: await hashPassword(a.password), admin: false });
    await metadata.putUser({ name: 'bystander', passwordHash: await hashPassword('bystander-password-1'), admin: false });
    const statuses: number[] = [];
    const slow: ClientRequest[] = [];
    for (const a of crowd.slice(0, 8)) slow.push(stalledManifestPut(`/v2/crowd/${a.name}/manifests/slow`, a.name, a.password, statuses));
    try {
      // A project may claim half the budget: four are taken, four turned away at once.
      const until = Date.now() + 10_000;
      while (statuses.length < 4 && Date.now() < until) await new Promise((r) => setTimeout(r, 20));
      await new Promise((r) => setTimeout(r, 200));
      expect(statuses).toEqual([429, 429, 429, 429]);
      // The project's ninth account waits its turn too, even for a small manifest.
      const ninth = PushClient.basic(reg.base, crowd[8]!.name, crowd[8]!.password);
      const refused = await ninth.putManifest('crowd/ninth', 'v1', '{}');
      expect(refused.status).toBe(429);
      expect(refused.body.toString()).toMatch(/TOOMANYREQUESTS.*project crowd already has/);
      // Another project's pushes go on.
      const started = Date.now();
      await pushImage(PushClient.basic(reg.base, 'bystander', 'bystander-password-1'), 'bystanders/app', 'v1', imageOf([randomLayer(1024)], 'bystander'));
      expect(Date.now() - started).toBeLessThan(5_000);
    } finally {
      for (const req of slow) req.destroy();
    }
  }, 60_000);

  it('also bounds a project\'s unfinished sessions, which many accounts of one project cannot multiply', async () => {
    const metadata = reg.app.registry.metadata;
    // As if ten robots of the project had started 1,000 each.
    for (let i = 0; i < 9_995; i++) await metadata.createUpload(`ceiling-${i}`, `ceiling/r${i % 7}`, `robot$ceiling+r${i % 10}`);
    try {
      // Twenty at once race for the last five places.
      const starts = await Promise.all(Array.from({ length: 20 }, () => client.call('POST', '/v2/ceiling/r1/blobs/uploads/')));
      expect(starts.filter((s) => s.status === 202).length).toBe(5);
      expect(starts.filter((s) => s.status === 429).length).toBe(15);
      expect(await metadata.projectUploadCount('ceiling')).toBe(10_000);
      const refused = await client.call('POST', '/v2/ceiling/r0/blobs/uploads/');
      expect(refused.status).toBe(429);
      expect(refused.body.toString()).toMatch(/project ceiling has 10000 unfinished uploads/);
      expect((await client.call('POST', '/v2/elsewhere/r0/blobs/uploads/')).status).toBe(202);
    } finally {
      for (let i = 0; i < 9_995; i++) await metadata.deleteUpload(`ceiling-${i}`);
      for (const u of await metadata.listUploads()) if (/^(elsewhere|ceiling)\//.test(u.repository)) await metadata.deleteUpload(u.uuid);
    }
  }, 60_000);
});
