import { closeSync, fstatSync, openSync, readSync } from 'node:fs';
import { OciError } from '../errors.js';
import {
  applyExtendedHeader,
  bodyLength,
  decodeTarHeader,
  DEFAULT_MAX_META_BYTES,
  isExtendedHeader,
  isZeroBlock,
  paddingAfter,
  TAR_BLOCK,
  TarFormatError,
  type TarOverrides,
} from './tar-header.js';

/** Where one regular file sits inside an uncompressed tar file. */
export interface TarMember {
  offset: number;
  size: number;
}


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
    const block = Buffer.alloc(TAR_BLOCK);
    let pos = 0;
    let overrides: TarOverrides = {};
    while (pos + TAR_BLOCK <= fileSize) {
      if (readAt(fd, block, pos) < TAR_BLOCK) break;
      if (isZeroBlock(block)) break;
      let header;
      try {
        header = decodeTarHeader(block);
      } catch (err) {
        if (!(err instanceof TarFormatError)) throw err;
        throw new OciError('ARCHIVE_CORRUPT', `${display}: corrupt tar header at byte ${pos} (${err.message})`);
      }
      const extended = isExtendedHeader(header.typeByte);
      // A PAX record may carry the real size of the entry it precedes (needed past 8 GiB).
      const size = extended ? header.size : bodyLength(header.type, overrides.size ?? header.size);
      const dataStart = pos + TAR_BLOCK;
      if (dataStart + size > fileSize) {
        throw new OciError('ARCHIVE_TRUNCATED', `${display}: archive is truncated (entry at byte ${pos} runs past the end)`);
      }
      if (extended) {
        if (size > DEFAULT_MAX_META_BYTES) {
          throw new OciError('ARCHIVE_CORRUPT', `${display}: tar extended header at byte ${pos} is ${size} bytes, over ${DEFAULT_MAX_META_BYTES}`);
        }
        const data = Buffer.alloc(size);
        readAt(fd, data, dataStart);
        try {
          applyExtendedHeader(header.typeByte, data, overrides);
        } catch (err) {
          if (!(err instanceof TarFormatError)) throw err;
          throw new OciError('ARCHIVE_CORRUPT', `${display}: tar extended header at byte ${pos}: ${err.message}`);
        }
      } else {
        if (header.type === 'file' || header.type === 'contiguous-file') {
          members.set(normaliseArchivePath(overrides.path ?? header.name), { offset: dataStart, size });
        }
        overrides = {};
      }
      pos = dataStart + size + paddingAfter(size);
    }
    return members;
  } finally {
    closeSync(fd);
  }
}
