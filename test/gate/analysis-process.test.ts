import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PortcullisError } from '../../src/errors.js';
import { ALLOCATOR_TUNABLES, ANALYSIS_PROCESS_FLAGS } from '../../src/analyse/index.js';
import { AnalysisProcess, AnalysisRefused, analyseStoredImage, analysisEnvironment } from '../../src/gate/index.js';
import { FsBlobStore, blobRoot, writeBlobBytes } from '../../src/store/index.js';
import type { TestEntry } from '../helpers/image-builder.js';
import { buildTestImage } from './gate-harness.js';

// The server analyses pushed images in a child process, from the compiled entry (`npm run build`,
// which `npm test` runs first). Here its answer is compared with an in-process analysis.
const WORKER = fileURLToPath(new URL('../../dist/gate/analysis-worker.js', import.meta.url));
const HAVE_WORKER = existsSync(WORKER);
const sha256 = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

const APK_DB = `P:musl\nV:1.2.5-r0\nA:x86_64\no:musl\nL:MIT\n\nP:zlib\nV:1.3.1-r1\nA:x86_64\no:zlib\nL:Zlib\n\n`;

let dataDir: string;
let blobs: FsBlobStore;
let thread: AnalysisProcess;

/** Builds an image the way the harness pushes one, and puts its blobs in the blob store. */
async function storeImage(layers: TestEntry[][], rawLayer?: Buffer): Promise<{ digest: string; manifest: Buffer }> {
  const image = await buildTestImage(layers, rawLayer ? { rawLayer } : {});
  for (const b of image.blobs) await writeBlobBytes(blobs, b, sha256(b));
  return image;
}

describe.skipIf(!HAVE_WORKER)(`analysis in a child process${HAVE_WORKER ? '' : ' (skipped: dist/gate/analysis-worker.js is missing; run npm run build)'}`, () => {
  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'portcullis-worker-'));
    blobs = new FsBlobStore(blobRoot(dataDir));
    thread = new AnalysisProcess(WORKER);
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

  it('starts with the analysis heap flags and allocator settings, without the server credentials (Linux /proc)', async () => {
    process.env.PORTCULLIS_ADMIN_PASSWORD = 'not-for-the-analysis';
    process.env.PORTCULLIS_TEST_MARKER = 'kept';
    // Settings of the caller's own would win over the analysis defaults checked below.
    const callersTunables = process.env.GLIBC_TUNABLES;
    delete process.env.GLIBC_TUNABLES;
    const own = new AnalysisProcess(WORKER);
    try {
      own.warm();
      const pid = own.pid!;
      expect(pid).toBeGreaterThan(0);
      if (!existsSync(`/proc/${pid}/cmdline`)) return;
      const argv = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
      for (const flag of ANALYSIS_PROCESS_FLAGS) expect(argv).toContain(flag);
      const env = readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0');
      expect(env).toContain('PORTCULLIS_TEST_MARKER=kept');
      expect(env.some((e) => e.startsWith('PORTCULLIS_ADMIN_PASSWORD='))).toBe(false);
      // glibc parses GLIBC_TUNABLES in place, writing over the ':' that follows the first setting,
      // so /proc shows only that one.
      const [firstName, firstValue] = Object.entries(ALLOCATOR_TUNABLES)[0]!;
      expect(env.find((e) => e.startsWith('GLIBC_TUNABLES='))).toMatch(new RegExp(`^GLIBC_TUNABLES=${firstName}=${firstValue}(:|$)`));
    } finally {
      delete process.env.PORTCULLIS_ADMIN_PASSWORD;
      delete process.env.PORTCULLIS_TEST_MARKER;
      if (callersTunables !== undefined) process.env.GLIBC_TUNABLES = callersTunables;
      await own.close();
    }
  });

  it('fails the analyses a dying process had, and starts a new process for the next one', async () => {
    const image = await storeImage([[{ name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' }]]);
    const req = { repository: 'team/crash', digest: image.digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', manifest: image.manifest, blobRoot: blobs.root, dataDir };
    const own = new AnalysisProcess(WORKER);
    try {
      const pending = own.analyse(req);
      const first = own.pid!;
      process.kill(first, 'SIGKILL');
      await expect(pending).rejects.toThrow(/analysis process exited \(signal SIGKILL\)/);
      const result = await own.analyse(req);
      expect(result.os?.family).toBe('alpine');
      expect(own.pid).not.toBe(first);
    } finally {
      await own.close();
    }
  });

  it('exits when the server that started it is killed', async () => {
    const server = `
      const { AnalysisProcess } = await import(${JSON.stringify(new URL('../../dist/gate/analysis-process.js', import.meta.url).href)});
      const p = new AnalysisProcess(${JSON.stringify(WORKER)});
      p.warm();
      console.log(p.pid);
      setInterval(() => {}, 1000);
    `;
    const parent = spawn(process.execPath, ['--input-type=module', '-e', server], { stdio: ['ignore', 'pipe', 'inherit'] });
    const pid = await new Promise<number>((resolve, reject) => {
      parent.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim())));
      parent.once('exit', (code) => reject(new Error(`the test server exited early (${code})`)));
    });
    // A process that exited but was not reaped yet (a zombie, state Z) counts as gone.
    const alive = (p: number) => {
      try {
        process.kill(p, 0);
      } catch {
        return false;
      }
      const stat = existsSync(`/proc/${p}/stat`) ? readFileSync(`/proc/${p}/stat`, 'utf8') : '';
      return !/^\d+ \(.*\) Z/.test(stat);
    };
    expect(alive(pid)).toBe(true);
    parent.kill('SIGKILL');
    const deadline = Date.now() + 10_000;
    while (alive(pid) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    expect(alive(pid)).toBe(false);
  });
});

describe('the analysis process environment', () => {
  it('drops names that may hold credentials and keeps the rest', () => {
    const env = analysisEnvironment({
      PATH: '/usr/bin',
      HOME: '/root',
      TMPDIR: '/tmp/x',
      PORTCULLIS_ADMIN_PASSWORD: 'a',
      PORTCULLIS_S3_SECRET_ACCESS_KEY: 'b',
      AWS_ACCESS_KEY_ID: 'c',
      GITHUB_TOKEN: 'd',
      PGPASSWORD: 'e',
      PORTCULLIS_DATABASE_URL: 'postgres://u:p@db/portcullis',
      DOCKER_CREDENTIALS: 'f',
      SIGNING_PRIVATE_PEM: 'g',
      KEYBOARD_LAYOUT: 'us',
    });
    expect(env).toEqual({ PATH: '/usr/bin', HOME: '/root', TMPDIR: '/tmp/x', KEYBOARD_LAYOUT: 'us' });
  });
});

