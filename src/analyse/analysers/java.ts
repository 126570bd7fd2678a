import { inflateRawSync } from 'node:zlib';
import type { PackageRecord } from '../../sbom/model.js';
import { baseName, type Analyser, type AnalyserFile, type FileFacts } from '../types.js';

/**
 * Maven packages in Java archives (.jar, .war, .ear, Jenkins .jpi/.hpi), including archives nested
 * inside them (WEB-INF/lib, BOOT-INF/lib, lib/ of an ear).
 *
 * The zip reader is our own rather than fflate's unzipSync: unzipSync allocates whatever size an
 * entry declares and inflates with no bound on the real output (a lying entry costs CPU
 * proportional to its true size), and it does not expose entry offsets we could use instead. Here
 * every inflate is capped by node:zlib's `maxOutputLength`, every read is bounds-checked, and a
 * shared budget bounds the total work across nesting, so a zip bomb ends as one warning.
 */

const ARCHIVE_EXT = /\.(jar|war|ear|jpi|hpi)$/i;
/** Nesting below the file itself: a.jar!/b.jar!/c.jar!/d.jar!/e.jar is the deepest we open. */
const MAX_NESTING = 4;
/** Bytes extracted (stored or inflated) from one top-level file, over all nesting levels. */
const MAX_EXTRACTED_BYTES = 512 * 1024 * 1024;
/** Central-directory entries visited for one top-level file; overlapping-entry bombs hit this. */
const MAX_ENTRIES_VISITED = 1_000_000;
/** A single nested archive larger than this is skipped (with a warning), not inflated. */
const MAX_NESTED_ARCHIVE = 256 * 1024 * 1024;
/** Warnings kept per top-level file; a jar full of broken jars must not flood the report. */
const MAX_WARNINGS = 10;
/** pom.properties and MANIFEST.MF are small; anything bigger is not what we are looking for. */
const MAX_TEXT_ENTRY = 1024 * 1024;

class ZipError extends Error {
  override readonly name = 'ZipError';
}
/** Thrown when the shared budget runs out: stops the whole file, not only one nested archive. */
class BudgetError extends ZipError {}

interface ZipEntry {
  name: string;
  method: number;
  flags: number;
  compressedSize: number;
  size: number;
  localOffset: number;
}

interface Budget {
  bytes: number;
  entries: number;
}

const SIG_EOCD = 0x06054b50;
const SIG_EOCD64 = 0x06064b50;
const SIG_EOCD64_LOCATOR = 0x07064b50;
const SIG_CENTRAL = 0x02014b50;
const SIG_LOCAL = 0x04034b50;

function u16(b: Buffer, off: number): number {
  if (off < 0 || off + 2 > b.length) throw new ZipError('truncated zip structure');
  return b.readUInt16LE(off);
}
function u32(b: Buffer, off: number): number {
  if (off < 0 || off + 4 > b.length) throw new ZipError('truncated zip structure');
  return b.readUInt32LE(off);
}
function u64(b: Buffer, off: number): number {
  if (off < 0 || off + 8 > b.length) throw new ZipError('truncated zip structure');
  const v = b.readBigUInt64LE(off);
  if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ZipError('zip64 value too large');
  return Number(v);
}

/** Reads the central directory. Throws ZipError when the bytes are not a usable zip. */
function readCentralDirectory(buf: Buffer, budget: Budget): ZipEntry[] {
  // The end record is in the last 22 + 65535 (comment) bytes; search backwards for its signature.
  let eocd = -1;
  for (let i = buf.length - 22; i >= 0 && i >= buf.length - 22 - 0xffff; i--) {
    if (buf[i] === 0x50 && buf.readUInt32LE(i) === SIG_EOCD) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new ZipError('no end of central directory record');
  let count = u16(buf, eocd + 10);
  let cdSize = u32(buf, eocd + 12);
  let cdOffset = u32(buf, eocd + 16);
  let cdEnd = eocd;
  if (count === 0xffff || cdSize === 0xffffffff || cdOffset === 0xffffffff) {
    const loc = eocd - 20;
    if (loc >= 0 && u32(buf, loc) === SIG_EOCD64_LOCATOR) {
      const z = u64(buf, loc + 8);
      if (u32(buf, z) === SIG_EOCD64) {
        count = u64(buf, z + 32);
        cdSize = u64(buf, z + 40);
        cdOffset = u64(buf, z + 48);
        cdEnd = z;
      }
    }
  }
  // Executable jars (Spring Boot's launch script, self-extractors) have bytes prepended, and their
  // offsets are relative to where the zip starts. The directory ends where the end record begins,
  // so the difference between that and the recorded offset is the prefix length.
  const cdStart = cdEnd - cdSize;
  if (cdStart < 0) throw new ZipError('central directory size exceeds file');
  const shift = cdStart - cdOffset;
  if (count > cdSize / 46 + 1) throw new ZipError(`entry count ${count} does not fit the central directory`);

  const entries: ZipEntry[] = [];
  let p = cdStart;
  for (let i = 0; i < count; i++) {
    if (--budget.entries < 0) throw new BudgetError('too many zip entries (zip bomb?)');
    if (u32(buf, p) !== SIG_CENTRAL) throw new ZipError('bad central directory entry');
    const flags = u16(buf, p + 8);
    const method = u16(buf, p + 10);
    let compressedSize = u32(buf, p + 20);
    let size = u32(buf, p + 24);
    const nameLen = u16(buf, p + 28);
    const extraLen = u16(buf, p + 30);
    const commentLen = u16(buf, p + 32);
    let localOffset = u32(buf, p + 42);
    if (p + 46 + nameLen > buf.length) throw new ZipError('truncated central directory');
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    if (size === 0xffffffff || compressedSize === 0xffffffff || localOffset === 0xffffffff) {
      // Zip64 extra field (id 1) holds, in order, only the fields whose 32-bit value is all ones.
      let e = p + 46 + nameLen;
      const eEnd = e + extraLen;
      while (e + 4 <= eEnd) {
        const id = u16(buf, e);
        const len = u16(buf, e + 2);
        if (id === 1) {
          let f = e + 4;
          if (size === 0xffffffff) {
            size = u64(buf, f);
            f += 8;
          }
          if (compressedSize === 0xffffffff) {
            compressedSize = u64(buf, f);
            f += 8;
          }
          if (localOffset === 0xffffffff) localOffset = u64(buf, f);
          break;
        }
        e += 4 + len;
      }
    }
    entries.push({ name, method, flags, compressedSize, size, localOffset: localOffset + shift });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return entries;
}

/** Where an entry's stored bytes lie: from its local header to the end of its compressed data. */
function entrySpan(buf: Buffer, entry: ZipEntry): { start: number; end: number } | undefined {
  const lo = entry.localOffset;
  if (lo < 0 || lo + 30 > buf.length || buf.readUInt32LE(lo) !== SIG_LOCAL) return undefined;
  return { start: lo, end: lo + 30 + buf.readUInt16LE(lo + 26) + buf.readUInt16LE(lo + 28) + entry.compressedSize };
}

/**
 * The first of `entries` whose bytes overlap another's, if any. A zip tool never writes two entries
 * over the same bytes; overlap is how a few kilobytes are made to inflate, over and over, into
 * gigabytes (one compressed kernel shared by many entries, or nested archives listing themselves).
 */
function overlappingEntry(buf: Buffer, entries: readonly ZipEntry[]): ZipEntry | undefined {
  const spans = entries
    .map((entry) => ({ entry, span: entrySpan(buf, entry) }))
    .filter((s): s is { entry: ZipEntry; span: { start: number; end: number } } => s.span !== undefined)
    .sort((a, b) => a.span.start - b.span.start);
  for (let i = 1; i < spans.length; i++) {
    const prev = spans[i - 1];
    const cur = spans[i];
    if (prev && cur && cur.span.start < prev.span.end) return cur.entry;
  }
  return undefined;
}

/** The uncompressed bytes of one entry, at most `limit` bytes, charged to the budget. */
function entryData(buf: Buffer, entry: ZipEntry, limit: number, budget: Budget): Buffer {
  if (entry.flags & 1) throw new ZipError(`${entry.name} is encrypted`);
  if (entry.size > limit) throw new ZipError(`${entry.name} declares ${entry.size} bytes, over the limit`);
  if (entry.size > budget.bytes) throw new BudgetError('extraction budget exhausted (zip bomb?)');
  const lo = entry.localOffset;
  if (u32(buf, lo) !== SIG_LOCAL) throw new ZipError(`${entry.name}: bad local header`);
  const start = lo + 30 + u16(buf, lo + 26) + u16(buf, lo + 28);
  const end = start + entry.compressedSize;
  if (end > buf.length) throw new ZipError(`${entry.name}: data runs past the end of the archive`);
  const raw = buf.subarray(start, end);
  let out: Buffer;
  if (entry.method === 0) {
    if (entry.compressedSize !== entry.size) throw new ZipError(`${entry.name}: stored sizes disagree`);
    out = raw;
  } else if (entry.method === 8) {
    try {
      // The cap is the declared size: an entry that inflates to more than it says is lying, and
      // zlib stops as soon as it passes the cap instead of inflating the whole bomb.
      out = inflateRawSync(raw, { maxOutputLength: Math.max(1, entry.size) });
    } catch (e) {
      const code = (e as { code?: string }).code;
      if (code === 'ERR_BUFFER_TOO_LARGE') throw new ZipError(`${entry.name} inflates past its declared size ${entry.size}`);
      throw new ZipError(`${entry.name}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (out.length !== entry.size) throw new ZipError(`${entry.name} inflates to ${out.length} bytes, declared ${entry.size}`);
  } else {
    throw new ZipError(`${entry.name}: unsupported compression method ${entry.method}`);
  }
  budget.bytes -= out.length;
  return out;
}

/** Java .properties, enough of it for pom.properties: key=value or key: value, # and ! comments. */
export function parseProperties(text: string): Map<string, string> {
  const out = new Map<string, string>();
  const lines = text.split(/\r?\n|\r/);
  for (let i = 0; i < lines.length; i++) {
    let line = (lines[i] ?? '').trimStart();
    if (!line || line.startsWith('#') || line.startsWith('!')) continue;
    // A trailing backslash continues the logical line.
    while (line.endsWith('\\') && i + 1 < lines.length) line = line.slice(0, -1) + (lines[++i] ?? '').trimStart();
    const m = /^((?:\\.|[^=:\s\\])+)\s*[=:\s]\s*(.*)$/.exec(line);
    if (m) out.set((m[1] ?? '').replace(/\\(.)/g, '$1'), (m[2] ?? '').trim());
    else out.set(line.trim(), '');
  }
  return out;
}

/** The main section of a MANIFEST.MF, keys lower-cased; continuation lines start with one space. */
export function parseManifest(text: string): Map<string, string> {
  const out = new Map<string, string>();
  let key: string | undefined;
  for (const line of text.split(/\r?\n|\r/)) {
    if (line === '') break; // the main section ends at the first blank line
    if (line.startsWith(' ') && key !== undefined) {
      out.set(key, (out.get(key) ?? '') + line.slice(1));
      continue;
    }
    const i = line.indexOf(':');
    if (i <= 0) continue;
    key = line.slice(0, i).trim().toLowerCase();
    out.set(key, line.slice(i + 1).trim());
  }
  return out;
}

/** Version qualifiers that may sit between two numeric parts, e.g. 1.0-beta-2. */
const QUALIFIER = /^(alpha|beta|rc|cr|m|milestone|pre|preview|snapshot|sp|b|ea|build|r|dev|patch|update|u|final|ga|release)$/i;

/**
 * `log4j-core-2.19.0.jar` -> log4j-core, 2.19.0. The version starts at the first `-<digit>` whose
 * remainder has no word part followed by more numbers (so log4j-1.2-api-2.19.0 is log4j-1.2-api),
 * unless that word is a known qualifier (1.0-beta-2).
 */
export function parseArchiveFileName(fileName: string): { artifact: string; version?: string } {
  const stem = fileName.replace(ARCHIVE_EXT, '');
  const re = /-(?=\d)/g;
  for (let m = re.exec(stem); m; m = re.exec(stem)) {
    const rest = stem.slice(m.index + 1);
    const words = [...rest.matchAll(/-([A-Za-z][A-Za-z0-9]*)-(?=\d)/g)].map((w) => w[1] ?? '');
    if (words.every((w) => QUALIFIER.test(w)) && m.index > 0) {
      return { artifact: stem.slice(0, m.index), version: rest };
    }
  }
  return { artifact: stem };
}

const JAVA_PACKAGE = /^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_-]*)+$/;
const ARTIFACT_ID = /^[A-Za-z][A-Za-z0-9_-]*$/;
const VERSION = /^\d[\w.+~-]*$/;

function manifestPackage(mf: Map<string, string>, fileName: string): PackageRecord | undefined {
  const fromName = parseArchiveFileName(fileName);
  let fromManifest = false;

  let artifact = fromName.artifact;
  for (const k of ['implementation-title', 'bundle-name']) {
    const v = mf.get(k);
    if (v && ARTIFACT_ID.test(v)) {
      artifact = v;
      fromManifest = true;
      break;
    }
  }

  let group: string | undefined;
  const vendorId = mf.get('implementation-vendor-id');
  const bsn = mf.get('bundle-symbolicname')?.split(';')[0]?.trim();
  if (vendorId && JAVA_PACKAGE.test(vendorId)) {
    group = vendorId;
  } else if (bsn && JAVA_PACKAGE.test(bsn)) {
    // OSGi names are often groupId + '.' + artifactId, or a package name under the groupId.
    const parts = bsn.split('.');
    if (bsn.endsWith(`.${artifact}`)) group = bsn.slice(0, -artifact.length - 1);
    else group = parts.length >= 3 ? parts.slice(0, -1).join('.') : bsn;
  }
  if (group) fromManifest = true;

  let version: string | undefined;
  for (const k of ['implementation-version', 'bundle-version']) {
    const v = mf.get(k);
    if (v && VERSION.test(v)) {
      version = v;
      fromManifest = true;
      break;
    }
  }
  version ??= fromName.version;
  // Without a version nothing can be matched against advisories; such a jar is not reported.
  if (!version || !artifact) return undefined;
  return {
    type: 'maven',
    ...(group ? { namespace: group } : {}),
    name: artifact,
    version,
    properties: { source: fromManifest ? 'manifest' : 'filename' },
  };
}

interface WalkState {
  topPath: string;
  budget: Budget;
  packages: PackageRecord[];
  warnings: Set<string>;
}

function isPomProperties(name: string): boolean {
  return name.startsWith('META-INF/maven/') && name.endsWith('/pom.properties');
}

function isManifest(name: string): boolean {
  return name.toUpperCase() === 'META-INF/MANIFEST.MF';
}

function walkArchive(buf: Buffer, archivePath: string, fileName: string, depth: number, st: WalkState): void {
  let entries: ZipEntry[];
  try {
    entries = readCentralDirectory(buf, st.budget);
  } catch (e) {
    if (e instanceof BudgetError) throw e;
    st.warnings.add(`${archivePath}: not a readable Java archive: ${(e as Error).message}`);
    return;
  }

  // Only the entries read below cost memory and time, so only they are checked for overlap.
  const wanted = entries.filter(
    (e) => isPomProperties(e.name) || isManifest(e.name) || (!e.name.endsWith('/') && ARCHIVE_EXT.test(e.name)),
  );
  const overlap = overlappingEntry(buf, wanted);
  if (overlap) {
    st.warnings.add(`${archivePath}: not read: entry ${overlap.name} overlaps another entry's bytes (zip bomb?)`);
    return;
  }

  const found: PackageRecord[] = [];
  const seen = new Set<string>();
  const record = (props: Record<string, string>, pkg: PackageRecord): void => {
    found.push({ ...pkg, paths: [st.topPath], properties: { ...pkg.properties, ...props } });
  };
  const readText = (e: ZipEntry): string | undefined => {
    try {
      return entryData(buf, e, MAX_TEXT_ENTRY, st.budget).toString('utf8');
    } catch (err) {
      if (err instanceof BudgetError) throw err;
      st.warnings.add(`${archivePath}: ${(err as Error).message}`);
      return undefined;
    }
  };

  for (const e of entries) {
    if (!isPomProperties(e.name)) continue;
    const text = readText(e);
    if (text === undefined) continue;
    const props = parseProperties(text);
    const g = props.get('groupId');
    const a = props.get('artifactId');
    const v = props.get('version');
    if (!g || !a || !v) continue;
    const key = `${g}:${a}:${v}`;
    if (seen.has(key)) continue;
    seen.add(key);
    record({ source: 'pom.properties', archivePath }, { type: 'maven', namespace: g, name: a, version: v });
  }

  if (found.length === 0) {
    const mfEntry = entries.find((e) => isManifest(e.name));
    const text = mfEntry ? readText(mfEntry) : undefined;
    const pkg = manifestPackage(text === undefined ? new Map() : parseManifest(text), fileName);
    if (pkg) record({ archivePath }, pkg);
  }
  st.packages.push(...found);

  const opened = new Set<string>();
  for (const e of entries) {
    if (e.name.endsWith('/') || !ARCHIVE_EXT.test(e.name)) continue;
    const nestedPath = `${archivePath}!/${e.name}`;
    // A name listed twice would report the same path twice; the first one is what a class loader reads.
    if (opened.has(e.name)) continue;
    opened.add(e.name);
    if (depth >= MAX_NESTING) {
      st.warnings.add(`${st.topPath}: archives nested deeper than ${MAX_NESTING} levels were not opened`);
      continue;
    }
    let nested: Buffer;
    try {
      nested = entryData(buf, e, MAX_NESTED_ARCHIVE, st.budget);
    } catch (err) {
      if (err instanceof BudgetError) throw err;
      st.warnings.add(`${nestedPath}: ${(err as Error).message}`);
      continue;
    }
    walkArchive(nested, nestedPath, baseName(e.name), depth + 1, st);
  }
}

/** All Maven packages in one archive file (and archives nested in it). Never throws. */
export function analyseJavaArchive(path: string, content: Buffer): FileFacts {
  const st: WalkState = {
    topPath: path,
    budget: { bytes: MAX_EXTRACTED_BYTES, entries: MAX_ENTRIES_VISITED },
    packages: [],
    warnings: new Set(),
  };
  try {
    walkArchive(content, path, baseName(path), 0, st);
  } catch (e) {
    // Budget exhaustion: keep what was found before it, and say why the rest is missing.
    st.warnings.add(`${path}: stopped reading archive: ${e instanceof Error ? e.message : String(e)}`);
  }
  const facts: FileFacts = {};
  if (st.packages.length) facts.packages = st.packages;
  if (st.warnings.size) {
    const all = [...st.warnings];
    facts.warnings = all.length <= MAX_WARNINGS ? all : [...all.slice(0, MAX_WARNINGS - 1), `${path}: ${all.length - MAX_WARNINGS + 1} more problems in nested archives`];
  }
  return facts;
}

export const javaAnalyser: Analyser = {
  name: 'java-archive',
  // 2: overlapping entries refused, a nested archive listed twice opened once.
  version: 2,
  maxFileSize: 256 * 1024 * 1024,
  wants(path: string, info): boolean {
    return info.size >= 22 && ARCHIVE_EXT.test(path);
  },
  analyse(file: AnalyserFile): FileFacts {
    return analyseJavaArchive(file.path, file.content);
  },
};
