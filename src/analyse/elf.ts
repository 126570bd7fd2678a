/**
 * A small, read-only ELF reader: enough of the header, section headers and program headers to find
 * data that language toolchains embed in binaries (Go build info, cargo-auditable dependency lists)
 * without running anything. Every offset is bounds-checked: images contain truncated and hostile
 * files, and a malformed one must give an ElfError, never a RangeError from deep inside Buffer.
 */

export const ELF_MAGIC = Buffer.from([0x7f, 0x45, 0x4c, 0x46]);

export const PT_LOAD = 1;
export const PF_X = 1;
export const PF_W = 2;
export const SHT_NOBITS = 8;

export class ElfError extends Error {
  override readonly name = 'ElfError';
}

export interface ElfSection {
  name: string;
  type: number;
  flags: number;
  addr: number;
  offset: number;
  size: number;
  link: number;
}

export interface ElfSegment {
  type: number;
  flags: number;
  offset: number;
  vaddr: number;
  filesz: number;
  memsz: number;
}

export interface ElfFile {
  bits: 32 | 64;
  littleEndian: boolean;
  machine: number;
  sections: ElfSection[];
  segments: ElfSegment[];
  data: Buffer;
}

/** True when the bytes start with the ELF magic; meant for an analyser's `sniff`. */
export function isElf(head: Buffer): boolean {
  return head.length >= 4 && head.subarray(0, 4).equals(ELF_MAGIC);
}

/** Reads integers of the file's width and byte order, refusing anything past the end. */
class Reader {
  constructor(
    private readonly buf: Buffer,
    readonly le: boolean,
  ) {}

  private check(off: number, len: number): void {
    if (!Number.isSafeInteger(off) || off < 0 || off + len > this.buf.length) {
      throw new ElfError(`truncated ELF: read of ${len} bytes at ${off} past end (${this.buf.length})`);
    }
  }

  u8(off: number): number {
    this.check(off, 1);
    return this.buf[off] as number;
  }

  u16(off: number): number {
    this.check(off, 2);
    return this.le ? this.buf.readUInt16LE(off) : this.buf.readUInt16BE(off);
  }

  u32(off: number): number {
    this.check(off, 4);
    return this.le ? this.buf.readUInt32LE(off) : this.buf.readUInt32BE(off);
  }

  u64(off: number): number {
    this.check(off, 8);
    const v = this.le ? this.buf.readBigUInt64LE(off) : this.buf.readBigUInt64BE(off);
    // Offsets and sizes above 2^53 cannot describe a file we hold in memory; treat as corrupt.
    if (v > BigInt(Number.MAX_SAFE_INTEGER)) throw new ElfError('ELF value too large');
    return Number(v);
  }

  /** An address-sized field: 4 bytes in ELF32, 8 in ELF64. */
  word(off: number, bits: 32 | 64): number {
    return bits === 64 ? this.u64(off) : this.u32(off);
  }
}

// Generous caps so a corrupt header cannot make us allocate millions of objects.
/** Longer than any section name a toolchain writes (`.note.go.buildid`, `.dep-v0`, `.gnu_debuglink`). */
const MAX_SECTION_NAME = 255;
const MAX_SECTIONS = 65_536;
const MAX_SEGMENTS = 65_536;

/** Parses an ELF file's headers. Throws ElfError when the file is not ELF or is malformed. */
export function parseElf(data: Buffer): ElfFile {
  if (!isElf(data)) throw new ElfError('not an ELF file');
  if (data.length < 52) throw new ElfError('truncated ELF header');
  const cls = data[4];
  const enc = data[5];
  if (cls !== 1 && cls !== 2) throw new ElfError(`unknown ELF class ${cls}`);
  if (enc !== 1 && enc !== 2) throw new ElfError(`unknown ELF data encoding ${enc}`);
  const bits: 32 | 64 = cls === 2 ? 64 : 32;
  const r = new Reader(data, enc === 1);
  const w = bits === 64 ? 8 : 4;

  // e_ident(16) e_type(2) e_machine(2) e_version(4) e_entry(w) e_phoff(w) e_shoff(w) e_flags(4)
  // e_ehsize(2) e_phentsize(2) e_phnum(2) e_shentsize(2) e_shnum(2) e_shstrndx(2)
  const machine = r.u16(18);
  let off = 24 + w; // skip e_entry
  const phoff = r.word(off, bits);
  const shoff = r.word(off + w, bits);
  off += 2 * w + 4 + 2; // e_phoff, e_shoff, e_flags, e_ehsize
  const phentsize = r.u16(off);
  let phnum = r.u16(off + 2);
  const shentsize = r.u16(off + 4);
  let shnum = r.u16(off + 6);
  let shstrndx = r.u16(off + 8);

  const minSh = bits === 64 ? 64 : 40;
  const minPh = bits === 64 ? 56 : 32;

  const readSection = (i: number): Omit<ElfSection, 'name'> & { nameOff: number } => {
    const b = shoff + i * shentsize;
    // sh_name(4) sh_type(4) sh_flags(w) sh_addr(w) sh_offset(w) sh_size(w) sh_link(4)
    return {
      nameOff: r.u32(b),
      type: r.u32(b + 4),
      flags: r.word(b + 8, bits),
      addr: r.word(b + 8 + w, bits),
      offset: r.word(b + 8 + 2 * w, bits),
      size: r.word(b + 8 + 3 * w, bits),
      link: r.u32(b + 8 + 4 * w),
    };
  };

  const sections: ElfSection[] = [];
  if (shoff !== 0 && shentsize >= minSh) {
    // Extended numbering: with 0xff00+ sections the real count and string-table index live in
    // section 0's sh_size and sh_link.
    if (shnum === 0 || shstrndx === 0xffff) {
      const s0 = readSection(0);
      if (shnum === 0) shnum = s0.size;
      if (shstrndx === 0xffff) shstrndx = s0.link;
    }
    if (shnum > MAX_SECTIONS) throw new ElfError(`implausible section count ${shnum}`);
    const raw = [];
    for (let i = 0; i < shnum; i++) raw.push(readSection(i));
    const strtab = raw[shstrndx];
    const strData =
      strtab && strtab.type !== SHT_NOBITS && strtab.offset + strtab.size <= data.length
        ? data.subarray(strtab.offset, strtab.offset + strtab.size)
        : undefined;
    for (const s of raw) {
      let name = '';
      if (strData && s.nameOff < strData.length) {
        // Only a NUL within MAX_SECTION_NAME bytes ends a name the analysers could ask for; without
        // this bound, 65,000 headers pointing into an unterminated 256 KiB table made 16 GB of names.
        const window = strData.subarray(s.nameOff, Math.min(strData.length, s.nameOff + MAX_SECTION_NAME + 1));
        const end = window.indexOf(0);
        if (end >= 0) name = window.toString('latin1', 0, end);
      }
      const { nameOff: _nameOff, ...rest } = s;
      sections.push({ name, ...rest });
    }
  }

  const segments: ElfSegment[] = [];
  if (phoff !== 0 && phentsize >= minPh) {
    if (phnum === 0xffff && sections[0]) phnum = sections[0].link; // PN_XNUM
    if (phnum > MAX_SEGMENTS) throw new ElfError(`implausible segment count ${phnum}`);
    for (let i = 0; i < phnum; i++) {
      const b = phoff + i * phentsize;
      // ELF64 puts p_flags right after p_type; ELF32 puts it after p_memsz.
      if (bits === 64) {
        segments.push({
          type: r.u32(b),
          flags: r.u32(b + 4),
          offset: r.u64(b + 8),
          vaddr: r.u64(b + 16),
          filesz: r.u64(b + 32),
          memsz: r.u64(b + 40),
        });
      } else {
        segments.push({
          type: r.u32(b),
          offset: r.u32(b + 4),
          vaddr: r.u32(b + 8),
          filesz: r.u32(b + 16),
          memsz: r.u32(b + 20),
          flags: r.u32(b + 24),
        });
      }
    }
  }

  return { bits, littleEndian: r.le, machine, sections, segments, data };
}

/**
 * The Go and Rust analysers receive the same Buffer for the same file; parsing once and sharing the
 * result keeps the second pass nearly free. A WeakMap lets the Buffer (and the parse) be collected.
 */
const parsed = new WeakMap<Buffer, ElfFile | ElfError>();

export function parseElfCached(data: Buffer): ElfFile {
  let hit = parsed.get(data);
  if (!hit) {
    try {
      hit = parseElf(data);
    } catch (e) {
      if (!(e instanceof ElfError)) throw e;
      hit = e;
    }
    parsed.set(data, hit);
  }
  if (hit instanceof ElfError) throw hit;
  return hit;
}

export function findSection(elf: ElfFile, name: string): ElfSection | undefined {
  return elf.sections.find((s) => s.name === name);
}

/** The file bytes of a section, or undefined when it has none (NOBITS) or points past the end. */
export function sectionData(elf: ElfFile, section: ElfSection): Buffer | undefined {
  if (section.type === SHT_NOBITS) return undefined;
  const end = section.offset + section.size;
  if (end > elf.data.length) return undefined;
  return elf.data.subarray(section.offset, end);
}

/**
 * Bytes at a virtual address, mapped through PT_LOAD segments (or, when a file has no program
 * headers, through sections). Returns undefined when the range is not backed by file bytes.
 */
export function readVirtual(elf: ElfFile, addr: number, length: number): Buffer | undefined {
  if (!Number.isSafeInteger(addr) || !Number.isSafeInteger(length) || length < 0) return undefined;
  const ranges: { vaddr: number; offset: number; size: number }[] = [];
  for (const p of elf.segments) {
    if (p.type === PT_LOAD) ranges.push({ vaddr: p.vaddr, offset: p.offset, size: p.filesz });
  }
  if (ranges.length === 0) {
    for (const s of elf.sections) {
      if (s.addr !== 0 && s.type !== SHT_NOBITS) ranges.push({ vaddr: s.addr, offset: s.offset, size: s.size });
    }
  }
  for (const r of ranges) {
    if (addr >= r.vaddr && addr + length <= r.vaddr + r.size) {
      const start = r.offset + (addr - r.vaddr);
      if (start + length > elf.data.length) return undefined;
      return elf.data.subarray(start, start + length);
    }
  }
  return undefined;
}

/** Shared `wants` for binary analysers: executables and anything in a bin/ or sbin/ folder. */
export function wantsBinary(path: string, info: { size: number; mode: number }): boolean {
  if (info.size < 1024) return false;
  if ((info.mode & 0o111) !== 0) return true;
  return /(^|\/)s?bin\//.test(path);
}
