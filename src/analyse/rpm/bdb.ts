/**
 * Reader for the Berkeley DB hash database rpm < 4.16 keeps in `/var/lib/rpm/Packages`, done in
 * plain TypeScript so scanning never needs libdb. Rather than walking buckets we visit every page,
 * as the values we want sit on hash pages in key/data pairs and big values spill onto chains of
 * overflow pages; unused and freed pages have other page types and are passed over.
 *
 * Layout notes (Berkeley DB 4.x/5.x on-disk format, integers in the byte order of the host that
 * wrote the file, which the metadata magic reveals):
 * - page 0, hash metadata: magic @12 (0x061561), version @16, page size @20, encrypt_alg @24,
 *   page type @25 (8 = hash meta), metaflags @26, last page number @32;
 * - every other page starts with a 26-byte header: pgno @8, prev @12, next @16, entries @20 (u16),
 *   hf_offset @22 (u16; on overflow pages the number of data bytes), type @25;
 * - hash pages (type 13, or 2 for old unsorted ones) follow the header with `entries` u16 item
 *   offsets; items alternate key, data, and are packed downwards from the page end, so item i ends
 *   where item i-1 starts. An item's first byte is its kind: 1 = inline bytes, 3 = off-page
 *   reference {kind, 3 unused, u32 first overflow pgno, u32 total length};
 * - overflow pages (type 7) hold hf_offset bytes after the header and link on through `next`.
 *
 * Every overflow page belongs to at most one value, so a page met a second time (by another item,
 * or by a chain that loops) is corruption and refused: without that, thousands of items pointing
 * at one long chain would each get their own copy of it.
 */
import { HeaderBudget, type HeaderBlobs, type HeaderLimits } from './header.js';

const HASH_MAGIC = 0x061561;
const PAGE_HEADER_SIZE = 26;

const P_HASH_UNSORTED = 2;
const P_OVERFLOW = 7;
const P_HASHMETA = 8;
const P_HASH = 13;

const H_KEYDATA = 1;
const H_DUPLICATE = 2;
const H_OFFPAGE = 3;
const H_OFFDUP = 4;

/** Metadata flag: pages carry checksums, which moves the item offsets; rpm never enables it. */
const DBMETA_CHKSUM = 0x01;

export class BdbError extends Error {
  override readonly name = 'BdbError';
}

export function isBdbHash(content: Buffer): boolean {
  if (content.length < 26) return false;
  return (
    (content.readUInt32LE(12) === HASH_MAGIC || content.readUInt32BE(12) === HASH_MAGIC) &&
    content[25] === P_HASHMETA
  );
}

/** Byte-order-aware view of the database file. */
class BdbFile {
  readonly pageSize: number;
  readonly pageCount: number;
  readonly truncated: boolean;
  private readonly le: boolean;
  /** Overflow pages already taken by a value (indexed by page number). */
  private readonly claimed: Uint8Array;

  constructor(private readonly buf: Buffer) {
    if (buf.length < 72) throw new BdbError('Berkeley DB file shorter than its metadata header');
    if (buf.readUInt32LE(12) === HASH_MAGIC) this.le = true;
    else if (buf.readUInt32BE(12) === HASH_MAGIC) this.le = false;
    else throw new BdbError('not a Berkeley DB hash database (bad magic)');
    if (buf[25] !== P_HASHMETA) throw new BdbError(`Berkeley DB metadata page has type ${buf[25]}, not hash`);
    if (buf[24] !== 0) throw new BdbError('encrypted Berkeley DB databases are not supported');
    if (((buf[26] ?? 0) & DBMETA_CHKSUM) !== 0) {
      throw new BdbError('Berkeley DB databases with page checksums are not supported');
    }
    this.pageSize = this.u32(buf, 20);
    if (this.pageSize < 512 || this.pageSize > 65536 || (this.pageSize & (this.pageSize - 1)) !== 0) {
      throw new BdbError(`implausible Berkeley DB page size ${this.pageSize}`);
    }
    const lastPgno = this.u32(buf, 32);
    const available = Math.floor(buf.length / this.pageSize);
    this.truncated = lastPgno + 1 > available;
    this.pageCount = Math.min(lastPgno + 1, available);
    this.claimed = new Uint8Array(this.pageCount);
  }

  u32(b: Buffer, at: number): number {
    return this.le ? b.readUInt32LE(at) : b.readUInt32BE(at);
  }

  u16(b: Buffer, at: number): number {
    return this.le ? b.readUInt16LE(at) : b.readUInt16BE(at);
  }

  page(pgno: number): Buffer {
    if (pgno < 1 || pgno >= this.pageCount) throw new BdbError(`page ${pgno} is outside the file`);
    return this.buf.subarray(pgno * this.pageSize, (pgno + 1) * this.pageSize);
  }

  /**
   * The pieces of a value stored on a chain of overflow pages, without copying them. Each page may
   * be used once in the whole file: a second visit means a shared or looping chain.
   */
  private overflowParts(first: number, total: number): Buffer[] {
    const parts: Buffer[] = [];
    let have = 0;
    let pgno = first;
    // A chain can never be longer than the file; bounding it defeats loops in corrupt files.
    for (let hops = 0; have < total; hops++) {
      if (pgno === 0 || hops >= this.pageCount) {
        throw new BdbError(`overflow chain from page ${first} ends after ${have} of ${total} bytes`);
      }
      const page = this.page(pgno);
      if (page[25] !== P_OVERFLOW)
        throw new BdbError(`page ${pgno} in an overflow chain has type ${page[25]}`);
      if (this.claimed[pgno] !== 0) {
        throw new BdbError(
          `overflow chain from page ${first} reuses page ${pgno}, already part of another value`,
        );
      }
      this.claimed[pgno] = 1;
      const len = this.u16(page, 22);
      if (PAGE_HEADER_SIZE + len > this.pageSize)
        throw new BdbError(`overflow page ${pgno} claims ${len} bytes`);
      parts.push(page.subarray(PAGE_HEADER_SIZE, PAGE_HEADER_SIZE + len));
      have += len;
      pgno = this.u32(page, 16);
    }
    return parts;
  }

  /**
   * The bytes of item `index` on a hash page, following it off-page when needed. With a budget
   * (for values), the item is charged before it is copied; undefined when the budget refuses it.
   * Without one (for keys), only inline items are accepted.
   */
  readItem(
    page: Buffer,
    pgno: number,
    index: number,
    entries: number,
    budget?: HeaderBudget,
  ): Buffer | undefined {
    const offset = this.u16(page, PAGE_HEADER_SIZE + 2 * index);
    const end = index === 0 ? this.pageSize : this.u16(page, PAGE_HEADER_SIZE + 2 * (index - 1));
    if (offset < PAGE_HEADER_SIZE + 2 * entries || end > this.pageSize || end <= offset) {
      throw new BdbError(`hash page ${pgno} item ${index} has bad bounds ${offset}..${end}`);
    }
    const kind = page[offset];
    if (kind === H_KEYDATA) {
      const value = page.subarray(offset + 1, end);
      return budget === undefined || budget.take(value.length) ? value : undefined;
    }
    if (kind === H_OFFPAGE) {
      if (end - offset < 12)
        throw new BdbError(`hash page ${pgno} item ${index} is a short off-page reference`);
      if (budget === undefined) throw new BdbError(`hash page ${pgno} item ${index} is an off-page key`);
      const total = this.u32(page, offset + 8);
      const parts = this.overflowParts(this.u32(page, offset + 4), total);
      if (!budget.take(total)) return undefined;
      return Buffer.concat(parts, total);
    }
    if (kind === H_DUPLICATE || kind === H_OFFDUP) {
      throw new BdbError(`hash page ${pgno} item ${index} holds duplicates, which rpm never writes`);
    }
    throw new BdbError(`hash page ${pgno} item ${index} has unknown kind ${kind}`);
  }
}

/**
 * Every value of the hash database whose key is a non-zero 4-byte record number, ordered by that
 * number (rpm's install order). Key 0 holds rpm's next-record counter and is not a header. Throws
 * BdbError when the file as a whole is unusable; damaged pages or items become `problems`. Stops
 * early, saying so in `stopped`, once the values found exceed `limits`.
 */
export function readBdbHeaderBlobs(content: Buffer, limits?: HeaderLimits): HeaderBlobs {
  const db = new BdbFile(content);
  const budget = new HeaderBudget(limits);
  const problems: string[] = [];
  if (db.truncated) problems.push('Berkeley DB file is shorter than its last page number says');
  const found: { key: number; blob: Buffer }[] = [];
  pages: for (let pgno = 1; pgno < db.pageCount; pgno++) {
    const page = db.page(pgno);
    const type = page[25];
    if (type !== P_HASH && type !== P_HASH_UNSORTED) continue;
    // A page whose own number disagrees is stale or foreign data, not part of the table.
    if (db.u32(page, 8) !== pgno) continue;
    const entries = db.u16(page, 20);
    if (PAGE_HEADER_SIZE + 2 * entries > db.pageSize) {
      problems.push(`hash page ${pgno} claims ${entries} entries`);
      continue;
    }
    for (let i = 0; i + 1 < entries; i += 2) {
      try {
        const key = db.readItem(page, pgno, i, entries) as Buffer;
        if (key.length !== 4) {
          problems.push(`hash page ${pgno} has a ${key.length}-byte key, not a record number`);
          continue;
        }
        const recno = db.u32(key, 0);
        if (recno === 0) continue;
        const value = db.readItem(page, pgno, i + 1, entries, budget);
        if (value === undefined) break pages;
        found.push({ key: recno, blob: value });
      } catch (err) {
        problems.push(err instanceof Error ? err.message : String(err));
      }
    }
  }
  found.sort((a, b) => a.key - b.key);
  const result: HeaderBlobs = { blobs: found.map((f) => f.blob), problems };
  if (budget.reason !== undefined) result.stopped = budget.reason;
  return result;
}
