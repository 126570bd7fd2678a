import { parseAllDocuments } from 'yaml';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { LockYamlError, loadLastYamlDocument, type YamlLoadNotes } from '../../src/analyse/analysers/lock-yaml.js';

/** What the yaml package gives for the whole text in one go: the reference the pieces must match. */
function whole(text: string): unknown {
  const docs = parseAllDocuments(text, { uniqueKeys: false });
  const all = Array.isArray(docs) ? docs : [docs];
  return all[all.length - 1]?.toJS();
}

/** A pnpm 9 style lockfile of `count` packages, with the YAML shapes pnpm writes and a few it may not. */
function lockfile(count: number): string {
  let s = "lockfileVersion: '9.0'\n\nsettings:\n  autoInstallPeers: true\n  excludeLinksFromLockfile: false\n\n";
  s += 'importers:\n\n  .:\n    dependencies:\n';
  for (let i = 0; i < 20; i++) s += `      pkg-${i}:\n        specifier: ^1.0.${i}\n        version: 1.0.${i}\n`;
  s += '\npackages:\n\n';
  for (let i = 0; i < count; i++) {
    s += `  '@scope/pkg-${i}@1.0.${i}':\n    resolution: {integrity: sha512-${'Q'.repeat(86)}==}\n`;
    if (i % 7 === 0) s += `    engines: {node: '>=14'}\n    cpu: [x64, arm64]\n`;
    if (i % 11 === 0) s += `    deprecated: >-\n      this text folds\n      over two lines\n`;
    if (i % 13 === 0) s += `  # a comment between entries\n`;
    s += '\n';
  }
  s += 'snapshots:\n\n';
  for (let i = 0; i < count; i++) {
    s += `  '@scope/pkg-${i}@1.0.${i}':\n    dependencies:\n      pkg-${(i + 1) % count}: 1.0.${(i + 1) % count}\n\n`;
  }
  return s;
}

describe('loadLastYamlDocument', () => {
  it('gives what one parse of the whole text gives, for a lockfile many pieces long', () => {
    const text = lockfile(6000); // about 1.3 MB, several pieces per section
    expect(text.length).toBeGreaterThan(1_000_000);
    const got = loadLastYamlDocument(text) as { packages: Record<string, unknown> };
    expect(Object.keys(got.packages)).toHaveLength(6000);
    expect(got).toEqual(whole(text));
  });

  it('never cuts between a long explicit key and its value, or before a sequence at its key\'s indent', () => {
    // js-yaml (which pnpm writes with) puts keys over 1,024 characters in `? key` / `: value` form.
    const explicit = Array.from({ length: 400 }, (_, i) => `  ? /long-${i}/1.0.0_${'x'.repeat(1100)}\n  : 1.0.${i}\n`).join('');
    const sequences = Array.from({ length: 12_000 }, (_, i) => `  k${i}:\n  - a${i}\n  - b${i}\n`).join('');
    for (const text of [`lockfileVersion: '6.0'\npackages:\n${explicit}`, `lockfileVersion: '6.0'\nlists:\n${sequences}`]) {
      expect(text.length).toBeGreaterThan(4 * 64 * 1024);
      expect(loadLastYamlDocument(text)).toEqual(whole(text));
    }
  });

  it('keeps an entry named __proto__ as an entry, as one parse does', () => {
    const text = `packages:\n${Array.from({ length: 8000 }, (_, i) => `  p${i}: ${i}\n`).join('')}  __proto__:\n    version: 9.9.9\n__proto__: top\n`;
    const got = loadLastYamlDocument(text) as Record<string, Record<string, unknown>>;
    expect(Object.getPrototypeOf(got['packages'])).toBe(Object.prototype);
    expect(Object.hasOwn(got['packages']!, '__proto__')).toBe(true);
    expect(Object.hasOwn(got, '__proto__')).toBe(true);
    expect(got).toEqual(whole(text));
  });

  it('keeps the last document when pnpm writes an env lockfile first', () => {
    const text = `---\nlockfileVersion: '9.0'\nimportersA: {}\n---\n${lockfile(3)}`;
    const got = loadLastYamlDocument(text) as Record<string, unknown>;
    expect(got).toEqual(whole(text));
    expect(got['importersA']).toBeUndefined();
  });

  it('falls back to one parse where pieces would change the meaning', () => {
    // An anchor in one entry used by a later one, and a document marker with content after it.
    const anchored = `packages:\n${'  a: &x {v: 1}\n'}${'  pad: 0\n'.repeat(1)}${Array.from({ length: 40_000 }, (_, i) => `  k${i}: ${i}\n`).join('')}  b: *x\n`;
    expect(loadLastYamlDocument(anchored)).toEqual(whole(anchored));
    const inline = '--- {lockfileVersion: 5.4}\n';
    expect(loadLastYamlDocument(inline)).toEqual({ lockfileVersion: 5.4 });
  });

  it('reports a syntax error, and refuses to parse a large file that cannot be read in pieces', () => {
    expect(() => loadLastYamlDocument('lockfileVersion: 5.4\npackages:\n  /a/1.0.0: {\n')).toThrow();
    const big = `packages:\n  broken: {\n${'  x: 1\n'.repeat(800_000)}`;
    expect(() => loadLastYamlDocument(big)).toThrow(LockYamlError);
    expect(() => loadLastYamlDocument(big)).toThrow(/cannot be read in parts and is larger than/);
  });

  it('reads 40,000 entries in pieces, without the yaml package checking every key against every other', () => {
    // With duplicate-key checking on, 40,000 keys took 34 s on the project's 2-core machines.
    const text = lockfile(40_000);
    // Past the size parsed in one go, so only the pieces can have read it.
    expect(text.length).toBeGreaterThan(4 * 1024 * 1024);
    const started = Date.now();
    const got = loadLastYamlDocument(text) as { snapshots: Record<string, unknown> };
    expect(Object.keys(got.snapshots)).toHaveLength(40_000);
    expect(Date.now() - started).toBeLessThan(20_000);
  });
});

describe('keys that are lists or maps', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  // Explicit `? key` entries (a flow sequence, a flow map, a block sequence), an alias of a list, a
  // flow sequence as key inside a flow map.
  const text = [
    "lockfileVersion: '6.0'",
    'packages:',
    '  ? [/evil@1.0.0]',
    '  : {resolution: {integrity: sha512-A}}',
    '  /ok@1.0.0:',
    '    resolution: {integrity: sha512-B}',
    '  ? {x: 1}',
    '  : 2',
    '  ? - a',
    '    - b',
    '  : 3',
    '  /list@1.0.0: &l [a]',
    '  *l : 4',
    '  /tail@2.0.0: {dev: false, nested: {? [c] : d, e: f}}',
    '',
  ].join('\n');
  const expected = {
    lockfileVersion: '6.0',
    packages: {
      '/ok@1.0.0': { resolution: { integrity: 'sha512-B' } },
      '/list@1.0.0': ['a'],
      '/tail@2.0.0': { dev: false, nested: { e: 'f' } },
    },
  };

  it('are dropped and counted, and nothing is written to stderr', () => {
    const warn = vi.spyOn(process, 'emitWarning');
    const notes: YamlLoadNotes = { collectionKeys: 0 };
    expect(loadLastYamlDocument(text, notes)).toEqual(expected);
    expect(notes.collectionKeys).toBe(5);
    expect(warn).not.toHaveBeenCalled();
  });

  it('are dropped the same way when the file is read in pieces', () => {
    const warn = vi.spyOn(process, 'emitWarning');
    // Large enough to be cut into pieces: the complex keys sit in the first and the last piece.
    const pad = Array.from({ length: 20_000 }, (_, i) => `  /pad-${i}@1.0.0: {}\n`).join('');
    const big = text.replace("packages:\n", `packages:\n${pad}`) + '  ? [late]\n  : 5\n';
    const notes: YamlLoadNotes = { collectionKeys: 0 };
    const got = loadLastYamlDocument(big, notes) as { packages: Record<string, unknown> };
    expect(Object.keys(got.packages)).toHaveLength(20_003);
    expect(got.packages['/tail@2.0.0']).toEqual(expected.packages['/tail@2.0.0']);
    expect(notes.collectionKeys).toBe(6);
    expect(warn).not.toHaveBeenCalled();
  });
});

describe('a section with more entries than asked for', () => {
  const section = (key: string, n: number) => `${key}:\n${Array.from({ length: n }, (_, i) => `  /${key}-${i}@1.0.0: {dev: false}\n`).join('')}`;

  it('is read a piece past the bound, in order, and named in the notes; other sections are whole', () => {
    const text = `lockfileVersion: '6.0'\n${section('packages', 50_000)}${section('small', 10)}`;
    const notes: YamlLoadNotes = { collectionKeys: 0 };
    const got = loadLastYamlDocument(text, notes, { maxEntries: 1_000 }) as Record<string, Record<string, unknown>>;
    const keys = Object.keys(got.packages!);
    expect(keys.length).toBeGreaterThan(1_000);
    expect(keys.length).toBeLessThan(5_000); // one 64 KiB piece holds about 2,000 of these
    expect(keys.slice(0, 3)).toEqual(['/packages-0@1.0.0', '/packages-1@1.0.0', '/packages-2@1.0.0']);
    expect(Object.keys(got.small!)).toHaveLength(10);
    expect(got.lockfileVersion).toBe('6.0');
    expect(notes.cutSections).toEqual(['packages']);
  });

  it('is read whole when it has no more than the bound', () => {
    const notes: YamlLoadNotes = { collectionKeys: 0 };
    const got = loadLastYamlDocument(section('packages', 3_000), notes, { maxEntries: 3_000 }) as Record<string, Record<string, unknown>>;
    expect(Object.keys(got.packages!)).toHaveLength(3_000);
    expect(notes.cutSections).toBeUndefined();
  });
});
