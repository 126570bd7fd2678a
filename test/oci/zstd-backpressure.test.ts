import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { setImmediate as tick } from 'node:timers/promises';
import fc from 'fast-check';
import { decompress } from 'fzstd';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, LimitTracker } from '../../src/analyse/limits.js';
import { walkTarLayer } from '../../src/analyse/tar-walker.js';
import { createDecompressor } from '../../src/oci/decompress.js';
import { compress, HAVE_ZSTD } from '../helpers/image-builder.js';
import { padToBlock, ustarHeader } from '../helpers/tar-blocks.js';

// zstd bytes made by hand (RFC 8878), so no zstd command is needed: a frame header, then raw and
// RLE blocks. An RLE block is 4 bytes (a 3-byte block header and the byte to repeat) and decodes
// to up to 128 KiB, so a few KiB of input make hundreds of MiB.
const MiB = 1 << 20;
const BLOCK = 128 * 1024;

function blockHeader(type: 0 | 1, size: number, last: boolean): Buffer {
  const word = (size << 3) | (type << 1) | (last ? 1 : 0);
  return Buffer.from([word & 0xff, (word >> 8) & 0xff, (word >> 16) & 0xff]);
}

/** One zstd frame: `raw` stored as is, then `zeros` zero bytes as RLE blocks of at most 128 KiB. */
function zstdFrame(raw: Buffer, zeros: number): Buffer {
  // Frame header descriptor 0: no content size, no checksum, no dictionary; window descriptor
  // 0x38: a 128 KiB window, as large as a block.
  const head = Buffer.concat([
    Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x00, 0x38]),
    blockHeader(0, raw.length, zeros === 0),
    raw,
  ]);
  const rle = Buffer.alloc(Math.ceil(zeros / BLOCK) * 4);
  for (let left = zeros, at = 0; left > 0; left -= BLOCK, at += 4) {
    const size = Math.min(BLOCK, left);
    blockHeader(1, size, left === size).copy(rle, at); // then the byte to repeat: 0
  }
  return Buffer.concat([head, rle]);
}

/** A layer whose tar holds one small file, then `zeros` zero bytes: the end of the archive and data after it. */
function zeroBombLayer(zeros: number): Buffer {
  const file = Buffer.concat([ustarHeader('etc/hostname', '0', 5), padToBlock(Buffer.from('host\n'))]);
  return zstdFrame(file, zeros);
}

/** Feeds `bytes` to the zstd stream in chunks of the given sizes (cycled), reading slowly. */
async function decodeInChunks(bytes: Buffer, sizes: number[]): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const size = sizes[i % sizes.length]!;
    chunks.push(bytes.subarray(at, at + size));
    at += size;
  }
  const stream = createDecompressor('zstd')!;
  Readable.from(chunks).pipe(stream);
  const out: Buffer[] = [];
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    out.push(chunk);
    await tick();
  }
  return Buffer.concat(out);
}

const scratch = mkdtempSync(join(tmpdir(), 'portcullis-zstd-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

describe('zstd decompression keeps to the pace of its reader', () => {
  it('the hand-made frames are valid zstd', () => {
    const layer = zeroBombLayer(3 * BLOCK + 100);
    const out = decompress(layer);
    expect(out.length).toBe(1024 + 3 * BLOCK + 100);
    expect(Buffer.from(out.subarray(0, 12)).toString()).toBe('etc/hostname');
    expect(out.subarray(1024).every((b) => b === 0)).toBe(true);
  });

  it(`decodes what fzstd decodes at once, across frames, skippable frames and checksums, however it is chunked${
    HAVE_ZSTD ? '' : ' [PARTLY SKIPPED: the zstd command is absent, so no compressed blocks]'
  }`, async () => {
    const text = Buffer.from('the quick brown fox jumps over the lazy dog\n'.repeat(4000));
    const frames = [
      zstdFrame(Buffer.from('raw bytes first, '), 3 * BLOCK + 7),
      // A skippable frame (magic 0x184D2A5A, 7 bytes of payload), skipped by decoders.
      Buffer.concat([Buffer.from([0x5a, 0x2a, 0x4d, 0x18, 7, 0, 0, 0]), Buffer.from('ignored')]),
      // Single segment with a one-byte content size (no window descriptor): 200 bytes of 'x'.
      Buffer.concat([
        Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x20, 200]),
        blockHeader(1, 200, true),
        Buffer.from('x'),
      ]),
      // A two-byte content size (stored minus 256) and a last block that is empty.
      Buffer.concat([
        Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0x40, 0x38, 44, 0]),
        blockHeader(1, 300, false),
        Buffer.from('y'),
        blockHeader(0, 0, true),
      ]),
      // Compressed blocks and a content checksum, from the zstd command.
      ...(HAVE_ZSTD ? [compress(text, 'zstd')] : []),
    ];
    const stream = Buffer.concat(frames);
    const expected = Buffer.from(decompress(stream));
    expect(expected.length).toBe(17 + 3 * BLOCK + 7 + 200 + 300 + (HAVE_ZSTD ? text.length : 0));
    expect(await decodeInChunks(stream, [stream.length])).toEqual(expected);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 5000 }), { minLength: 1, maxLength: 6 }),
        async (sizes) => {
          expect((await decodeInChunks(stream, sizes)).equals(expected)).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('holds a few MiB at most while a slow reader takes 256 MiB decoded from 9 KiB given at once', async () => {
    const zeros = 256 * MiB;
    const layer = zeroBombLayer(zeros);
    expect(layer.length).toBeLessThan(10 * 1024);
    const stream = createDecompressor('zstd')!;
    Readable.from([layer]).pipe(stream);
    let total = 0;
    let held = 0;
    let n = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      held = Math.max(held, chunk.length + stream.readableLength);
      if (++n % 16 === 0) await tick();
    }
    expect(total).toBe(1024 + zeros);
    // The readable side's high-water mark (1 MiB) plus one slice of pushed blocks (about 1 MiB).
    expect(held).toBeLessThanOrEqual(4 * MiB);
  });

  it('a reader that stops early ends the decoding: 13 GB of RLE blocks cost what was read', async () => {
    const stream = createDecompressor('zstd')!;
    // 100,000 blocks of 128 KiB, as in the RLE bomb layer that reached 12.9 GB of memory.
    Readable.from([zstdFrame(Buffer.alloc(0), 100_000 * BLOCK)]).pipe(stream);
    let total = 0;
    let held = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      total += chunk.length;
      held = Math.max(held, chunk.length + stream.readableLength);
      if (total >= 32 * MiB) break;
    }
    expect(stream.destroyed).toBe(true);
    expect(total).toBeLessThan(40 * MiB);
    expect(held).toBeLessThanOrEqual(4 * MiB);
  });

  it('a zstd bomb layer ends in the byte limit error, with little memory spent', async () => {
    const layer = zeroBombLayer(1024 * MiB);
    const peakBefore = process.resourceUsage().maxRSS;
    const limits = new LimitTracker({ ...DEFAULT_LIMITS, maxTotalBytes: 8 * MiB });
    const started = Date.now();
    await expect(
      walkTarLayer(Readable.from([layer]), {
        analysers: [],
        ctx: { scratchDir: scratch },
        limits,
        subject: 'img layer 1',
      }),
    ).rejects.toThrow(
      `img layer 1: more than ${8 * MiB} uncompressed bytes in the image, counting tar metadata and data after the end of the archive (raise --max-total-bytes if this is genuine)`,
    );
    expect(limits.bytes).toBeLessThan(16 * MiB);
    expect(Date.now() - started).toBeLessThan(10_000);
    // maxRSS is in KiB. Decoding the whole GiB at once, as the stream did, grew it by over 1 GiB.
    expect(process.resourceUsage().maxRSS - peakBefore).toBeLessThan(128 * 1024);
  });
});
