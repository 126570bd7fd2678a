import { describe, expect, it } from 'vitest';
import { parseElf } from '../../src/analyse/elf.js';

/**
 * A minimal little-endian ELF64 with `count` section headers; every header names offset 0 of a
 * string table (the last section) holding `strtab`.
 */
function elfWithNames(count: number, strtab: Buffer): Buffer {
  const header = 64;
  const shoff = header + strtab.length;
  const data = Buffer.alloc(shoff + count * 64);
  data.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1], 0); // magic, ELFCLASS64, little-endian, version
  data.writeUInt16LE(2, 16); // ET_EXEC
  data.writeUInt16LE(62, 18); // x86-64
  data.writeUInt32LE(1, 20);
  data.writeBigUInt64LE(BigInt(shoff), 40); // e_shoff
  data.writeUInt16LE(64, 52); // e_ehsize
  data.writeUInt16LE(64, 58); // e_shentsize
  data.writeUInt16LE(count, 60); // e_shnum
  data.writeUInt16LE(count - 1, 62); // e_shstrndx
  strtab.copy(data, header);
  for (let i = 0; i < count; i++) {
    const b = shoff + i * 64;
    data.writeUInt32LE(0, b); // sh_name: offset 0
    data.writeUInt32LE(i === count - 1 ? 3 : 1, b + 4); // SHT_STRTAB for the last, SHT_PROGBITS otherwise
    data.writeBigUInt64LE(BigInt(i === count - 1 ? header : 0), b + 24); // sh_offset
    data.writeBigUInt64LE(BigInt(i === count - 1 ? strtab.length : 0), b + 32); // sh_size
  }
  return data;
}

describe('ELF section names', () => {
  it('reads a terminated name', () => {
    const elf = parseElf(elfWithNames(3, Buffer.from('.dep-v0\0')));
    expect(elf.sections.map((s) => s.name)).toEqual(['.dep-v0', '.dep-v0', '.dep-v0']);
  });

  it('gives no name where the string table has no NUL nearby, instead of a string to its end', () => {
    // Each of these headers used to become a 256 KiB string: 65,000 of them exhausted the heap.
    const elf = parseElf(elfWithNames(2000, Buffer.alloc(256 * 1024, 0x41)));
    expect(elf.sections).toHaveLength(2000);
    expect(new Set(elf.sections.map((s) => s.name))).toEqual(new Set(['']));
  });
});
