import { createHash, randomBytes } from 'node:crypto';
import { readdirSync, readlinkSync } from 'node:fs';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { createServer, get as httpGet, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { PassThrough, Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FsBlobStore, blobRoot, writeBlobBytes } from '../../src/store/index.js';
import { IDLE_BATCH_FLUSH_MS } from '../../src/store/blob-store.js';
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

describe('FsBlobStore writing large blobs', () => {
  // 64 KiB pieces (what a socket delivers) and odd sizes, over several 1 MiB batches and past the
  // 8 MiB background flush, in more than one append.
  const pieces = (buf: Buffer, size: number) => Array.from({ length: Math.ceil(buf.length / size) }, (_, i) => buf.subarray(i * size, (i + 1) * size));

  it('writes every byte in order across batches, background flushes and appends', async () => {
    const store = new FsBlobStore(blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-'))));
    const blob = randomBytes(19 * 1024 * 1024 + 777);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const w = await store.writer();
    const cut = 11 * 1024 * 1024 + 3;
    expect(await w.append(Readable.from(pieces(blob.subarray(0, cut), 65_536)))).toBe(cut);
    expect(await w.append(Readable.from(pieces(blob.subarray(cut), 100_003)))).toBe(blob.length - cut);
    expect(await w.commit(digest, blob.length)).toEqual({ digest, size: blob.length });
    const back: Buffer[] = [];
    for await (const c of await store.open(digest)) back.push(c as Buffer);
    expect(Buffer.concat(back).equals(blob)).toBe(true);
  });

  it('gives up on a source that fails mid-way, and the write resumes from the recorded offset', async () => {
    const root = blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-')));
    const store = new FsBlobStore(root);
    const first = randomBytes(3 * 1024 * 1024);
    const w = await store.writer('failing-upload');
    await w.append(Readable.from([first]));
    const failing = new Readable({ read() {} });
    failing.push(randomBytes(2 * 1024 * 1024));
    setTimeout(() => failing.destroy(new Error('client went away')), 20);
    await expect(w.append(failing)).rejects.toThrow('client went away');
    // What the failed append wrote is cut at once, not left filling the disk until a resume.
    expect((await stat(join(root, 'tmp', 'failing-upload'))).size).toBe(first.length);
    await expect(w.append(Readable.from([Buffer.from('x')]))).rejects.toMatchObject({ code: 'BLOB_UPLOAD_INVALID' });
    const again = await store.resume('failing-upload', first.length);
    expect(again?.size).toBe(first.length);
    const rest = randomBytes(1000);
    await again!.append(Readable.from([rest]));
    const whole = Buffer.concat([first, rest]);
    const digest = `sha256:${createHash('sha256').update(whole).digest('hex')}`;
    expect(await again!.commit(digest)).toEqual({ digest, size: whole.length });
  });

  it('stops a source past maxBytes after several batches and leaves it paused to its owner', async () => {
    const store = new FsBlobStore(blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-'))));
    const w = await store.writer();
    const source = Readable.from(pieces(randomBytes(4 * 1024 * 1024), 65_536));
    await expect(w.append(source, { maxBytes: 3 * 1024 * 1024 })).rejects.toMatchObject({ code: 'SIZE_INVALID' });
    // A refusal is an answer for the client: the registry reads a bounded rest of the body after
    // it (registry/refused-body.ts), so the store neither destroys nor drains it.
    expect(source.destroyed).toBe(false);
    expect(source.isPaused()).toBe(true);
    source.destroy();
  });
});

describe('FsBlobStore serving small blobs into an HTTP response', () => {
  it('sends tiny, empty and exactly-one-buffer blobs whole and as ranges', async () => {
    const store = new FsBlobStore(blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-'))));
    const blobs = [Buffer.from('{"architecture":"amd64"}'), Buffer.alloc(0), randomBytes(1024 * 1024), randomBytes(1024 * 1024 + 1)];
    const digests: string[] = [];
    for (const b of blobs) {
      const d = `sha256:${createHash('sha256').update(b).digest('hex')}`;
      await writeBlobBytes(store, b, d);
      digests.push(d);
    }
    const server = createServer((req, res) => {
      const [, index, start, end] = /^\/(\d+)(?:\/(\d+)-(\d+))?$/.exec(req.url ?? '') ?? [];
      const range = start !== undefined ? { start: Number(start), end: Number(end) } : undefined;
      void store.open(digests[Number(index)]!, range).then((stream) => {
        stream.on('error', () => res.destroy());
        stream.pipe(res);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    try {
      for (const [i, b] of blobs.entries()) {
        expect(Buffer.from(await (await fetch(`${base}/${i}`)).arrayBuffer()).equals(b)).toBe(true);
        if (b.length > 2) {
          const got = Buffer.from(await (await fetch(`${base}/${i}/1-${b.length - 2}`)).arrayBuffer());
          expect(got.equals(b.subarray(1, b.length - 1))).toBe(true);
        }
      }
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe('FsBlobStore writing a stalled upload', () => {
  it('writes what a stalled client sent to the temp file instead of holding it in memory', async () => {
    const root = blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-')));
    const store = new FsBlobStore(root);
    const w = await store.writer();
    const source = new PassThrough();
    const appended = w.append(source);
    const part = randomBytes(300 * 1024);
    source.write(part);
    // Well under the 1 MiB batch, and the client goes quiet: the bytes must reach the file.
    const onDisk = async () => {
      const names = await readdir(join(root, 'tmp')).catch(() => []);
      return names.length === 1 ? (await stat(join(root, 'tmp', names[0]!))).size : -1;
    };
    const deadline = Date.now() + 5000;
    while ((await onDisk()) < part.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, IDLE_BATCH_FLUSH_MS));
    expect(await onDisk()).toBe(part.length);
    // It carries on as one blob when the client resumes.
    const rest = randomBytes(1500 * 1024);
    source.end(rest);
    expect(await appended).toBe(part.length + rest.length);
    const whole = Buffer.concat([part, rest]);
    const info = await w.commit(`sha256:${createHash('sha256').update(whole).digest('hex')}`, whole.length);
    expect(info.size).toBe(whole.length);
  });
});

describe('FsBlobWriter.suspend', () => {
  const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

  it('gives up the file handle and goes on with the running hash, without reading the file again', async () => {
    const root = blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-')));
    const store = new FsBlobStore(root);
    const w = await store.writer('suspended-1');
    await w.append(Readable.from([Buffer.from('abc')]));
    await w.suspend();
    await w.suspend(); // twice is harmless
    await w.append(Readable.from([Buffer.from('def')]));
    const info = await w.commit(sha(Buffer.from('abcdef')));
    expect(info.size).toBe(6);
  });

  it('refuses to go on when the temp file was removed meanwhile, instead of writing a new one', async () => {
    const root = blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-')));
    const store = new FsBlobStore(root);
    const w = await store.writer('suspended-2');
    await w.append(Readable.from([Buffer.from('abc')]));
    await w.suspend();
    for (const f of await readdir(join(root, 'tmp'))) await rm(join(root, 'tmp', f));
    await expect(w.append(Readable.from([Buffer.from('def')]))).rejects.toMatchObject({ code: 'BLOB_UPLOAD_UNKNOWN' });
    // Nothing was recreated.
    expect(await readdir(join(root, 'tmp'))).toEqual([]);
  });
});
