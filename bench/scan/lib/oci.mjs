// OCI archive helpers for the benchmark: unpack an oci-archive tar into a folder (done outside
// any timed region) and list the layer blobs of the image a scan would read.
import { createReadStream, createWriteStream } from 'node:fs';
import { mkdir, readFile, rm } from 'node:fs/promises';
import { dirname, join, normalize, isAbsolute } from 'node:path';
import { pipeline } from 'node:stream/promises';
import tar from 'tar-stream';

/** Unpacks an oci-archive tar (regular files and folders only) into `dest`, replacing it. */
export async function extractArchive(archive, dest) {
  await rm(dest, { recursive: true, force: true });
  await mkdir(dest, { recursive: true });
  const extract = tar.extract();
  const done = (async () => {
    for await (const entry of extract) {
      const name = normalize(entry.header.name);
      if (isAbsolute(name) || name.startsWith('..'))
        throw new Error(`${archive}: unsafe path ${entry.header.name}`);
      const target = join(dest, name);
      if (entry.header.type === 'file') {
        await mkdir(dirname(target), { recursive: true });
        await pipeline(entry, createWriteStream(target));
      } else {
        if (entry.header.type === 'directory') await mkdir(target, { recursive: true });
        entry.resume();
      }
    }
  })();
  await pipeline(createReadStream(archive, { highWaterMark: 1 << 20 }), extract);
  await done;
}

async function readJson(layoutDir, digest) {
  const [alg, hex] = digest.split(':');
  return JSON.parse(await readFile(join(layoutDir, 'blobs', alg, hex), 'utf8'));
}

const INDEX_TYPES = new Set([
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
]);

/**
 * The layer descriptors of the image a default scan reads: index.json -> (nested indexes) ->
 * manifest. Where an index lists platforms, linux/amd64 is taken, as the scanner does by default;
 * otherwise the first manifest.
 */
export async function imageLayers(layoutDir) {
  const root = JSON.parse(await readFile(join(layoutDir, 'index.json'), 'utf8'));
  let descs = root.manifests;
  for (let depth = 0; depth < 8; depth++) {
    const pick =
      descs.find((d) => d.platform?.os === 'linux' && d.platform?.architecture === 'amd64') ?? descs[0];
    if (!pick) throw new Error(`${layoutDir}: empty index`);
    const doc = await readJson(layoutDir, pick.digest);
    const type = doc.mediaType ?? pick.mediaType;
    if (INDEX_TYPES.has(type) || (Array.isArray(doc.manifests) && !doc.layers)) {
      descs = doc.manifests;
      continue;
    }
    return doc.layers.map((l) => ({
      digest: l.digest,
      size: l.size,
      path: join(layoutDir, 'blobs', ...l.digest.split(':')),
    }));
  }
  throw new Error(`${layoutDir}: indexes nested too deep`);
}
