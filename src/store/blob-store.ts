import { createHash, randomUUID, type Hash } from 'node:crypto';
import { createReadStream, createWriteStream, type WriteStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { Transform, type TransformCallback } from 'node:stream';
import { parseDigest, type DigestAlgorithm } from '../oci/index.js';
import { StoreError } from './errors.js';

/** 1 MiB buffers: Node's 64 KiB defaults are several times slower for hashing large layers. */
export const STREAM_HWM = 1 << 20;

export interface BlobInfo {
  digest: string;
  size: number;
}

/** Inclusive byte range, as in HTTP `Range: bytes=start-end`. */
export interface ByteRange {
  start: number;
  end: number;
}

/**
 * A blob being written. Bytes go to a private temp file and become visible under their digest only
 * in `commit`, after verification, fsync and an atomic rename, so readers never see partial data.
 */
export interface BlobWriter {
  /** Stable id of the temp file; an upload session keeps it to resume after a restart. */
  readonly id: string;
  /** Bytes written so far. */
  readonly size: number;
  /** Streams `source` to the end of the blob; resolves with the bytes appended. */
  append(source: Readable, options?: { maxBytes?: number }): Promise<number>;
  /** Verifies the content against `expectedDigest`, then publishes it (or discards it when the digest is already stored). */
  commit(expectedDigest: string, expectedSize?: number): Promise<BlobInfo>;
  /** Deletes the temp file. */
  cancel(): Promise<void>;
  /** Releases the file handle but keeps the temp file, for a later `resume`. */
  close(): Promise<void>;
}

export interface BlobStore {
  stat(digest: string): Promise<BlobInfo | null>;
  /** Streams a stored blob (or part of it); throws BLOB_UNKNOWN when absent. */
  open(digest: string, range?: ByteRange): Promise<Readable>;
  /** Starts a new blob; `id` names the temp file (defaults to a random UUID). */
  writer(id?: string): Promise<BlobWriter>;
  /**
   * Reopens the temp file of an interrupted write, cut back to `offset` bytes (what the caller
   * recorded as durable), or null when it is gone.
   */
  resume(id: string, offset: number): Promise<BlobWriter | null>;
  delete(digest: string): Promise<boolean>;
  list(): AsyncIterable<BlobInfo>;
}

const ID_RE = /^[A-Za-z0-9_-]{1,128}$/;

/** Hashes what passes through, counting bytes, and stops a source that exceeds a limit. */
class CountingHasher extends Transform {
  bytes = 0;
  constructor(
    private readonly hash: Hash,
    private readonly maxBytes: number,
  ) {
    super({ highWaterMark: STREAM_HWM });
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.bytes > this.maxBytes) {
      cb(new StoreError('SIZE_INVALID', `blob is larger than the ${this.maxBytes}-byte limit`));
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }
}

async function hashFile(path: string, algorithm: DigestAlgorithm, into?: Hash): Promise<Hash> {
  const hash = into ?? createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: STREAM_HWM })) hash.update(chunk as Buffer);
  return hash;
}

async function fsyncPath(path: string): Promise<void> {
  const fh = await open(path, 'r');
  try {
    await fh.sync();
  } finally {
    await fh.close();
  }
}

class FsBlobWriter implements BlobWriter {
  // A running sha256 covers the common case; a sha512 commit rehashes the file once.
  private hash: Hash;
  private out: WriteStream | null = null;
  private finished = false;

  constructor(
    private readonly store: FsBlobStore,
    readonly id: string,
    private readonly path: string,
    public size: number,
    hash: Hash,
  ) {
    this.hash = hash;
  }

  private stream(): WriteStream {
    if (this.finished) throw new StoreError('BLOB_UPLOAD_INVALID', `blob write ${this.id} is already finished`);
    this.out ??= createWriteStream(this.path, { flags: 'a', highWaterMark: STREAM_HWM });
    return this.out;
  }

  async append(source: Readable, options?: { maxBytes?: number }): Promise<number> {
    const out = this.stream();
    const counter = new CountingHasher(this.hash, options?.maxBytes ?? Number.MAX_SAFE_INTEGER);
    try {
      await pipeline(source, counter, out, { end: false });
    } catch (err) {
      // The file now holds an unknown number of extra bytes: the caller must resume from its
      // recorded offset, which truncates them away.
      this.size += counter.bytes;
      await this.close();
      this.finished = true;
      throw err;
    }
    this.size += counter.bytes;
    return counter.bytes;
  }

  private async closeStream(): Promise<void> {
    const out = this.out;
    this.out = null;
    if (!out) return;
    await new Promise<void>((res, rej) => {
      out.once('error', rej);
      out.end(() => res());
    });
  }

  async commit(expectedDigest: string, expectedSize?: number): Promise<BlobInfo> {
    const { algorithm, hex } = parseDigest(expectedDigest, `blob write ${this.id}`);
    if (this.finished) throw new StoreError('BLOB_UPLOAD_INVALID', `blob write ${this.id} is already finished`);
    await this.closeStream();
    // Ensure the temp file exists even for an empty blob.
    if (this.size === 0) await (await open(this.path, 'a')).close();
    this.finished = true;
    const actual = (algorithm === 'sha256' ? this.hash : await hashFile(this.path, algorithm)).digest('hex');
    if (actual !== hex) {
      await rm(this.path, { force: true });
      throw new StoreError(
        'DIGEST_INVALID',
        `content does not match digest ${expectedDigest} (got ${algorithm}:${actual}); nothing was stored`,
        { subject: expectedDigest },
      );
    }
    if (expectedSize !== undefined && expectedSize !== this.size) {
      await rm(this.path, { force: true });
      throw new StoreError('SIZE_INVALID', `blob is ${this.size} bytes, expected ${expectedSize}; nothing was stored`);
    }
    const target = this.store.blobPath(expectedDigest);
    const existing = await stat(target).catch(() => null);
    if (existing) {
      // Content addressing: the same digest is the same bytes, so the copy we have wins.
      await rm(this.path, { force: true });
      return { digest: expectedDigest, size: existing.size };
    }
    await fsyncPath(this.path);
    await mkdir(dirname(target), { recursive: true });
    await rename(this.path, target);
    // Make the rename itself durable; a crash before this leaves the blob absent, never partial.
    await fsyncPath(dirname(target)).catch(() => undefined);
    return { digest: expectedDigest, size: this.size };
  }

  async cancel(): Promise<void> {
    await this.closeStream().catch(() => undefined);
    this.finished = true;
    await rm(this.path, { force: true });
  }

  async close(): Promise<void> {
    await this.closeStream().catch(() => undefined);
  }
}

/**
 * A stored blob (or a byte range of it) as a Readable. Read as a stream, every chunk is a fresh
 * buffer. Piped into an HTTP response (what serving a pull does), it skips the stream machinery and
 * writes the file through two reused 1 MiB buffers instead, reusing one only after the response
 * reported its write done: allocating a new 1 MiB buffer per chunk cost more CPU (mostly page
 * faults in the kernel) than the rest of serving the bytes. The stream still ends, or fails, as a
 * Readable would, so whoever piped it sees the same events.
 */
class BlobReadStream extends Readable {
  private pos: number;
  private pumping = false;
  private fileClosed: Promise<void> | undefined;

  constructor(
    private readonly fh: FileHandle,
    start: number,
    /** Inclusive; infinity means to the end of the file. */
    private readonly end: number,
  ) {
    super({ highWaterMark: STREAM_HWM });
    this.pos = start;
  }

  override _read(): void {
    const want = Math.min(STREAM_HWM, this.end - this.pos + 1);
    if (want <= 0) {
      this.push(null);
      return;
    }
    const buf = Buffer.allocUnsafeSlow(want);
    this.fh.read(buf, 0, want, this.pos).then(
      ({ bytesRead }) => {
        if (bytesRead === 0) {
          this.push(null);
          return;
        }
        this.pos += bytesRead;
        this.push(bytesRead === want ? buf : buf.subarray(0, bytesRead));
      },
      (err: Error) => this.destroy(err),
    );
  }

  override _destroy(err: Error | null, cb: (err?: Error | null) => void): void {
    // A running pump closes the file itself once it sees the stream destroyed.
    if (this.pumping) cb(err);
    else this.closeFile().then(() => cb(err), cb);
  }

  override pipe<T extends NodeJS.WritableStream>(dest: T, options?: { end?: boolean }): T {
    if (!(dest instanceof ServerResponse) || this.pumping || this.readableFlowing !== null) return super.pipe(dest, options);
    this.pumping = true;
    void this.pump(dest, options?.end !== false);
    return dest;
  }

  private closeFile(): Promise<void> {
    this.fileClosed ??= this.fh.close().catch(() => undefined);
    return this.fileClosed;
  }

  private async pump(res: ServerResponse, end: boolean): Promise<void> {
    const buffers = [Buffer.allocUnsafeSlow(STREAM_HWM), Buffer.allocUnsafeSlow(STREAM_HWM)];
    const writing: Promise<void>[] = [Promise.resolve(), Promise.resolve()];
    // A response destroyed under a write may never call that write back; 'close' ends the wait.
    const gone = new Promise<void>((resolve) => {
      this.once('close', resolve);
      res.once('close', resolve);
    });
    const write = (chunk: Buffer) =>
      new Promise<void>((resolve, reject) => {
        res.write(chunk, (err) => (err ? reject(err) : resolve()));
      });
    try {
      for (let i = 0; ; i ^= 1) {
        await Promise.race([writing[i], gone]);
        if (this.destroyed || res.destroyed) return;
        const want = Math.min(STREAM_HWM, this.end - this.pos + 1);
        if (want <= 0) break;
        const { bytesRead } = await this.fh.read(buffers[i]!, 0, want, this.pos);
        if (bytesRead === 0) break;
        this.pos += bytesRead;
        writing[i] = write(bytesRead === STREAM_HWM ? buffers[i]! : buffers[i]!.subarray(0, bytesRead));
        writing[i]!.catch(() => undefined);
      }
      await Promise.race([Promise.all(writing), gone]);
      if (this.destroyed || res.destroyed) return;
      if (end) res.end();
      // End as a Readable too, so the piping side's end-of-stream handling runs.
      this.push(null);
      this.resume();
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      await this.closeFile();
    }
  }
}

/**
 * Blobs on a local filesystem: `<root>/blobs/<alg>/<2 hex>/<hex>`, temp files in `<root>/tmp`.
 * `root` is `<data>/registry`. Both folders share a filesystem so publishing is a rename.
 */
export class FsBlobStore implements BlobStore {
  readonly tmpDir: string;
  constructor(readonly root: string) {
    this.tmpDir = join(root, 'tmp');
  }

  blobPath(digest: string): string {
    const { algorithm, hex } = parseDigest(digest);
    return join(this.root, 'blobs', algorithm, hex.slice(0, 2), hex);
  }

  async stat(digest: string): Promise<BlobInfo | null> {
    const s = await stat(this.blobPath(digest)).catch(() => null);
    return s?.isFile() ? { digest, size: s.size } : null;
  }

  async open(digest: string, range?: ByteRange): Promise<Readable> {
    const path = this.blobPath(digest);
    // Open first so a missing blob is an error here, not an 'error' event after headers went out.
    const fh = await open(path, 'r').catch((err: NodeJS.ErrnoException) => {
      if (err.code === 'ENOENT') throw new StoreError('BLOB_UNKNOWN', `blob ${digest} is not stored`, { subject: digest });
      throw err;
    });
    return new BlobReadStream(fh, range?.start ?? 0, range?.end ?? Number.POSITIVE_INFINITY);
  }

  private tempPath(id: string): string {
    if (!ID_RE.test(id)) throw new StoreError('BLOB_UPLOAD_INVALID', `invalid blob write id "${id}"`);
    return join(this.tmpDir, id);
  }

  async writer(id: string = randomUUID()): Promise<BlobWriter> {
    const path = this.tempPath(id);
    await mkdir(this.tmpDir, { recursive: true });
    // A fresh writer starts empty even if a stale temp file of that name exists.
    await (await open(path, 'w')).close();
    return new FsBlobWriter(this, id, path, 0, createHash('sha256'));
  }

  async resume(id: string, offset: number): Promise<BlobWriter | null> {
    const path = this.tempPath(id);
    const s = await stat(path).catch(() => null);
    if (!s || s.size < offset) return null;
    if (s.size > offset) await truncate(path, offset);
    // Node cannot persist a hash state, so resuming costs one read of what is already there.
    const hash = await hashFile(path, 'sha256');
    return new FsBlobWriter(this, id, path, offset, hash);
  }

  async delete(digest: string): Promise<boolean> {
    try {
      await unlink(this.blobPath(digest));
      return true;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') return false;
      throw err;
    }
  }

  async *list(): AsyncIterable<BlobInfo> {
    for (const algorithm of ['sha256', 'sha512'] as const) {
      const base = join(this.root, 'blobs', algorithm);
      const prefixes = await readdir(base).catch(() => [] as string[]);
      for (const prefix of prefixes.sort()) {
        const names = await readdir(join(base, prefix)).catch(() => [] as string[]);
        for (const hex of names.sort()) {
          const s = await stat(join(base, prefix, hex)).catch(() => null);
          if (s?.isFile()) yield { digest: `${algorithm}:${hex}`, size: s.size };
        }
      }
    }
  }
}

/** Stores a small in-memory blob (manifests); layers always go through `writer()`. */
export async function writeBlobBytes(store: BlobStore, bytes: Uint8Array, digest: string): Promise<BlobInfo> {
  const w = await store.writer();
  try {
    await w.append(Readable.from([Buffer.from(bytes)]));
  } catch (err) {
    await w.cancel();
    throw err;
  }
  return w.commit(digest, bytes.length);
}

export function blobRoot(dataDir: string): string {
  return join(dataDir, 'registry');
}
