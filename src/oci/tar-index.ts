import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { OciError } from '../errors.js';

/** Where one regular file sits inside an uncompressed tar file. */
export interface TarMember {
  offset: number;
  size: number;
}

const BLOCK = 512;
/** A long name or PAX record larger than this is not a real archive's. */
const MAX_META_RECORD = 1 << 20;

/** Reads exactly `buf.length` bytes at `position`, or fewer only at the end of the file. */
function readAt(fd: number, buf: Buffer, position: number): number {
  let got = 0;
  while (got < buf.length) {
    const n = readSync(fd, buf, got, buf.length - got, position + got);
    if (n === 0) break;
    got += n;
  }
  return got;
}

/**
 * `size` bytes of `file` from `offset`, with one synchronous positioned read (fewer bytes only if
 * the file ends first). For an archive's small members, where libuv's pool costs more than the read.
 */
export function readFileRange(file: string, offset: number, size: number): Buffer {
  const buf = Buffer.allocUnsafe(size);
  const fd = openSync(file, 'r');
  try {
    const got = readAt(fd, buf, offset);
    return got === size ? buf : buf.subarray(0, got);
  } finally {
    closeSync(fd);
  }
}

function readOctal(buf: Buffer, start: number, length: number): number {
  // GNU base-256 encoding for sizes over 8 GiB: high bit of the first byte set.
  if ((buf[start]! & 0x80) !== 0) {
    let value = 0;
    for (let i = start + 1; i < start + length; i++) value = value * 256 + buf[i]!;
    return value;
  }
  const text = buf.toString('latin1', start, start + length).replace(/\0.*$/s, '').trim();
  if (text === '') return 0;
  if (!/^[0-7]+$/.test(text)) return NaN;
  return parseInt(text, 8);
}

function readString(buf: Buffer, start: number, length: number): string {
  const end = buf.indexOf(0, start);
  return buf.toString('utf8', start, end < 0 || end > start + length ? start + length : end);
}

function parsePax(data: Buffer): Record<string, string> {
  const out: Record<string, string> = {};
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    if (space < 0) break;
    const len = parseInt(data.toString('latin1', pos, space), 10);
    if (!Number.isFinite(len) || len <= 0) break;
    const record = data.toString('utf8', space + 1, pos + len - 1);
    const eq = record.indexOf('=');
    if (eq > 0) out[record.slice(0, eq)] = record.slice(eq + 1);
    pos += len;
  }
  return out;
}

export function normaliseArchivePath(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
}

/**
 * Lists the regular files of an uncompressed tar (an oci-archive or a docker save) with their byte
 * offsets, reading only the 512-byte headers. tar-stream would have to read every byte; indexing
 * lets us stream any blob straight from the archive with a ranged read, so nothing is unpacked.
 */
export async function indexTarFile(path: string, display: string): Promise<Map<string, TarMember>> {
  // Synchronous positioned reads: an archive has a few dozen headers at most, and each read
  // through libuv's pool was a round trip that every scan of an archive waited for in turn
  // (2-4 ms of a small image's scan) before its first layer could start.
  let fd: number;
  try {
    fd = openSync(path, 'r');
  } catch (err) {
    throw new OciError('ARCHIVE_UNREADABLE', `${display}: cannot open ${path} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  try {
    const { size: fileSize } = fstatSync(fd);
    const members = new Map<string, TarMember>();
    const header = Buffer.alloc(BLOCK);
    let pos = 0;
    let longName: string | undefined;
    let pax: Record<string, string> | undefined;
    while (pos + BLOCK <= fileSize) {
      if (readAt(fd, header, pos) < BLOCK) break;
      if (header.every((b) => b === 0)) break;
      const type = String.fromCharCode(header[156] || 0x30);
      let size = readOctal(header, 124, 12);
      // A PAX record may carry the real size of the entry it precedes (needed past 8 GiB).
      if (type !== 'x' && type !== 'L' && type !== 'g' && pax?.size) size = Number(pax.size);
      if (!Number.isFinite(size) || size < 0) {
        throw new OciError('ARCHIVE_CORRUPT', `${display}: corrupt tar header at byte ${pos}`);
      }
      const dataStart = pos + BLOCK;
      const next = dataStart + Math.ceil(size / BLOCK) * BLOCK;
      if (dataStart + size > fileSize) {
        throw new OciError('ARCHIVE_TRUNCATED', `${display}: archive is truncated (entry at byte ${pos} runs past the end)`);
      }
      if (type === 'L' || type === 'x') {
        if (size > MAX_META_RECORD) {
          throw new OciError('ARCHIVE_CORRUPT', `${display}: tar ${type === 'L' ? 'long name' : 'PAX'} record at byte ${pos} is ${size} bytes, over ${MAX_META_RECORD}`);
        }
        const data = Buffer.alloc(size);
        readAt(fd, data, dataStart);
        if (type === 'L') longName = data.toString('utf8').replace(/\0+$/, '');
        else pax = parsePax(data);
      } else if (type === 'g') {
        // global PAX header: nothing we need
      } else {
        let name = readString(header, 0, 100);
        const magic = header.toString('latin1', 257, 262);
        if (magic === 'ustar') {
          const prefix = readString(header, 345, 155);
          if (prefix) name = `${prefix}/${name}`;
        }
        if (longName !== undefined) name = longName;
        if (pax?.path) name = pax.path;
        if (type === '0' || type === '\0' || type === '7') {
          members.set(normaliseArchivePath(name), { offset: dataStart, size });
        }
        longName = undefined;
        pax = undefined;
      }
      pos = next;
    }
    return members;
  } finally {
    closeSync(fd);
  }
}
