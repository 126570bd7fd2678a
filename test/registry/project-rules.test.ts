import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { formatSize, immutableRuleFor, parseImmutableTagRule, parseSize } from '../../src/registry/index.js';
import type { ProjectRecord } from '../../src/store/index.js';
import { PushClient, imageOf, pushImage, randomLayer, sha256 } from './push-client.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

const project = (name: string, immutableTags: string[], quotaBytes: number | null = null): ProjectRecord => ({
  name,
  public: false,
  createdBy: 'test',
  createdAt: new Date().toISOString(),
  immutableTags,
  quotaBytes,
});

describe('immutable tag rules', () => {
  it('matches tag globs in every repository, or only in the repositories a REPO:TAG rule names', () => {
    const p = project('team', ['v*', 'backend/**:stable', 'web:release-{1,2}.[0-9]']);
    expect(immutableRuleFor(p, 'team/app', 'v1.2.3')).toBe('v*');
    expect(immutableRuleFor(p, 'team/app', 'latest')).toBeUndefined();
    expect(immutableRuleFor(p, 'team/backend/api', 'stable')).toBe('backend/**:stable');
    expect(immutableRuleFor(p, 'team/frontend', 'stable')).toBeUndefined();
    expect(immutableRuleFor(p, 'team/web', 'release-2.7')).toBe('web:release-{1,2}.[0-9]');
    expect(immutableRuleFor(p, 'team/web', 'release-3.7')).toBeUndefined();
    // A rule never leaks into another project.
    expect(immutableRuleFor(project('other', []), 'other/app', 'v1')).toBeUndefined();
    expect(immutableRuleFor(null, 'x/app', 'v1')).toBeUndefined();
  });

  it('refuses rules that are not TAG_GLOB or REPO_GLOB:TAG_GLOB', () => {
    expect(() => parseImmutableTagRule('')).toThrow(/TAG_GLOB/);
    expect(() => parseImmutableTagRule('a:b:c')).toThrow(/TAG_GLOB/);
    expect(() => parseImmutableTagRule('Team:v1')).toThrow(/TAG_GLOB/);
    expect(() => parseImmutableTagRule('v 1')).toThrow(/TAG_GLOB/);
    expect(parseImmutableTagRule('api/*:v[0-9]*').matches('api/x', 'v10')).toBe(true);
  });

  it('reads sizes with binary units and prints them back', () => {
    expect(parseSize('10GiB')).toBe(10 * 1024 ** 3);
    expect(parseSize('1.5m')).toBe(1.5 * 1024 ** 2);
    expect(parseSize('4096')).toBe(4096);
    expect(() => parseSize('ten')).toThrow(/size/);
    expect(() => parseSize('5 parsecs')).toThrow(/size/);
    expect(formatSize(512)).toBe('512 B');
    expect(formatSize(3 * 1024 ** 2)).toBe('3.00 MiB');
  });
});

describe('registry: project rules on the wire', () => {
  let reg: TestRegistry;
  let client: PushClient;
  beforeEach(async () => {
    reg = await startTestRegistry();
    client = PushClient.basic(reg.base, 'admin', reg.password);
  });
  afterEach(async () => reg.stop());

  const errorOf = (body: Buffer) => (JSON.parse(body.toString()) as { errors: { code: string; message: string }[] }).errors[0]!;

  it('lets an immutable tag be pushed once (and re-pushed unchanged) but never moved or deleted', async () => {
    await reg.app.registry.metadata.createProject({ name: 'team', public: false, createdBy: 'test', immutableTags: ['v*'] });
    const first = imageOf([randomLayer(1000)], 'first');
    const second = imageOf([randomLayer(1000)], 'second');
    await pushImage(client, 'team/app', 'v1.0', first);
    // The same bytes again: a client retry, accepted.
    expect((await client.putManifest('team/app', 'v1.0', first.manifest)).status).toBe(201);

    await pushImage(client, 'team/app', 'latest', second);
    for (const b of [second.config, ...second.layers]) await client.pushBlob('team/app', b);
    const moved = await client.putManifest('team/app', 'v1.0', second.manifest);
    expect(moved.status).toBe(403);
    expect(errorOf(moved.body)).toMatchObject({ code: 'DENIED' });
    expect(errorOf(moved.body).message).toMatch(/tag v1\.0 of team\/app is immutable \(project rule "v\*"\).*new tag/);

    const byTag = await client.call('DELETE', '/v2/team/app/manifests/v1.0');
    expect(byTag.status).toBe(403);
    const byDigest = await client.call('DELETE', `/v2/team/app/manifests/${first.digest}`);
    expect(byDigest.status).toBe(403);
    expect(errorOf(byDigest.body).message).toMatch(/cannot be deleted/);

    // Still pointing at the first image; mutable tags move freely.
    const head = await client.call('HEAD', '/v2/team/app/manifests/v1.0');
    expect(head.headers.get('docker-content-digest')).toBe(first.digest);
    expect((await client.putManifest('team/app', 'latest', first.manifest)).status).toBe(201);
    expect((await client.call('DELETE', '/v2/team/app/manifests/latest')).status).toBe(202);

    // Nor can the image be broken by unlinking its blobs; those of a mutable image can be.
    const blobDelete = await client.call('DELETE', `/v2/team/app/blobs/${sha256(first.layers[0]!)}`);
    expect(blobDelete.status).toBe(403);
    expect(errorOf(blobDelete.body).message).toMatch(/belongs to team\/app:v1\.0, which is immutable \(project rule "v\*"\)/);
    expect((await client.call('GET', `/v2/team/app/blobs/${sha256(first.layers[0]!)}`)).status).toBe(200);
    expect((await client.call('DELETE', `/v2/team/app/blobs/${sha256(second.layers[0]!)}`)).status).toBe(202);
    await client.pushBlob('team/app', second.layers[0]!);

    // Rules apply from the next request on, and lifting them makes the tag mutable again.
    await reg.app.registry.metadata.updateProject('team', { immutableTags: [] });
    expect((await client.putManifest('team/app', 'v1.0', second.manifest)).status).toBe(201);
  });

  it('refuses blobs, mounts and manifests that would pass the project quota, counting shared layers once', async () => {
    const meta = reg.app.registry.metadata;
    await meta.createProject({ name: 'small', public: false, createdBy: 'test', quotaBytes: 50_000 });
    await meta.createProject({ name: 'big', public: false, createdBy: 'test' });
    const shared = randomLayer(20_000);
    const one = imageOf([shared], 'one');
    await pushImage(client, 'small/a', 'latest', one);
    const used = await meta.projectUsage('small');
    expect(used).toBe(shared.length + one.config.length + one.manifest.length);

    // The same layer in a second repository of the project adds nothing (mount or upload).
    const two = imageOf([shared], 'two');
    await pushImage(client, 'small/b', 'latest', two);
    expect(await meta.projectUsage('small')).toBe(used + two.config.length + two.manifest.length);

    // A new 40 kB layer does not fit: refused with numbers and a remedy, and nothing is linked.
    const tooBig = randomLayer(40_000);
    const start = await client.call('POST', '/v2/small/a/blobs/uploads/');
    const loc = new URL(start.headers.get('location')!, reg.base);
    loc.searchParams.set('digest', sha256(tooBig));
    const refused = await client.call('PUT', loc.toString(), tooBig, { 'content-type': 'application/octet-stream' });
    expect(refused.status).toBe(403);
    const err = errorOf(refused.body);
    expect(err.code).toBe('DENIED');
    expect(err.message).toMatch(/this push would exceed the storage quota of project small: .* used of 48\.8 KiB.*portcullis project set small --quota/);
    expect((await client.call('HEAD', `/v2/small/a/blobs/${sha256(tooBig)}`)).status).toBe(404);
    expect(await meta.projectUsage('small')).toBeLessThan(50_000);

    // A mount of that blob from another project is refused the same way.
    await client.pushBlob('big/x', tooBig);
    const mount = await client.call('POST', `/v2/small/a/blobs/uploads/?mount=${sha256(tooBig)}&from=big/x`);
    expect(mount.status).toBe(403);
    expect((await client.call('HEAD', `/v2/small/a/blobs/${sha256(tooBig)}`)).status).toBe(404);

    // Other projects are not limited; raising the quota lets the push through.
    await pushImage(client, 'big/x', 'latest', imageOf([tooBig], 'big'));
    await meta.updateProject('small', { quotaBytes: 200_000 });
    const mounted = await client.call('POST', `/v2/small/a/blobs/uploads/?mount=${sha256(tooBig)}&from=big/x`);
    expect(mounted.status).toBe(201);
  });

  it('counts unfinished uploads against the quota as their bytes arrive', async () => {
    const meta = reg.app.registry.metadata;
    await meta.createProject({ name: 'parked', public: false, createdBy: 'test', quotaBytes: 100_000 });
    const open = async () => new URL((await client.call('POST', '/v2/parked/app/blobs/uploads/')).headers.get('location')!, reg.base);
    const patch = (loc: URL, body: Buffer, start: number) =>
      client.call('PATCH', loc.toString(), body, { 'content-type': 'application/octet-stream', 'content-range': `${start}-${start + body.length - 1}` });

    // 60 kB parked in one session that is never finished, then 60 kB more in another: refused,
    // though nothing was ever committed to the project.
    const first = await open();
    expect((await patch(first, randomLayer(60_000), 0)).status).toBe(202);
    const second = await open();
    const refused = await patch(second, randomLayer(60_000), 0);
    expect(refused.status).toBe(403);
    expect(errorOf(refused.body).message).toMatch(/storage quota of project parked: 58\.6 KiB used of 97\.7 KiB/);
    expect(await meta.projectUsage('parked')).toBe(0);
    // What still fits goes in, in the same session, from where it stood.
    expect((await client.call('GET', second.toString())).headers.get('range')).toBe('0-0');
    expect((await patch(second, randomLayer(30_000), 0)).status).toBe(202);
    // A single-request upload is counted the same way while it streams.
    const whole = randomLayer(20_000);
    const single = await client.call('POST', `/v2/parked/app/blobs/uploads/?digest=${sha256(whole)}`, whole, { 'content-type': 'application/octet-stream' });
    expect(single.status).toBe(403);
    // A body without a length (chunked transfer) is cut off where the quota ends, and still answered.
    const streamed = await fetch(second.toString(), {
      method: 'PATCH',
      headers: { authorization: `Basic ${Buffer.from(`admin:${reg.password}`).toString('base64')}`, 'content-type': 'application/octet-stream' },
      body: new ReadableStream({
        start(controller) {
          for (let i = 0; i < 8; i++) controller.enqueue(new Uint8Array(randomLayer(10_000)));
          controller.close();
        },
      }),
      duplex: 'half',
    } as RequestInit);
    expect(streamed.status).toBe(403);
    expect(((await streamed.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
    expect((await client.call('GET', second.toString())).headers.get('range')).toBe('0-29999');
    // Cancelling a session gives its room back.
    expect((await client.call('DELETE', first.toString())).status).toBe(204);
    expect((await client.call('POST', `/v2/parked/app/blobs/uploads/?digest=${sha256(whole)}`, whole, { 'content-type': 'application/octet-stream' })).status).toBe(201);
    await client.call('DELETE', second.toString());
  });
});
