import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { basicAuth, buildRegistry } from '../../src/registry/index.js';
import { SqliteRegistryMetadata, type RegistryMetadata } from '../../src/store/index.js';

// Load balancers and Kubernetes probes carry no credentials: /healthz says the process answers,
// /readyz that the metadata store, which every request needs, answers too.
let cleanup: (() => Promise<void>) | undefined;
afterEach(async () => {
  await cleanup?.();
  cleanup = undefined;
});

async function registryOver(wrap: (m: RegistryMetadata) => RegistryMetadata) {
  const dataDir = await mkdtemp(join(tmpdir(), 'portcullis-health-'));
  const real = await SqliteRegistryMetadata.open(dataDir);
  const metadata = wrap(real);
  const app = await buildRegistry({ dataDir, metadata, auth: basicAuth(metadata) });
  cleanup = async () => {
    await app.close();
    await real.close();
    await rm(dataDir, { recursive: true, force: true });
  };
  return app;
}

describe('health endpoints', () => {
  it('answer without credentials while the store answers', async () => {
    const app = await registryOver((m) => m);
    const health = await app.inject({ method: 'GET', url: '/healthz' });
    expect(health.statusCode).toBe(200);
    expect(health.json()).toEqual({ status: 'ok' });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(200);
    expect(ready.json()).toEqual({ status: 'ready' });
    expect((await app.inject({ method: 'GET', url: '/v2/' })).statusCode).toBe(401);
  });

  it('/readyz answers 503 when the metadata store fails, and /healthz stays 200', async () => {
    const app = await registryOver((m) => {
      const broken = Object.create(m) as RegistryMetadata;
      broken.countUsers = () => Promise.reject(new Error('database is locked'));
      return broken;
    });
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'unavailable', reason: 'the metadata store did not answer' });
    expect((await app.inject({ method: 'GET', url: '/healthz' })).statusCode).toBe(200);
  });

  it('/readyz answers 503 once the data folder was removed under the server, and says why', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'portcullis-health-'));
    const metadata = await SqliteRegistryMetadata.open(dataDir);
    const app = await buildRegistry({ dataDir, metadata, auth: basicAuth(metadata) });
    cleanup = async () => {
      await app.close();
      await metadata.close();
    };
    expect((await app.inject({ method: 'GET', url: '/readyz' })).statusCode).toBe(200);
    expect(metadata.lostFromDisk()).toBeUndefined();
    // SQLite keeps writing to the deleted file, so the store itself still answers.
    await rm(dataDir, { recursive: true, force: true });
    await metadata.countUsers();
    const ready = await app.inject({ method: 'GET', url: '/readyz' });
    expect(ready.statusCode).toBe(503);
    expect(ready.json()).toEqual({ status: 'unavailable', reason: 'the data folder was removed or replaced; restart the server' });
    expect(metadata.lostFromDisk()).toBe(`the metadata database ${join(dataDir, 'registry', 'meta.sqlite')} was deleted while the server ran`);
  });

  it('knows a database file replaced under it', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'portcullis-health-'));
    const metadata = await SqliteRegistryMetadata.open(dataDir);
    const file = join(dataDir, 'registry', 'meta.sqlite');
    cleanup = async () => {
      await metadata.close();
      await rm(dataDir, { recursive: true, force: true });
    };
    await rename(file, `${file}.old`);
    await writeFile(file, '');
    expect(metadata.lostFromDisk()).toBe(`the metadata database ${file} was replaced while the server ran`);
  });
});
