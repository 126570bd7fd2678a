import { describe, expect, it } from 'vitest';
import { goBinaryAnalyser, stdlibVersion } from '../../src/analyse/analysers/go-binary.js';
import type { AnalyserFile, FileFacts } from '../../src/analyse/types.js';
import type { PackageRecord } from '../../src/sbom/model.js';
import { BASE_VADDR, DATA_OFFSET, buildElf } from './elf-builder.js';
import { FIXTURES_DIR, fixturesPresent, readImageFiles } from './fixture-layers.js';

const ctx = { scratchDir: '/tmp' };
const MAGIC = Buffer.from('\xff Go buildinf:', 'latin1');
// The linker's sentinels around the module info text (cmd/go/internal/modload).
const START = Buffer.from('3077af0c9274080241e1c107e6d618e6', 'hex');
const END = Buffer.from('f932433186182072008242104116d8f2', 'hex');

const MODINFO = [
  'path\texample.com/app/cmd/app',
  'mod\texample.com/app\tv1.2.3\th1:aaa=',
  'dep\tgithub.com/foo/bar\tv1.0.0\th1:bbb=',
  '=>\tgithub.com/fork/bar\tv1.0.1\th1:ccc=',
  'dep\tgolang.org/x/net\tv0.7.0\th1:ddd=',
  'dep\texample.com/local\tv0.0.0',
  '=>\t../local\t',
  'build\t-compiler=gc',
  'build\tGOOS=linux',
  '',
].join('\n');

function uvarint(n: number): Buffer {
  const out: number[] = [];
  while (n >= 0x80) {
    out.push((n & 0x7f) | 0x80);
    n = Math.floor(n / 128);
  }
  out.push(n);
  return Buffer.from(out);
}

/** Go 1.18+ layout: flags bit 1 set, both strings inline after the 32-byte header. */
function inlineBuildInfo(version: string, modinfo: string): Buffer {
  const hdr = Buffer.alloc(32);
  MAGIC.copy(hdr);
  hdr[14] = 8;
  hdr[15] = 2;
  const v = Buffer.from(version);
  const m = Buffer.concat([START, Buffer.from(modinfo), END]);
  return Buffer.concat([hdr, uvarint(v.length), v, uvarint(m.length), m]);
}

/** Go 1.13-1.17 layout: two pointers to Go string headers; `addr` is where the section will load. */
function pointerBuildInfo(version: string, modinfo: string, addr: number, ptrSize: 4 | 8, bigEndian: boolean): Buffer {
  const v = Buffer.from(version);
  const m = Buffer.concat([START, Buffer.from(modinfo), END]);
  const hdrs = 32; // string headers right after the 32-byte header
  const dataAt = hdrs + 4 * ptrSize;
  const buf = Buffer.alloc(dataAt + v.length + m.length);
  MAGIC.copy(buf);
  buf[14] = ptrSize;
  buf[15] = bigEndian ? 1 : 0;
  const put = (off: number, val: number): void => {
    if (ptrSize === 4) void (bigEndian ? buf.writeUInt32BE(val, off) : buf.writeUInt32LE(val, off));
    else void (bigEndian ? buf.writeBigUInt64BE(BigInt(val), off) : buf.writeBigUInt64LE(BigInt(val), off));
  };
  put(16, addr + hdrs);
  put(16 + ptrSize, addr + hdrs + 2 * ptrSize);
  put(hdrs, addr + dataAt);
  put(hdrs + ptrSize, v.length);
  put(hdrs + 2 * ptrSize, addr + dataAt + v.length);
  put(hdrs + 3 * ptrSize, m.length);
  v.copy(buf, dataAt);
  m.copy(buf, dataAt + v.length);
  return buf;
}

function file(path: string, content: Buffer, mode = 0o755): AnalyserFile {
  return { path, size: content.length, mode, content };
}

async function run(content: Buffer): Promise<FileFacts> {
  return goBinaryAnalyser.analyse(file('usr/bin/app', content), ctx);
}

function byName(pkgs: PackageRecord[] | undefined): Record<string, PackageRecord> {
  return Object.fromEntries((pkgs ?? []).map((p) => [p.namespace ? `${p.namespace}/${p.name}` : p.name, p]));
}

function expectUnitPackages(facts: FileFacts): void {
  expect(facts.warnings).toBeUndefined();
  const p = byName(facts.packages);
  expect(Object.keys(p).sort()).toEqual(
    ['example.com/app', 'example.com/local', 'github.com/fork/bar', 'golang.org/x/net', 'stdlib'].sort(),
  );
  expect(p['stdlib']).toMatchObject({ type: 'golang', version: 'v1.21.3', properties: { goVersion: 'go1.21.3' } });
  expect(p['example.com/app']).toMatchObject({ namespace: 'example.com', name: 'app', version: 'v1.2.3', properties: { mainModule: 'true' } });
  // A module replacement is what gets compiled in, so that is what is reported.
  expect(p['github.com/fork/bar']).toMatchObject({ namespace: 'github.com/fork', name: 'bar', version: 'v1.0.1', properties: { replaces: 'github.com/foo/bar@v1.0.0' } });
  expect(p['golang.org/x/net']).toMatchObject({ namespace: 'golang.org/x', name: 'net', version: 'v0.7.0', paths: ['usr/bin/app'] });
  // A local-directory replacement has no identity of its own; keep the original and say so.
  expect(p['example.com/local']).toMatchObject({ version: 'v0.0.0', properties: { replacedBy: '../local' } });
}

describe('goBinaryAnalyser on constructed ELF files', () => {
  it('reads the Go 1.18+ inline format from .go.buildinfo (ELF64 LE)', async () => {
    const elf = buildElf({ sections: [{ name: '.go.buildinfo', data: inlineBuildInfo('go1.21.3', MODINFO) }] });
    expectUnitPackages(await run(elf.bytes));
  });

  it('reads the pre-1.18 pointer format, following pointers through the program headers (ELF32 BE)', async () => {
    const addr = BASE_VADDR + DATA_OFFSET; // the first section's load address in buildElf
    const data = pointerBuildInfo('go1.21.3', MODINFO, addr, 4, true);
    const elf = buildElf({ bits: 32, littleEndian: false, sections: [{ name: '.go.buildinfo', data }] });
    expect(elf.addr['.go.buildinfo']).toBe(addr);
    expectUnitPackages(await run(elf.bytes));
  });

  it('reads the pointer format with 8-byte pointers (ELF64 LE)', async () => {
    const data = pointerBuildInfo('go1.16.15', MODINFO, BASE_VADDR + DATA_OFFSET, 8, false);
    const facts = await run(buildElf({ sections: [{ name: '.go.buildinfo', data }] }).bytes);
    expect(byName(facts.packages)['stdlib']?.version).toBe('v1.16.15');
  });

  it('finds the header by scanning the writable segment when section headers are stripped', async () => {
    const elf = buildElf({
      stripSections: true,
      sections: [
        { name: '.text', data: Buffer.alloc(100, 0x90) },
        { name: '.go.buildinfo', data: inlineBuildInfo('go1.21.3', MODINFO) },
      ],
    });
    expectUnitPackages(await run(elf.bytes));
  });

  it('ignores the magic when it is not 16-byte aligned (a string constant, not the header)', async () => {
    const data = Buffer.concat([Buffer.alloc(3), inlineBuildInfo('go1.21.3', MODINFO)]);
    const elf = buildElf({ stripSections: true, sections: [{ name: '.rodata', data }] });
    expect(await run(elf.bytes)).toEqual({});
  });

  it('returns nothing for ELF files that are not Go binaries', async () => {
    const elf = buildElf({ sections: [{ name: '.text', data: Buffer.alloc(2048, 0x90) }] });
    expect(await run(elf.bytes)).toEqual({});
    expect(await run(Buffer.from('#!/bin/sh\necho hi\n'))).toEqual({});
  });

  it('warns, without throwing, on a truncated ELF', async () => {
    const whole = buildElf({ sections: [{ name: '.go.buildinfo', data: inlineBuildInfo('go1.21.3', MODINFO) }] }).bytes;
    for (const len of [4, 20, 60, 200]) {
      const facts = await run(whole.subarray(0, len));
      expect(facts.packages).toBeUndefined();
      expect(facts.warnings?.length).toBe(1);
    }
    // Cut inside the build info strings: the header is found, the strings are not.
    const facts = await run(whole.subarray(0, DATA_OFFSET + 40));
    expect(facts.packages).toBeUndefined();
    expect(facts.warnings).toHaveLength(1);
  });

  it('warns when the pointers lead outside the file', async () => {
    const data = pointerBuildInfo('go1.16', MODINFO, 0x10, 8, false);
    const facts = await run(buildElf({ sections: [{ name: '.go.buildinfo', data }] }).bytes);
    expect(facts.warnings?.[0]).toMatch(/Go build info not readable/);
  });

  it('selects files: sniff for ELF magic, wants executables or bin/ paths of at least 1 KiB', () => {
    expect(goBinaryAnalyser.sniff?.(Buffer.from('\x7fELF\x02\x01\x01', 'latin1'))).toBe(true);
    expect(goBinaryAnalyser.sniff?.(Buffer.from('#!/bin/sh'))).toBe(false);
    expect(goBinaryAnalyser.wants('opt/app/server', { size: 4096, mode: 0o755 })).toBe(true);
    expect(goBinaryAnalyser.wants('usr/bin/tool', { size: 4096, mode: 0o644 })).toBe(true);
    expect(goBinaryAnalyser.wants('usr/sbin/tool', { size: 4096, mode: 0o600 })).toBe(true);
    expect(goBinaryAnalyser.wants('etc/config', { size: 4096, mode: 0o644 })).toBe(false);
    expect(goBinaryAnalyser.wants('usr/bin/tiny', { size: 100, mode: 0o755 })).toBe(false);
  });
});

describe('stdlibVersion', () => {
  it('turns Go toolchain versions into module-style versions', () => {
    expect(stdlibVersion('go1.19.8')).toBe('v1.19.8');
    expect(stdlibVersion('go1.21')).toBe('v1.21');
    expect(stdlibVersion('go1.22.1 X:boringcrypto')).toBe('v1.22.1');
    expect(stdlibVersion('devel +abc')).toBeUndefined();
  });
});

if (!fixturesPresent) console.warn(`go-binary fixture test skipped: ${FIXTURES_DIR} is absent`);

describe.skipIf(!fixturesPresent)('goBinaryAnalyser on the go-app fixture image', () => {
  it('reads the build info of usr/local/bin/webapp', async () => {
    const files = await readImageFiles('go-app.tar', () => true);
    const results: { path: string; facts: FileFacts }[] = [];
    for (const f of files) {
      // As the layer walker would: wants, then sniff on the head, then analyse.
      if (!goBinaryAnalyser.wants(f.path, f) || !goBinaryAnalyser.sniff?.(f.content.subarray(0, 64))) continue;
      results.push({ path: f.path, facts: await goBinaryAnalyser.analyse(f, ctx) });
    }
    expect(results.map((r) => r.path)).toEqual(['usr/local/bin/webapp']);
    const facts = results[0]!.facts;
    expect(facts.warnings).toBeUndefined();
    const p = byName(facts.packages);
    expect(Object.keys(p).sort()).toEqual(['example.com/portcullis-fixture/webapp', 'golang.org/x/net', 'golang.org/x/text', 'stdlib']);
    expect(p['stdlib']).toMatchObject({ version: 'v1.19.8', properties: { goVersion: 'go1.19.8' } });
    expect(p['example.com/portcullis-fixture/webapp']).toMatchObject({
      namespace: 'example.com/portcullis-fixture',
      name: 'webapp',
      version: '(devel)',
      properties: { mainModule: 'true' },
    });
    expect(p['golang.org/x/net']).toMatchObject({ type: 'golang', version: 'v0.7.0', paths: ['usr/local/bin/webapp'] });
    expect(p['golang.org/x/text']).toMatchObject({ type: 'golang', version: 'v0.7.0' });
  });
});
