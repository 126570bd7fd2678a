import { createHash, randomUUID, type Hash } from 'node:crypto';
import { constants as fsConstants, createReadStream } from 'node:fs';
import { mkdir, open, readdir, rename, rm, stat, truncate, unlink, type FileHandle } from 'node:fs/promises';
import { ServerResponse } from 'node:http';
import { dirname, join } from 'node:path';
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';
import { finished, Readable } from 'node:stream';
import { parseDigest, type DigestAlgorithm } from '../oci/index.js';
import { isStorageFull, StoreError } from './errors.js';

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
export interface AppendOptions {
  /** More bytes than this fail the append with SIZE_INVALID. */
  maxBytes?: number;
  /**
   * Told of every chunk before it is written; throwing fails the append with that error (the
   * registry counts upload bytes against a project's quota this way, as they arrive).
   */
  onChunk?: (bytes: number) => void;
}

export interface BlobWriter {
  /** Stable id of the temp file; an upload session keeps it to resume after a restart. */
  readonly id: string;
  /** Bytes written so far. */
  readonly size: number;
  /** Streams `source` to the end of the blob; resolves with the bytes appended. */
  append(source: Readable, options?: AppendOptions): Promise<number>;
  /** Verifies the content against `expectedDigest`, then publishes it (or discards it when the digest is already stored). */
  commit(expectedDigest: string, expectedSize?: number): Promise<BlobInfo>;
  /** Deletes the temp file. */
  cancel(): Promise<void>;
  /** Releases the file handle but keeps the temp file, for a later `resume`. */
  close(): Promise<void>;
  /**
   * Gives this writer up and cuts its temp file back to `size` bytes, what the caller last
   * recorded: for bytes that were written but could not be recorded (the metadata's write failed,
   * say on a full disk, where they are what fills it). The blob goes on through `resume(id, size)`.
   */
  cutBack(size: number): Promise<void>;
  /**
   * Makes what is written durable and releases the file handle, but stays usable: the next
   * append opens the file again and goes on with the running hash, where `resume` would read the
   * whole file again to rebuild it.
   */
  suspend(): Promise<void>;
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

/**
 * Incoming request bodies arrive as 64 KiB buffers that Node allocates outside the JS heap, one per
 * socket read. Garbage as soon as they are written, they are only freed when V8 collects, and with
 * little JS allocation going on V8 waits until about 64 MB of them pile up. A fresh server thus
 * takes every buffer of its first large upload from memory the kernel has never mapped: on this
 * project's 2-core VM, 12,000 page faults and 150-250 ms for a 48 MiB layer, against 2,000 and
 * about 70 ms once the memory is reused. A young-generation collection (about a millisecond) after
 * every `MINOR_GC_BYTES` received, across all uploads, frees them while they are few, so the same
 * few megabytes are reused from the first layer on and the upload's peak RSS stays lower. Node only
 * exposes the collector behind `--expose-gc`; it is fetched once into a private context, and if that
 * fails uploads simply run without it.
 */
// 2 MiB: a 5 MB layer is then already served from reused memory on a server's second push (8 MiB
// left it to fault through ~1,500 fresh pages, about 20 ms); each collection costs ~0.2 ms.
const MINOR_GC_BYTES = 2 * 1024 * 1024;
let receivedSinceGc = 0;
let minorGc: (() => void) | null | undefined;

function loadMinorGc(): (() => void) | null {
  try {
    let gc: unknown = (globalThis as { gc?: unknown }).gc;
    if (typeof gc !== 'function') {
      setFlagsFromString('--expose-gc');
      try {
        gc = runInNewContext('typeof gc === "function" ? gc : undefined');
      } finally {
        setFlagsFromString('--no-expose-gc');
      }
    }
    if (typeof gc !== 'function') return null;
    const collect = gc as (options: { type: 'minor' }) => void;
    return () => collect({ type: 'minor' });
  } catch {
    return null;
  }
}

/** Counts upload bytes; collects the young generation every `MINOR_GC_BYTES` of them. */
function noteReceived(bytes: number): void {
  receivedSinceGc += bytes;
  if (receivedSinceGc < MINOR_GC_BYTES) return;
  receivedSinceGc = 0;
  if (minorGc === undefined) minorGc = loadMinorGc();
  minorGc?.();
}

/**
 * While a blob streams in, its written bytes are flushed to disk in the background every this many
 * bytes (`fdatasync` on the threadpool, one at a time), so the fsync that `commit` must do before
 * publishing finds little left to write. A 50 MB layer otherwise waited about 50 ms in that final
 * fsync, after the client had sent its last byte.
 */
const BACKGROUND_FLUSH_BYTES = 8 * 1024 * 1024;
/**
 * A batch that has not filled up after this long is written anyway. A client that sends most of a
 * megabyte and then stalls would otherwise keep it in memory until its idle timeout (two
 * minutes), and a few hundred such connections would hold hundreds of megabytes.
 */
export const IDLE_BATCH_FLUSH_MS = 100;

/** Read-write, created if missing, never truncated and not O_APPEND (writes carry their offset). */
const OPEN_RW = fsConstants.O_RDWR | fsConstants.O_CREAT;

class FsBlobWriter implements BlobWriter {
  // A running sha256 covers the common case; a sha512 commit rehashes the file once.
  private hash: Hash;
  private fh: FileHandle | null = null;
  private opening: Promise<FileHandle> | null = null;
  private finished = false;
  /** Written since the last background flush began. */
  private unflushed = 0;
  private flushing: Promise<void> | null = null;
  /**
   * A background flush that failed. Linux reports a writeback error to one fsync per file handle,
   * so an error seen here might not be seen again by the final fsync: `commit` throws it instead.
   */
  private flushError: unknown = null;
  /** Set by suspend(): the file must be there, as written, when it is opened again. */
  private suspended = false;

  constructor(
    private readonly store: FsBlobStore,
    readonly id: string,
    private readonly path: string,
    public size: number,
    hash: Hash,
  ) {
    this.hash = hash;
  }

  private handle(): Promise<FileHandle> {
    if (this.finished) return Promise.reject(new StoreError('BLOB_UPLOAD_INVALID', `blob write ${this.id} is already finished`));
    if (this.fh) return Promise.resolve(this.fh);
    this.opening ??= (this.suspended ? this.reopen() : open(this.path, OPEN_RW)).then(
      (fh) => {
        this.fh = fh;
        this.opening = null;
        return fh;
      },
      (err: unknown) => {
        this.opening = null;
        throw err;
      },
    );
    return this.opening;
  }

  /** Writes `buffers` (`bytes` in all) at `position`, however many calls the kernel needs. */
  private async writeAt(fh: FileHandle, buffers: Buffer[], bytes: number, position: number): Promise<void> {
    let pending = buffers;
    let left = bytes;
    while (left > 0) {
      const { bytesWritten } = await fh.writev(pending, position);
      if (bytesWritten <= 0) throw new StoreError('BLOB_UPLOAD_INVALID', `blob write ${this.id}: the file system accepted no bytes`);
      position += bytesWritten;
      left -= bytesWritten;
      if (left > 0) pending = skipBytes(pending, bytesWritten);
    }
    this.unflushed += bytes;
    if (this.unflushed >= BACKGROUND_FLUSH_BYTES) this.flushInBackground(fh);
  }

  /** Starts an `fdatasync` of what is written so far, unless one is already running. */
  private flushInBackground(fh: FileHandle): void {
    if (this.unflushed === 0 || this.flushing !== null || this.flushError !== null) return;
    this.unflushed = 0;
    this.flushing = fh.datasync().then(
      () => {
        this.flushing = null;
      },
      (err: unknown) => {
        this.flushing = null;
        this.flushError = err;
      },
    );
  }

  /**
   * Reads `source` and writes it at the end of the blob, hashing each chunk once on the way. Chunks
   * are gathered into batches of up to `STREAM_HWM` bytes, each written with one `pwritev` while the
   * next batch fills; the source is paused only while a full batch waits for the write before it.
   * Resolves once every byte is in the file (not yet durable: `commit` syncs).
   */
  async append(source: Readable, options?: AppendOptions): Promise<number> {
    const fh = await this.handle();
    const maxBytes = options?.maxBytes ?? Number.MAX_SAFE_INTEGER;
    const start = this.size;
    let received = 0;
    let written = 0;
    try {
      await new Promise<void>((resolve, reject) => {
        let batch: Buffer[] = [];
        let batchBytes = 0;
        let writing = false;
        let ended = false;
        let failed = false;
        let idleTimer: NodeJS.Timeout | undefined;
        const clearIdle = () => {
          if (idleTimer !== undefined) clearTimeout(idleTimer);
          idleTimer = undefined;
        };
        const armIdle = () => {
          if (idleTimer !== undefined || writing || ended || batchBytes === 0) return;
          idleTimer = setTimeout(() => {
            idleTimer = undefined;
            if (!failed && !writing && batchBytes > 0) write();
          }, IDLE_BATCH_FLUSH_MS);
        };
        /**
         * Stops reading. As `pipeline` did, a source we stop reading is destroyed, not left
         * half-read; but a refusal (over quota, a full disk) is an answer for the client, not a
         * broken connection, so then the source is only paused, left to its owner: the registry
         * answers and then reads a bounded amount of the rest (registry/refused-body.ts), where
         * reading it all here let an endless body hold its connection for ever.
         */
        const stop = (err: unknown, keep: boolean) => {
          if (failed) return;
          failed = true;
          clearIdle();
          source.off('data', onData);
          stopWatching();
          source.on('error', () => undefined);
          // Removing the listener alone would leave the stream flowing, its chunks dropped.
          if (keep) source.pause();
          else source.destroy();
          reject(err);
        };
        const fail = (err: unknown) => stop(err, false);
        const refuse = (err: unknown) => stop(err, true);
        const write = () => {
          clearIdle();
          const buffers = batch;
          const bytes = batchBytes;
          batch = [];
          batchBytes = 0;
          writing = true;
          this.writeAt(fh, buffers, bytes, start + written).then(() => {
            writing = false;
            written += bytes;
            if (failed) return;
            if (batchBytes >= STREAM_HWM || (ended && batchBytes > 0)) write();
            if (!writing && ended) resolve();
            else if (!ended && source.isPaused()) source.resume();
            armIdle();
            // A full disk is an answer for the client too (507, registry/app.ts): the body is
            // left to the registry, so that the answer reaches it instead of a reset connection.
          }, (err: unknown) => (isStorageFull(err) ? refuse(err) : fail(err)));
        };
        const onData = (chunk: Buffer | string) => {
          const buf = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
          received += buf.length;
          if (received > maxBytes) {
            // An answer for the client (400), not a broken connection: the body is left to the
            // registry's bounded read, so the client reads why instead of a reset.
            refuse(new StoreError('SIZE_INVALID', `blob is larger than the ${maxBytes}-byte limit`));
            return;
          }
          if (options?.onChunk) {
            try {
              options.onChunk(buf.length);
            } catch (err) {
              refuse(err);
              return;
            }
          }
          this.hash.update(buf);
          noteReceived(buf.length);
          batch.push(buf);
          batchBytes += buf.length;
          if (batchBytes >= STREAM_HWM) {
            if (writing) source.pause();
            else write();
          } else armIdle();
        };
        const stopWatching = finished(source, (err) => {
          if (failed) return;
          if (err) {
            fail(err);
            return;
          }
          ended = true;
          clearIdle();
          source.off('data', onData);
          stopWatching();
          if (writing) return;
          if (batchBytes > 0) write();
          else resolve();
        });
        source.on('data', onData);
      });
    } catch (err) {
      // The file may now hold bytes beyond what the caller recorded: it must resume from its
      // recorded offset, which truncates them away. They are cut now as well: on a full disk
      // (ENOSPC) they are what fills it, and until a resume or the daily purge of idle sessions
      // every other write of the registry, its database's included, would fail too.
      this.size += received;
      await this.close();
      this.finished = true;
      await truncate(this.path, start).catch(() => undefined);
      throw err;
    }
    this.size += written;
    // The client usually asks for the commit next: flushing now, while the response and that
    // request travel, leaves the commit's own fsync (a 5 MB layer: about 6 ms) little to do.
    this.flushInBackground(fh);
    return written;
  }

  /** Waits for a background flush, then closes the file handle. */
  private async release(): Promise<void> {
    const opening = this.opening;
    if (opening) await opening.catch(() => undefined);
    if (this.flushing) await this.flushing;
    const fh = this.fh;
    this.fh = null;
    if (fh) await fh.close();
  }

  async commit(expectedDigest: string, expectedSize?: number): Promise<BlobInfo> {
    const { algorithm, hex } = parseDigest(expectedDigest, `blob write ${this.id}`);
    // Opening also recreates an empty temp file someone removed, so an empty blob always has one.
    const fh = await this.handle();
    this.finished = true;
    const discard = async () => {
      await this.release().catch(() => undefined);
      await rm(this.path, { force: true });
    };
    const actual = (algorithm === 'sha256' ? this.hash : await hashFile(this.path, algorithm)).digest('hex');
    if (actual !== hex) {
      await discard();
      throw new StoreError(
        'DIGEST_INVALID',
        `content does not match digest ${expectedDigest} (got ${algorithm}:${actual}); nothing was stored`,
        { subject: expectedDigest },
      );
    }
    if (expectedSize !== undefined && expectedSize !== this.size) {
      await discard();
      throw new StoreError('SIZE_INVALID', `blob is ${this.size} bytes, expected ${expectedSize}; nothing was stored`);
    }
    const target = this.store.blobPath(expectedDigest);
    const existing = await stat(target).catch(() => null);
    if (existing) {
      // Content addressing: the same digest is the same bytes, so the copy we have wins.
      await discard();
      return { digest: expectedDigest, size: existing.size };
    }
    try {
      if (this.flushing) await this.flushing;
      if (this.flushError !== null) throw this.flushError;
      await fh.sync();
    } catch (err) {
      await discard();
      throw err;
    }
    await this.release();
    await mkdir(dirname(target), { recursive: true });
    await rename(this.path, target);
    // Make the rename itself durable; a crash before this leaves the blob absent, never partial.
    await fsyncPath(dirname(target)).catch(() => undefined);
    return { digest: expectedDigest, size: this.size };
  }

  async cancel(): Promise<void> {
    await this.release().catch(() => undefined);
    this.finished = true;
    await rm(this.path, { force: true });
  }

  async close(): Promise<void> {
    await this.release().catch(() => undefined);
  }

  async cutBack(size: number): Promise<void> {
    await this.release().catch(() => undefined);
    this.finished = true;
    if (size < this.size) await truncate(this.path, size);
    this.size = Math.min(this.size, size);
  }

  /**
   * The file again after suspend(): never created anew, and only if it still holds what was
   * written. Were it removed meanwhile (a purge of stale uploads), O_CREAT would make an empty
   * file, and the running hash would then vouch for zeros under the pushed digest.
   */
  private async reopen(): Promise<FileHandle> {
    let fh: FileHandle;
    try {
      fh = await open(this.path, fsConstants.O_RDWR);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new StoreError('BLOB_UPLOAD_UNKNOWN', `blob write ${this.id}: its temp file is gone; start a new upload`);
      }
      throw err;
    }
    if ((await fh.stat()).size < this.size) {
      await fh.close();
      throw new StoreError('BLOB_UPLOAD_UNKNOWN', `blob write ${this.id}: its temp file lost data; start a new upload`);
    }
    return fh;
  }

  async suspend(): Promise<void> {
    const opening = this.opening;
    if (opening) await opening.catch(() => undefined);
    const fh = this.fh;
    if (!fh) return;
    if (this.flushing) await this.flushing;
    // Synced before the handle goes: Linux reports a writeback error to the handles open when it
    // happened, so the handle opened next (and the final fsync through it) would not see it.
    await fh.datasync().catch((err: unknown) => {
      this.flushError ??= err;
    });
    this.unflushed = 0;
    this.fh = null;
    this.suspended = true;
    await fh.close().catch(() => undefined);
  }
}

/** `buffers` without their first `n` bytes. */
function skipBytes(buffers: Buffer[], n: number): Buffer[] {
  const out: Buffer[] = [];
  for (const b of buffers) {
    if (n >= b.length) {
      n -= b.length;
      continue;
    }
    out.push(n > 0 ? b.subarray(n) : b);
    n = 0;
  }
  return out;
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
    // Buffers no bigger than what is to be sent, the second only once needed: most blobs a pull
    // fetches (configs, small layers) are a few hundred bytes, and two fresh 1 MiB buffers per
    // download cost more than sending them.
    let last = this.end;
    if (last === Number.POSITIVE_INFINITY) last = await this.fh.stat().then((s) => s.size - 1, () => last);
    const buffers: (Buffer | undefined)[] = [undefined, undefined];
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
        const left = Math.min(this.end, last) - this.pos + 1;
        if (left <= 0) break;
        const buffer = (buffers[i] ??= Buffer.allocUnsafeSlow(Math.min(STREAM_HWM, left)));
        const want = Math.min(buffer.length, left);
        const { bytesRead } = await this.fh.read(buffer, 0, want, this.pos);
        if (bytesRead === 0) break;
        this.pos += bytesRead;
        writing[i] = write(bytesRead === buffer.length ? buffer : buffer.subarray(0, bytesRead));
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
