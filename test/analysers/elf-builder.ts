/**
 * Test helper: writes small ELF files byte by byte, so the binary analysers can be tested on
 * inputs whose every field we control (class, byte order, sections, program headers).
 */

export interface SectionSpec {
  name: string;
  data: Buffer;
  /** SHT_PROGBITS unless given. */
  type?: number;
}

export interface ElfSpec {
  bits?: 32 | 64;
  littleEndian?: boolean;
  sections: SectionSpec[];
  /** Leave out the section header table, as sstrip does. */
  stripSections?: boolean;
}

/** Where section data starts in the file; section i's address is BASE_VADDR + its file offset. */
export const DATA_OFFSET = 0x1000;
export const BASE_VADDR = 0x400000;

export interface BuiltElf {
  bytes: Buffer;
  /** Virtual address of each section, by name. */
  addr: Record<string, number>;
}

export function buildElf(spec: ElfSpec): BuiltElf {
  const bits = spec.bits ?? 64;
  const le = spec.littleEndian ?? true;
  const w = bits === 64 ? 8 : 4;
  const ehsize = bits === 64 ? 64 : 52;
  const phentsize = bits === 64 ? 56 : 32;
  const shentsize = bits === 64 ? 64 : 40;

  // Section name string table, with the empty name first.
  const names = ['', ...spec.sections.map((s) => s.name), '.shstrtab'];
  const nameOff: number[] = [];
  let strtab = Buffer.alloc(0);
  for (const n of names) {
    nameOff.push(strtab.length);
    strtab = Buffer.concat([strtab, Buffer.from(n + '\0', 'latin1')]);
  }

  const layout: { off: number; size: number }[] = [];
  let off = DATA_OFFSET;
  for (const s of spec.sections) {
    layout.push({ off, size: s.data.length });
    off = Math.ceil((off + s.data.length) / 16) * 16;
  }
  const strOff = off;
  off = Math.ceil((off + strtab.length) / 16) * 16;
  const shoff = off;
  const shnum = spec.stripSections ? 0 : names.length;
  const total = shoff + shnum * shentsize;
  const buf = Buffer.alloc(total);

  const u16 = (o: number, v: number): void => void (le ? buf.writeUInt16LE(v, o) : buf.writeUInt16BE(v, o));
  const u32 = (o: number, v: number): void => void (le ? buf.writeUInt32LE(v, o) : buf.writeUInt32BE(v, o));
  const word = (o: number, v: number): void => {
    if (w === 4) u32(o, v);
    else if (le) buf.writeBigUInt64LE(BigInt(v), o);
    else buf.writeBigUInt64BE(BigInt(v), o);
  };

  // e_ident
  buf.set([0x7f, 0x45, 0x4c, 0x46, bits === 64 ? 2 : 1, le ? 1 : 2, 1], 0);
  u16(16, 2); // ET_EXEC
  u16(18, bits === 64 ? 62 : 3); // x86-64 / i386 (byte order is all the reader cares about)
  u32(20, 1);
  word(24, BASE_VADDR + DATA_OFFSET); // e_entry
  word(24 + w, ehsize); // e_phoff
  word(24 + 2 * w, spec.stripSections ? 0 : shoff);
  let p = 24 + 3 * w + 4; // after e_flags
  u16(p, ehsize);
  u16(p + 2, phentsize);
  u16(p + 4, 1);
  u16(p + 6, shentsize);
  u16(p + 8, shnum);
  u16(p + 10, spec.stripSections ? 0 : names.length - 1);

  // One writable PT_LOAD mapping the whole file at BASE_VADDR.
  p = ehsize;
  if (bits === 64) {
    u32(p, 1);
    u32(p + 4, 6); // PF_R | PF_W
    word(p + 8, 0);
    word(p + 16, BASE_VADDR);
    word(p + 24, BASE_VADDR);
    word(p + 32, total);
    word(p + 40, total);
    word(p + 48, 0x1000);
  } else {
    u32(p, 1);
    u32(p + 4, 0);
    u32(p + 8, BASE_VADDR);
    u32(p + 12, BASE_VADDR);
    u32(p + 16, total);
    u32(p + 20, total);
    u32(p + 24, 6);
    u32(p + 28, 0x1000);
  }

  const addr: Record<string, number> = {};
  spec.sections.forEach((s, i) => {
    const l = layout[i]!;
    s.data.copy(buf, l.off);
    addr[s.name] = BASE_VADDR + l.off;
  });
  strtab.copy(buf, strOff);

  if (!spec.stripSections) {
    const sh = (i: number, name: number, type: number, a: number, o: number, size: number): void => {
      const b = shoff + i * shentsize;
      u32(b, name);
      u32(b + 4, type);
      word(b + 8, type === 1 ? 3 : 0); // SHF_WRITE | SHF_ALLOC for data
      word(b + 8 + w, a);
      word(b + 8 + 2 * w, o);
      word(b + 8 + 3 * w, size);
    };
    spec.sections.forEach((s, i) => {
      const l = layout[i]!;
      sh(i + 1, nameOff[i + 1]!, s.type ?? 1, BASE_VADDR + l.off, l.off, l.size);
    });
    sh(names.length - 1, nameOff[names.length - 1]!, 3, 0, strOff, strtab.length);
  }
  return { bytes: buf, addr };
}
