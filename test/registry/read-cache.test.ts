import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RegistryReadCache } from '../../src/registry/read-cache.js';
import { SqliteRegistryMetadata, type ManifestRecord } from '../../src/store/index.js';
import { PushClient, imageOf, pushImage, sha256 } from './push-client.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

const OCI = 'application/vnd.oci.image.manifest.v1+json';
const record = (digest: string): ManifestRecord => ({
  repository: 'r',
  digest,
  mediaType: OCI,
  artifactType: null,
  subjectDigest: null,
  size: 1,
  annotations: null,
  createdAt: '2026-01-01T00:00:00Z',
});

describe('RegistryReadCache', () => {
  it('answers while the stamp stays, and forgets everything once it moves', () => {
    let stamp = 1;
    const cache = new RegistryReadCache(() => stamp);
    const begun = cache.begin();
    cache.setTag(begun, 'r', 'v1', 'sha256:a');
    cache.setManifest(begun, record('sha256:a'));
    cache.setBlobSize(begun, 'r', 'sha256:b', 7);
    cache.begin();
    expect(cache.tag('r', 'v1')).toBe('sha256:a');
    expect(cache.manifest('r', 'sha256:a')?.digest).toBe('sha256:a');
    expect(cache.blobSize('r', 'sha256:b')).toBe(7);
    expect(cache.tag('other', 'v1')).toBeUndefined();
    stamp = 2;
    cache.begin();
    expect(cache.tag('r', 'v1')).toBeUndefined();
    expect(cache.manifest('r', 'sha256:a')).toBeUndefined();
    expect(cache.blobSize('r', 'sha256:b')).toBeUndefined();
  });

  it('does not store a value read before a write that landed during the lookup', () => {
    let stamp = 1;
    const cache = new RegistryReadCache(() => stamp);
    const begun = cache.begin();
    stamp = 2; // a tag moved while the database was being read
    cache.setTag(begun, 'r', 'v1', 'sha256:old');
    cache.begin();
    expect(cache.tag('r', 'v1')).toBeUndefined();
  });

  it('never trusts a stamp it could not read', () => {
    const cache = new RegistryReadCache(() => Number.NaN);
    const begun = cache.begin();
    cache.setTag(begun, 'r', 'v1', 'sha256:a');
    cache.begin();
    expect(cache.tag('r', 'v1')).toBeUndefined();
  });
});

describe('SqliteRegistryMetadata.changeStamp', () => {
  it("moves at once on the connection's own writes, and from the next turn on for another connection's", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-stamp-'));
    const server = await SqliteRegistryMetadata.open(dir);
    const cli = await SqliteRegistryMetadata.open(dir);
    const turn = () => new Promise((resolve) => setImmediate(resolve));
    try {
      const s0 = server.changeStamp();
      expect(server.changeStamp()).toBe(s0);
      await server.ensureRepository('a');
      const s1 = server.changeStamp();
      expect(s1).not.toBe(s0);
      await turn();
      expect(server.changeStamp()).toBe(s1);
      await cli.ensureRepository('b');
      await turn();
      expect(server.changeStamp()).not.toBe(s1);
    } finally {
      await cli.close();
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('the registry never serves a stale tag, manifest or blob from its cache', () => {
  let reg: TestRegistry;
  let client: PushClient;
  // A second connection to the same database, as a CLI command (or a collection) would use.
  let cli: SqliteRegistryMetadata;
  const one = imageOf([Buffer.from('layer one')], 'one');
  const two = imageOf([Buffer.from('layer two')], 'two');
  const get = async (ref: string) => {
    const r = await client.call('GET', `/v2/app/cache/manifests/${ref}`, undefined, { accept: OCI });
    return r.status === 200 ? sha256(r.body) : r.status;
  };
  const head = async (ref: string) => {
    const r = await client.call('HEAD', `/v2/app/cache/manifests/${ref}`, undefined, { accept: OCI });
    return r.status === 200 ? r.headers.get('docker-content-digest') : r.status;
  };

  beforeAll(async () => {
    reg = await startTestRegistry();
    client = PushClient.basic(reg.base, 'admin', reg.password);
    cli = await SqliteRegistryMetadata.open(reg.dataDir);
    await pushImage(client, 'app/cache', 'v1', one);
    await pushImage(client, 'app/cache', 'other', two);
  });
  afterAll(async () => {
    await cli.close();
    await reg.stop();
  });

  it('follows a tag moved by a push', async () => {
    expect(await get('v1')).toBe(one.digest);
    expect(await get('v1')).toBe(one.digest);
    expect((await client.putManifest('app/cache', 'v1', two.manifest)).status).toBe(201);
    expect(await get('v1')).toBe(two.digest);
    expect(await head('v1')).toBe(two.digest);
  });

  it('follows a tag moved or deleted by another process', async () => {
    expect(await get('v1')).toBe(two.digest);
    await cli.putTag('app/cache', 'v1', one.digest);
    expect(await head('v1')).toBe(one.digest);
    expect(await get('v1')).toBe(one.digest);
    await cli.deleteTag('app/cache', 'v1');
    expect(await get('v1')).toBe(404);
    expect(await head('v1')).toBe(404);
  });

  it('answers 404 at once for a tag or manifest deleted through the API', async () => {
    await client.putManifest('app/cache', 'v2', one.manifest);
    expect(await get('v2')).toBe(one.digest);
    expect((await client.call('DELETE', '/v2/app/cache/manifests/v2')).status).toBe(202);
    expect(await get('v2')).toBe(404);
    expect(await get(two.digest)).toBe(two.digest);
    expect((await client.call('DELETE', `/v2/app/cache/manifests/${two.digest}`)).status).toBe(202);
    expect(await get(two.digest)).toBe(404);
    expect(await get('other')).toBe(404);
  });

  it('stops serving a blob once it is unlinked, through the API or by another process', async () => {
    const [layer] = one.layers;
    const path = `/v2/app/cache/blobs/${sha256(layer!)}`;
    expect((await client.call('HEAD', path)).status).toBe(200);
    expect((await client.call('HEAD', path)).status).toBe(200);
    await cli.unlinkBlob('app/cache', sha256(layer!));
    expect((await client.call('HEAD', path)).status).toBe(404);
    expect((await client.call('GET', path)).status).toBe(404);
    const config = `/v2/app/cache/blobs/${sha256(one.config)}`;
    expect((await client.call('GET', config)).status).toBe(200);
    expect((await client.call('DELETE', config)).status).toBe(202);
    expect((await client.call('HEAD', config)).status).toBe(404);
  });
});
