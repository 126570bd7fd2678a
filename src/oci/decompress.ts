import { Transform, type Readable, type TransformCallback, type TransformOptions } from 'node:stream';
import { createGunzip, type ZlibOptions } from 'node:zlib';
import { Decompress as ZstdDecompress } from 'fzstd';

export type Compression = 'gzip' | 'zstd' | 'none';

const ZLIB_CHUNK = 1 << 20;
const ZLIB_READ_AHEAD = 4 * ZLIB_CHUNK;

/** Decides by magic bytes, not media type: registries and archives mislabel layers often enough. */
export function detectCompression(head: Buffer): Compression {
  if (head.length >= 2 && head[0] === 0x1f && head[1] === 0x8b) return 'gzip';
  if (head.length >= 4 && head.readUInt32LE(0) === 0xfd2fb528) return 'zstd';
  return 'none';
}

/**
 * Output one zstd block can decode to: RFC 8878's Block_Maximum_Size, and the size of the buffer fzstd
 * decodes a compressed block into. Raw and RLE blocks state their size; fzstd does not hold them to
 * this maximum, so their bound is the size they state (up to 2 MiB).
 */
const ZSTD_BLOCK_MAX = 128 * 1024;
/** Decoded bytes one push into fzstd may produce, as bounded beforehand, before the reader is consulted. */
const ZSTD_PUSH_OUTPUT = 1 << 20;
const ZSTD_MAGIC = 0xfd2fb528;
/** Skippable frames (RFC 8878 3.1.2) have magic numbers 0x184D2A50 to 0x184D2A5F. */
const ZSTD_SKIPPABLE = 0x184d2a5;

/**
 * Follows the frame and block layout of a zstd stream (RFC 8878 3.1) without decoding it, to know
 * where each block ends and how much it can decode to. fzstd's `Decompress.push` decodes every
 * complete block it holds and hands all of it over at once: 420 KB of RLE blocks decode to 13 GB.
 * Cutting its input after the block where the bound of what it may decode reaches a budget keeps
 * each push small whatever the compression ratio. The walk mirrors fzstd's own parse (header sizes,
 * checksums, skippable frames); at a block type fzstd rejects, or a magic number it does not know,
 * it stops bounding and passes the rest on: fzstd fails there without decoding more.
 */
class ZstdBlockBounds {
  private state: 'magic' | 'frame-header' | 'skippable-header' | 'block-header' | 'skip' | 'opaque' = 'magic';
  /** Header bytes collected so far (a frame header is at most 18 bytes). */
  private readonly head = new Uint8Array(18);
  private have = 0;
  private need = 4;
  /** Bytes to pass over in 'skip': the rest of a block, a checksum, a skippable frame. */
  private remaining = 0;
  /** What the block being skipped decodes to at most; -1 while skipping something that is not a block. */
  private blockOutput = -1;
  private lastBlock = false;
  private checksum = false;

  /**
   * The end of the next slice of `chunk` to push from `from`: just after the first block end where
   * the bounds of the blocks completed reach `budget`, or the end of the chunk.
   */
  cut(chunk: Uint8Array, from: number, budget: number): number {
    let pos = from;
    let output = 0;
    while (pos < chunk.length) {
      if (this.state === 'opaque') return chunk.length;
      if (this.state === 'skip') {
        const take = Math.min(this.remaining, chunk.length - pos);
        pos += take;
        this.remaining -= take;
        if (this.remaining > 0) return pos;
        if (this.blockOutput < 0) {
          this.expect('magic', 4);
          continue;
        }
        output += this.blockOutput;
        this.blockOutput = -1;
        if (this.lastBlock) this.skipThen(this.checksum ? 4 : 0);
        else this.expect('block-header', 3);
        if (output >= budget) return pos;
        continue;
      }
      this.head[this.have++] = chunk[pos++]!;
      if (this.have === 5 && this.state === 'frame-header') this.need = frameHeaderSize(this.head[4]!);
      if (this.have < this.need) continue;
      this.headerComplete();
    }
    return pos;
  }

  private expect(state: 'magic' | 'frame-header' | 'skippable-header' | 'block-header', need: number): void {
    this.state = state;
    this.have = 0;
    this.need = need;
  }

  private skipThen(bytes: number): void {
    this.state = 'skip';
    this.remaining = bytes;
  }

  private headerComplete(): void {
    const h = this.head;
    if (this.state === 'magic') {
      const magic = (h[0]! | (h[1]! << 8) | (h[2]! << 16) | (h[3]! << 24)) >>> 0;
      if (magic === ZSTD_MAGIC) {
        this.state = 'frame-header';
        this.need = 5;
      } else if (magic >>> 4 === ZSTD_SKIPPABLE) {
        this.state = 'skippable-header';
        this.need = 8;
      } else {
        this.state = 'opaque';
      }
    } else if (this.state === 'skippable-header') {
      this.skipThen((h[4]! | (h[5]! << 8) | (h[6]! << 16) | (h[7]! << 24)) >>> 0);
    } else if (this.state === 'frame-header') {
      this.checksum = ((h[4]! >> 2) & 1) === 1;
      this.expect('block-header', 3);
    } else {
      const word = h[0]! | (h[1]! << 8) | (h[2]! << 16);
      const type = (word >> 1) & 3;
      const size = word >>> 3;
      if (type === 3) {
        this.state = 'opaque';
        return;
      }
      this.lastBlock = (word & 1) === 1;
      this.blockOutput = type === 2 ? ZSTD_BLOCK_MAX : size;
      this.skipThen(type === 1 ? 1 : size);
    }
  }
}

/** Bytes of a zstd frame header (magic number included), from its frame header descriptor. */
function frameHeaderSize(descriptor: number): number {
  const singleSegment = (descriptor >> 5) & 1;
  const dictionaryId = [0, 1, 2, 4][descriptor & 3]!;
  const contentSizeField = descriptor >> 6;
  const contentSize = contentSizeField ? 1 << contentSizeField : singleSegment;
  return 4 + 1 + (singleSegment ? 0 : 1) + dictionaryId + contentSize;
}

const zstdError = (err: unknown) => new Error(`zstd: ${(err as Error).message}`);

/**
 * fzstd decodes in pure JS; this wraps its push API in a stream with backpressure. Each input chunk
 * is pushed in slices of at most about ZSTD_PUSH_OUTPUT decoded bytes (ZstdBlockBounds), and when
 * the readable side is full the rest of the chunk waits until the reader asks for more (`_read`).
 * So what is held decoded at once is bounded by the high-water mark plus one slice, and the reader
 * (the tar reader, which enforces the byte limits) stops a bomb before it is decoded. Ordinary
 * layers go at the same pace: a slice of compressed blocks is eight blocks, hundreds of KiB of input.
 */
class ZstdStream extends Transform {
  private readonly decoder: ZstdDecompress;
  private readonly bounds = new ZstdBlockBounds();
  private pending: Uint8Array[] = [];
  /** Carries on with the current input chunk; set while it waits for the reader. */
  private continueChunk: (() => void) | null = null;
  /** The reader asked for more while a slice was being pushed: its `_read` is not repeated. */
  private readRequested = false;

  constructor() {
    super({ highWaterMark: 1 << 20 });
    this.decoder = new ZstdDecompress((chunk) => {
      this.pending.push(chunk);
    });
  }

  private drain(): void {
    const pending = this.pending;
    this.pending = [];
    for (const c of pending) this.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.feed(chunk, 0, cb);
  }

  private feed(chunk: Buffer, from: number, cb: TransformCallback): void {
    while (from < chunk.length) {
      if (this.destroyed) return;
      const to = this.bounds.cut(chunk, from, ZSTD_PUSH_OUTPUT);
      this.readRequested = false;
      try {
        this.decoder.push(chunk.subarray(from, to));
      } catch (err) {
        this.pending = [];
        cb(zstdError(err));
        return;
      }
      from = to;
      this.drain();
      if (from < chunk.length && this.readableLength >= this.readableHighWaterMark && !this.readRequested) {
        const rest = from;
        this.continueChunk = () => this.feed(chunk, rest, cb);
        return;
      }
    }
    cb();
  }

  override _read(size: number): void {
    const next = this.continueChunk;
    this.continueChunk = null;
    if (next) next();
    else this.readRequested = true;
    super._read(size);
  }

  override _flush(cb: TransformCallback): void {
    // What fzstd still holds is less than one block past the last complete one (or a frame header
    // with the few blocks that fit in its first 18 bytes), so this output is small too.
    try {
      this.decoder.push(new Uint8Array(0), true);
    } catch (err) {
      cb(zstdError(err));
      return;
    }
    this.drain();
    cb();
  }

  override _destroy(err: Error | null, cb: (error?: Error | null) => void): void {
    this.continueChunk = null;
    this.pending = [];
    super._destroy(err, cb);
  }
}

export function createDecompressor(kind: Compression): Transform | undefined {
  // Room for four output chunks: zlib pauses whenever its readable side is full, and with
  // Node's 16 KiB default that meant after every chunk, until the tar reader came back for the
  // next. With read-ahead it keeps inflating while the main thread analyses: the 1 GiB layer's
  // steady scan took 2.09-2.29 s with 8 MiB against 2.28-2.41 s without, and 4 MiB measured the
  // same as 8 MiB with less memory (BENCHMARKS.md, "The tar reader, and the main thread's turns").
  // Node passes these options on to the stream; @types/node's ZlibOptions does not list them.
  if (kind === 'gzip')
    return createGunzip({ chunkSize: ZLIB_CHUNK, readableHighWaterMark: ZLIB_READ_AHEAD } as ZlibOptions &
      TransformOptions);
  if (kind === 'zstd') return new ZstdStream();
  return undefined;
}

/** Reads the first bytes of a stream and puts them back, so the stream can be consumed whole. */
export function peek(stream: Readable): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const cleanup = () => {
      stream.off('readable', onReadable);
      stream.off('end', onEnd);
      stream.off('error', onError);
    };
    const onReadable = () => {
      const chunk = stream.read() as Buffer | null;
      if (chunk === null) return;
      cleanup();
      stream.unshift(chunk);
      resolve(chunk);
    };
    const onEnd = () => {
      cleanup();
      resolve(Buffer.alloc(0));
    };
    const onError = (err: Error) => {
      cleanup();
      reject(err);
    };
    stream.on('readable', onReadable);
    stream.once('end', onEnd);
    stream.once('error', onError);
  });
}
