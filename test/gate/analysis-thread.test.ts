import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PortcullisError } from '../../src/errors.js';
import { AnalysisRefused, AnalysisThread, analyseStoredImage } from '../../src/gate/index.js';
import { FsBlobStore, blobRoot, writeBlobBytes } from '../../src/store/index.js';
import type { TestEntry } from '../helpers/image-builder.js';
import { buildTestImage } from './gate-harness.js';

// The server analyses pushed images on a worker thread, from the compiled worker (`npm run build`,
// which `npm test` runs first). Here the worker's answer is compared with an in-process analysis.
const WORKER = fileURLToPath(new URL('../../dist/gate/analysis-worker.js', import.meta.url));
const HAVE_WORKER = existsSync(WORKER);
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const APK_DB = `P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\nP:zlib\nV:1.3.1-r1\nA:x86_64\no:zlib\nL:Zlib\n\n`;

let dataDir: string;
let blobs: FsBlobStore;
let thread: AnalysisThread;

/** Builds an image the way the harness pushes one, and puts its blobs in the blob store. */
async function storeImage(layers: TestEntry[][], rawLayer?: Buffer): Promise<{ digest: string; manifest: Buffer }> {
  const image = await buildTestImage(layers, rawLayer ? { rawLayer } : {});
  for (const b of image.blobs) await writeBlobBytes(blobs, b, sha256(b));
  return image;
}

describe.skipIf(!HAVE_WORKER)(`analysis on a worker thread${HAVE_WORKER ? '' : ' (skipped: dist/gate/analysis-worker.js is missing; run npm run build)'}`, () => {
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'portcullis-worker-'));
    blobs = new FsBlobStore(blobRoot(dataDir));
    thread = new AnalysisThread(WORKER);
  });
  afterAll(async () => {
    await thread?.close();
    await rm(dataDir, { recursive: true, force: true });
  });

  it('gives the facts an in-process analysis gives', async () => {
    const image = await storeImage([
      [
        { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' },
        { name: 'lib/apk/db/installed', content: APK_DB },
        { name: 'app/.env', content: 'AWS_ACCESS_KEY_ID=AKIAQWERTYUIOPASDFGH\n' },
      ],
    ]);
    const req = { repository: 'team/app', digest: image.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', manifest: image.manifest };
    const viaWorker = await thread.analyse({ ...req, blobRoot: blobs.root, dataDir: join(dataDir, 'w') });
    const inProcess = await analyseStoredImage({ ...req, openBlob: (d) => blobs.open(d) }, join(dataDir, 'p'));
    expect(viaWorker.packages.map((p) => `${p.name} ${p.version}`)).toEqual(['musl 1.2.5-r0', 'zlib 1.3.1-r1']);
    const comparable = (r: typeof viaWorker) => ({ ...r, scannedAt: '' });
    expect(comparable(viaWorker)).toEqual(comparable(inProcess));
    expect(viaWorker.secrets?.length).toBeGreaterThan(0);
  });

  it('reports content it refuses as a PortcullisError (recorded, not retried), and keeps working', async () => {
    const corrupt = Buffer.concat([gzipSync(Buffer.alloc(600, 1)).subarray(0, 20), Buffer.from('not gzip at all')]);
    const image = await storeImage([], corrupt);
    const err = await thread
      .analyse({ repository: 'team/bad', digest: image.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', manifest: image.manifest, blobRoot: blobs.root, dataDir })
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AnalysisRefused);
    expect(err).toBeInstanceOf(PortcullisError);
    const ok = await storeImage([[{ name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' }]]);
    const result = await thread.analyse({ repository: 'team/ok', digest: ok.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', manifest: ok.manifest, blobRoot: blobs.root, dataDir });
    expect(result.os?.family).toBe('alpine');
  });
});
