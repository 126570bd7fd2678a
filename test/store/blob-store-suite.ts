import { createHash } from 'node:crypto';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import type { BlobStore } from '../../src/store/index.js';

const sha256 = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sha512 = (b: string | Buffer) => `sha512:${createHash('sha512').update(b).digest('hex')}`;

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function collect<T>(it: AsyncIterable<T>): Promise<T[]> {
  const out: T[] = [];
  for await (const x of it) out.push(x);
  return out;
}

export interface BlobStoreHarness {
  store: BlobStore;
  /** Names of leftover temp files, to prove a failed write leaves nothing behind. */
  tempFiles(): Promise<string[]>;
  /** A second store instance over the same storage, as after a restart. */
  reopen(): BlobStore;
}

/** The shared BlobStore contract; every backend (filesystem today, S3 later) runs it. */
export function blobStoreSuite(name: string, setup: () => Promise<BlobStoreHarness>): void {
  describe(`BlobStore contract: ${name}`, () => {
    it('streams a blob in several appends, commits it and reads it back', async () => {
      const { store } = await setup();
      const w = await store.writer();
      await w.append(Readable.from([Buffer.from('hello ')]));
      await w.append(Readable.from([Buffer.from('world')]));
      expect(w.size).toBe(11);
      const info = await w.commit(sha256('hello world'));
      expect(info).toEqual({ digest: sha256('hello world'), size: 11 });
      expect(await store.stat(sha256('hello world'))).toEqual(info);
      expect((await readAll(await store.open(info.digest))).toString()).toBe('hello world');
    });

    it('serves byte ranges', async () => {
      const { store } = await setup();
      const w = await store.writer();
      await w.append(Readable.from([Buffer.from('0123456789')]));
      const { digest } = await w.commit(sha256('0123456789'));
      expect((await readAll(await store.open(digest, { start: 3, end: 6 }))).toString()).toBe('3456');
    });

    it('refuses a wrong digest and leaves nothing visible', async () => {
      const h = await setup();
      const w = await h.store.writer();
      await w.append(Readable.from([Buffer.from('actual')]));
      await expect(w.commit(sha256('claimed'))).rejects.toMatchObject({ code: 'DIGEST_INVALID' });
      expect(await h.store.stat(sha256('claimed'))).toBeNull();
      expect(await h.store.stat(sha256('actual'))).toBeNull();
      expect(await h.tempFiles()).toEqual([]);
      expect(await collect(h.store.list())).toEqual([]);
    });

    it('cancel discards the temp data', async () => {
      const h = await setup();
      const w = await h.store.writer();
      await w.append(Readable.from([Buffer.from('abc')]));
      await w.cancel();
      expect(await h.tempFiles()).toEqual([]);
      expect(await collect(h.store.list())).toEqual([]);
    });

    it('deduplicates: committing an existing digest keeps one copy and no temp file', async () => {
      const h = await setup();
      for (let i = 0; i < 2; i++) {
        const w = await h.store.writer();
        await w.append(Readable.from([Buffer.from('same')]));
        await w.commit(sha256('same'));
      }
      expect(await collect(h.store.list())).toEqual([{ digest: sha256('same'), size: 4 }]);
      expect(await h.tempFiles()).toEqual([]);
    });

    it('supports sha512 and empty blobs', async () => {
      const { store } = await setup();
      const w = await store.writer();
      await w.append(Readable.from([Buffer.from('five twelve')]));
      expect((await w.commit(sha512('five twelve'))).size).toBe(11);
      const e = await store.writer();
      expect(await e.commit(sha256(''))).toEqual({ digest: sha256(''), size: 0 });
      expect((await readAll(await store.open(sha256('')))).length).toBe(0);
    });

    it('resumes an interrupted write from the recorded offset after a restart', async () => {
      const h = await setup();
      const w = await h.store.writer('upload-1');
      await w.append(Readable.from([Buffer.from('part one|')]));
      await w.append(Readable.from([Buffer.from('garbage beyond the recorded offset')]));
      await w.close();
      const again = await h.reopen().resume('upload-1', 9);
      expect(again?.size).toBe(9);
      await again!.append(Readable.from([Buffer.from('part two')]));
      expect(await again!.commit(sha256('part one|part two'))).toEqual({ digest: sha256('part one|part two'), size: 17 });
      expect(await h.store.resume('missing', 0)).toBeNull();
    });

    it('open of a missing blob is BLOB_UNKNOWN; delete reports whether it existed', async () => {
      const { store } = await setup();
      await expect(store.open(sha256('nothing'))).rejects.toMatchObject({ code: 'BLOB_UNKNOWN' });
      const w = await store.writer();
      await w.append(Readable.from([Buffer.from('x')]));
      await w.commit(sha256('x'));
      expect(await store.delete(sha256('x'))).toBe(true);
      expect(await store.delete(sha256('x'))).toBe(false);
      expect(await store.stat(sha256('x'))).toBeNull();
    });

    it('stops an append beyond maxBytes', async () => {
      const { store } = await setup();
      const w = await store.writer();
      await expect(w.append(Readable.from([Buffer.alloc(10)]), { maxBytes: 5 })).rejects.toMatchObject({ code: 'SIZE_INVALID' });
    });
  });
}
