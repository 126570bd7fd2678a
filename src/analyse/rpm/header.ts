/**
 * Parser for rpm header blobs as the package databases store them: the "immutable region" layout
 * without the 8-byte magic that .rpm files carry. Layout (all integers big-endian):
 *
 *   u32 indexCount, u32 dataSize,
 *   indexCount × { u32 tag, u32 type, u32 offset, u32 count },
 *   dataSize bytes of data store (offsets are relative to its start).
 *
 * Only the handful of tags Portcullis needs are decoded; everything else is skipped without
 * interpretation, so unknown or vendor tags never make a header unreadable.
 */

export const RPMTAG = {
  NAME: 1000,
  VERSION: 1001,
  RELEASE: 1002,
  EPOCH: 1003,
  LICENSE: 1014,
  ARCH: 1022,
  FILENAMES: 1027,
  SOURCERPM: 1044,
  DIRINDEXES: 1116,
  BASENAMES: 1117,
  DIRNAMES: 1118,
} as const;

/**
 * What a database reader hands back: the header blobs it found (in install order where the format
 * tells it) and one-line notes on items it had to skip; whole-database failures are thrown instead.
 */
export interface HeaderBlobs {
  blobs: Buffer[];
  problems: string[];
  /** Set when a limit stopped the reader early: why, in one line. `blobs` holds what came before. */
  stopped?: string;
}

/**
 * Bounds on what one package database may hand on to the header parser, so that a hostile file
 * (an endless view, thousands of items sharing one overflow chain, a slot table repeating one
 * blob) costs bounded time and memory. Real databases stay far below both: a few thousand
 * packages and some tens of MiB of headers.
 */
export interface HeaderLimits {
  /** Header blobs taken from one database. */
  maxBlobs: number;
  /** Total bytes of those blobs. */
  maxBytes: number;
}

export const DEFAULT_HEADER_LIMITS: HeaderLimits = {
  maxBlobs: 200_000,
  maxBytes: 256 * 1024 * 1024,
};

/**
 * Counts the blobs a reader takes against its limits. A reader asks before it copies or hands on a
 * blob; once a limit is reached the reader stops and reports `reason` as `HeaderBlobs.stopped`.
 */
export class HeaderBudget {
  blobs = 0;
  bytes = 0;
  reason: string | undefined;

  constructor(readonly limits: HeaderLimits = DEFAULT_HEADER_LIMITS) {}

  /** Charges one blob of `size` bytes; false (and `reason` set) when it would go over a limit. */
  take(size: number): boolean {
    if (this.reason !== undefined) return false;
    if (this.blobs + 1 > this.limits.maxBlobs) {
      this.stopAtCount();
      return false;
    }
    if (this.bytes + size > this.limits.maxBytes) {
      this.reason = `package headers total more than ${this.limits.maxBytes} bytes; the rest were not read`;
      return false;
    }
    this.blobs++;
    this.bytes += size;
    return true;
  }

  /** Records that the database holds more entries than `maxBlobs`, whether or not they are blobs. */
  stopAtCount(): void {
    this.reason ??= `more than ${this.limits.maxBlobs} package headers; the rest were not read`;
  }
}

/** rpm tag data types (rpmTagType). */
export const RPM_TYPE = {
  NULL: 0,
  CHAR: 1,
  INT8: 2,
  INT16: 3,
  INT32: 4,
  INT64: 5,
  STRING: 6,
  BIN: 7,
  STRING_ARRAY: 8,
  I18NSTRING: 9,
} as const;

/** rpm's own sanity limits (HEADER_TAGS_MAX / HEADER_DATA_MAX); anything above is corrupt. */
const MAX_INDEX_COUNT = 0xffff;
const MAX_DATA_SIZE = 0x0fffffff;
const INDEX_ENTRY_SIZE = 16;

export class RpmHeaderError extends Error {
  override readonly name = 'RpmHeaderError';
}

interface IndexEntry {
  tag: number;
  type: number;
  offset: number;
  count: number;
}

/** What Portcullis takes from one installed package's header. */
export interface RpmHeaderInfo {
  name: string;
  version: string;
  release: string;
  /** Absent when the header has no EPOCH tag. */
  epoch?: number;
  arch?: string;
  license?: string;
  sourceRpm?: string;
  /** Absolute paths as rpm records them (leading slash kept), files and directories alike. */
  files: string[];
}

/** A decoded header: typed access to the index entries by tag. */
export class RpmHeader {
  private readonly entries = new Map<number, IndexEntry>();

  private constructor(private readonly data: Buffer) {}

  /**
   * Validates the blob's framing and index. Throws RpmHeaderError when the blob cannot be a header;
   * individual tag values are checked lazily when read.
   */
  static parse(blob: Buffer): RpmHeader {
    if (blob.length < 8) throw new RpmHeaderError(`header blob too short (${blob.length} bytes)`);
    const indexCount = blob.readUInt32BE(0);
    const dataSize = blob.readUInt32BE(4);
    if (indexCount === 0 || indexCount > MAX_INDEX_COUNT) {
      throw new RpmHeaderError(`implausible header index count ${indexCount}`);
    }
    if (dataSize > MAX_DATA_SIZE) throw new RpmHeaderError(`implausible header data size ${dataSize}`);
    const dataStart = 8 + indexCount * INDEX_ENTRY_SIZE;
    // Databases store the blob exactly; tolerate trailing padding but never a short blob.
    if (dataStart + dataSize > blob.length) {
      throw new RpmHeaderError(
        `header blob truncated: needs ${dataStart + dataSize} bytes, has ${blob.length}`,
      );
    }
    const header = new RpmHeader(blob.subarray(dataStart, dataStart + dataSize));
    for (let i = 0; i < indexCount; i++) {
      const at = 8 + i * INDEX_ENTRY_SIZE;
      const entry: IndexEntry = {
        tag: blob.readUInt32BE(at),
        type: blob.readUInt32BE(at + 4),
        offset: blob.readUInt32BE(at + 8),
        count: blob.readUInt32BE(at + 12),
      };
      if (entry.offset > dataSize) {
        throw new RpmHeaderError(`tag ${entry.tag} points outside the data store`);
      }
      // Entries appended after install ("dribbles") follow the immutable region and override it,
      // so the last occurrence of a tag wins, as in rpm itself.
      header.entries.set(entry.tag, entry);
    }
    return header;
  }

  has(tag: number): boolean {
    return this.entries.has(tag);
  }

  /** A STRING (or the first value of a STRING_ARRAY / I18NSTRING, which is the C locale). */
  getString(tag: number): string | undefined {
    const entry = this.entries.get(tag);
    if (!entry) return undefined;
    if (
      entry.type !== RPM_TYPE.STRING &&
      entry.type !== RPM_TYPE.STRING_ARRAY &&
      entry.type !== RPM_TYPE.I18NSTRING
    ) {
      throw new RpmHeaderError(`tag ${tag} has type ${entry.type}, expected a string`);
    }
    return this.readStrings(entry, 1)[0];
  }

  getStringArray(tag: number): string[] | undefined {
    const entry = this.entries.get(tag);
    if (!entry) return undefined;
    if (
      entry.type !== RPM_TYPE.STRING_ARRAY &&
      entry.type !== RPM_TYPE.I18NSTRING &&
      entry.type !== RPM_TYPE.STRING
    ) {
      throw new RpmHeaderError(`tag ${tag} has type ${entry.type}, expected a string array`);
    }
    return this.readStrings(entry, entry.type === RPM_TYPE.STRING ? 1 : entry.count);
  }

  /** Integer values of any width (INT8/16/32; INT64 as long as it fits a double exactly). */
  getIntArray(tag: number): number[] | undefined {
    const entry = this.entries.get(tag);
    if (!entry) return undefined;
    const width =
      entry.type === RPM_TYPE.INT32
        ? 4
        : entry.type === RPM_TYPE.INT16
          ? 2
          : entry.type === RPM_TYPE.INT8 || entry.type === RPM_TYPE.CHAR
            ? 1
            : entry.type === RPM_TYPE.INT64
              ? 8
              : 0;
    if (width === 0) throw new RpmHeaderError(`tag ${tag} has type ${entry.type}, expected an integer`);
    if (entry.offset + entry.count * width > this.data.length) {
      throw new RpmHeaderError(`tag ${tag} runs past the end of the data store`);
    }
    const out: number[] = [];
    for (let i = 0; i < entry.count; i++) {
      const at = entry.offset + i * width;
      if (width === 4) out.push(this.data.readUInt32BE(at));
      else if (width === 2) out.push(this.data.readUInt16BE(at));
      else if (width === 1) out.push(this.data.readUInt8(at));
      else out.push(Number(this.data.readBigUInt64BE(at)));
    }
    return out;
  }

  getInt(tag: number): number | undefined {
    return this.getIntArray(tag)?.[0];
  }

  private readStrings(entry: IndexEntry, count: number): string[] {
    const out: string[] = [];
    let at = entry.offset;
    for (let i = 0; i < count; i++) {
      const end = this.data.indexOf(0, at);
      if (end < 0) throw new RpmHeaderError(`tag ${entry.tag} has an unterminated string`);
      out.push(this.data.toString('utf8', at, end));
      at = end + 1;
    }
    return out;
  }
}

/** Reads the package facts from one header blob; throws RpmHeaderError when it is malformed. */
export function readRpmHeader(blob: Buffer): RpmHeaderInfo {
  const header = RpmHeader.parse(blob);
  const name = header.getString(RPMTAG.NAME);
  const version = header.getString(RPMTAG.VERSION);
  const release = header.getString(RPMTAG.RELEASE);
  if (name === undefined || name === '') throw new RpmHeaderError('header has no NAME');
  if (version === undefined) throw new RpmHeaderError(`header of ${name} has no VERSION`);
  if (release === undefined) throw new RpmHeaderError(`header of ${name} has no RELEASE`);
  const info: RpmHeaderInfo = { name, version, release, files: readFileList(header, name) };
  const epoch = header.getInt(RPMTAG.EPOCH);
  if (epoch !== undefined) info.epoch = epoch;
  const arch = header.getString(RPMTAG.ARCH);
  if (arch) info.arch = arch;
  const license = header.getString(RPMTAG.LICENSE);
  if (license) info.license = license;
  const sourceRpm = header.getString(RPMTAG.SOURCERPM);
  if (sourceRpm) info.sourceRpm = sourceRpm;
  return info;
}

/** Far above the file list of any real package (the largest list a few MB of paths). */
const MAX_FILE_LIST_CHARS = 64 * 1024 * 1024;

function readFileList(header: RpmHeader, name: string): string[] {
  const basenames = header.getStringArray(RPMTAG.BASENAMES);
  if (basenames) {
    // Modern headers compress the file list: each file is dirnames[dirindexes[i]] + basenames[i].
    const dirnames = header.getStringArray(RPMTAG.DIRNAMES) ?? [];
    const dirindexes = header.getIntArray(RPMTAG.DIRINDEXES) ?? [];
    if (dirindexes.length !== basenames.length) {
      throw new RpmHeaderError(
        `header of ${name} has ${basenames.length} basenames but ${dirindexes.length} dirindexes`,
      );
    }
    // A header of a few MB can pair one long folder name with a million file names; joined, that
    // would be far more text than the header. Real packages list at most some MB of paths.
    let total = 0;
    return basenames.map((base, i) => {
      const dir = dirnames[dirindexes[i] ?? -1];
      if (dir === undefined) throw new RpmHeaderError(`header of ${name} has a dirindex out of range`);
      total += dir.length + base.length;
      if (total > MAX_FILE_LIST_CHARS) {
        throw new RpmHeaderError(`header of ${name} lists more than ${MAX_FILE_LIST_CHARS} characters of file paths`);
      }
      return dir + base;
    });
  }
  // rpm < 4 (and some converted databases) keep full paths in FILENAMES.
  return header.getStringArray(RPMTAG.FILENAMES) ?? [];
}

/**
 * Splits a SOURCERPM value (`name-version-release.src.rpm`) into the source package name and its
 * `version-release`. Returns undefined for anything not shaped like that.
 */
export function parseSourceRpm(sourceRpm: string): { name: string; version: string } | undefined {
  const m = /^(.+)-([^-]+)-([^-]+)\.(?:no)?src\.rpm$/.exec(sourceRpm);
  if (!m || !m[1] || !m[2] || !m[3]) return undefined;
  return { name: m[1], version: `${m[2]}-${m[3]}` };
}
