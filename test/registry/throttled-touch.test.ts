import { createHash } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { ThrottledTouch } from '../../src/registry/throttled-touch.js';
import { gc } from '../../src/store/gc.js';
import { FsBlobStore, SqliteRegistryMetadata, blobRoot, writeBlobBytes } from '../../src/store/index.js';
import { registryCaller, startTestRegistry } from './registry-harness.js';

describe('ThrottledTouch', () => {
  it('writes a digest at most once a minute, and again after', async () => {
    let t = 0;
    const written: string[] = [];
    const touch = new ThrottledTouch(
      async (d) => void written.push(...d),
      60_000,
      10_000,
      () => t,
    );
    await touch.touch('a');
    await touch.touch('a');
    await touch.touch('b');
    t = 59_999;
    await touch.touch('a');
    t = 60_000;
    await touch.touch('a');
    expect(written).toEqual(['a', 'b', 'a']);
  });
});

describe('a blob HEAD protects the link it found from gc', () => {
  it('a client that HEADs an old, unused link and then pushes its manifest does not lose the blob in between', async () => {
    const reg = await startTestRegistry();
    try {
      const meta = await SqliteRegistryMetadata.open(reg.dataDir);
      const blobs = new FsBlobStore(blobRoot(reg.dataDir));
      try {
        const bytes = Buffer.from('a layer another repository still uses');
        const digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
        await writeBlobBytes(blobs, bytes, digest);
        await meta.linkBlob('team/app', digest, bytes.length);
        // Older than the grace period below, and used by no manifest of team/app.
        await new Promise((r) => setTimeout(r, 1200));
        const call = registryCaller(() => reg);
        expect((await call('HEAD', `/v2/team/app/blobs/${digest}`)).status).toBe(200);
        const r = await gc({ metadata: meta, blobs }, { gracePeriodMs: 1000 });
        expect(r.linksRemoved).toBe(0);
        expect(await meta.blobLinked('team/app', digest)).toBe(true);
        // Without the HEAD, the same link goes.
        await new Promise((r) => setTimeout(r, 1200));
        const later = await gc({ metadata: meta, blobs }, { gracePeriodMs: 1000 });
        expect(later.linksRemoved).toBeGreaterThan(0);
        expect(await meta.blobLinked('team/app', digest)).toBe(false);
      } finally {
        await meta.close();
      }
    } finally {
      await reg.stop();
    }
  });
});
