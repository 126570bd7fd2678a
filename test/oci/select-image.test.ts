import { createHash } from 'node:crypto';
import { cpSync, mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyseInput } from '../../src/analyse/index.js';
import { splitArchivePath } from '../../src/oci/archive-path.js';
import { parseImageInput } from '../../src/oci/index.js';
import { repoTagMatches } from '../../src/oci/sources/docker-archive.js';
import { HAVE_ZSTD, compress, tarOf, writeOciLayout } from '../helpers/image-builder.js';

// An archive or layout that holds several images: each can be picked by name, by docker NAME:TAG
// (with or without Docker Hub's implied prefix) or by position (@N, as skopeo writes it), which is
// the only way to reach an image saved without a tag.
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-select-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

const OS = {
  alpine: 'ID=alpine\nVERSION_ID=3.20.3\n',
  debian: 'ID=debian\nVERSION_ID=12\n',
  wolfi: 'ID=wolfi\nVERSION_ID=20230201\n',
};

/** A legacy `docker save` archive: manifest.json, one config and one uncompressed layer per image. */
async function writeDockerArchive(
  file: string,
  images: { os: string; repoTags: string[] | null }[],
): Promise<void> {
  const entries = [];
  const manifest = [];
  for (const [i, image] of images.entries()) {
    const layer = await tarOf([{ name: 'etc/os-release', content: image.os }]);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: [`sha256:${sha(layer)}`] },
      }),
    );
    const configName = `${sha(config)}.json`;
    entries.push({ name: configName, content: config }, { name: `layer${i}/layer.tar`, content: layer });
    manifest.push({ Config: configName, RepoTags: image.repoTags, Layers: [`layer${i}/layer.tar`] });
  }
  entries.push({ name: 'manifest.json', content: JSON.stringify(manifest) });
  writeFileSync(file, await tarOf(entries));
}

const saved = join(tmp, 'saved.tar');
const colonDir = join(tmp, 'with:colon');
const savedInColonDir = join(colonDir, 'saved.tar');
const layout = join(tmp, 'layout');

beforeAll(async () => {
  await writeDockerArchive(saved, [
    { os: OS.alpine, repoTags: ['alpine:3.20', 'registry.example/team/base:1'] },
    { os: OS.debian, repoTags: null },
    { os: OS.wolfi, repoTags: ['cgr.dev/chainguard/wolfi-base:latest'] },
  ]);
  mkdirSync(colonDir);
  await writeDockerArchive(savedInColonDir, [{ os: OS.alpine, repoTags: ['alpine:3.20'] }]);
  // Two images in one layout folder: write each, then merge the second's index entry into the first's.
  await writeOciLayout(layout, [[{ name: 'etc/os-release', content: OS.alpine }]], { tag: 'one' });
  const second = join(tmp, 'layout2');
  await writeOciLayout(second, [[{ name: 'etc/os-release', content: OS.debian }]], { tag: 'two' });
  cpSync(join(second, 'blobs'), join(layout, 'blobs'), { recursive: true });
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  index.manifests.push(JSON.parse(readFileSync(join(second, 'index.json'), 'utf8')).manifests[0]);
  writeFileSync(join(layout, 'index.json'), JSON.stringify(index));
});

async function osOf(text: string): Promise<string | undefined> {
  const results = await analyseInput(parseImageInput(text), { cacheDir: null });
  expect(results).toHaveLength(1);
  return results[0]!.os?.family;
}

describe('choosing one image of several', () => {
  it('a docker-archive: by tag, by NAME:TAG with and without docker.io, and by @N', async () => {
    expect(await osOf(`docker-archive:${saved}:alpine:3.20`)).toBe('alpine');
    expect(await osOf(`docker-archive:${saved}:docker.io/library/alpine:3.20`)).toBe('alpine');
    expect(await osOf(`docker-archive:${saved}:registry.example/team/base:1`)).toBe('alpine');
    expect(await osOf(`docker-archive:${saved}:latest`)).toBe('wolfi');
    expect(await osOf(`docker-archive:${saved}:@0`)).toBe('alpine');
    expect(await osOf(`docker-archive:${saved}:@1`)).toBe('debian');
    expect(await osOf(`docker-archive:${saved}:@2`)).toBe('wolfi');
  });

  it('an OCI layout: by its ref name and by @N', async () => {
    expect(await osOf(`oci:${layout}:two`)).toBe('debian');
    expect(await osOf(`oci:${layout}:@0`)).toBe('alpine');
    expect(await osOf(`oci:${layout}:@1`)).toBe('debian');
  });

  it('without a choice, or with one that matches nothing, says what can be typed', async () => {
    await expect(osOf(`docker-archive:${saved}`)).rejects.toThrow(
      `docker-archive:${saved}: holds 3 images; name one with :TAG or :@N (@0 alpine:3.20 registry.example/team/base:1, @1 untagged, @2 cgr.dev/chainguard/wolfi-base:latest)`,
    );
    await expect(osOf(`docker-archive:${saved}:@3`)).rejects.toThrow(
      `docker-archive:${saved}:@3: no image @3: it holds 3 (@0 `,
    );
    await expect(osOf(`docker-archive:${saved}:busybox:1`)).rejects.toThrow(
      `docker-archive:${saved}:busybox:1: no image tagged "busybox:1" (@0 `,
    );
    await expect(osOf(`oci:${layout}`)).rejects.toThrow(
      `oci:${layout}: holds 2 images; name one with :TAG or :@N (@0 one, @1 two)`,
    );
    // A bare tag that fits two images is refused, not resolved to the first.
    const twins = join(tmp, 'twins.tar');
    await writeDockerArchive(twins, [
      { os: OS.alpine, repoTags: ['node-app:1.0.0'] },
      { os: OS.debian, repoTags: ['go-app:1.0.0'] },
    ]);
    await expect(osOf(`docker-archive:${twins}:1.0.0`)).rejects.toThrow(
      `docker-archive:${twins}:1.0.0: "1.0.0" names 2 images (@0 node-app:1.0.0, @1 go-app:1.0.0); write the whole NAME:TAG or :@N`,
    );
    expect(await osOf(`docker-archive:${twins}:go-app:1.0.0`)).toBe('debian');
  });

  it('a path that holds a colon still works, alone or with a NAME:TAG after it', async () => {
    expect(await osOf(`docker-archive:${savedInColonDir}`)).toBe('alpine');
    expect(await osOf(`docker-archive:${savedInColonDir}:alpine:3.20`)).toBe('alpine');
  });
});

describe('a path without a transport', () => {
  it('an archive file (docker save or OCI) and an OCI layout folder are read as such', async () => {
    expect(parseImageInput(saved)).toMatchObject({ kind: 'docker-archive', path: saved });
    expect(await osOf(savedInColonDir)).toBe('alpine');
    expect(parseImageInput(layout)).toMatchObject({ kind: 'oci', path: layout });
    // An OCI layout packed in a tar, given bare, is told apart by its index.json.
    const ociTar = join(tmp, 'layout.tar');
    const single = join(tmp, 'single-layout');
    await writeOciLayout(single, [[{ name: 'etc/os-release', content: OS.wolfi }]]);
    const entries = [];
    for (const name of ['oci-layout', 'index.json'])
      entries.push({ name, content: readFileSync(join(single, name)) });
    for (const blob of readdirSync(join(single, 'blobs', 'sha256'))) {
      entries.push({
        name: `blobs/sha256/${blob}`,
        content: readFileSync(join(single, 'blobs', 'sha256', blob)),
      });
    }
    writeFileSync(ociTar, await tarOf(entries));
    expect(await osOf(ociTar)).toBe('wolfi');
  });

  it('what is not there stays a registry reference; a plain folder and a tar of neither kind get a hint', async () => {
    expect(parseImageInput('registry.example/team/app:1')).toMatchObject({ kind: 'registry' });
    // Text that does not look like a path stays a reference even when such a file or folder exists.
    const cwd = process.cwd();
    process.chdir(tmp);
    try {
      expect(parseImageInput('with:colon')).toMatchObject({ kind: 'registry' });
      expect(parseImageInput('./saved.tar')).toMatchObject({ kind: 'docker-archive', path: './saved.tar' });
      expect(parseImageInput('saved.tar')).toMatchObject({ kind: 'docker-archive', path: 'saved.tar' });
    } finally {
      process.chdir(cwd);
    }
    expect(() => parseImageInput(colonDir)).toThrow(
      `${colonDir} is a folder but not an OCI image layout (no index.json); to scan it as a root filesystem, write dir:${colonDir}`,
    );
    const neither = join(tmp, 'neither.tar');
    writeFileSync(neither, await tarOf([{ name: 'hello.txt', content: 'hi' }]));
    await expect(osOf(neither)).rejects.toThrow(
      `${neither}: holds neither manifest.json (docker save output) nor index.json (an OCI image layout)`,
    );
    await expect(osOf(`oci-archive:${join(tmp, 'nope.tar')}`)).rejects.toThrow(
      `${join(tmp, 'nope.tar')} does not exist`,
    );
    // Without a transport too: text starting with / or ./ is no registry reference.
    expect(() => parseImageInput(join(tmp, 'nope.tar'))).toThrow(`${join(tmp, 'nope.tar')} does not exist (a file or folder was expected`);
    expect(() => parseImageInput('./nope-folder')).toThrow('./nope-folder does not exist');
  });
});

describe('docker-archive digests', () => {
  it("an archive with an OCI layout beside manifest.json (Docker 25+) reports the layout's manifest digest; a legacy one its own", async () => {
    const dir = join(tmp, 'docker25');
    const built = await writeOciLayout(dir, [[{ name: 'etc/os-release', content: OS.alpine }]]);
    const manifest = JSON.parse(
      readFileSync(join(dir, 'blobs', 'sha256', built.manifestDigest.slice(7)), 'utf8'),
    );
    const entries = [];
    for (const name of ['oci-layout', 'index.json'])
      entries.push({ name, content: readFileSync(join(dir, name)) });
    for (const blob of readdirSync(join(dir, 'blobs', 'sha256')))
      entries.push({
        name: `blobs/sha256/${blob}`,
        content: readFileSync(join(dir, 'blobs', 'sha256', blob)),
      });
    entries.push({
      name: 'manifest.json',
      content: JSON.stringify([
        {
          Config: `blobs/sha256/${manifest.config.digest.slice(7)}`,
          RepoTags: ['alpine:3.20'],
          Layers: manifest.layers.map((l: { digest: string }) => `blobs/sha256/${l.digest.slice(7)}`),
        },
      ]),
    });
    const file = join(tmp, 'docker25.tar');
    writeFileSync(file, await tarOf(entries));
    const [r] = await analyseInput(parseImageInput(`docker-archive:${file}`), { cacheDir: null });
    expect(r!.image.manifestDigest).toBe(built.manifestDigest);
    expect(r!.os?.family).toBe('alpine');
    // A legacy archive has no such manifest: the synthesised one is named by its own digest.
    const [legacy] = await analyseInput(parseImageInput(`docker-archive:${saved}:@0`), { cacheDir: null });
    expect(legacy!.image.manifestDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
  });
});

describe('compressed archives (docker save | gzip)', () => {
  it('a gzip or zstd archive is read through a private copy that is gone after the scan', async () => {
    // Not there yet, as the cache's scratch folder is before a first scan.
    const scratchRoot = join(tmp, 'scratch', 'not-yet');
    const gz = join(tmp, 'saved.tar.gz');
    writeFileSync(gz, gzipSync(readFileSync(saved)));
    const scan = async (text: string) =>
      (await analyseInput(parseImageInput(text), { cacheDir: null, scratchRoot }))[0]!.os?.family;
    expect(await scan(`docker-archive:${gz}:@1`)).toBe('debian');
    expect(await scan(`docker-archive:${gz}:alpine:3.20`)).toBe('alpine');
    if (HAVE_ZSTD) {
      const zst = join(tmp, 'saved.tar.zst');
      writeFileSync(zst, compress(readFileSync(saved), 'zstd'));
      expect(await scan(`docker-archive:${zst}:@2`)).toBe('wolfi');
    }
    expect(readdirSync(scratchRoot)).toEqual([]);
  });

  it('corrupt data and a decompression bomb are one clear error each, and leave nothing behind', async () => {
    const scratchRoot = join(tmp, 'scratch-bad');
    mkdirSync(scratchRoot);
    const whole = gzipSync(readFileSync(saved));
    const cut = join(tmp, 'cut.tar.gz');
    writeFileSync(cut, whole.subarray(0, whole.length - 20));
    await expect(
      analyseInput(parseImageInput(`docker-archive:${cut}`), { cacheDir: null, scratchRoot }),
    ).rejects.toThrow(
      new RegExp(`^docker-archive:${cut.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: corrupt gzip data`),
    );
    const bomb = join(tmp, 'bomb.tar.gz');
    writeFileSync(bomb, gzipSync(Buffer.alloc(4 * 1024 * 1024)));
    await expect(
      analyseInput(parseImageInput(`docker-archive:${bomb}`), {
        cacheDir: null,
        scratchRoot,
        limits: { maxTotalBytes: 1024 * 1024 },
      }),
    ).rejects.toThrow(
      `docker-archive:${bomb}: decompresses to more than 1048576 bytes (raise --max-total-bytes if this is genuine)`,
    );
    expect(readdirSync(scratchRoot)).toEqual([]);
  });
});

describe('splitArchivePath', () => {
  const exists = (p: string) => ['/a/x.tar', '/a:b/y.tar'].includes(p);
  it('takes the longest prefix that exists as the path', () => {
    expect(splitArchivePath('/a/x.tar', exists)).toEqual({ path: '/a/x.tar' });
    expect(splitArchivePath('/a/x.tar:v1', exists)).toEqual({ path: '/a/x.tar', name: 'v1' });
    expect(splitArchivePath('/a/x.tar:alpine:3.20', exists)).toEqual({
      path: '/a/x.tar',
      name: 'alpine:3.20',
    });
    expect(splitArchivePath('/a/x.tar:@2', exists)).toEqual({ path: '/a/x.tar', name: '@2' });
    expect(splitArchivePath('/a:b/y.tar:v1', exists)).toEqual({ path: '/a:b/y.tar', name: 'v1' });
    expect(splitArchivePath('/nope.tar:v1', exists)).toEqual({ path: '/nope.tar:v1' });
  });
});

describe('repoTagMatches', () => {
  it('matches the whole name, the tag alone, and Docker Hub names with or without their prefix', () => {
    expect(repoTagMatches('alpine:3.20', 'alpine:3.20')).toBe(true);
    expect(repoTagMatches('alpine:3.20', '3.20')).toBe(true);
    expect(repoTagMatches('alpine:3.20', 'docker.io/library/alpine:3.20')).toBe(true);
    expect(repoTagMatches('docker.io/library/alpine:3.20', 'alpine:3.20')).toBe(true);
    expect(repoTagMatches('team/app:1', 'docker.io/team/app:1')).toBe(true);
    // skopeo and docker accept the library/ form too: it is the same Docker Hub image.
    expect(repoTagMatches('docker.io/library/alpine:3.20', 'library/alpine:3.20')).toBe(true);
    expect(repoTagMatches('alpine:3.20', 'library/alpine:3.20')).toBe(true);
    expect(repoTagMatches('library/alpine:3.20', 'docker.io/alpine:3.20')).toBe(true);
    expect(repoTagMatches('docker.io/library/alpine:3.20', 'index.docker.io/library/alpine:3.20')).toBe(true);
    expect(repoTagMatches('registry.example/library/alpine:3.20', 'alpine:3.20')).toBe(false);
    expect(repoTagMatches('docker.io/library/alpine:3.20', 'library/busybox:3.20')).toBe(false);
    expect(repoTagMatches('alpine:3.20', 'alpine:3.2')).toBe(false);
    expect(repoTagMatches('myalpine:3.20', 'alpine:3.20')).toBe(false);
    expect(repoTagMatches('registry.example/alpine:3.20', 'alpine:3.20')).toBe(false);
  });
});
