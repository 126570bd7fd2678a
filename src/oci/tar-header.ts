/**
 * Tar header blocks, shared by the archive indexer (`tar-index.ts`, which seeks) and the layer
 * reader (`analyse/tar-reader.ts`, which streams): ustar, GNU long names and link names, PAX path,
 * linkpath and size, and GNU base-256 numbers.
 */
import { embeddedInstance } from '../wasm/embedded-module.js';
import { TAR_CHECKSUM_WASM } from './tar-checksum-wasm.js';

export const TAR_BLOCK = 512;

export type TarEntryType =
  | 'file'
  | 'link'
  | 'symlink'
  | 'character-device'
  | 'block-device'
  | 'directory'
  | 'fifo'
  | 'contiguous-file'
  | 'other';

/** One header block as stored, before any PAX or GNU long-name record is applied. */
export interface TarHeaderBlock {
  /** The raw type flag: '0', '5', 'x', 'L' and so on, as a byte. */
  typeByte: number;
  type: TarEntryType;
  /** With the ustar prefix applied (POSIX archives only; GNU keeps other fields there). */
  name: string;
  linkname: string;
  size: number;
  /** Permission bits, including setuid, setgid and sticky (& 0o7777). */
  mode: number;
}

/** What PAX and GNU long-name records change in the header that follows them. */
export interface TarOverrides {
  path?: string;
  linkpath?: string;
  size?: number;
}

/** A malformed header or record; the message starts as tar-stream's did, which callers match. */
export class TarFormatError extends Error {}

/** A long name or PAX record larger than this is not a real archive's; they are held in memory. */
export const DEFAULT_MAX_META_BYTES = 1 << 20;

const TYPES: Record<number, TarEntryType> = {
  0: 'file',
  0x30: 'file',
  0x31: 'link',
  0x32: 'symlink',
  0x33: 'character-device',
  0x34: 'block-device',
  0x35: 'directory',
  0x36: 'fifo',
  0x37: 'contiguous-file',
};

const HEADER_ONLY: ReadonlySet<TarEntryType> = new Set([
  'link',
  'symlink',
  'character-device',
  'block-device',
  'directory',
  'fifo',
]);

const GNU_LONG_NAME = 0x4c; // 'L'
const GNU_LONG_LINK = 0x4b; // 'K'
const PAX_ENTRY = 0x78; // 'x'
const PAX_GLOBAL = 0x67; // 'g'

function invalid(why: string): TarFormatError {
  return new TarFormatError(`Invalid tar header: ${why}`);
}

export function isZeroBlock(block: Buffer): boolean {
  for (let i = 0; i < TAR_BLOCK; i++) if (block[i] !== 0) return false;
  return true;
}

/** A NUL-terminated string field. */
function field(block: Buffer, start: number, length: number): string {
  let end = start;
  const stop = start + length;
  while (end < stop && block[end] !== 0) end++;
  return end === start ? '' : block.toString('utf8', start, end);
}

/** An octal number (spaces or NULs around it), or GNU base-256 when the top bit is set. */
function numeric(block: Buffer, start: number, length: number, what: string): number {
  const stop = start + length;
  const first = block[start]!;
  if (first & 0x80) {
    if (first === 0xff) throw invalid(`negative ${what}`);
    let value = first & 0x7f;
    for (let i = start + 1; i < stop; i++) {
      value = value * 256 + block[i]!;
      if (value > Number.MAX_SAFE_INTEGER) throw invalid(`${what} too large`);
    }
    return value;
  }
  let i = start;
  while (i < stop && (block[i] === 0x20 || block[i] === 0)) i++;
  let value = 0;
  for (; i < stop; i++) {
    const c = block[i]!;
    if (c === 0x20 || c === 0) break;
    if (c < 0x30 || c > 0x37) throw invalid(`${what} is not an octal number`);
    value = value * 8 + (c - 0x30);
  }
  for (; i < stop; i++)
    if (block[i] !== 0x20 && block[i] !== 0) throw invalid(`${what} is not an octal number`);
  return value;
}

interface ChecksumExports {
  readonly memory: WebAssembly.Memory;
  sum512(input: number): number;
}

const checksummer = embeddedInstance<ChecksumExports>(TAR_CHECKSUM_WASM);

/** The unsigned byte sum of a header block, in JavaScript: the fallback and the tests' reference. */
export function blockSumJs(block: Uint8Array): number {
  let sum = 0;
  for (let i = 0; i < TAR_BLOCK; i++) sum += block[i]!;
  return sum;
}

/**
 * The unsigned byte sum of a header block: in WebAssembly (tar-checksum.wat) where it runs, five
 * to ten times as fast as the loop it runs for every entry; else in JavaScript.
 */
export function blockSum(block: Uint8Array): number {
  const summer = checksummer();
  if (summer === null) return blockSumJs(block);
  summer.bytes.set(block.length === TAR_BLOCK ? block : block.subarray(0, TAR_BLOCK), 0);
  return summer.exports.sum512(0);
}

/** Whether blockSum runs in WebAssembly here (for tests). */
export function blockSumUsesWasm(): boolean {
  return checksummer() !== null;
}

function checksumMatches(block: Buffer): boolean {
  const stored = numeric(block, 148, 8, 'checksum');
  // The sum counts the checksum field itself as eight spaces.
  let unsigned = blockSum(block);
  for (let i = 148; i < 156; i++) unsigned -= block[i]!;
  unsigned += 8 * 0x20;
  if (stored === unsigned) return true;
  // Some old writers summed signed bytes; both are accepted, as GNU tar does.
  let signed = unsigned;
  for (let i = 0; i < TAR_BLOCK; i++) if (block[i]! > 127 && (i < 148 || i >= 156)) signed -= 256;
  return stored === signed;
}

function isPosixUstar(block: Buffer): boolean {
  // "ustar\0" then version "00"; GNU writes "ustar  \0" and keeps other fields where the prefix is.
  return block[257] === 0x75 && block[262] === 0 && block.toString('latin1', 257, 262) === 'ustar';
}

/** Decodes one (non-zero) header block; throws TarFormatError on a bad checksum or number. */
export function decodeTarHeader(block: Buffer): TarHeaderBlock {
  if (!checksumMatches(block)) throw invalid('bad checksum (a corrupt tar, or one that needs decompressing)');
  const typeByte = block[156]!;
  let name = field(block, 0, 100);
  if (isPosixUstar(block)) {
    const prefix = field(block, 345, 155);
    if (prefix) name = `${prefix}/${name}`;
  }
  return {
    typeByte,
    type: TYPES[typeByte] ?? 'other',
    name,
    linkname: field(block, 157, 100),
    size: numeric(block, 124, 12, 'size'),
    mode: numeric(block, 100, 8, 'mode') & 0o7777,
  };
}

/** PAX and GNU long-name entries describe the next entry rather than being one. */
export function isExtendedHeader(typeByte: number): boolean {
  return (
    typeByte === GNU_LONG_NAME ||
    typeByte === GNU_LONG_LINK ||
    typeByte === PAX_ENTRY ||
    typeByte === PAX_GLOBAL
  );
}

/** PAX extended header records: "LENGTH KEY=VALUE\n", LENGTH counting the whole record. */
function applyPaxRecords(data: Buffer, into: TarOverrides): void {
  let at = 0;
  while (at < data.length) {
    if (data[at] === 0) break; // some writers pad the record block with NULs
    const space = data.indexOf(0x20, at);
    if (space < 0 || space - at > 20) throw invalid('malformed PAX record');
    const length = Number(data.toString('latin1', at, space));
    if (
      !Number.isInteger(length) ||
      length <= space - at + 1 ||
      at + length > data.length ||
      data[at + length - 1] !== 0x0a
    ) {
      throw invalid('malformed PAX record');
    }
    const record = data.toString('utf8', space + 1, at + length - 1);
    const eq = record.indexOf('=');
    if (eq <= 0) throw invalid('malformed PAX record');
    const key = record.slice(0, eq);
    const value = record.slice(eq + 1);
    if (key === 'path') into.path = value;
    else if (key === 'linkpath') into.linkpath = value;
    else if (key === 'size') {
      if (!/^\d{1,16}$/.test(value) || Number(value) > Number.MAX_SAFE_INTEGER)
        throw invalid('PAX size is not a number');
      into.size = Number(value);
    }
    at += length;
  }
}

/**
 * Applies the body of an extended header entry to what the next header will be. A global PAX
 * header is checked and then ignored, as container runtimes (Go's archive/tar) ignore it.
 */
export function applyExtendedHeader(typeByte: number, data: Buffer, into: TarOverrides): void {
  if (typeByte === PAX_ENTRY) applyPaxRecords(data, into);
  else if (typeByte === PAX_GLOBAL) applyPaxRecords(data, {});
  else {
    const nul = data.indexOf(0);
    const text = data.toString('utf8', 0, nul < 0 ? data.length : nul);
    if (typeByte === GNU_LONG_NAME) into.path = text;
    else into.linkpath = text;
  }
}

/**
 * How many body bytes follow a header. Links, devices, folders and fifos have none whatever their
 * size field says, as in Go's archive/tar: skipping "their" bytes would hide the headers that a
 * runtime reads next.
 */
export function bodyLength(type: TarEntryType, size: number): number {
  return HEADER_ONLY.has(type) ? 0 : size;
}

/** The padding after a body of `size` bytes, up to a whole block. */
export function paddingAfter(size: number): number {
  const rest = size % TAR_BLOCK;
  return rest === 0 ? 0 : TAR_BLOCK - rest;
}
