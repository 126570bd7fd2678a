import type { Analyser, AnalyserContext, FileAttribute, FileFacts, FileInfo, FileStream } from './types.js';

/** The pseudo-analyser name under which the walker records file attributes. */
export const ATTRIBUTES = 'file-attributes';

const PATH_DIRS = new Set(['usr/local/sbin', 'usr/local/bin', 'usr/sbin', 'usr/bin', 'sbin', 'bin']);

/** Package-manager downloads and indexes that only bloat an image and can leak build-time data. */
function isPackageManagerCache(path: string): boolean {
  return (
    (path.startsWith('var/cache/apt/archives/') && path.endsWith('.deb')) ||
    (path.startsWith('var/lib/apt/lists/') && !path.endsWith('/lock') && !path.includes('/partial/')) ||
    (path.startsWith('var/cache/apk/') && path.endsWith('.tar.gz')) ||
    path.startsWith('root/.cache/pip/') ||
    path.startsWith('root/.npm/_cacache/') ||
    (path.startsWith('var/cache/yum/') && path.endsWith('.rpm')) ||
    (path.startsWith('var/cache/dnf/') && path.endsWith('.rpm'))
  );
}

/** What one layer told us: the files analysers wanted, with their facts, and what it deletes. */
export interface LayerFacts {
  /** Paths this layer whites out in lower layers (`.wh.NAME`). */
  whiteouts: string[];
  /** Folders whose lower-layer content this layer hides (`.wh..wh..opq`). */
  opaqueDirs: string[];
  /** Every file an analyser wanted, even when it yielded nothing, so a replacement hides the old one. */
  files: AnalysedFile[];
  /**
   * Folders this layer makes, named by an entry or implied by an entry below them. Each replaces a
   * lower layer's non-folder at its path (a folder over a folder merges with it).
   */
  dirs: string[];
  /**
   * Non-folder entries with no record in `files`: symlinks, hard links, devices, fifos, and regular
   * files no analyser recorded. Each replaces what lower layers had at its path and below it, as a
   * runtime's extraction does; so does every path in `files`.
   */
  others: string[];
  /**
   * Files that a later entry of the same layer replaced, kept only for their secrets: those bytes
   * are in the image even though no container sees them.
   */
  overwritten: AnalysedFile[];
  warnings: string[];
  entries: number;
  /** Uncompressed bytes read: every entry's content, and tar metadata. */
  bytes: number;
  /** The largest entry's size, so a cached layer can be held to a smaller --max-file-bytes. */
  largestFile: number;
}

export interface AnalysedFile {
  path: string;
  analyser: string;
  facts: FileFacts;
}

export function emptyLayerFacts(): LayerFacts {
  return {
    whiteouts: [],
    opaqueDirs: [],
    files: [],
    dirs: [],
    others: [],
    overwritten: [],
    warnings: [],
    entries: 0,
    bytes: 0,
    largestFile: 0,
  };
}

const SNIFF_BYTES = 64;

/**
 * Whole-file buffers for files that arrive in several chunks: in practice the ELF binaries the Go
 * and Rust analysers read (6 MiB for an Alpine base layer, 5 MiB for go-app). A fresh
 * Buffer.concat for each cost more than the copy itself: its memory is new, so every page faults
 * in, and the GC then has to give it back (12 of go-app's 20 ms of main-thread CPU per scan). A
 * few buffers are kept and reused across files and scans instead; each file gets its own Buffer
 * view of exactly its size, so nothing keyed by the Buffer object (the ELF parse cache) is shared
 * between files. Analysers are synchronous or awaited, and must not keep `content` after analyse()
 * returns (see AnalyserFile). At most POOL_BUFFERS × POOL_MAX_BYTES stay allocated.
 */
const POOL_MAX_BYTES = 8 << 20;
const POOL_BUFFERS = 2;
const POOL_ROUNDING = 1 << 20;
const pool: Buffer[] = [];

function joinParts(parts: Buffer[], size: number): { content: Buffer; pooled?: Buffer } {
  if (parts.length === 1) return { content: parts[0]! };
  if (parts.length === 0 || size > POOL_MAX_BYTES) return { content: Buffer.concat(parts, size) };
  let i = pool.findIndex((b) => b.length >= size);
  const pooled = i >= 0 ? pool.splice(i, 1)[0]! : Buffer.allocUnsafeSlow(Math.min(POOL_MAX_BYTES, Math.ceil(size / POOL_ROUNDING) * POOL_ROUNDING));
  let at = 0;
  for (i = 0; i < parts.length; i++) at += parts[i]!.copy(pooled, at);
  return { content: pooled.subarray(0, size), pooled };
}

function releaseBuffer(pooled: Buffer): void {
  pool.push(pooled);
  // Keep the largest ones: a big buffer serves any smaller file.
  if (pool.length > POOL_BUFFERS) pool.sort((a, b) => b.length - a.length).length = POOL_BUFFERS;
}

/** Decides which analysers want each file and hands the wanted files to them. */
export class FileDispatcher {
  constructor(
    private readonly analysers: readonly Analyser[],
    private readonly ctx: AnalyserContext,
    private readonly facts: LayerFacts,
  ) {}

  /** Records what matters about any regular file, wanted or not: setuid bits, writable PATH files. */
  observe(path: string, info: FileInfo): void {
    const attrs: FileAttribute[] = [];
    if (info.mode & 0o4000) attrs.push('setuid');
    if (info.mode & 0o2000) attrs.push('setgid');
    if (info.mode & 0o002) {
      const slash = path.lastIndexOf('/');
      if (slash > 0 && PATH_DIRS.has(path.slice(0, slash))) attrs.push('world-writable');
    }
    if (isPackageManagerCache(path)) attrs.push('pm-cache');
    if (attrs.length) this.facts.files.push({ path, analyser: ATTRIBUTES, facts: { attributes: attrs } });
  }

  /** Which analysers want this file, by path and metadata alone. */
  interested(path: string, info: FileInfo): Analyser[] {
    const out: Analyser[] = [];
    for (const a of this.analysers) if (a.wants(path, info)) out.push(a);
    return out;
  }

  /**
   * Consumes the file's chunks, then runs the analysers. `chunks` must be fully drained by us so
   * the source moves on, whether or not anyone wants the bytes.
   */
  async dispatch(path: string, info: FileInfo, wanted: Analyser[], chunks: AsyncIterable<Buffer>): Promise<void> {
    const sink = this.open(path, info, wanted);
    for await (const chunk of chunks) sink.write(chunk);
    await sink.end();
  }

  /** A sink for one file's chunks, pushed in order; end() runs the analysers that still want it. */
  open(path: string, info: FileInfo, wanted: Analyser[]): FileSink {
    return new FileSink(path, info, wanted, this.ctx, this.facts);
  }
}

/**
 * One file on its way to its analysers. Content is buffered only while some analyser still wants
 * it and only up to that analyser's size limit; analysers with a sniff() see the first bytes and
 * can drop out early, so most binaries are never held in memory.
 */
export class FileSink {
  private active: Analyser[];
  /** Analysers reading the file as it arrives (Analyser.stream); never in `active`. */
  private readonly streams = new Map<Analyser, { reader: FileStream; error?: unknown }>();
  private readonly parts: Buffer[] = [];
  /** The file's bytes so far, for a large file (see enterWhole); `parts` is empty meanwhile. */
  private whole: Buffer | undefined;
  private have = 0;
  private sniffed: boolean;
  /** Analysers with markers (see Analyser.markers) none of which has been seen yet. */
  private unmarked: Analyser[];
  /** The end of the previous chunk, for markers that straddle two chunks. */
  private tail: Buffer | undefined;
  /** How much of a chunk's end a marker can start in and still end in the next: longest - 1. */
  private readonly seamBytes: number;

  constructor(
    private readonly path: string,
    private readonly info: FileInfo,
    private readonly wanted: Analyser[],
    private readonly ctx: AnalyserContext,
    private readonly facts: LayerFacts,
  ) {
    this.active = wanted.filter((a) => {
      if (info.size > a.maxFileSize) {
        facts.warnings.push(`${path}: ${info.size} bytes is over the ${a.name} analyser's limit; skipped`);
        facts.files.push({ path, analyser: a.name, facts: {} });
        return false;
      }
      return true;
    });
    for (const a of this.active) {
      if (a.sniff || a.markers?.length || !a.stream) continue;
      const reader = a.stream(path, info);
      if (reader) this.streams.set(a, { reader });
    }
    if (this.streams.size) this.active = this.active.filter((a) => !this.streams.has(a));
    this.sniffed = !this.active.some((a) => a.sniff);
    this.unmarked = this.active.filter((a) => a.markers?.length);
    let longest = 0;
    for (const a of this.unmarked) for (const m of a.markers!) longest = Math.max(longest, m.length);
    this.seamBytes = Math.max(0, longest - 1);
  }

  write(chunk: Buffer): void {
    for (const s of this.streams.values()) {
      if (s.error !== undefined) continue;
      try {
        s.reader.write(chunk);
      } catch (err) {
        s.error = err;
      }
    }
    if (this.active.length === 0) return;
    if (this.whole) {
      if (this.have + chunk.length > this.whole.length) this.growWhole(this.have + chunk.length);
      chunk.copy(this.whole, this.have);
    } else {
      this.parts.push(chunk);
    }
    this.have += chunk.length;
    if (!this.sniffed && this.have >= Math.min(SNIFF_BYTES, this.info.size)) this.sniff();
    if (this.unmarked.length) this.lookForMarkers(chunk);
    if (!this.whole && this.sniffed && this.active.length > 0 && this.info.size > POOL_MAX_BYTES && this.have < this.info.size) {
      this.enterWhole();
    }
  }

  /**
   * A large file still wanted after the sniff is copied into one buffer of its full size as it
   * arrives, instead of being kept as chunks and joined at the end: the join briefly held the
   * file twice (a 127 MiB dpkg status took 319 MB), and each chunk kept a whole decompressed
   * block alive.
   */
  private enterWhole(): void {
    this.whole = Buffer.allocUnsafeSlow(this.info.size);
    let at = 0;
    for (const part of this.parts) at += part.copy(this.whole, at);
    this.parts.length = 0;
  }

  /** A file longer than its header said (a folder's file that grew while it was read). */
  private growWhole(needed: number): void {
    const bigger = Buffer.allocUnsafeSlow(Math.max(needed, this.have * 2));
    this.whole!.copy(bigger, 0, 0, this.have);
    this.whole = bigger;
  }

  private dropContent(): void {
    this.parts.length = 0;
    this.whole = undefined;
  }

  private lookForMarkers(chunk: Buffer): void {
    const keep = this.seamBytes;
    // Only the bytes where a marker can straddle the two chunks are copied.
    const seam = this.tail ? Buffer.concat([this.tail, chunk.subarray(0, keep)]) : undefined;
    this.unmarked = this.unmarked.filter((a) => !a.markers!.some((m) => chunk.includes(m) || seam?.includes(m)));
    if (!this.unmarked.length || keep === 0) return;
    this.tail = chunk.length >= keep ? chunk.subarray(chunk.length - keep) : Buffer.concat([this.tail ?? Buffer.alloc(0), chunk]).subarray(-keep);
  }

  private sniff(): void {
    this.sniffed = true;
    const head = this.parts.length === 1 ? this.parts[0]! : Buffer.concat(this.parts);
    this.active = this.active.filter((a) => !a.sniff || a.sniff(head));
    this.unmarked = this.unmarked.filter((a) => this.active.includes(a));
    if (this.active.length === 0) this.dropContent();
  }

  async end(): Promise<void> {
    if (!this.sniffed) this.sniff();
    if (this.unmarked.length) {
      const unmarked = this.unmarked;
      this.active = this.active.filter((a) => !unmarked.includes(a));
      if (this.active.length === 0) this.dropContent();
    }
    const { path, info, facts } = this;
    // Analysers that sniffed the file away, or found none of their markers in it, still record
    // it: a lower layer's version is replaced.
    for (const a of this.wanted) if (!this.active.includes(a) && (a.sniff || a.markers) && info.size <= a.maxFileSize) {
      facts.files.push({ path, analyser: a.name, facts: {} });
    }
    for (const [a, s] of this.streams) {
      let found: FileFacts;
      try {
        if (s.error !== undefined) throw s.error;
        found = s.reader.end();
      } catch (err) {
        found = { warnings: [`${path}: ${a.name} analyser failed: ${(err as Error).message}`] };
      }
      facts.files.push({ path, analyser: a.name, facts: boundFacts(path, a.name, stripEmpty(found)) });
    }
    if (this.active.length === 0) return;
    const { content, pooled } = this.whole ? { content: this.whole.subarray(0, this.have) } : joinParts(this.parts, this.have);
    this.dropContent();
    try {
      for (const a of this.active) {
        let found: FileFacts;
        try {
          found = await a.analyse({ path, size: info.size, mode: info.mode, content }, this.ctx);
        } catch (err) {
          found = { warnings: [`${path}: ${a.name} analyser failed: ${(err as Error).message}`] };
        }
        facts.files.push({ path, analyser: a.name, facts: boundFacts(path, a.name, stripEmpty(found)) });
      }
    } finally {
      if (pooled) releaseBuffer(pooled);
    }
  }
}

/**
 * More packages than a real file lists (a full Debian or RHEL install has a few thousand, a large
 * monorepo's lockfile some ten thousand). Past it the file is hostile or broken, and each record
 * costs memory, cache and output (100,000 of them took a scan to 1.1 GB): the first ones are
 * kept, with a warning.
 */
export const MAX_PACKAGES_PER_FILE = 25_000;
/**
 * Likewise for the installed files a package database lists (OwnedFiles), counted over the whole
 * file. A large real install lists a few hundred thousand files at most (an Alpine or Debian image
 * with TeX Live or LLVM), and every one must be kept: squash marks language packages owned by an
 * OS package through them. A hostile 64 MiB apk database of short paths lists almost five
 * million, each kept through the cache and the squash (63 MiB of them took a scan to 1.3 GB; with
 * 500,000 kept as an array of strings, 245 MB; as one string of lines, OwnedFiles.files, 147 MB).
 * Analysers stop collecting past it or past MAX_OWNED_PATH_BYTES_PER_FILE (OwnedFilesBound) and
 * say so themselves, since the packages after it still count.
 */
export const MAX_OWNED_FILES_PER_FILE = 500_000;
/**
 * Likewise for the text of those paths, as held in memory (a character a byte, two once a path
 * holds one past U+00FF). Long paths make fewer of them cost as much: 500,000 paths of 130
 * characters from a 72 MiB dpkg list took a scan to 242 MB, the text held once in the facts and
 * twice more while the layer cache is written. 500,000 real paths average some 60 characters.
 */
export const MAX_OWNED_PATH_BYTES_PER_FILE = 32 * 1024 * 1024;
/** Likewise for warnings: a file with a million broken records says so a few times, not a million. */
export const MAX_WARNINGS_PER_FILE = 50;

function boundFacts(path: string, analyser: string, facts: FileFacts): FileFacts {
  const warnings = facts.warnings ?? [];
  const extra: string[] = [];
  if (facts.packages && facts.packages.length > MAX_PACKAGES_PER_FILE) {
    extra.push(`${path}: ${analyser} found ${facts.packages.length} packages, more than any real file lists; kept the first ${MAX_PACKAGES_PER_FILE}`);
    facts.packages = facts.packages.slice(0, MAX_PACKAGES_PER_FILE);
  }
  if (warnings.length > MAX_WARNINGS_PER_FILE) {
    facts.warnings = [...warnings.slice(0, MAX_WARNINGS_PER_FILE), `${path}: ${warnings.length - MAX_WARNINGS_PER_FILE} more warnings like these`, ...extra];
  } else if (extra.length > 0) facts.warnings = [...warnings, ...extra];
  return facts;
}

function stripEmpty(facts: FileFacts): FileFacts {
  const out: FileFacts = {};
  if (facts.packages?.length) out.packages = facts.packages;
  if (facts.os) out.os = facts.os;
  if (facts.owned?.length) out.owned = facts.owned;
  if (facts.licenses?.length) out.licenses = facts.licenses;
  if (facts.secrets?.length) out.secrets = facts.secrets;
  if (facts.attributes?.length) out.attributes = facts.attributes;
  if (facts.warnings?.length) out.warnings = facts.warnings;
  return out;
}
