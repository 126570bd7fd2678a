import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { pack } from 'tar-stream';

/** One tar entry of a test layer. */
export interface TestEntry {
  name: string;
  content?: string | Buffer;
  type?: 'file' | 'directory' | 'symlink' | 'link' | 'character-device' | 'fifo';
  linkname?: string;
  mode?: number;
  /** Fixed when a test needs the same layer bytes from two builds; otherwise the time of packing. */
  mtime?: Date;
}

export async function tarOf(entries: TestEntry[]): Promise<Buffer> {
  const p = pack();
  const chunks: Buffer[] = [];
  p.on('data', (c) => chunks.push(c as Buffer));
  const done = new Promise<void>((resolve, reject) => {
    p.on('end', () => resolve());
    p.on('error', reject);
  });
  for (const e of entries) {
    const type = e.type ?? 'file';
    const body = e.content === undefined ? undefined : Buffer.isBuffer(e.content) ? e.content : Buffer.from(e.content);
    await new Promise<void>((resolve, reject) => {
      p.entry(
        { name: e.name, type, linkname: e.linkname, mode: e.mode ?? (type === 'directory' ? 0o755 : 0o644), size: body?.length ?? 0, ...(e.mtime ? { mtime: e.mtime } : {}) },
        type === 'file' ? (body ?? Buffer.alloc(0)) : Buffer.alloc(0),
        (err) => (err ? reject(err) : resolve()),
      );
    });
  }
  p.finalize();
  await done;
  return Buffer.concat(chunks);
}

export type Compression = 'gzip' | 'zstd' | 'none';

export const HAVE_ZSTD = spawnSync('zstd', ['--version']).status === 0;

export function compress(tar: Buffer, how: Compression): Buffer {
  if (how === 'gzip') return gzipSync(tar);
  if (how === 'zstd') {
    const r = spawnSync('zstd', ['-q', '-c', '-'], { input: tar, maxBuffer: 1 << 30 });
    if (r.status !== 0) throw new Error(`zstd failed: ${r.stderr.toString()}`);
    return r.stdout;
  }
  return tar;
}

const sha = (b: Buffer | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface BuiltImage {
  manifestDigest: string;
  layerDigests: string[];
}

/**
 * Writes an OCI image layout folder with the given layers. `mutate` may tamper with blobs before
 * they are written (for negative tests).
 */
export async function writeOciLayout(
  dir: string,
  layers: TestEntry[][],
  opts: {
    compression?: Compression;
    tag?: string;
    config?: Record<string, unknown>;
    history?: Array<Record<string, unknown>>;
    corruptLayer?: (b: Buffer) => Buffer;
  } = {},
): Promise<BuiltImage> {
  const how = opts.compression ?? 'gzip';
  mkdirSync(join(dir, 'blobs', 'sha256'), { recursive: true });
  const put = (b: Buffer) => {
    const d = sha(b);
    writeFileSync(join(dir, 'blobs', 'sha256', d.slice(7)), b);
    return d;
  };
  const layerDescs = [];
  const diffIds = [];
  for (const entries of layers) {
    const tar = await tarOf(entries);
    diffIds.push(sha(tar));
    const blob = compress(tar, how);
    const digest = sha(blob);
    writeFileSync(join(dir, 'blobs', 'sha256', digest.slice(7)), opts.corruptLayer ? opts.corruptLayer(blob) : blob);
    layerDescs.push({
      mediaType: `application/vnd.oci.image.layer.v1.tar${how === 'none' ? '' : how === 'gzip' ? '+gzip' : '+zstd'}`,
      digest,
      size: blob.length,
    });
  }
  const config = Buffer.from(
    JSON.stringify({
      architecture: 'amd64',
      os: 'linux',
      config: opts.config ?? {},
      ...(opts.history ? { history: opts.history } : {}),
      rootfs: { type: 'layers', diff_ids: diffIds },
    }),
  );
  const configDigest = put(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
      layers: layerDescs,
    }),
  );
  const manifestDigest = put(manifest);
  writeFileSync(join(dir, 'oci-layout'), JSON.stringify({ imageLayoutVersion: '1.0.0' }));
  writeFileSync(
    join(dir, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          digest: manifestDigest,
          size: manifest.length,
          annotations: { 'org.opencontainers.image.ref.name': opts.tag ?? 'test' },
        },
      ],
    }),
  );
  return { manifestDigest, layerDigests: layerDescs.map((l) => l.digest) };
}
