/**
 * Test helper: reads regular files out of the shared OCI-archive fixture images in memory, so the
 * analyser tests can run on real binaries and jars without unpacking anything to disk.
 */
import { existsSync, readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { gunzipSync } from 'node:zlib';
import tarStream from 'tar-stream';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const FIXTURES_DIR = resolve(repoRoot, '../shared/fixtures');
export const fixturesPresent = existsSync(resolve(FIXTURES_DIR, 'images'));

export interface FixtureFile {
  path: string;
  mode: number;
  size: number;
  content: Buffer;
  layer: number;
}

/** Every regular file of a tar for which `want` is true, keyed by normalised path. */
async function readTar(tar: Buffer, want: (path: string) => boolean): Promise<Map<string, { mode: number; content: Buffer }>> {
  const out = new Map<string, { mode: number; content: Buffer }>();
  const extract = tarStream.extract();
  const done = new Promise<void>((res, rej) => {
    extract.on('finish', () => res());
    extract.on('error', rej);
  });
  extract.on('entry', (header, stream, next) => {
    const path = header.name.replace(/^(\.\/|\/)+/, '');
    const keep = header.type === 'file' && want(path);
    const chunks: Buffer[] = [];
    stream.on('data', (c: unknown) => {
      if (keep) chunks.push(c as Buffer);
    });
    stream.on('end', () => {
      if (keep) out.set(path, { mode: header.mode ?? 0, content: Buffer.concat(chunks) });
      next();
    });
    stream.resume();
  });
  Readable.from([tar]).pipe(extract);
  await done;
  return out;
}

/** Regular files from every layer of a single-platform OCI-archive image, in layer order. */
export async function readImageFiles(image: string, want: (path: string) => boolean): Promise<FixtureFile[]> {
  const outer = await readTar(readFileSync(resolve(FIXTURES_DIR, 'images', image)), () => true);
  const blob = (digest: string): Buffer => {
    const b = outer.get(`blobs/${digest.replace(':', '/')}`);
    if (!b) throw new Error(`blob ${digest} missing from ${image}`);
    return b.content;
  };
  const indexJson = outer.get('index.json');
  if (!indexJson) throw new Error(`${image} has no index.json`);
  const index = JSON.parse(indexJson.content.toString()) as { manifests: { digest: string }[] };
  const manifest = JSON.parse(blob(index.manifests[0]!.digest).toString()) as { layers: { digest: string }[] };
  const files: FixtureFile[] = [];
  for (const [i, layer] of manifest.layers.entries()) {
    const entries = await readTar(gunzipSync(blob(layer.digest)), want);
    for (const [path, f] of entries) files.push({ path, mode: f.mode, size: f.content.length, content: f.content, layer: i });
  }
  return files;
}
