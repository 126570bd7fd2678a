import { execFileSync, spawnSync } from 'node:child_process';
import { chmodSync, existsSync, mkdtempSync, readdirSync, rmSync, unlinkSync, mkdirSync, writeFileSync, symlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { analyseInput, type Analyser } from '../../src/analyse/index.js';
import { MAX_PACKAGES_PER_FILE, MAX_WARNINGS_PER_FILE } from '../../src/analyse/dispatch.js';
import { apkAnalyser } from '../../src/analyse/analysers/apk.js';
import { dpkgAnalyser } from '../../src/analyse/analysers/dpkg.js';
import { osReleaseAnalyser } from '../../src/analyse/analysers/os-release.js';
import { PortcullisError } from '../../src/errors.js';
import { parseImageInput } from '../../src/oci/index.js';
import { HAVE_ZSTD, writeOciLayout, type TestEntry } from '../helpers/image-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-walk-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
let n = 0;
const newDir = () => join(tmp, `img${n++}`);

const apkDb = (...pkgs: Array<[string, string, string?]>) =>
  pkgs.map(([p, v, o]) => `P:${p}\nV:${v}\nA:x86_64\nL:MIT\n${o ? `o:${o}\n` : ''}F:usr/lib/${p}\nR:lib${p}.so\n`).join('\n');
const osRelease: TestEntry = { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n' };
const dpkgStatus = (name: string) =>
  `Package: ${name}\nStatus: install ok installed\nVersion: 1.0-1\nArchitecture: amd64\nSource: ${name}-src (1.0-0)\n\n` +
  `Package: removed\nStatus: deinstall ok config-files\nVersion: 2.0\n`;

async function scanLayout(dir: string, extra: Partial<Parameters<typeof analyseInput>[1]> = {}) {
  const [r] = await analyseInput(parseImageInput(`oci:${dir}`), { cacheDir: null, ...extra });
  return r!;
}

async function errorOf(p: Promise<unknown>): Promise<PortcullisError> {
  try {
    await p;
  } catch (err) {
    expect(err).toBeInstanceOf(PortcullisError);
    return err as PortcullisError;
  }
  throw new Error('expected an error');
}

describe('layer squashing', () => {
  it('applies whiteouts and opaque folders, and attributes packages to the layer that introduced them', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [osRelease, { name: 'lib/apk/db/installed', content: apkDb(['musl', '1.2.5-r0']) }, { name: 'var/lib/dpkg/status', content: dpkgStatus('gone') }],
      [{ name: 'lib/apk/db/installed', content: apkDb(['musl', '1.2.5-r0'], ['busybox', '1.36.1-r29']) }, { name: 'var/lib/dpkg/.wh.status', content: '' }],
    ]);
    const r = await scanLayout(dir);
    expect(r.os).toMatchObject({ family: 'alpine', version: '3.20.3' });
    expect(r.packages.map((p) => `${p.type}:${p.name}@${p.version}#${p.layer.index}`)).toEqual([
      'apk:busybox@1.36.1-r29#1',
      'apk:musl@1.2.5-r0#0',
    ]);
    const musl = r.packages.find((p) => p.name === 'musl')!;
    expect(musl.purl).toContain('pkg:apk/alpine/musl@1.2.5-r0');
    expect(musl.sourceName).toBe('musl');
    expect(musl.licenses).toEqual(['MIT']);
    expect(musl.paths).toEqual(['lib/apk/db/installed']);
  });

  it('an opaque folder hides lower content but keeps what the same layer adds', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [{ name: 'var/lib/dpkg/status', content: dpkgStatus('old') }],
      [
        { name: 'var/lib/dpkg/', type: 'directory' },
        { name: 'var/lib/dpkg/.wh..wh..opq', content: '' },
        { name: 'var/lib/dpkg/status', content: dpkgStatus('new') },
      ],
    ]);
    const r = await scanLayout(dir);
    expect(r.packages.map((p) => `${p.name}:${p.sourceName}:${p.sourceVersion}`)).toEqual(['new:new-src:1.0-0']);
  });

  it('a whiteout of a folder removes every file below it', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [{ name: 'var/lib/dpkg/status', content: dpkgStatus('x') }, osRelease],
      [{ name: 'var/lib/.wh.dpkg', content: '' }],
    ]);
    const r = await scanLayout(dir);
    expect(r.packages).toEqual([]);
    expect(r.os?.family).toBe('alpine');
  });

  const readsLayers = async (compression: 'gzip' | 'none' | 'zstd') => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease, { name: './lib/apk/db/installed', content: apkDb(['zlib', '1.3.1-r1']) }]], { compression });
    const r = await scanLayout(dir);
    expect(r.packages.map((p) => p.name)).toEqual(['zlib']);
  };
  it('reads gzip layers', () => readsLayers('gzip'));
  it('reads uncompressed layers', () => readsLayers('none'));
  it.skipIf(!HAVE_ZSTD)(`reads zstd layers${HAVE_ZSTD ? '' : ' [SKIPPED: the zstd command is absent]'}`, () => readsLayers('zstd'));
});

describe('Debian copyright licences', () => {
  it('attaches DEP-5 licences to the package whose doc folder holds them, mapped to SPDX ids', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [
        { name: 'var/lib/dpkg/status', content: dpkgStatus('tool') },
        {
          name: 'usr/share/doc/tool/copyright',
          content: 'Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/\n\nFiles: *\nLicense: GPL-2+ or Artistic\n\nFiles: lib/*\nLicense: Expat\n',
        },
        { name: 'usr/share/doc/tool/examples/copyright', content: 'License: BSD-3-clause\n' },
      ],
    ]);
    const r = await scanLayout(dir);
    expect(r.packages[0]!.licenses).toEqual(['GPL-2.0-or-later', 'Artistic-1.0-Perl', 'MIT']);
  });
});

describe('bad input', () => {
  it('names a layout blob that is missing, and one that is no regular file (a FIFO would hang the read)', async () => {
    const dir = newDir();
    const built = await writeOciLayout(dir, [[osRelease]]);
    const blob = join(dir, 'blobs', 'sha256', built.layerDigests[0]!.slice(7));
    unlinkSync(blob);
    expect((await errorOf(scanLayout(dir))).message).toMatch(/blobs\/sha256\/[0-9a-f]{64} is missing$/);
    execFileSync('mkfifo', [blob]);
    const err = await errorOf(scanLayout(dir));
    expect(err.code).toBe('BLOB_UNKNOWN');
    expect(err.message).toMatch(/blobs\/sha256\/[0-9a-f]{64} is not a regular file$/);
  });

  it('refuses a layer whose content does not match its digest', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease]], {
      corruptLayer: (b) => {
        const c = Buffer.from(b);
        c[c.length - 5] = (c[c.length - 5] ?? 0) ^ 0xff;
        return c;
      },
    });
    const err = await errorOf(scanLayout(dir));
    expect(err.code).toMatch(/DIGEST_MISMATCH|LAYER_CORRUPT/);
    expect(err.message).toContain(dir);
  });

  it('reports the digest, not the reader, when a tampered layer still reads as a tar', async () => {
    // One byte changed inside a file's content: every header still parses, so only the digest
    // check, which fails when the blob ends, can tell; the reader stopping must not hide it.
    for (const compression of ['none', 'gzip'] as const) {
      const dir = newDir();
      await writeOciLayout(dir, [[osRelease, { name: 'data/big', content: Buffer.alloc(3 << 20, 0x61) }]], {
        compression,
        corruptLayer: (b) => {
          if (compression === 'gzip') return Buffer.concat([b, Buffer.alloc(16)]); // extra bytes at the end
          const c = Buffer.from(b);
          c[2048] = 0x62;
          return c;
        },
      });
      const err = await errorOf(scanLayout(dir));
      expect(err.code).toBe(compression === 'none' ? 'DIGEST_MISMATCH' : 'SIZE_MISMATCH');
    }
  });

  it('refuses entries that climb out of the root or are absolute', async () => {
    for (const name of ['../../etc/passwd', 'a/../../b', '/etc/shadow']) {
      const dir = newDir();
      await writeOciLayout(dir, [[{ name, content: 'x' }]], { compression: 'none' });
      const err = await errorOf(scanLayout(dir));
      expect(err.code).toBe('UNSAFE_PATH');
      expect(err.message).toContain(name);
    }
  });

  it('enforces the entry, file size and total size limits', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[{ name: 'a', content: 'x'.repeat(1000) }, { name: 'b', content: 'y' }, { name: 'c', content: 'z' }]]);
    expect((await errorOf(scanLayout(dir, { limits: { maxEntries: 2 } }))).code).toBe('LIMIT_EXCEEDED');
    expect((await errorOf(scanLayout(dir, { limits: { maxFileBytes: 999 } }))).message).toMatch(/"a" is 1000 bytes/);
    expect((await errorOf(scanLayout(dir, { limits: { maxTotalBytes: 1001 } }))).code).toBe('LIMIT_EXCEEDED');
    await expect(scanLayout(dir, { limits: { maxEntries: 3, maxFileBytes: 1000, maxTotalBytes: 1002 } })).resolves.toBeTruthy();
  });

  it('warns about symlinks that point outside the root and never follows them', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[{ name: 'etc/os-release', type: 'symlink', linkname: '../../../../etc/os-release' }]]);
    const r = await scanLayout(dir);
    expect(r.os).toBeNull();
    expect(r.warnings.join('\n')).toMatch(/points outside the image root/);
  });

  it('ignores device files', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[{ name: 'dev/null', type: 'character-device' }, osRelease]]);
    expect((await scanLayout(dir)).os?.family).toBe('alpine');
  });

  it('a malformed package database is a warning and the scan goes on', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease, { name: 'var/lib/dpkg/status', content: 'Package: half\n\nStatus: install ok installed\nVersion: 1\n' }]]);
    const r = await scanLayout(dir);
    expect(r.packages).toEqual([]);
    expect(r.warnings.join('\n')).toMatch(/var\/lib\/dpkg\/status: a stanza without Package or Version/);
  });
});

describe('databases and lockfiles that list absurd amounts', () => {
  it('keeps the first packages of a status file listing more than any real one, with one warning', async () => {
    const dir = newDir();
    const count = MAX_PACKAGES_PER_FILE + 5;
    const status = Array.from({ length: count }, (_, i) => `Package: p${i}\nStatus: install ok installed\nVersion: 1\n`).join('\n');
    await writeOciLayout(dir, [[osRelease, { name: 'var/lib/dpkg/status', content: status }]]);
    const r = await scanLayout(dir);
    expect(r.packages).toHaveLength(MAX_PACKAGES_PER_FILE);
    expect(r.warnings).toEqual([`var/lib/dpkg/status: dpkg found ${MAX_PACKAGES_PER_FILE + 1} packages, more than any real file lists; kept the first ${MAX_PACKAGES_PER_FILE}`]);
  });

  it('says a few times that records are broken, not once per record', async () => {
    const dir = newDir();
    const status = Array.from({ length: 500 }, (_, i) => `Package: broken${i}\n`).join('\n');
    await writeOciLayout(dir, [[osRelease, { name: 'var/lib/dpkg/status', content: status }]]);
    const r = await scanLayout(dir);
    expect(r.warnings).toHaveLength(MAX_WARNINGS_PER_FILE + 1);
    expect(r.warnings.at(-1)).toBe(`var/lib/dpkg/status: ${500 - MAX_WARNINGS_PER_FILE} more warnings like these`);
  });

  it('does not follow a v1 lockfile nested deeper than any real tree', async () => {
    const dir = newDir();
    let deps: Record<string, unknown> = {};
    for (let i = 0; i < 300; i++) deps = { [`pkg-${'x'.repeat(200)}-${i}`]: { version: '1.0.0', dependencies: deps } };
    const lock = JSON.stringify({ name: 'app', lockfileVersion: 1, dependencies: deps });
    await writeOciLayout(dir, [[osRelease, { name: 'app/package-lock.json', content: lock }]]);
    const r = await scanLayout(dir);
    expect(r.packages.filter((p) => p.type === 'npm')).toHaveLength(100);
    expect(r.warnings).toContain('app/package-lock.json: dependencies nested deeper than 100 levels were not read');
  });
});

describe('layer cache', () => {
  it('serves a second scan from the cache without reading the layer, and an upgraded analyser invalidates it', async () => {
    const dir = newDir();
    const built = await writeOciLayout(dir, [[osRelease, { name: 'lib/apk/db/installed', content: apkDb(['zlib', '1.3.1-r1']) }]]);
    const cacheDir = join(tmp, 'cache');
    let calls = 0;
    // apk's database is read as it arrives (stream); analyse() is there for a whole file.
    const counting = (version: number): Analyser => ({
      ...apkAnalyser,
      version,
      stream: (p, i) => (calls++, apkAnalyser.stream!(p, i)),
      analyse: (f, c) => (calls++, apkAnalyser.analyse(f, c)),
    });
    const analysers = [osReleaseAnalyser, dpkgAnalyser, counting(1)];
    await scanLayout(dir, { cacheDir, analysers });
    expect(calls).toBe(1);
    // The layer blob disappears: only a cached result can answer now.
    unlinkSync(join(dir, 'blobs', 'sha256', built.layerDigests[0]!.slice(7)));
    const warm = await scanLayout(dir, { cacheDir, analysers });
    expect(calls).toBe(1);
    expect(warm.packages.map((p) => p.name)).toEqual(['zlib']);
    expect((await errorOf(scanLayout(dir, { cacheDir: null, analysers }))).code).toBe('BLOB_UNKNOWN');
    expect((await errorOf(scanLayout(dir, { cacheDir, analysers: [osReleaseAnalyser, counting(2)] }))).code).toBe('BLOB_UNKNOWN');
  });
});

describe('a layer cache that cannot be written', () => {
  it('scans all the same and says once that the cache was not written', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [osRelease, { name: 'lib/apk/db/installed', content: apkDb(['zlib', '1.3.1-r1']) }],
      [{ name: 'etc/motd', content: 'hello' }],
    ]);
    // A cache folder inside a regular file: every write fails (ENOTDIR), as a full disk's would.
    const blocker = join(tmp, 'cache-is-a-file');
    writeFileSync(blocker, 'not a folder');
    const r = await scanLayout(dir, { cacheDir: join(blocker, 'cache') });
    expect(r.packages.map((p) => p.name)).toEqual(['zlib']);
    const notes = r.warnings.filter((w) => w.startsWith('layer cache '));
    expect(notes).toEqual(['layer cache not written (ENOTDIR): the next scan analyses these layers again']);
  });
});

describe('limits and the layer cache', () => {
  it('a cached layer is held to the limits as a read one is: the cache never changes the answer', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[{ name: 'a', content: 'x'.repeat(1000) }, { name: 'b', content: 'y' }, { name: 'c', content: 'z' }]]);
    const cacheDir = join(tmp, 'cache-limits');
    await scanLayout(dir, { cacheDir });
    for (const limits of [{ maxEntries: 2 }, { maxFileBytes: 999 }, { maxTotalBytes: 1001 }]) {
      const fresh = await errorOf(scanLayout(dir, { cacheDir: null, limits }));
      const cached = await errorOf(scanLayout(dir, { cacheDir, limits }));
      expect(fresh.code, JSON.stringify(limits)).toBe('LIMIT_EXCEEDED');
      expect(cached.code, JSON.stringify(limits)).toBe('LIMIT_EXCEEDED');
    }
    expect((await errorOf(scanLayout(dir, { cacheDir, limits: { maxFileBytes: 999 } }))).message).toMatch(/a file is 1000 bytes, over the 999-byte file limit/);
    await expect(scanLayout(dir, { cacheDir, limits: { maxEntries: 3, maxFileBytes: 1000, maxTotalBytes: 1002 } })).resolves.toBeTruthy();
  });
});

describe('dir: root filesystems', () => {
  it('analyses an unpacked folder without following symlinks out of it', async () => {
    const root = newDir();
    mkdirSync(join(root, 'lib/apk/db'), { recursive: true });
    mkdirSync(join(root, 'etc'), { recursive: true });
    writeFileSync(join(root, 'lib/apk/db/installed'), apkDb(['musl', '1.2.5-r0']));
    symlinkSync('/etc/os-release', join(root, 'etc/os-release'));
    const [r] = await analyseInput(parseImageInput(`dir:${root}`), { cacheDir: null });
    expect(r!.packages.map((p) => p.name)).toEqual(['musl']);
    expect(r!.os).toBeNull();
  });

  it.skipIf(cannotRunAsNobody() !== undefined)(`warns about a file it may not read and analyses the rest${cannotRunAsNobody() ? ` [SKIPPED: ${cannotRunAsNobody()}]` : ''}`, async () => {
    const root = newDir();
    mkdirSync(join(root, 'app/node_modules/a'), { recursive: true });
    mkdirSync(join(root, 'app/node_modules/b'), { recursive: true });
    writeFileSync(join(root, 'app/node_modules/a/package.json'), '{"name":"a","version":"1.0.0"}');
    writeFileSync(join(root, 'app/node_modules/b/package.json'), '{"name":"b","version":"2.0.0"}');
    chmodSync(join(root, 'app/node_modules/b/package.json'), 0o000);
    const r = await scanDirAsUnprivileged(root);
    expect(r.packages.map((p) => `${p.name}@${p.version}`)).toEqual(['a@1.0.0']);
    expect(r.warnings).toContain(`dir:${root}: cannot read app/node_modules/b/package.json (EACCES); not analysed`);
  });

  it.skipIf(!existsSync('/proc/self/fd'))('closes a file whose analyser fails before reading it', async () => {
    const root = newDir();
    mkdirSync(join(root, 'lib/apk/db'), { recursive: true });
    writeFileSync(join(root, 'lib/apk/db/installed'), apkDb(['musl', '1.2.5-r0']));
    const failing: Analyser = {
      ...apkAnalyser,
      stream: () => {
        throw new Error('reader failed to start');
      },
    };
    const openFiles = () => readdirSync('/proc/self/fd').length;
    const before = openFiles();
    for (let i = 0; i < 20; i++) {
      await analyseInput(parseImageInput(`dir:${root}`), { cacheDir: null, analysers: [failing] }).catch(() => undefined);
    }
    // Without an explicit close, each failed scan left its file open until garbage collection.
    expect(openFiles() - before).toBeLessThan(5);
  });

  it('counts each file once against the entry limit', async () => {
    const root = newDir();
    mkdirSync(join(root, 'd'), { recursive: true });
    for (let i = 0; i < 6; i++) writeFileSync(join(root, 'd', `f${i}`), 'x');
    // Seven entries: the folder and its six files. Counted twice, the files made it thirteen.
    const limits = (maxEntries: number) => ({ limits: { maxEntries } });
    await expect(analyseInput(parseImageInput(`dir:${root}`), { cacheDir: null, ...limits(7) })).resolves.toHaveLength(1);
    expect((await errorOf(analyseInput(parseImageInput(`dir:${root}`), { cacheDir: null, ...limits(6) }))).code).toBe('LIMIT_EXCEEDED');
  });
});

describe('progress reporting', () => {
  it('reports per-layer progress without disturbing the stream', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [osRelease, { name: 'lib/apk/db/installed', content: apkDb(['musl', '1.2.5-r0']) }],
      [{ name: 'big.bin', content: Buffer.alloc(3 << 20, 7) }],
    ]);
    const events: string[] = [];
    let lastBytes = 0;
    const r = await scanLayout(dir, {
      progress: {
        start: (i) => events.push(`start ${i}`),
        advance: (_i, bytes) => (lastBytes = Math.max(lastBytes, bytes)),
        done: (i, cached) => events.push(`done ${i} ${cached}`),
      },
    });
    expect(r.packages.map((p) => p.name)).toEqual(['musl']);
    expect(events.sort()).toEqual(['done 0 false', 'done 1 false', 'start 0', 'start 1']);
    expect(lastBytes).toBeGreaterThan(0);
  });
});

// In the container's filesystem (overlayfs, as docker, containerd and podman extract layers), a later
// entry at a path replaces what was there, whatever either one's type: a folder over a file replaces
// the file, a non-folder over a folder replaces the folder and everything below it. The same holds
// between the entries of one layer.
describe('any entry replaces what was at its path', () => {
  const DB = 'lib/apk/db/installed';
  const dbFile: TestEntry = { name: DB, content: apkDb(['musl', '1.2.5-r0'], ['busybox', '1.36.1-r29']) };
  const replacements: Array<[string, TestEntry[]]> = [
    ['a symlink', [{ name: DB, type: 'symlink', linkname: '/dev/null' }]],
    ['a hard link to an empty file', [{ name: 'empty', content: '' }, { name: DB, type: 'link', linkname: 'empty' }]],
    ['a folder', [{ name: `${DB}/`, type: 'directory' }]],
    ['a character device', [{ name: DB, type: 'character-device' }]],
    ['a fifo', [{ name: DB, type: 'fifo' }]],
  ];

  it.each(replacements)('a database file a later layer replaces with %s is gone', async (_, upper) => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease, dbFile], upper]);
    const r = await scanLayout(dir);
    expect(r.packages).toEqual([]);
    expect(r.os?.family).toBe('alpine');
  });

  it.each(replacements)('a database file a later entry of the same layer replaces with %s is gone', async (_, upper) => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease, dbFile, ...upper]]);
    const r = await scanLayout(dir);
    expect(r.packages).toEqual([]);
    expect(r.os?.family).toBe('alpine');
  });

  it('a file, then a folder at its path in the same layer: the file is gone', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease, { name: 'etc/os-release/', type: 'directory' }, { name: 'etc/os-release/x', content: 'hi' }]]);
    expect((await scanLayout(dir)).os).toBeNull();
  });

  it('a database replaced by another file in the same layer reports only the last one', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[dbFile, { name: DB, content: apkDb(['zlib', '1.3.1-r1']) }]]);
    expect((await scanLayout(dir)).packages.map((p) => p.name)).toEqual(['zlib']);
  });

  it('a folder implied by an entry below it replaces a lower file at its path', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[dbFile], [{ name: `${DB}/x`, content: 'x' }]]);
    expect((await scanLayout(dir)).packages).toEqual([]);
  });

  it('a folder over a folder merges with it: what was below stays', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [{ name: 'lib/', type: 'directory' }, { name: 'lib/apk/', type: 'directory' }, { name: 'lib/apk/db/', type: 'directory' }, dbFile],
      [{ name: 'lib/', type: 'directory' }, { name: 'lib/apk/', type: 'directory' }, { name: 'lib/apk/db/', type: 'directory' }, { name: 'lib/apk/db/lock', content: '' }],
    ]);
    expect((await scanLayout(dir)).packages.map((p) => p.name)).toEqual(['busybox', 'musl']);
  });

  it('a folder named twice in one layer, among other repeated paths, still replaces a lower file', async () => {
    const dir = newDir();
    const twice: TestEntry[] = [{ name: `${DB}/`, type: 'directory' }, { name: `${DB}/`, type: 'directory' }, { name: 'tmp/x', content: '1' }, { name: 'tmp/x', content: '2' }];
    await writeOciLayout(dir, [[dbFile], twice]);
    expect((await scanLayout(dir)).packages).toEqual([]);
    const same = newDir();
    await writeOciLayout(same, [[dbFile, ...twice, { name: `${DB}/keep`, content: '' }]]);
    expect((await scanLayout(same)).packages).toEqual([]);
  });

  const SITE = 'usr/lib/python3.12/site-packages';
  const metadata = (name: string) => `Metadata-Version: 2.1\nName: ${name}\nVersion: 1.0\n`;
  const folderReplacements: Array<[string, TestEntry]> = [
    ['a file no analyser reads', { name: `${SITE}/foo-1.0.dist-info`, content: 'not a folder' }],
    ['a symlink', { name: `${SITE}/foo-1.0.dist-info`, type: 'symlink', linkname: '/nowhere' }],
    ['a symlink above it', { name: 'usr/lib/python3.12', type: 'symlink', linkname: 'python3.11' }],
    ['a hard link', { name: `${SITE}/foo-1.0.dist-info`, type: 'link', linkname: 'etc/os-release' }],
    ['a fifo', { name: `${SITE}/foo-1.0.dist-info`, type: 'fifo' }],
  ];
  const distInfo: TestEntry[] = [
    { name: `${SITE}/foo-1.0.dist-info/`, type: 'directory' },
    { name: `${SITE}/foo-1.0.dist-info/METADATA`, content: metadata('foo') },
  ];

  it.each(folderReplacements)('a folder a later layer replaces with %s takes what was below it along', async (_, upper) => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease, ...distInfo, { name: `usr/local/lib/python3.12/site-packages/keep-1.0.dist-info/METADATA`, content: metadata('keep') }], [upper]]);
    expect((await scanLayout(dir)).packages.map((p) => p.name)).toEqual(['keep']);
  });

  it.each(folderReplacements)('a folder a later entry of the same layer replaces with %s takes what was below it along', async (_, upper) => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease, ...distInfo, { name: `usr/local/lib/python3.12/site-packages/keep-1.0.dist-info/METADATA`, content: metadata('keep') }, upper]]);
    expect((await scanLayout(dir)).packages.map((p) => p.name)).toEqual(['keep']);
  });

  it('an egg-info folder replaced by an egg-info file reports the file, not what was below the folder', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [{ name: `${SITE}/foo.egg-info/PKG-INFO`, content: metadata('foo') }],
      [{ name: `${SITE}/foo.egg-info`, content: metadata('bar') }],
    ]);
    expect((await scanLayout(dir)).packages.map((p) => p.name)).toEqual(['bar']);
  });

  it('the layer cache keeps what replaces what', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [[osRelease, dbFile, ...distInfo], [{ name: DB, type: 'symlink', linkname: '/dev/null' }, { name: `${SITE}/foo-1.0.dist-info`, type: 'fifo' }]]);
    const cacheDir = join(tmp, 'cache-replace');
    expect((await scanLayout(dir, { cacheDir })).packages).toEqual([]);
    expect((await scanLayout(dir, { cacheDir })).packages).toEqual([]);
  });

  it('a setuid file a later layer replaces with a plain file, or a symlink, is no longer reported', async () => {
    const setuid = (dir: string) => scanLayout(dir, { misconfig: true }).then((r) => r.misconfigurations!.filter((m) => /setuid/.test(m.title)).map((m) => m.message));
    const base: TestEntry[] = [{ name: 'usr/bin/su', content: 'su', mode: 0o4755 }, { name: 'usr/bin/passwd', content: 'pw', mode: 0o4755 }];
    const a = newDir();
    await writeOciLayout(a, [base]);
    expect(await setuid(a)).toEqual([expect.stringContaining('2 setuid/setgid files')]);
    const b = newDir();
    await writeOciLayout(b, [base, [{ name: 'usr/bin/su', content: 'su', mode: 0o755 }, { name: 'usr/bin/passwd', type: 'symlink', linkname: 'su' }]]);
    expect(await setuid(b)).toEqual([]);
  });

  const TOKEN = 'GITHUB_TOKEN="ghp_R8f2kQ9zLmX4vB7nT1cY6hW3pJ5sD0gA2eKq"\n';

  it('a secret in a file a later entry of the same layer replaced is still reported, as deleted', async () => {
    const dir = newDir();
    await writeOciLayout(dir, [
      [
        { name: 'app/config.env', content: TOKEN },
        { name: 'app/config.env', type: 'symlink', linkname: '/dev/null' },
        { name: 'srv/token.env', content: TOKEN },
      ],
      [{ name: 'srv', type: 'symlink', linkname: 'var/srv' }],
    ]);
    const r = await scanLayout(dir, { secrets: true });
    expect(r.secrets!.map((s) => `${s.target}#${s.layer?.index}:${s.deleted ?? false}`).sort()).toEqual([
      'app/config.env#0:true',
      'srv/token.env#0:true',
    ]);
  });
});

const DIST_ANALYSE = resolve('dist/analyse/index.js');
const DIST_OCI = resolve('dist/oci/index.js');

/** Why the unprivileged run below cannot happen here (root, but `nobody` cannot read the build). */
function cannotRunAsNobody(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const probe = spawnSync(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(DIST_ANALYSE)}, 4)`], { uid: 65534, gid: 65534, cwd: tmpdir() });
  return probe.status === 0 ? undefined : `running as root, and the user nobody cannot read ${DIST_ANALYSE} to scan without root's rights`;
}

/**
 * A dir: scan by a user whom mode 000 stops. Root reads anything, so under root (as in CI) it runs
 * in a child process as \`nobody\`, on the build in dist/ (which \`npm test\` makes first); the
 * folders are opened to others for it.
 */
async function scanDirAsUnprivileged(root: string): Promise<{ packages: { name: string; version: string }[]; warnings: string[] }> {
  if (process.getuid?.() !== 0) {
    const [r] = await analyseInput(parseImageInput(`dir:${root}`), { cacheDir: null });
    return r!;
  }
  chmodSync(tmp, 0o755);
  chmodSync(root, 0o755);
  const script =
    `const { analyseInput } = await import(${JSON.stringify(pathToFileURL(DIST_ANALYSE).href)});` +
    `const { parseImageInput } = await import(${JSON.stringify(pathToFileURL(DIST_OCI).href)});` +
    `const [r] = await analyseInput(parseImageInput(${JSON.stringify(`dir:${root}`)}), { cacheDir: null });` +
    'process.stdout.write(JSON.stringify({ packages: r.packages, warnings: r.warnings }));';
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: tmpdir() });
  if (run.status !== 0) throw new Error(`the scan as nobody failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as { packages: { name: string; version: string }[]; warnings: string[] };
}
