import { randomBytes } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { strToU8, zipSync } from 'fflate';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { AdvisoryStore, VulnDbError, vulnDbDir } from '../../src/vulndb/store.js';
import { ecosystemsForScan } from '../../src/vulndb/seen.js';
import { osvZipUrl, updateOsv } from '../../src/vulndb/update.js';

function record(id: string, ecosystem: string, name: string, modified = '2024-01-01T00:00:00Z'): unknown {
  return {
    id,
    modified,
    affected: [
      {
        package: { ecosystem, name },
        ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '9' }] }],
      },
    ],
  };
}

function zipOf(records: unknown[]): Buffer {
  const files: Record<string, Uint8Array> = {};
  for (const r of records) files[`${(r as { id: string }).id}.json`] = strToU8(JSON.stringify(r));
  return Buffer.from(zipSync(files));
}

/** Path → behaviour; swapped per test. */
type Route =
  | { zip: Buffer }
  | { status: number }
  | { dropAfter: number; zip: Buffer }
  | { raw: Buffer }
  | { dripEveryMs: number }
  | { zip: Buffer; headersAfterMs: number; pieceBytes: number; everyMs: number };
let routes: Record<string, Route> = {};
const requested: string[] = [];
let server: Server;
let base: string;

beforeAll(async () => {
  server = createServer((req, res) => {
    requested.push(req.url ?? '');
    const route = routes[req.url ?? ''];
    if (route === undefined) {
      res.writeHead(404).end('not found');
    } else if ('status' in route) {
      res.writeHead(route.status).end('boom');
    } else if ('dropAfter' in route) {
      // Promise the whole zip, send part of it, then cut the connection.
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(route.zip.length) });
      res.write(route.zip.subarray(0, route.dropAfter), () => setTimeout(() => res.socket?.destroy(), 20));
    } else if ('dripEveryMs' in route) {
      // Promise a large body and send one byte at a time, each well inside the idle timeout.
      res.writeHead(200, { 'content-type': 'application/zip', 'content-length': '100000' });
      const drip = setInterval(() => res.write('P'), route.dripEveryMs);
      res.on('close', () => clearInterval(drip));
    } else if ('headersAfterMs' in route) {
      // Slow to answer (a proxy filling its cache first, a long handshake), then a steady trickle.
      const timers: NodeJS.Timeout[] = [];
      res.on('close', () => timers.forEach((t) => clearTimeout(t)));
      timers.push(
        setTimeout(() => {
          res.writeHead(200, { 'content-type': 'application/zip', 'content-length': String(route.zip.length) });
          let sent = 0;
          const next = () => {
            const piece = route.zip.subarray(sent, sent + route.pieceBytes);
            sent += piece.length;
            if (sent >= route.zip.length) res.end(piece);
            else {
              res.write(piece);
              timers.push(setTimeout(next, route.everyMs));
            }
          };
          next();
        }, route.headersAfterMs),
      );
    } else if ('raw' in route) {
      res.writeHead(200, { 'content-type': 'application/zip' }).end(route.raw);
    } else {
      res
        .writeHead(200, { 'content-type': 'application/zip', 'content-length': String(route.zip.length) })
        .end(route.zip);
    }
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}/osv`;
});

afterAll(async () => {
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

let work: string;
let dataDir: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'portcullis-update-'));
  dataDir = join(work, 'data');
  requested.length = 0;
  routes = {
    '/osv/Alpine/all.zip': {
      zip: zipOf([
        record('ALPINE-CVE-2024-1', 'Alpine:v3.20', 'zlib'),
        record('ALPINE-CVE-2024-2', 'Alpine:v3.19', 'musl'),
      ]),
    },
    '/osv/npm/all.zip': { zip: zipOf([record('GHSA-1', 'npm', 'lodash')]) },
    '/osv/Red%20Hat/all.zip': {
      zip: zipOf([record('RHSA-2024:1', 'Red Hat:enterprise_linux:9::baseos', 'openssl')]),
    },
  };
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

async function seed(): Promise<void> {
  await updateOsv(dataDir, { ecosystems: ['Alpine'], baseUrl: base });
}

async function failure(p: Promise<unknown>): Promise<VulnDbError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(VulnDbError);
  return err as VulnDbError;
}

function expectOldDatabaseIntact(): void {
  const store = AdvisoryStore.open(dataDir);
  try {
    expect(store.ecosystems()).toEqual(['Alpine:v3.19', 'Alpine:v3.20']);
    expect(store.advisoriesFor('Alpine:v3.20', 'zlib')).toHaveLength(1);
  } finally {
    store.close();
  }
  // Temp downloads are removed whatever happened.
  expect(readdirSync(join(vulnDbDir(dataDir), 'tmp'))).toEqual([]);
}

describe('updateOsv', () => {
  it('downloads each ecosystem and imports them in one go, URL-encoding names', async () => {
    const progress: string[] = [];
    const summary = await updateOsv(dataDir, {
      ecosystems: ['Alpine', 'npm', 'Red Hat'],
      baseUrl: `${base}/`,
      onProgress: (p) => progress.push(p.phase),
    });
    expect(requested).toEqual(['/osv/Alpine/all.zip', '/osv/npm/all.zip', '/osv/Red%20Hat/all.zip']);
    expect(summary.records).toBe(4);
    expect(summary.downloads.map((d) => d.url)).toEqual([
      `${base}/Alpine/all.zip`,
      `${base}/npm/all.zip`,
      `${base}/Red%20Hat/all.zip`,
    ]);
    expect(progress).toContain('download');
    expect(progress).toContain('import');
    const store = AdvisoryStore.open(dataDir);
    try {
      expect(store.ecosystems()).toEqual([
        'Alpine:v3.19',
        'Alpine:v3.20',
        'Red Hat:enterprise_linux:9::baseos',
        'npm',
      ]);
      const npm = store.status().find((s) => s.ecosystem === 'npm');
      expect(npm?.source).toBe(`${base}/npm/all.zip`);
      expect(store.advisoriesFor('npm', 'lodash')[0]?.record.source).toBe(`${base}/npm/all.zip`);
    } finally {
      store.close();
    }
  });

  it('updating npm later keeps Alpine', async () => {
    await seed();
    await updateOsv(dataDir, { ecosystems: ['npm'], baseUrl: base });
    const store = AdvisoryStore.open(dataDir);
    try {
      expect(store.ecosystems()).toEqual(['Alpine:v3.19', 'Alpine:v3.20', 'npm']);
    } finally {
      store.close();
    }
  });

  it('a connection dropped mid-body names the URL and leaves the old database in use', async () => {
    await seed();
    const open = AdvisoryStore.open(dataDir);
    const big = zipOf(Array.from({ length: 300 }, (_, i) => record(`GHSA-${i}`, 'npm', `pkg${i}`)));
    routes['/osv/npm/all.zip'] = { dropAfter: Math.floor(big.length / 2), zip: big };
    const err = await failure(updateOsv(dataDir, { ecosystems: ['Alpine', 'npm'], baseUrl: base }));
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toContain(`${base}/npm/all.zip`);
    expect(open.advisoriesFor('Alpine:v3.20', 'zlib')).toHaveLength(1);
    open.close();
    expectOldDatabaseIntact();
  });

  it('a mirror that sends a byte now and then is given up on, and the old database stays', async () => {
    await seed();
    routes['/osv/npm/all.zip'] = { dripEveryMs: 50 };
    const started = Date.now();
    const err = await failure(updateOsv(dataDir, { ecosystems: ['npm'], baseUrl: base, idleTimeoutMs: 300 }));
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toMatch(/npm\/all\.zip failed: connection lost after \d+ bytes \(under 1024 bytes\/s over 300 ms\)/);
    // The first stretch of 300 ms brings a few bytes, not the 308 it needs; the idle timer alone never fires.
    expect(Date.now() - started).toBeLessThan(3000);
    expectOldDatabaseIntact();
  });

  it('a mirror slow to answer, then sending steadily above the floor, is not given up on', async () => {
    // The wait for the answer is the idle timeout's to judge; charged to the first stretch of the
    // body, it left 100 ms to bring a whole second's worth and failed a 3 KB/s download.
    const records = Array.from({ length: 16 }, (_, i) => record(`GHSA-${i}-${randomBytes(8).toString('hex')}`, 'npm', `pkg-${randomBytes(12).toString('hex')}`));
    const zip = zipOf(records);
    expect(zip.length).toBeGreaterThan(4000);
    routes['/osv/npm/all.zip'] = { zip, headersAfterMs: 900, pieceBytes: 300, everyMs: 100 };
    const summary = await updateOsv(dataDir, { ecosystems: ['npm'], baseUrl: base, idleTimeoutMs: 1000 });
    expect(summary.records).toBe(16);
  });

  it('an HTTP 500 names the URL and status', async () => {
    await seed();
    routes['/osv/npm/all.zip'] = { status: 500 };
    const err = await failure(updateOsv(dataDir, { ecosystems: ['npm'], baseUrl: base }));
    expect(err.code).toBe('DOWNLOAD_FAILED');
    expect(err.message).toContain(`${base}/npm/all.zip`);
    expect(err.message).toContain('HTTP 500');
    expectOldDatabaseIntact();
  });

  it('a 404 for an unknown ecosystem is an error too', async () => {
    await seed();
    const err = await failure(updateOsv(dataDir, { ecosystems: ['Nope'], baseUrl: base }));
    expect(err.message).toMatch(/Nope\/all\.zip failed: HTTP 404/);
    expectOldDatabaseIntact();
  });

  it('a body that is not a zip is refused before importing', async () => {
    await seed();
    routes['/osv/npm/all.zip'] = { raw: Buffer.from('<html>captive portal</html>') };
    const err = await failure(updateOsv(dataDir, { ecosystems: ['npm'], baseUrl: base }));
    expect(err.code).toBe('DOWNLOAD_CORRUPT');
    expect(err.message).toContain(`${base}/npm/all.zip`);
    expectOldDatabaseIntact();
  });

  it('an unreachable server names the URL', async () => {
    const err = await failure(updateOsv(dataDir, { ecosystems: ['npm'], baseUrl: 'http://127.0.0.1:9' }));
    expect(err.message).toContain('http://127.0.0.1:9/npm/all.zip');
    expect(existsSync(join(vulnDbDir(dataDir), 'osv.sqlite'))).toBe(false);
  });
});

describe('ecosystemsForScan', () => {
  it('maps OS families and purl types to OSV bucket names', () => {
    expect(
      ecosystemsForScan(
        [
          { family: 'alpine', version: '3.20.3' },
          { family: 'debian', version: '12' },
          { family: 'rhel', version: '9.4' },
          { family: 'rocky', version: '9' },
          { family: 'almalinux', version: '9' },
          { family: 'ubuntu', version: '24.04' },
          { family: 'wolfi', version: '' },
          { family: 'chainguard', version: '' },
          { family: 'alpine', version: '3.19' },
          { family: 'plan9', version: '4' },
        ],
        ['npm', 'pypi', 'golang', 'maven', 'cargo', 'gem', 'nuget', 'composer', 'npm', 'deb', 'apk'],
      ),
    ).toEqual([
      'Alpine',
      'Debian',
      'Red Hat',
      'Rocky Linux',
      'AlmaLinux',
      'Ubuntu',
      'Wolfi',
      'Chainguard',
      'npm',
      'PyPI',
      'Go',
      'Maven',
      'crates.io',
      'RubyGems',
      'NuGet',
      'Packagist',
    ]);
    expect(ecosystemsForScan([], [])).toEqual([]);
  });

  it('builds bucket URLs', () => {
    expect(osvZipUrl('https://x.test/', 'Rocky Linux')).toBe('https://x.test/Rocky%20Linux/all.zip');
  });
});
