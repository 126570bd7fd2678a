import { describe, expect, it } from 'vitest';
import { emptyLayerFacts, type AnalysedFile, type LayerFacts } from '../../src/analyse/dispatch.js';
import { squashLayers } from '../../src/analyse/squash.js';
import type { FileFacts } from '../../src/analyse/types.js';

// Squash only keeps the histories of paths that say something in some layer. These cases pin down
// that a quiet file (one an analyser read and found nothing in) still replaces what lay below it,
// and that the quiet paths of other files change nothing.

const SECRET = {
  ruleId: 'private-key',
  title: 'Private key',
  severity: 'high' as const,
  line: 1,
  redacted: '-----BEGIN ****',
};
const MUSL = { type: 'apk' as const, name: 'musl', version: '1.2.5-r0' };

function layer(
  files: Array<[path: string, analyser: string, facts: FileFacts]>,
  extra: Partial<LayerFacts> = {},
): LayerFacts {
  const facts = emptyLayerFacts();
  facts.files = files.map(([path, analyser, f]): AnalysedFile => ({ path, analyser, facts: f }));
  return { ...facts, ...extra };
}

function squash(...layers: LayerFacts[]) {
  return squashLayers(
    layers.map((facts, index) => ({ ref: { index, digest: `sha256:${String(index).repeat(64)}` }, facts })),
  );
}

/** Many files the secret search read and found nothing in, as a layer full of text has. */
function quietFiles(count: number, prefix: string): Array<[string, string, FileFacts]> {
  return Array.from({ length: count }, (_, i) => [`${prefix}/file-${i}.txt`, 'secrets', {}]);
}

describe('squash', () => {
  it('marks a secret deleted when a later layer replaces its file with one that says nothing', () => {
    const result = squash(
      layer([['root/.ssh/id_rsa', 'secrets', { secrets: [SECRET] }], ...quietFiles(50, 'srv')]),
      layer([['root/.ssh/id_rsa', 'secrets', {}], ...quietFiles(50, 'srv')]),
    );
    expect(result.secrets).toHaveLength(1);
    expect(result.secrets[0]).toMatchObject({ path: 'root/.ssh/id_rsa', deleted: true, layer: { index: 0 } });
  });

  it('keeps a secret live when only unrelated quiet files follow it', () => {
    const result = squash(
      layer([['root/.ssh/id_rsa', 'secrets', { secrets: [SECRET] }]]),
      layer(quietFiles(50, 'root/.ssh/other')),
    );
    expect(result.secrets[0]).toMatchObject({ deleted: false });
  });

  it('marks a secret deleted by a whiteout or an opaque folder above it', () => {
    const key = layer([['root/.ssh/id_rsa', 'secrets', { secrets: [SECRET] }]]);
    expect(squash(key, layer([], { whiteouts: ['root/.ssh'] })).secrets[0]).toMatchObject({ deleted: true });
    expect(squash(key, layer([], { opaqueDirs: ['root'] })).secrets[0]).toMatchObject({ deleted: true });
    expect(squash(key, layer([], { whiteouts: ['root/.ss'] })).secrets[0]).toMatchObject({ deleted: false });
  });

  it('drops packages whose database a later layer replaced with one that lists none', () => {
    const db = 'lib/apk/db/installed';
    const before = squash(layer([[db, 'apk', { packages: [MUSL] }], ...quietFiles(20, 'etc')]));
    expect(before.packages.map((p) => p.name)).toEqual(['musl']);
    const after = squash(
      layer([[db, 'apk', { packages: [MUSL] }]]),
      layer([[db, 'apk', {}], ...quietFiles(20, 'etc')]),
    );
    expect(after.packages).toEqual([]);
  });

  it('attributes a package to the lowest layer it was continuously present in', () => {
    const db = 'lib/apk/db/installed';
    const result = squash(
      layer([[db, 'apk', { packages: [MUSL] }]]),
      layer(quietFiles(10, 'tmp')),
      layer([[db, 'apk', { packages: [MUSL, { type: 'apk', name: 'zlib', version: '1.3.1-r1' }] }]]),
    );
    expect(result.packages.map((p) => [p.name, p.layer.index])).toEqual([
      ['musl', 0],
      ['zlib', 2],
    ]);
  });

  it('reports attributes of files still present, not of replaced ones', () => {
    const result = squash(
      layer([
        ['usr/bin/su', 'file-attributes', { attributes: ['setuid'] }],
        ['usr/bin/passwd', 'file-attributes', { attributes: ['setuid'] }],
      ]),
      layer([['usr/bin/su', 'file-attributes', {}]]),
    );
    expect(result.attributes).toEqual([{ path: 'usr/bin/passwd', attribute: 'setuid' }]);
  });
  describe('replacement by entries that carry no record', () => {
    const db = 'lib/apk/db/installed';
    const base = () => layer([[db, 'apk', { packages: [MUSL] }], ['etc/os-release', 'os-release', { os: { family: 'alpine', version: '3.20.3' } }]]);

    it('a folder at a file\'s path replaces the file', () => {
      expect(squash(base(), layer([], { dirs: ['lib', 'lib/apk', 'lib/apk/db', db] })).packages).toEqual([]);
    });

    it('a folder above a file merges with what was there', () => {
      const r = squash(base(), layer([], { dirs: ['lib', 'lib/apk', 'lib/apk/db'] }));
      expect(r.packages.map((p) => p.name)).toEqual(['musl']);
      expect(r.os?.family).toBe('alpine');
    });

    it('any other entry replaces the file at its path, and a folder with everything below it', () => {
      expect(squash(base(), layer([], { others: [db] })).packages).toEqual([]);
      const r = squash(base(), layer([], { others: ['lib/apk'] }));
      expect(r.packages).toEqual([]);
      expect(r.os?.family).toBe('alpine');
      expect(squash(base(), layer([], { others: ['lib/ap', 'lib/apk/db/installed.new'] })).packages.map((p) => p.name)).toEqual(['musl']);
    });

    it('a recorded file over a folder replaces everything below it', () => {
      const r = squash(base(), layer([['lib/apk', 'secrets', {}]]));
      expect(r.packages).toEqual([]);
      expect(r.os?.family).toBe('alpine');
    });

    it('what a layer replaces does not touch what the same layer records', () => {
      const r = squash(base(), layer([[db, 'apk', { packages: [MUSL] }]], { dirs: ['lib/apk/db'], others: ['lib/apk/db/lock'] }));
      expect(r.packages.map((p) => [p.name, p.layer.index])).toEqual([['musl', 0]]);
    });

    it('marks a secret deleted when a symlink replaces its file or its folder, and keeps overwritten ones as deleted', () => {
      const key = layer([['root/.ssh/id_rsa', 'secrets', { secrets: [SECRET] }]]);
      expect(squash(key, layer([], { others: ['root/.ssh/id_rsa'] })).secrets[0]).toMatchObject({ deleted: true });
      expect(squash(key, layer([], { others: ['root/.ssh'] })).secrets[0]).toMatchObject({ deleted: true });
      expect(squash(key, layer([], { dirs: ['root/.ssh'] })).secrets[0]).toMatchObject({ deleted: false });
      const overwritten = squash(layer([], { overwritten: [{ path: 'root/.ssh/id_rsa', analyser: 'secrets', facts: { secrets: [SECRET] } }] }));
      expect(overwritten.secrets).toEqual([expect.objectContaining({ path: 'root/.ssh/id_rsa', deleted: true })]);
    });

    it('a setuid file replaced by one no analyser recorded loses its attribute', () => {
      const r = squash(layer([['usr/bin/su', 'file-attributes', { attributes: ['setuid'] }]]), layer([], { others: ['usr/bin/su'] }));
      expect(r.attributes).toEqual([]);
    });
  });

  it('marks language packages owned through their path or its folder, the list read last winning', () => {
    const egg = 'usr/lib/python3/dist-packages/six-1.16.0.egg-info';
    const result = squash(
      layer([
        ['var/lib/dpkg/info/a.list', 'dpkg', { owned: [{ owner: { type: 'deb', name: 'a' }, files: `usr\n${egg}\nusr/share/java/x.jar\n` }] }],
        ['var/lib/dpkg/info/b.list', 'dpkg', { owned: [{ owner: { type: 'deb', name: 'b' }, files: `${egg}\n` }] }],
        [`${egg}/PKG-INFO`, 'python', { packages: [{ type: 'pypi', name: 'six', version: '1.16.0' }] }],
        ['usr/share/java/x.jar', 'java', { packages: [{ type: 'maven', name: 'x', version: '1' }] }],
        ['srv/app/y.jar', 'java', { packages: [{ type: 'maven', name: 'y', version: '1' }] }],
      ]),
    );
    const owners = Object.fromEntries(result.packages.map((p) => [p.name, p.ownedBy]));
    expect(owners).toEqual({ six: { type: 'deb', name: 'b' }, x: { type: 'deb', name: 'a' }, y: undefined });
  });
});

