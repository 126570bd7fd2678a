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

/** fzstd decodes in pure JS; this wraps its push API in a stream. */
class ZstdStream extends Transform {
  private readonly decoder: ZstdDecompress;
  private pending: Uint8Array[] = [];

  constructor() {
    super({ highWaterMark: 1 << 20 });
    this.decoder = new ZstdDecompress((chunk) => {
      this.pending.push(chunk);
    });
  }

  private drain(): void {
    for (const c of this.pending) this.push(Buffer.from(c.buffer, c.byteOffset, c.byteLength));
    this.pending = [];
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    try {
      this.decoder.push(chunk);
      this.drain();
      cb();
    } catch (err) {
      cb(new Error(`zstd: ${(err as Error).message}`));
    }
  }

  override _flush(cb: TransformCallback): void {
    try {
      this.decoder.push(new Uint8Array(0), true);
      this.drain();
      cb();
    } catch (err) {
      cb(new Error(`zstd: ${(err as Error).message}`));
    }
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
