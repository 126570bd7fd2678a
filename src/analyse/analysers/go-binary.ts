import type { PackageRecord } from '../../sbom/model.js';
import {
  ElfError,
  PF_W,
  PF_X,
  PT_LOAD,
  findSection,
  isElf,
  parseElfCached,
  readVirtual,
  sectionData,
  wantsBinary,
  type ElfFile,
} from '../elf.js';
import type { Analyser, AnalyserFile, FileFacts } from '../types.js';

/**
 * Go module build information, read from ELF binaries without running them.
 *
 * The Go linker writes a 32-byte header starting with "\xff Go buildinf:" into the data segment
 * (its own `.go.buildinfo` section since Go 1.13). Byte 14 is the pointer size, byte 15 flags:
 * bit 1 (value 2) means the version and module strings follow the header inline as
 * varint-length-prefixed strings (Go 1.18+); otherwise two pointers at offset 16 point to Go string
 * headers (data pointer, length) that must be followed through the program headers. Bit 0 gives
 * the byte order of those pointers. The module info text is wrapped in 16-byte sentinels.
 */

const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
const HEADER_SIZE = 32;
/** Strings longer than this are not real build info; a corrupt length must not allocate much. */
const MAX_STRING = 4 * 1024 * 1024;

export interface GoModule {
  path: string;
  version: string;
  sum?: string;
  replace?: { path: string; version: string; sum?: string };
}

export interface GoBuildInfo {
  goVersion: string;
  /** The `path` line: the main package's import path. */
  path?: string;
  main?: GoModule;
  deps: GoModule[];
  settings: Record<string, string>;
}

/** Finds the build-info header bytes: the section if present, else a scan of writable segments. */
function findHeader(elf: ElfFile): { bytes: Buffer } | undefined {
  const sec = findSection(elf, '.go.buildinfo');
  if (sec) {
    const bytes = sectionData(elf, sec);
    if (bytes && bytes.length >= HEADER_SIZE && bytes.subarray(0, MAGIC.length).equals(MAGIC)) return { bytes };
  }
  // Sections can be stripped (sstrip, some packers); the linker still places the header at a
  // 16-byte aligned address in the first writable, non-executable segment, as debug/buildinfo does.
  for (const p of elf.segments) {
    if (p.type !== PT_LOAD || (p.flags & (PF_W | PF_X)) !== PF_W) continue;
    const end = Math.min(elf.data.length, p.offset + p.filesz);
    if (p.offset >= end) continue;
    // Search only this segment's bytes, not on into debug info after it.
    const seg = elf.data.subarray(p.offset, end);
    for (let at = seg.indexOf(MAGIC); at >= 0 && at + HEADER_SIZE <= seg.length; at = seg.indexOf(MAGIC, at + 1)) {
      // Alignment keeps us from matching the magic as a string constant (e.g. inside `go` itself).
      if ((p.vaddr + at) % 16 === 0) return { bytes: seg.subarray(at) };
    }
  }
  return undefined;
}

function readUvarint(buf: Buffer, off: number): [value: number, next: number] | undefined {
  let v = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    const b = buf[off + i];
    if (b === undefined) return undefined;
    v += (b & 0x7f) * mul;
    if (b < 0x80) return [v, off + i + 1];
    mul *= 128;
  }
  return undefined;
}

function readInlineStrings(bytes: Buffer): [string, string] | undefined {
  const out: string[] = [];
  let off = HEADER_SIZE;
  for (let i = 0; i < 2; i++) {
    const r = readUvarint(bytes, off);
    if (!r) return undefined;
    const [len, start] = r;
    if (len > MAX_STRING || start + len > bytes.length) return undefined;
    out.push(bytes.toString('utf8', start, start + len));
    off = start + len;
  }
  return [out[0] as string, out[1] as string];
}

function readPointerStrings(elf: ElfFile, bytes: Buffer): [string, string] | undefined {
  const ptrSize = bytes[14];
  const bigEndian = ((bytes[15] ?? 0) & 1) !== 0;
  if (ptrSize !== 4 && ptrSize !== 8) return undefined;
  const readPtr = (b: Buffer, off: number): number | undefined => {
    if (off + ptrSize > b.length) return undefined;
    if (ptrSize === 4) return bigEndian ? b.readUInt32BE(off) : b.readUInt32LE(off);
    const v = bigEndian ? b.readBigUInt64BE(off) : b.readBigUInt64LE(off);
    return v > BigInt(Number.MAX_SAFE_INTEGER) ? undefined : Number(v);
  };
  // A Go string header is {data pointer, length}, both pointer-sized.
  const readGoString = (addr: number | undefined): string | undefined => {
    if (addr === undefined) return undefined;
    const hdr = readVirtual(elf, addr, 2 * ptrSize);
    if (!hdr) return undefined;
    const data = readPtr(hdr, 0);
    const len = readPtr(hdr, ptrSize);
    if (data === undefined || len === undefined || len > MAX_STRING) return undefined;
    if (len === 0) return '';
    return readVirtual(elf, data, len)?.toString('utf8');
  };
  const version = readGoString(readPtr(bytes, 16));
  const modinfo = readGoString(readPtr(bytes, 16 + ptrSize));
  if (version === undefined || modinfo === undefined) return undefined;
  return [version, modinfo];
}

/** Removes the 16-byte start and end sentinels the linker wraps module info in. */
function stripSentinels(modinfo: string): string {
  // Same test as debug/buildinfo: the text ends with a newline just before the end sentinel.
  if (modinfo.length >= 33 && modinfo[modinfo.length - 17] === '\n') return modinfo.slice(16, -16);
  return modinfo;
}

export function parseModInfo(goVersion: string, text: string): GoBuildInfo {
  const info: GoBuildInfo = { goVersion, deps: [], settings: {} };
  let last: GoModule | undefined;
  for (const line of text.split('\n')) {
    const f = line.split('\t');
    const [kind, a = '', b = '', c] = f;
    switch (kind) {
      case 'path':
        info.path = a;
        break;
      case 'mod':
        last = info.main = { path: a, version: b, ...(c ? { sum: c } : {}) };
        break;
      case 'dep':
        last = { path: a, version: b, ...(c ? { sum: c } : {}) };
        info.deps.push(last);
        break;
      case '=>':
        // A replacement applies to the mod/dep line just above it.
        if (last) last.replace = { path: a, version: b, ...(c ? { sum: c } : {}) };
        break;
      case 'build': {
        const eq = a.indexOf('=');
        if (eq > 0) info.settings[a.slice(0, eq)] = a.slice(eq + 1);
        break;
      }
    }
  }
  return info;
}

/** Reads Go build info from a parsed ELF; undefined when the file is not a Go binary. */
export function readGoBuildInfo(elf: ElfFile): GoBuildInfo | undefined {
  const hdr = findHeader(elf);
  if (!hdr) return undefined;
  const flags = hdr.bytes[15] ?? 0;
  const strings = (flags & 2) !== 0 ? readInlineStrings(hdr.bytes) : readPointerStrings(elf, hdr.bytes);
  if (!strings) throw new ElfError('Go build info header found but its strings could not be read');
  const [goVersion, modinfo] = strings;
  return parseModInfo(goVersion, stripSentinels(modinfo));
}

/** 'go1.19.8' -> 'v1.19.8' (as Trivy reports stdlib); experiments like ' X:boringcrypto' dropped. */
export function stdlibVersion(goVersion: string): string | undefined {
  const m = /^go(\d+(?:\.\d+)*)/.exec(goVersion.trim());
  return m ? `v${m[1]}` : undefined;
}

function splitModulePath(path: string): { namespace?: string; name: string } {
  const i = path.lastIndexOf('/');
  return i < 0 ? { name: path } : { namespace: path.slice(0, i), name: path.slice(i + 1) };
}

/** A local-directory replacement (`=> ../net`) has no version and no module identity of its own. */
function isLocalPath(p: string): boolean {
  return p.startsWith('./') || p.startsWith('../') || p.startsWith('/') || p === '.' || p === '..';
}

function moduleRecord(m: GoModule, filePath: string, extra: Record<string, string>): PackageRecord | undefined {
  let path = m.path;
  let version = m.version;
  const properties: Record<string, string> = { ...extra };
  if (m.replace) {
    if (isLocalPath(m.replace.path)) {
      // What is compiled in is the local copy; keep the original identity but say so.
      properties.replacedBy = m.replace.path;
    } else {
      properties.replaces = m.version ? `${m.path}@${m.version}` : m.path;
      path = m.replace.path;
      version = m.replace.version;
    }
  }
  if (!path) return undefined;
  return {
    type: 'golang',
    ...splitModulePath(path),
    version,
    paths: [filePath],
    ...(Object.keys(properties).length ? { properties } : {}),
  };
}

export function goBuildInfoPackages(info: GoBuildInfo, filePath: string): PackageRecord[] {
  const out: PackageRecord[] = [];
  const std = stdlibVersion(info.goVersion);
  if (std) {
    out.push({ type: 'golang', name: 'stdlib', version: std, paths: [filePath], properties: { goVersion: info.goVersion } });
  }
  if (info.main) {
    const rec = moduleRecord(info.main, filePath, { mainModule: 'true' });
    if (rec) out.push(rec);
  }
  for (const d of info.deps) {
    const rec = moduleRecord(d, filePath, {});
    if (rec) out.push(rec);
  }
  return out;
}

export const goBinaryAnalyser: Analyser = {
  name: 'go-binary',
  version: 2,
  maxFileSize: 512 * 1024 * 1024,
  wants: wantsBinary,
  sniff: isElf,
  // Both ways of finding the build info need its header, so a binary without it has none.
  markers: [MAGIC],
  analyse(file: AnalyserFile): FileFacts {
    // The walker normally sniffs first; this keeps direct callers from getting noise warnings.
    if (!isElf(file.content)) return {};
    let elf: ElfFile;
    try {
      elf = parseElfCached(file.content);
    } catch (e) {
      // Only this analyser reports malformed ELF files, so the Rust one does not repeat it.
      return { warnings: [`${file.path}: malformed ELF file, not checked for Go build info: ${errorMessage(e)}`] };
    }
    try {
      const info = readGoBuildInfo(elf);
      if (!info) return {};
      return { packages: goBuildInfoPackages(info, file.path) };
    } catch (e) {
      return { warnings: [`${file.path}: Go build info not readable: ${errorMessage(e)}`] };
    }
  },
};

function errorMessage(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
