// Builds a deterministic ~1 GiB (uncompressed) single-layer OCI image for the benchmark:
// an Alpine-like base (os-release, apk installed db with a few real entries and the files they
// list), a few large files of mostly pseudo-random bytes, and many small text-like files.
// Content comes from AES-128-CTR over zeros with a fixed key, so every machine builds the same
// bytes (the digests depend on zlib's output too, so they can differ between zlib builds).
// Output: DIR/layout (OCI image layout folder) and DIR/large-1g.tar (the same, as an oci-archive).
import { createCipheriv, createHash } from 'node:crypto';
import { createReadStream, createWriteStream, existsSync } from 'node:fs';
import { mkdir, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { once } from 'node:events';
import { createGzip } from 'node:zlib';
import tar from 'tar-stream';

const MiB = 1 << 20;
const GENERATOR_VERSION = 1;

export const LARGE_SPEC = {
  version: GENERATOR_VERSION,
  bigFiles: 4,
  bigFileBytes: 192 * MiB, // 768 MiB in large files
  bigRandomShare: 0.75, // of each 1 MiB chunk: 768 KiB pseudo-random, 256 KiB repeated text
  smallFiles: 32_768,
  smallBytesTotal: 256 * MiB, // sizes vary from 512 B to ~15.5 KiB, 8 KiB on average
  gzipLevel: 6,
};

class Prng {
  constructor(seed) {
    const key = createHash('sha256').update(`portcullis-bench-${seed}`).digest();
    this.cipher = createCipheriv('aes-128-ctr', key.subarray(0, 16), key.subarray(16, 32));
  }
  bytes(n) {
    return this.cipher.update(Buffer.alloc(n));
  }
}

const TEXT_ALPHABET = Buffer.from('etaoinshrdlcumwfgypbvkjxqz   \n.,');

/** Text-like bytes (about 5 bits of entropy per byte), so gzip finds something to do. */
function textBytes(prng, n) {
  const b = prng.bytes(n);
  for (let i = 0; i < n; i++) b[i] = TEXT_ALPHABET[b[i] & 31];
  return b;
}

const APK_DB = `C:Q1u1PqJ4Mfs5AbuDkvt1sKuMVl3Yw=
P:musl
V:1.2.5-r0
A:x86_64
S:411571
I:649216
T:the musl c library (libc) implementation
U:https://musl.libc.org/
L:MIT
o:musl
m:Natanael Copa <ncopa@alpinelinux.org>
t:1712683421
c:0cd3bfc5ed1f6ea8d5d2e5d6b08a3b1c5d8d1b82
p:so:libc.musl-x86_64.so.1=1
F:lib
R:ld-musl-x86_64.so.1
a:0:0:755
Z:Q1+2rZ3dRbVC6YiCLzzZ7s2VQk3Sg=
R:libc.musl-x86_64.so.1
a:0:0:777
Z:Q17yJ3JFNypA4mxhJJr0ou6CzsJVI=

C:Q1yl7Ci4IYX9g3+X5VfAVtPJLbGoM=
P:zlib
V:1.3.1-r1
A:x86_64
S:53578
I:110592
T:A compression/decompression Library
U:https://zlib.net/
L:Zlib
o:zlib
m:Natanael Copa <ncopa@alpinelinux.org>
t:1714479497
c:0e8c4c1c2a9d6f36b0a3e55d62cdf0a3bb7a12f1
D:so:libc.musl-x86_64.so.1
p:so:libz.so.1=1.3.1
F:lib
R:libz.so.1
a:0:0:777
Z:Q1bOHF3t6rTeC5mE0S0I1DQ1bB1i0=
R:libz.so.1.3.1
a:0:0:755
Z:Q1t3kSA2cjrXzYJf7lhPZw4ZtCFRk=

C:Q1L2hYFL3q1cD0Zy8dQfM9eRr+N+4=
P:busybox
V:1.36.1-r29
A:x86_64
S:507831
I:955392
T:Size optimized toolbox of many common UNIX utilities
U:https://busybox.net/
L:GPL-2.0-only
o:busybox
m:Sören Tempel <soeren+alpine@soeren-tempel.net>
t:1716291633
c:1a8e8d0a2b6e0c5c8f1e0bb6f4a0b7f1f7d2e4c3
D:so:libc.musl-x86_64.so.1
p:/bin/sh cmd:busybox=1.36.1-r29 cmd:sh=1.36.1-r29
F:bin
R:busybox
a:0:0:755
Z:Q1WUwBY0eZGkzl4mzDW3qzp6wvqxk=
R:sh
a:0:0:777
Z:Q1pcfTfDNEbNKQc2s1tia7da05M8Q=

C:Q1pvqWtKxPj8Y1hbWOVwoQ3SLIEpA=
P:ca-certificates-bundle
V:20240705-r0
A:x86_64
S:127133
I:233472
T:Pre generated bundle of Mozilla certificates
U:https://www.mozilla.org/en-US/about/governance/policies/security-group/certs/
L:MPL-2.0 AND MIT
o:ca-certificates
m:Natanael Copa <ncopa@alpinelinux.org>
t:1720436839
c:8e2b2a4e2d0e5d9e3d7d0e0f1c4c3b8f2a6a9f5e
p:ca-certificates-cacert=20240705-r0
F:etc
F:etc/ssl
F:etc/ssl/certs
R:ca-certificates.crt
a:0:0:644
Z:Q1ZlJwFzm7MLbsnNtlQWVkjGm37lk=

`;

const OS_RELEASE = `NAME="Alpine Linux"
ID=alpine
VERSION_ID=3.20.3
PRETTY_NAME="Alpine Linux v3.20"
HOME_URL="https://alpinelinux.org/"
BUG_REPORT_URL="https://gitlab.alpinelinux.org/alpine/aports/-/issues"
`;

/** Feeds bytes through while hashing them. */
function hashing(hash, counter) {
  return new Transform({
    highWaterMark: MiB,
    transform(chunk, _enc, cb) {
      hash.update(chunk);
      counter.bytes += chunk.length;
      cb(null, chunk);
    },
  });
}

async function writeEntry(pack, header, producer) {
  const entry = pack.entry({ mode: 0o644, mtime: new Date(0), uid: 0, gid: 0, ...header });
  for (const chunk of producer()) {
    if (!entry.write(chunk)) await once(entry, 'drain');
  }
  entry.end();
  await new Promise((resolve, reject) => {
    entry.on('error', reject);
    if (entry.writableFinished) resolve();
    else entry.on('finish', resolve);
  });
}

async function buildLayer(blobTmp, spec) {
  const prng = new Prng('large-v1');
  const pack = tar.pack();
  const diffHash = createHash('sha256');
  const blobHash = createHash('sha256');
  const uncompressed = { bytes: 0 };
  const compressed = { bytes: 0 };
  const sink = pipeline(
    pack,
    hashing(diffHash, uncompressed),
    createGzip({ level: spec.gzipLevel, chunkSize: MiB }),
    hashing(blobHash, compressed),
    createWriteStream(blobTmp, { highWaterMark: MiB }),
  );

  const dirs = [
    'bin',
    'etc',
    'etc/ssl',
    'etc/ssl/certs',
    'lib',
    'lib/apk',
    'lib/apk/db',
    'data',
    'data/big',
    'data/small',
  ];
  for (const d of dirs) pack.entry({ name: `${d}/`, type: 'directory', mode: 0o755, mtime: new Date(0) });
  const small = (name, content, mode = 0o644) =>
    writeEntry(pack, { name, size: content.length, mode }, function* () {
      yield content;
    });
  await small('etc/os-release', Buffer.from(OS_RELEASE));
  await small('etc/alpine-release', Buffer.from('3.20.3\n'));
  await small('lib/apk/db/installed', Buffer.from(APK_DB));
  await small('lib/ld-musl-x86_64.so.1', prng.bytes(4096), 0o755);
  pack.entry({
    name: 'lib/libc.musl-x86_64.so.1',
    type: 'symlink',
    linkname: 'ld-musl-x86_64.so.1',
    mtime: new Date(0),
  });
  await small('lib/libz.so.1.3.1', prng.bytes(4096), 0o755);
  pack.entry({ name: 'lib/libz.so.1', type: 'symlink', linkname: 'libz.so.1.3.1', mtime: new Date(0) });
  await small('bin/busybox', prng.bytes(8192), 0o755);
  pack.entry({ name: 'bin/sh', type: 'symlink', linkname: '/bin/busybox', mtime: new Date(0) });
  await small('etc/ssl/certs/ca-certificates.crt', textBytes(prng, 16384));

  const repeated = Buffer.alloc(
    MiB - Math.round(MiB * spec.bigRandomShare),
    'portcullis bench filler line\n',
  );
  const bigFile = (i) =>
    writeEntry(pack, { name: `data/big/blob-${i}.bin`, size: spec.bigFileBytes }, function* () {
      for (let done = 0; done < spec.bigFileBytes; done += MiB) {
        const n = Math.min(MiB, spec.bigFileBytes - done);
        const r = Math.min(n, MiB - repeated.length);
        yield prng.bytes(r);
        if (n > r) yield repeated.subarray(0, n - r);
      }
    });
  // Small files: sizes from the PRNG, interleaved with the large files.
  const sizeBytes = prng.bytes(spec.smallFiles * 2);
  const avg = spec.smallBytesTotal / spec.smallFiles;
  const perBig = Math.ceil(spec.smallFiles / spec.bigFiles);
  for (let b = 0; b < spec.bigFiles; b++) {
    for (let i = b * perBig; i < Math.min(spec.smallFiles, (b + 1) * perBig); i++) {
      const size = 512 + Math.floor((sizeBytes.readUInt16LE(i * 2) / 65535) * (2 * avg - 1024));
      const dir = `data/small/d${String(i >> 8).padStart(3, '0')}`;
      if ((i & 255) === 0)
        pack.entry({ name: `${dir}/`, type: 'directory', mode: 0o755, mtime: new Date(0) });
      await small(`${dir}/f${i}.txt`, textBytes(prng, size));
    }
    await bigFile(b);
  }
  pack.finalize();
  await sink;
  return {
    diffId: `sha256:${diffHash.digest('hex')}`,
    digest: `sha256:${blobHash.digest('hex')}`,
    size: compressed.bytes,
    uncompressedBytes: uncompressed.bytes,
  };
}

async function writeBlob(layout, content) {
  const buf = Buffer.from(typeof content === 'string' ? content : JSON.stringify(content));
  const hex = createHash('sha256').update(buf).digest('hex');
  await writeFile(join(layout, 'blobs', 'sha256', hex), buf);
  return { digest: `sha256:${hex}`, size: buf.length };
}

/** Packs an OCI layout folder into an oci-archive tar, streaming the blobs. */
async function packLayout(layout, files, archive) {
  const pack = tar.pack();
  const sink = pipeline(pack, createWriteStream(`${archive}.tmp`, { highWaterMark: MiB }));
  pack.entry({ name: 'blobs/', type: 'directory', mode: 0o755, mtime: new Date(0) });
  pack.entry({ name: 'blobs/sha256/', type: 'directory', mode: 0o755, mtime: new Date(0) });
  for (const rel of files) {
    const path = join(layout, rel);
    const { size } = await stat(path);
    const entry = pack.entry({ name: rel, size, mode: 0o644, mtime: new Date(0) });
    await pipeline(createReadStream(path, { highWaterMark: MiB }), entry);
  }
  pack.finalize();
  await sink;
  await rename(`${archive}.tmp`, archive);
}

/**
 * Returns { archive, layout, info }, building them unless DIR already holds a build from the same
 * spec. `log` gets progress lines.
 */
export async function ensureLargeImage(dir, log = () => undefined) {
  const layout = join(dir, 'layout');
  const archive = join(dir, 'large-1g.tar');
  const infoFile = join(dir, 'info.json');
  if (existsSync(infoFile) && existsSync(archive)) {
    const info = JSON.parse(await readFile(infoFile, 'utf8'));
    if (JSON.stringify(info.spec) === JSON.stringify(LARGE_SPEC)) return { archive, layout, info };
  }
  log('building the large image (once; cached in .bench-tmp/large) ...');
  const t0 = Date.now();
  await rm(dir, { recursive: true, force: true });
  await mkdir(join(layout, 'blobs', 'sha256'), { recursive: true });
  const blobTmp = join(layout, 'layer.tmp');
  const layer = await buildLayer(blobTmp, LARGE_SPEC);
  const layerPath = join(layout, 'blobs', 'sha256', layer.digest.slice(7));
  await rename(blobTmp, layerPath);
  const config = await writeBlob(layout, {
    architecture: 'amd64',
    os: 'linux',
    created: '2024-01-01T00:00:00Z',
    config: {
      Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'],
      Cmd: ['/bin/sh'],
      User: '65534',
    },
    rootfs: { type: 'layers', diff_ids: [layer.diffId] },
    history: [{ created: '2024-01-01T00:00:00Z', created_by: 'portcullis bench generator' }],
  });
  const manifest = await writeBlob(layout, {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: [
      { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layer.digest, size: layer.size },
    ],
  });
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...manifest,
          annotations: { 'org.opencontainers.image.ref.name': 'large' },
        },
      ],
    }),
  );
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  const blobs = [layer.digest, config.digest, manifest.digest].map((d) => `blobs/sha256/${d.slice(7)}`);
  await packLayout(layout, [...blobs, 'index.json', 'oci-layout'], archive);
  const info = {
    spec: LARGE_SPEC,
    layer,
    manifestDigest: manifest.digest,
    expectedApkPackages: 4,
    buildSeconds: (Date.now() - t0) / 1000,
  };
  await writeFile(infoFile, JSON.stringify(info, null, 2));
  log(
    `built in ${info.buildSeconds.toFixed(1)} s: ${(layer.uncompressedBytes / MiB).toFixed(0)} MiB uncompressed, ${(layer.size / MiB).toFixed(0)} MiB gzip`,
  );
  return { archive, layout, info };
}
