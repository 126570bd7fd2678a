import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { fsck } from '../../src/store/fsck.js';
import { gc, type GcResult } from '../../src/store/gc.js';
import { PushClient, imageOf, pushImage, randomLayer, sha256, verifyImage, type TestImage } from './push-client.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

const PUSHES = 20;

let reg: TestRegistry;
let client: PushClient;

beforeEach(async () => {
  reg = await startTestRegistry('concurrency-pw');
  client = PushClient.basic(reg.base, 'admin', reg.password);
});
afterEach(async () => {
  await reg?.stop();
});

function images(): TestImage[] {
  const base = [randomLayer(512 * 1024), randomLayer(256 * 1024)];
  return Array.from({ length: PUSHES }, (_, i) => imageOf([...base, randomLayer(64 * 1024 + i)], `image ${i}`));
}

/**
 * Runs GC in a loop until `done` settles. Pushes that lose a race with a zero-grace collection
 * fail with MANIFEST_BLOB_UNKNOWN or BLOB_UPLOAD_INVALID; like a client retry, the test pushes again.
 */
async function gcLoop(done: Promise<unknown>, graceMs: number): Promise<GcResult[]> {
  const runs: GcResult[] = [];
  let finished = false;
  void done.finally(() => (finished = true));
  while (!finished) {
    runs.push(await gc(reg.app.registry, { gracePeriodMs: graceMs }));
    await new Promise((r) => setTimeout(r, 5));
  }
  return runs;
}

async function pushWithRetry(repo: string, image: TestImage, retries: number): Promise<number> {
  for (let attempt = 0; ; attempt++) {
    try {
      // An unreferenced blob per push gives the collector something to delete meanwhile.
      await client.pushBlob(repo, randomLayer(1024));
      await pushImage(client, repo, 'v1', image);
      return attempt;
    } catch (err) {
      if (attempt >= retries || !/MANIFEST_BLOB_UNKNOWN|BLOB_UPLOAD_INVALID/.test(String(err))) throw err;
    }
  }
}

async function verifyAll(imgs: TestImage[]) {
  const wrong = (await Promise.all(imgs.map((img, i) => verifyImage(client, `team/app-${i}`, 'v1', img)))).flat();
  expect(wrong).toEqual([]);
  expect((await fsck(reg.app.registry, { verifyContent: true })).problems).toEqual([]);
}

describe('concurrent pushes and garbage collection', () => {
  it(`${PUSHES} parallel pushes sharing two base layers all verify by GET`, async () => {
    const imgs = images();
    await Promise.all(imgs.map((img, i) => pushImage(client, `team/app-${i}`, 'v1', img)));
    await verifyAll(imgs);
    // Nothing is unreferenced, so even a zero-grace collection must delete nothing.
    const r = await gc(reg.app.registry, { gracePeriodMs: 0 });
    expect(r.blobsDeleted).toEqual([]);
    expect(r.manifestsDeleted).toEqual([]);
    await verifyAll(imgs);
  });

  it('GC with a 2 s grace period running during the pushes loses nothing and no push fails', async () => {
    const imgs = images();
    const pushes = Promise.all(imgs.map((img, i) => pushWithRetry(`team/app-${i}`, img, 0)));
    const runs = await gcLoop(pushes, 2000);
    const retries = await pushes;
    expect(retries.every((n) => n === 0)).toBe(true);
    expect(runs.length).toBeGreaterThan(0);
    await verifyAll(imgs);
  });

  it('GC with grace 0 during the pushes: finished pushes keep everything they reference', async () => {
    const imgs = images();
    const pushes = Promise.all(imgs.map((img, i) => pushWithRetry(`team/app-${i}`, img, 10)));
    const runs = await gcLoop(pushes, 0);
    await pushes;
    // The junk blobs are fair game; make sure the collector really was deleting while pushes ran.
    const deleted = runs.reduce((n, r) => n + r.blobsDeleted.length, 0);
    expect(deleted).toBeGreaterThan(0);
    await verifyAll(imgs);
    // A final collection after the dust settles deletes only the junk and keeps every image.
    await gc(reg.app.registry, { gracePeriodMs: 0 });
    await verifyAll(imgs);
    for (const img of imgs) expect(await reg.app.registry.blobs.stat(sha256(img.layers[0]!))).not.toBeNull();
  });
});
