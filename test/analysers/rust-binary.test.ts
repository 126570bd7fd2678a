import { deflateSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { rustBinaryAnalyser } from '../../src/analyse/analysers/rust-binary.js';
import type { AnalyserFile, FileFacts } from '../../src/analyse/types.js';
import { DATA_OFFSET, buildElf } from './elf-builder.js';

const ctx = { scratchDir: '/tmp' };

const AUDIT = {
  packages: [
    { name: 'myapp', version: '0.3.0', source: 'local', dependencies: [1, 2, 3], root: true },
    { name: 'serde', version: '1.0.193', source: 'crates.io', dependencies: [2] },
    { name: 'serde_derive', version: '1.0.193', source: 'crates.io', kind: 'build' },
    { name: 'tokio', version: '1.35.0', source: 'crates.io', kind: 'runtime' },
  ],
};

function run(content: Buffer): Promise<FileFacts> | FileFacts {
  const f: AnalyserFile = { path: 'usr/local/bin/myapp', size: content.length, mode: 0o755, content };
  return rustBinaryAnalyser.analyse(f, ctx);
}

function withDep(data: Buffer): Buffer {
  return buildElf({
    sections: [
      { name: '.text', data: Buffer.alloc(512, 0x90) },
      { name: '.dep-v0', data },
    ],
  }).bytes;
}

describe('rustBinaryAnalyser', () => {
  it('reports the runtime crates from a cargo-auditable .dep-v0 section', async () => {
    const facts = await run(withDep(deflateSync(Buffer.from(JSON.stringify(AUDIT)))));
    expect(facts.warnings).toBeUndefined();
    expect(facts.packages).toEqual([
      { type: 'cargo', name: 'myapp', version: '0.3.0', paths: ['usr/local/bin/myapp'], properties: { source: 'cargo-auditable', crateSource: 'local', root: 'true' } },
      { type: 'cargo', name: 'serde', version: '1.0.193', paths: ['usr/local/bin/myapp'], properties: { source: 'cargo-auditable', crateSource: 'crates.io' } },
      // serde_derive is a build-time dependency (proc macro): not linked in, not reported.
      { type: 'cargo', name: 'tokio', version: '1.35.0', paths: ['usr/local/bin/myapp'], properties: { source: 'cargo-auditable', crateSource: 'crates.io' } },
    ]);
  });

  it('works on 32-bit big-endian ELF too', async () => {
    const bytes = buildElf({ bits: 32, littleEndian: false, sections: [{ name: '.dep-v0', data: deflateSync(JSON.stringify(AUDIT)) }] }).bytes;
    expect((await run(bytes)).packages).toHaveLength(3);
  });

  it('returns nothing for ELF files without the section', async () => {
    expect(await run(buildElf({ sections: [{ name: '.text', data: Buffer.alloc(2048) }] }).bytes)).toEqual({});
  });

  it('warns on corrupt or oddly shaped section data', async () => {
    for (const data of [Buffer.from('not zlib at all'), deflateSync('{"packages": 3}'), deflateSync('{oops')]) {
      const facts = await run(withDep(data));
      expect(facts.packages).toBeUndefined();
      expect(facts.warnings).toHaveLength(1);
      expect(facts.warnings?.[0]).toMatch(/^usr\/local\/bin\/myapp: cargo-auditable data not readable/);
    }
  });

  it('stops inflating a zlib bomb instead of allocating it', async () => {
    const bomb = deflateSync(Buffer.alloc(17 * 1024 * 1024, 0x20), { level: 9 });
    const facts = await run(withDep(bomb));
    expect(facts.packages).toBeUndefined();
    expect(facts.warnings).toHaveLength(1);
  });

  it('returns nothing, without throwing, for a truncated ELF (the Go analyser reports it)', async () => {
    const whole = withDep(deflateSync(JSON.stringify(AUDIT)));
    for (const len of [4, 30, 100, DATA_OFFSET + 8, whole.length - 40]) expect(await run(whole.subarray(0, len))).toEqual({});
  });

  it('uses the same file selection as the Go analyser', () => {
    expect(rustBinaryAnalyser.sniff?.(Buffer.from('\x7fELF', 'latin1'))).toBe(true);
    expect(rustBinaryAnalyser.sniff?.(Buffer.from('MZ'))).toBe(false);
    expect(rustBinaryAnalyser.wants('app/server', { size: 5000, mode: 0o700 })).toBe(true);
    expect(rustBinaryAnalyser.wants('app/data.bin', { size: 5000, mode: 0o644 })).toBe(false);
  });
});
