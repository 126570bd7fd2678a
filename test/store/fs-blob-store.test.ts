import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir } from 'node:fs/promises';
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore, blobRoot, writeBlobBytes } from '../../src/store/index.js';
import { blobStoreSuite } from './blob-store-suite.js';

blobStoreSuite('FsBlobStore', async () => {
  const root = blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-')));
  const store = new FsBlobStore(root);
  return {
    store,
    tempFiles: () => readdir(join(root, 'tmp')).catch(() => []),
    reopen: () => new FsBlobStore(root),
  };
});

describe('FsBlobStore layout', () => {
  it('stores blobs at registry/blobs/<alg>/<2 hex>/<hex>', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-blobs-'));
    const store = new FsBlobStore(blobRoot(data));
    const digest = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
    expect(store.blobPath(digest)).toBe(join(data, 'registry', 'blobs', 'sha256', '2c', digest.slice(7)));
    expect(() => store.blobPath('sha256:../../etc')).toThrow();
  });
});

describe('FsBlobStore serving into an HTTP response', () => {
  // Bigger than two of the reused 1 MiB buffers and not a multiple of them, so reuse is exercised.
  const blob = randomBytes(5 * 1024 * 1024 + 12_345);
  const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
  let store: FsBlobStore;
  let server: Server;
  let base: string;

  beforeAll(async () => {
    store = new FsBlobStore(blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-'))));
    await writeBlobBytes(store, blob, digest);
    server = createServer((req, res) => {
      const range = /^bytes=(\d+)-(\d+)$/.exec(req.headers.range ?? '');
      void store.open(digest, range ? { start: Number(range[1]), end: Number(range[2]) } : undefined).then((stream) => {
        stream.on('error', () => res.destroy());
        stream.pipe(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('sends exactly the stored bytes, whole and as ranges', async () => {
    expect(Buffer.from(await (await fetch(base)).arrayBuffer()).equals(blob)).toBe(true);
    for (const [start, end] of [
      [0, 0],
      [1, 3 * 1024 * 1024],
      [1024 * 1024, 2 * 1024 * 1024 - 1],
      [blob.length - 10, blob.length - 1],
    ] as const) {
      const body = Buffer.from(await (await fetch(base, { headers: { range: `bytes=${start}-${end}` } })).arrayBuffer());
      expect(body.equals(blob.subarray(start, end + 1))).toBe(true);
    }
  });

  it('serves many downloads at once without mixing their bytes', async () => {
    const bodies = await Promise.all(Array.from({ length: 6 }, async () => Buffer.from(await (await fetch(base)).arrayBuffer())));
    for (const b of bodies) expect(b.equals(blob)).toBe(true);
  });

  it('stops and closes the file when the client goes away mid-download', async () => {
    // Descriptors of this process open on the blob's file (Linux's /proc; elsewhere this checks nothing).
    const files = () => {
      try {
        return readdirSync('/proc/self/fd').filter((fd) => {
          try {
            return readlinkSync(`/proc/self/fd/${fd}`) === store.blobPath(digest);
          } catch {
            return false;
          }
        }).length;
      } catch {
        return 0;
      }
    };
    const before = files();
    expect(before).toBe(0);
    let opened = -1;
    await new Promise<void>((resolve, reject) => {
      const req = httpGet(base, (res) => {
        res.once('data', () => {
          opened = files();
          req.destroy();
          resolve();
        });
      });
      req.on('error', () => undefined);
      setTimeout(() => reject(new Error('no data')), 5000).unref();
    });
    expect(opened).toBe(process.platform === 'linux' ? 1 : 0);
    for (let i = 0; i < 100 && files() > before; i++) await new Promise((r) => setTimeout(r, 20));
    expect(files()).toBe(before);
    // And the server still serves the next client.
    expect(Buffer.from(await (await fetch(base)).arrayBuffer()).equals(blob)).toBe(true);
  });

  it('still reads as an ordinary stream', async () => {
    const chunks: Buffer[] = [];
    for await (const c of await store.open(digest, { start: 5, end: 2 * 1024 * 1024 + 5 })) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(blob.subarray(5, 2 * 1024 * 1024 + 6))).toBe(true);
  });
});
