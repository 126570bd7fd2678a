/**
 * Reader for rpm's own "ndb" package store (`Packages.db`, rpm 4.16+, the default on SUSE).
 * All integers are little-endian, whatever the host.
 *
 * - file header (first 32 bytes of slot page 0): magic 'RpmP' @0, format version @4 (0),
 *   generation @8, number of 4096-byte slot pages @12, next package index @16;
 * - the slot pages follow as 16-byte slots {magic 'Slot', pkgidx, blkoff, blkcnt}, starting right
 *   after the header; a slot with blkoff 0 is free. blkoff and blkcnt count 16-byte blocks;
 * - each blob: {'BlbS', pkgidx, generation, length} + length bytes of header blob + zero padding to
 *   the block size + {adler32 of everything before it, length, 'BlbE'}.
 */
import { HeaderBudget, type HeaderBlobs, type HeaderLimits } from './header.js';

const NDB_MAGIC = 0x506d7052; // 'RpmP' read little-endian
const NDB_VERSION = 0;
const SLOT_MAGIC = 0x746f6c53; // 'Slot'
const BLOB_HEAD_MAGIC = 0x53626c42; // 'BlbS'
const BLOB_TAIL_MAGIC = 0x45626c42; // 'BlbE'
const HEADER_SIZE = 32;
const SLOT_SIZE = 16;
const BLOCK_SIZE = 16;
const SLOT_PAGE_SIZE = 4096;
const BLOB_HEAD_SIZE = 16;
const BLOB_TAIL_SIZE = 12;

export class NdbError extends Error {
  override readonly name = 'NdbError';
}

export function isNdb(content: Buffer): boolean {
  return content.length >= 4 && content.readUInt32LE(0) === NDB_MAGIC;
}

/** Adler-32 (RFC 1950), which ndb uses to checksum each blob. */
export function adler32(data: Buffer, start = 0, end = data.length): number {
  let a = 1;
  let b = 0;
  // 5552 is the longest run before the sums can overflow 2^32 and need reducing.
  for (let i = start; i < end;) {
    const stop = Math.min(end, i + 5552);
    for (; i < stop; i++) {
      a += data[i] ?? 0;
      b += a;
    }
    a %= 65521;
    b %= 65521;
  }
  return ((b << 16) | a) >>> 0;
}

/**
 * Every header blob listed in the slot pages, ordered by package index (rpm's install order).
 * Throws NdbError when the file header or slot pages are unusable; a bad blob becomes a problem.
 * Every blob is charged to `limits` before it is checksummed, so slots that all point at one big
 * blob cost bounded work; past the limits the reader stops and says so in `stopped`.
 */
export function readNdbHeaderBlobs(content: Buffer, limits?: HeaderLimits): HeaderBlobs {
  if (content.length < HEADER_SIZE) throw new NdbError('ndb file shorter than its header');
  if (content.readUInt32LE(0) !== NDB_MAGIC) throw new NdbError("not an rpm ndb database (no 'RpmP' magic)");
  const version = content.readUInt32LE(4);
  if (version !== NDB_VERSION) throw new NdbError(`unsupported ndb version ${version}`);
  const slotPages = content.readUInt32LE(12);
  if (slotPages === 0 || slotPages * SLOT_PAGE_SIZE > content.length) {
    throw new NdbError(`ndb header claims ${slotPages} slot pages, more than the file holds`);
  }
  const totalBlocks = Math.floor(content.length / BLOCK_SIZE);
  // Blobs live after the slot pages; a slot pointing into them is corrupt.
  const firstBlobBlock = (slotPages * SLOT_PAGE_SIZE) / BLOCK_SIZE;
  const problems: string[] = [];
  const found: { pkgidx: number; blob: Buffer }[] = [];
  const budget = new HeaderBudget(limits);
  for (let at = HEADER_SIZE; at < slotPages * SLOT_PAGE_SIZE; at += SLOT_SIZE) {
    if (content.readUInt32LE(at) !== SLOT_MAGIC)
      throw new NdbError(`ndb slot at byte ${at} has no 'Slot' magic`);
    const pkgidx = content.readUInt32LE(at + 4);
    const blkoff = content.readUInt32LE(at + 8);
    const blkcnt = content.readUInt32LE(at + 12);
    if (blkoff === 0) continue;
    if (pkgidx === 0 || blkcnt === 0 || blkoff < firstBlobBlock || blkoff + blkcnt > totalBlocks) {
      problems.push(`ndb slot for package ${pkgidx} points at blocks ${blkoff}+${blkcnt} outside the data`);
      continue;
    }
    if (!budget.take(blkcnt * BLOCK_SIZE)) break;
    try {
      found.push({ pkgidx, blob: readBlob(content, pkgidx, blkoff, blkcnt) });
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
    }
  }
  found.sort((a, b) => a.pkgidx - b.pkgidx);
  const result: HeaderBlobs = { blobs: found.map((f) => f.blob), problems };
  if (budget.reason !== undefined) result.stopped = budget.reason;
  return result;
}

function readBlob(content: Buffer, pkgidx: number, blkoff: number, blkcnt: number): Buffer {
  const start = blkoff * BLOCK_SIZE;
  const end = start + blkcnt * BLOCK_SIZE;
  if (blkcnt * BLOCK_SIZE < BLOB_HEAD_SIZE + BLOB_TAIL_SIZE)
    throw new NdbError(`ndb blob ${pkgidx} is too small`);
  if (content.readUInt32LE(start) !== BLOB_HEAD_MAGIC)
    throw new NdbError(`ndb blob ${pkgidx} has no 'BlbS' magic`);
  if (content.readUInt32LE(start + 4) !== pkgidx)
    throw new NdbError(`ndb blob at block ${blkoff} belongs to another package`);
  const length = content.readUInt32LE(start + 12);
  if (Math.ceil((BLOB_HEAD_SIZE + length + BLOB_TAIL_SIZE) / BLOCK_SIZE) !== blkcnt) {
    throw new NdbError(`ndb blob ${pkgidx} length ${length} does not fit its ${blkcnt} blocks`);
  }
  const tail = end - BLOB_TAIL_SIZE;
  if (content.readUInt32LE(tail + 8) !== BLOB_TAIL_MAGIC || content.readUInt32LE(tail + 4) !== length) {
    throw new NdbError(`ndb blob ${pkgidx} has a bad trailer`);
  }
  // The checksum catches blobs torn by an interrupted write, which rpm itself refuses to read.
  if (adler32(content, start, tail) !== content.readUInt32LE(tail)) {
    throw new NdbError(`ndb blob ${pkgidx} fails its checksum`);
  }
  return content.subarray(start + BLOB_HEAD_SIZE, start + BLOB_HEAD_SIZE + length);
}
