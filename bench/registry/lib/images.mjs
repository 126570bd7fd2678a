// Generates the benchmark images as OCI image layouts (gzip layers, OCI manifests), once: a layout
// is reused while its spec.json matches. Layer content is "random-ish": each 1 MiB chunk is 15/16
// AES-128-CTR keystream (fixed key, so every machine builds the same bytes) and 1/16 repeated text,
// so gzip has real work but the layer stays about the named size once compressed.
import { createCipheriv, createHash } from 'node:crypto';
import {
  createWriteStream,
  existsSync,
  mkdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { join } from 'node:path';
import { gzipSync, createGzip } from 'node:zlib';
import { once } from 'node:events';

const MiB = 1024 * 1024;
const MTIME = 1_700_000_000;

function octal(n, width) {
  return n.toString(8).padStart(width - 1, '0') + '\0';
}

/** A ustar header for a regular file (or a directory when `dir`). */
export function tarHeader(name, size, dir = false) {
  const h = Buffer.alloc(512, 0);
  h.write(name, 0, 100, 'utf8');
  h.write(octal(dir ? 0o755 : 0o644, 8), 100, 8, 'ascii');
  h.write(octal(0, 8), 108, 8, 'ascii');
  h.write(octal(0, 8), 116, 8, 'ascii');
  h.write(octal(size, 12), 124, 12, 'ascii');
  h.write(octal(MTIME, 12), 136, 12, 'ascii');
  h.write('        ', 148, 8, 'ascii');
  h.write(dir ? '5' : '0', 156, 1, 'ascii');
  h.write('ustar\0', 257, 6, 'ascii');
  h.write('00', 263, 2, 'ascii');
  let sum = 0;
  for (const b of h) sum += b;
  h.write(octal(sum, 7) + ' ', 148, 8, 'ascii');
  return h;
}

const pad512 = (n) => (512 - (n % 512)) % 512;

class Blobs {
  constructor(dir) {
    this.dir = join(dir, 'blobs', 'sha256');
    mkdirSync(this.dir, { recursive: true });
  }
  put(buf, mediaType) {
    const hex = createHash('sha256').update(buf).digest('hex');
    writeFileSync(join(this.dir, hex), buf);
    return { mediaType, digest: `sha256:${hex}`, size: buf.length };
  }
}

/** Streams one gzip layer of `bytes` pseudo-random content (files of up to 8 MiB) into the layout. */
async function writeLayer(blobs, seed, bytes) {
  const key = createHash('sha256').update(`portcullis-registry-bench-${seed}`).digest().subarray(0, 16);
  const cipher = createCipheriv('aes-128-ctr', key, Buffer.alloc(16, 0));
  const zero = Buffer.alloc(MiB, 0);
  const text = Buffer.alloc(MiB / 16, `layer ${seed} portcullis registry benchmark filler text\n`);
  const tmp = join(blobs.dir, `.tmp-${process.pid}-${seed}`);
  const out = createWriteStream(tmp);
  const gz = createGzip({ level: 6, chunkSize: MiB });
  const diff = createHash('sha256');
  const comp = createHash('sha256');
  let compSize = 0;
  gz.on('data', (d) => {
    comp.update(d);
    compSize += d.length;
    if (!out.write(d)) gz.pause();
  });
  out.on('drain', () => gz.resume());
  const write = async (buf) => {
    diff.update(buf);
    if (!gz.write(buf)) await once(gz, 'drain');
  };
  await write(tarHeader('data/', 0, true));
  let left = bytes;
  for (let f = 0; left > 0; f++) {
    const size = Math.min(8 * MiB, left);
    left -= size;
    await write(tarHeader(`data/f${String(f).padStart(4, '0')}.bin`, size));
    for (let done = 0; done < size;) {
      const n = Math.min(MiB, size - done);
      const chunk = Buffer.concat([cipher.update(zero.subarray(0, MiB - text.length)), text]).subarray(0, n);
      await write(chunk);
      done += n;
    }
    if (pad512(size)) await write(Buffer.alloc(pad512(size)));
  }
  await write(Buffer.alloc(1024));
  gz.end();
  await once(gz, 'end');
  out.end();
  await once(out, 'finish');
  const hex = comp.digest('hex');
  renameSync(tmp, join(blobs.dir, hex));
  return {
    descriptor: {
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      digest: `sha256:${hex}`,
      size: compSize,
    },
    diffId: `sha256:${diff.digest('hex')}`,
  };
}

function imageConfig(diffIds, label) {
  return Buffer.from(
    JSON.stringify({
      created: new Date(MTIME * 1000).toISOString(),
      architecture: 'amd64',
      os: 'linux',
      config: {
        Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
        Labels: { bench: label },
      },
      rootfs: { type: 'layers', diff_ids: diffIds },
      history: diffIds.map(() => ({
        created: new Date(MTIME * 1000).toISOString(),
        created_by: 'portcullis registry bench',
      })),
    }),
  );
}

function manifestFor(blobs, config, layers) {
  const body = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config,
      layers,
    }),
  );
  return blobs.put(body, 'application/vnd.oci.image.manifest.v1+json');
}

function finishLayout(dir, entries) {
  writeFileSync(join(dir, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  writeFileSync(join(dir, 'index.json'), JSON.stringify({ schemaVersion: 2, manifests: entries }));
}

function reuse(dir, spec) {
  const stamp = join(dir, 'spec.json');
  if (existsSync(stamp)) {
    try {
      const old = JSON.parse(readFileSync(stamp, 'utf8'));
      if (JSON.stringify(old.spec) === JSON.stringify(spec)) return old;
    } catch {
      // rebuild
    }
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  return undefined;
}

/**
 * A one-image layout with `layers` gzip layers sharing `mib` MiB of content, tag `v1`.
 * Returns { dir, tag, bytes (all blobs: layers + config + manifest), layerBytes, layers, manifestDigest, built }.
 */
export async function bigImage(root, name, mib, layers) {
  const dir = join(root, name);
  const spec = { version: 1, mib, layers };
  const old = reuse(dir, spec);
  if (old) return { ...old.info, dir, built: false };
  const blobs = new Blobs(dir);
  const descs = [];
  const diffIds = [];
  const per = Math.floor((mib * MiB) / layers);
  for (let i = 0; i < layers; i++) {
    const l = await writeLayer(
      blobs,
      `${name}-${i}`,
      i === layers - 1 ? mib * MiB - per * (layers - 1) : per,
    );
    descs.push(l.descriptor);
    diffIds.push(l.diffId);
  }
  const config = blobs.put(imageConfig(diffIds, name), 'application/vnd.oci.image.config.v1+json');
  const manifest = manifestFor(blobs, config, descs);
  finishLayout(dir, [{ ...manifest, annotations: { 'org.opencontainers.image.ref.name': 'v1' } }]);
  const layerBytes = descs.reduce((a, d) => a + d.size, 0);
  const info = {
    tag: 'v1',
    bytes: layerBytes + config.size + manifest.size,
    layerBytes,
    layers,
    manifestDigest: manifest.digest,
  };
  writeFileSync(join(dir, 'spec.json'), JSON.stringify({ spec, info }));
  return { ...info, dir, built: true };
}

/** One layout holding `count` tiny images (one ~200-byte gzip layer each), tags t000, t001, … */
export function tinyImages(root, count) {
  const dir = join(root, `tiny-${count}`);
  const spec = { version: 1, count };
  const old = reuse(dir, spec);
  if (old) return { ...old.info, dir, built: false };
  const blobs = new Blobs(dir);
  const entries = [];
  const tags = [];
  for (let i = 0; i < count; i++) {
    const tag = `t${String(i).padStart(3, '0')}`;
    const content = Buffer.from(`tiny image ${i} for the portcullis registry benchmark\n`);
    const tar = Buffer.concat([
      tarHeader('hello.txt', content.length),
      content,
      Buffer.alloc(pad512(content.length)),
      Buffer.alloc(1024),
    ]);
    const layer = blobs.put(gzipSync(tar), 'application/vnd.oci.image.layer.v1.tar+gzip');
    const diffId = `sha256:${createHash('sha256').update(tar).digest('hex')}`;
    const config = blobs.put(imageConfig([diffId], tag), 'application/vnd.oci.image.config.v1+json');
    const manifest = manifestFor(blobs, config, [layer]);
    entries.push({ ...manifest, annotations: { 'org.opencontainers.image.ref.name': tag } });
    tags.push(tag);
  }
  finishLayout(dir, entries);
  const info = { tags };
  writeFileSync(join(dir, 'spec.json'), JSON.stringify({ spec, info }));
  return { ...info, dir, built: true };
}
