import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import Database from 'better-sqlite3';
import { strToU8, zipSync } from 'fflate';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importOsv, MAX_ENTRY_BYTES } from '../../src/vulndb/import.js';
import { AdvisoryStore, VulnDbError, vulnDbDir, vulnDbPath } from '../../src/vulndb/store.js';
import { FIXTURES } from '../helpers/fixtures.js';

const VULNDB = join(FIXTURES, 'vulndb');
const HAVE_VULNDB = existsSync(join(VULNDB, 'README.md'));
const SKIP_REASON = HAVE_VULNDB ? '' : ' [SKIPPED: ../shared/fixtures/vulndb is absent]';

function record(
  id: string,
  ecosystem: string,
  name: string,
  extra: Record<string, unknown> = {},
): Record<string, unknown> {
  return {
    id,
    modified: '2024-01-01T00:00:00Z',
    affected: [
      {
        package: { ecosystem, name },
        ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2.0.0' }] }],
      },
    ],
    ...extra,
  };
}

function zipOf(entries: Record<string, unknown>): Uint8Array {
  const files: Record<string, Uint8Array> = {};
  for (const [name, value] of Object.entries(entries)) {
    files[name] =
      value instanceof Uint8Array
        ? value
        : strToU8(typeof value === 'string' ? value : JSON.stringify(value));
  }
  return zipSync(files);
}

let work: string;
let dataDir: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'portcullis-import-'));
  dataDir = join(work, 'data');
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

function write(name: string, content: Uint8Array | string): string {
  const p = join(work, name);
  mkdirSync(join(p, '..'), { recursive: true });
  writeFileSync(p, content);
  return p;
}

function withStore<T>(fn: (s: AdvisoryStore) => T): T {
  const store = AdvisoryStore.open(dataDir);
  try {
    return fn(store);
  } finally {
    store.close();
  }
}

describe.skipIf(!HAVE_VULNDB)(`fixture vulndb from ../shared/fixtures/vulndb${SKIP_REASON}`, () => {
  it('imports all five ecosystems (zips and loose files) with the README counts', async () => {
    const summary = await importOsv(dataDir, [VULNDB]);
    // README: Alpine 2000, PyPI 2661, Go 4291, npm 19, Maven 5 records in all.zip; the loose files
    // are copies of zip records, so they change nothing.
    expect(summary.records).toBe(2000 + 2661 + 4291 + 19 + 5);
    expect(summary.unchanged).toBe(112 + 276 + 264 + 19 + 5);
    expect(summary.skipped).toBe(0);

    const db = new Database(vulnDbPath(dataDir), { readonly: true });
    const affectedRows = Object.fromEntries(
      (
        db.prepare('SELECT ecosystem, COUNT(*) AS n FROM affected GROUP BY ecosystem').all() as Array<{
          ecosystem: string;
          n: number;
        }>
      ).map((r) => [r.ecosystem, r.n]),
    );
    const alpineRecords = (
      db
        .prepare("SELECT COUNT(DISTINCT record_id) AS n FROM affected WHERE ecosystem LIKE 'Alpine:%'")
        .get() as { n: number }
    ).n;
    db.close();
    // README: 2187 Alpine affected entries, 2077 `Alpine:v3.11` and 110 `Alpine:v3.20`.
    expect(affectedRows['Alpine:v3.11']).toBe(2077);
    expect(affectedRows['Alpine:v3.20']).toBe(110);
    expect(alpineRecords).toBe(2000);

    withStore((store) => {
      const status = Object.fromEntries(store.status().map((s) => [s.ecosystem, s]));
      expect(status['Go']?.records).toBe(4291);
      expect(status['PyPI']?.records).toBe(2661);
      expect(status['npm']?.records).toBe(19);
      expect(status['Maven']?.records).toBe(5);
      expect(status['Alpine:v3.20']?.records).toBe(110);
      expect(status['npm']?.source).toBe(join(VULNDB, 'npm', 'all.zip'));
      expect(status['npm']?.newestModified).toMatch(/^\d{4}-/);
      expect(store.ecosystems()).toEqual(['Alpine:v3.11', 'Alpine:v3.20', 'Go', 'Maven', 'PyPI', 'npm']);

      const zlib311 = store
        .advisoriesFor('Alpine:v3.11', 'zlib')
        .find((a) => a.record.id === 'ALPINE-CVE-2022-37434');
      expect(zlib311?.ranges).toEqual([
        { type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.2.11-r4' }] },
      ]);
      expect(zlib311?.record.upstream).toEqual(['CVE-2022-37434']);
      const zlib320 = store
        .advisoriesFor('Alpine:v3.20', 'zlib')
        .find((a) => a.record.id === 'ALPINE-CVE-2022-37434');
      expect(zlib320?.ranges[0]?.events).toEqual([{ introduced: '0' }, { fixed: '1.2.12-r2' }]);

      const lodash = store.advisoriesFor('npm', 'lodash');
      const pollution = lodash.find((a) => a.record.id === 'GHSA-p6mc-m468-83gw');
      expect(pollution).toBeDefined();
      expect(pollution!.record.aliases).toEqual(['CVE-2020-8203']);
      expect(pollution!.record.databaseSeverity).toBe('HIGH');
      expect(pollution!.record.severity).toEqual([
        { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:N/I:H/A:H' },
      ]);
      expect(pollution!.record.references).toContain('https://github.com/lodash/lodash/issues/4744');
      expect(pollution!.ranges).toEqual([
        { type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '4.17.20' }] },
      ]);
      expect(pollution!.ecosystemSpecific).toEqual({ affected_functions: ['lodash.baseSet'] });
      expect(lodash.map((a) => a.record.id).sort()).toEqual([
        'GHSA-29mw-wpgm-hmr9',
        'GHSA-35jh-r3h4-6jhm',
        'GHSA-p6mc-m468-83gw',
      ]);

      // PyPI keeps only ECOSYSTEM ranges (GIT ranges dropped) plus the explicit versions list.
      const django = store.advisoriesFor('PyPI', 'django').find((a) => a.record.id === 'PYSEC-2015-5');
      expect(django?.ranges.map((r) => r.type)).toEqual(['ECOSYSTEM']);
      expect(django?.versions).toContain('1.0.1');
      expect(store.advisoriesFor('PyPI', 'Django').length).toBe(store.advisoriesFor('PyPI', 'django').length);

      const stdlib = store.advisoriesFor('Go', 'stdlib');
      expect(stdlib.find((a) => a.record.id === 'GO-2022-0236')?.ranges[0]?.type).toBe('SEMVER');
      expect(store.record('GO-2022-0617')?.withdrawn).toBe('2024-08-21T16:25:56Z');

      const log4j = store
        .advisoriesFor('Maven', 'org.apache.logging.log4j:log4j-core')
        .map((a) => a.record.id);
      expect(log4j).toEqual(
        expect.arrayContaining(['GHSA-jfh8-c2jp-5v3q', 'GHSA-7rjr-3q55-vv33', 'GHSA-p6xc-xr62-6r2g']),
      );
    });
  });
});

describe('importOsv', () => {
  it('skips and counts invalid records without aborting', async () => {
    const zip = write(
      'mixed.zip',
      zipOf({
        'GOOD-1.json': record('GOOD-1', 'npm', 'a'),
        'GOOD-2.json': record('GOOD-2', 'npm', 'b'),
        'NOID.json': { modified: '2024-01-01T00:00:00Z' },
        'BADEVENT.json': record('BADEVENT', 'npm', 'c', {
          affected: [
            {
              package: { ecosystem: 'npm', name: 'c' },
              ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0', fixed: '1' }] }],
            },
          ],
        }),
        'BADTYPE.json': record('BADTYPE', 'npm', 'd', {
          affected: [
            {
              package: { ecosystem: 'npm', name: 'd' },
              ranges: [{ type: 'WEIRD', events: [{ introduced: '0' }] }],
            },
          ],
        }),
        'NOTJSON.json': '{ not json',
        'README.txt': 'ignored: not a .json entry',
        'sub/': new Uint8Array(0),
      }),
    );
    const warnings: string[] = [];
    const summary = await importOsv(dataDir, [zip], { log: { warn: (m) => warnings.push(m) } });
    expect(summary.records).toBe(2);
    expect(summary.skipped).toBe(4);
    expect(summary.skippedReasons.join('\n')).toMatch(/BADEVENT.*exactly one/);
    expect(summary.skippedReasons.join('\n')).toMatch(/BADTYPE/);
    expect(summary.skippedReasons.join('\n')).toMatch(/NOTJSON\.json: not JSON/);
    expect(warnings.length).toBe(4);
    expect(summary.ecosystems).toEqual({ npm: 2 });
    withStore((s) => {
      expect(s.advisoriesFor('npm', 'a').map((a) => a.record.id)).toEqual(['GOOD-1']);
      expect(s.advisoriesFor('npm', 'c')).toEqual([]);
    });
  });

  it('skips oversized zip entries with a warning', async () => {
    const huge = { ...record('HUGE-1', 'npm', 'huge'), details: 'x'.repeat(MAX_ENTRY_BYTES + 10) };
    const zip = write('huge.zip', zipOf({ 'HUGE-1.json': huge, 'OK-1.json': record('OK-1', 'npm', 'ok') }));
    const summary = await importOsv(dataDir, [zip]);
    expect(summary.records).toBe(1);
    expect(summary.skipped).toBe(1);
    expect(summary.skippedReasons[0]).toMatch(/HUGE-1\.json.*larger than/);
  });

  it('keeps the newest `modified` for the same id, in any import order', async () => {
    const newer = record('X-1', 'npm', 'pkg', {
      modified: '2024-06-01T00:00:00Z',
      affected: [
        {
          package: { ecosystem: 'npm', name: 'pkg' },
          ranges: [{ type: 'SEMVER', events: [{ introduced: '0' }, { fixed: '3.0.0' }] }],
        },
      ],
    });
    const older = record('X-1', 'npm', 'pkg', { modified: '2024-01-01T00:00:00Z' });
    await importOsv(dataDir, [write('newer.json', JSON.stringify(newer))]);
    const second = await importOsv(dataDir, [write('older.json', JSON.stringify(older))]);
    expect(second).toMatchObject({ records: 0, unchanged: 1 });
    withStore((s) =>
      expect(s.advisoriesFor('npm', 'pkg')[0]?.ranges[0]?.events).toEqual([
        { introduced: '0' },
        { fixed: '3.0.0' },
      ]),
    );

    // A newer revision that moves the record to another package replaces the old rows entirely.
    const moved = record('X-1', 'PyPI', 'other', { modified: '2024-07-01T00:00:00.5Z' });
    const third = await importOsv(dataDir, [write('moved.json', JSON.stringify(moved))]);
    expect(third.records).toBe(1);
    withStore((s) => {
      expect(s.advisoriesFor('npm', 'pkg')).toEqual([]);
      expect(s.advisoriesFor('PyPI', 'other').map((a) => a.record.modified)).toEqual([
        '2024-07-01T00:00:00.5Z',
      ]);
      expect(s.ecosystems()).toEqual(['PyPI']);
    });
  });

  it('importing Alpine then npm keeps both', async () => {
    await importOsv(dataDir, [
      write('Alpine/all.zip', zipOf({ 'ALPINE-CVE-1.json': record('ALPINE-CVE-1', 'Alpine:v3.20', 'zlib') })),
    ]);
    const summary = await importOsv(dataDir, [
      write('npm/all.zip', zipOf({ 'GHSA-1.json': record('GHSA-1', 'npm', 'lodash') })),
    ]);
    expect(summary.ecosystems).toEqual({ npm: 1 });
    withStore((s) => {
      expect(s.ecosystems()).toEqual(['Alpine:v3.20', 'npm']);
      expect(s.advisoriesFor('Alpine:v3.20', 'zlib')).toHaveLength(1);
      expect(s.advisoriesFor('npm', 'lodash')).toHaveLength(1);
      const status = Object.fromEntries(s.status().map((e) => [e.ecosystem, e.source]));
      expect(status['Alpine:v3.20']).toBe(join(work, 'Alpine', 'all.zip'));
      expect(status['npm']).toBe(join(work, 'npm', 'all.zip'));
    });
  });

  it('a corrupt zip is a clear error naming the file, and the previous database still answers', async () => {
    await importOsv(dataDir, [write('good.zip', zipOf({ 'A-1.json': record('A-1', 'npm', 'left-pad') }))]);
    const before = AdvisoryStore.open(dataDir);
    const bad = write('broken.zip', Buffer.concat([Buffer.from('PK\x03\x04'), Buffer.alloc(200, 7)]));
    const err = await importOsv(dataDir, [
      write('more.json', JSON.stringify(record('B-1', 'npm', 'b'))),
      bad,
    ]).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(VulnDbError);
    expect((err as VulnDbError).code).toBe('ZIP_CORRUPT');
    expect((err as Error).message).toContain(bad);
    // The already-open store and a fresh open both see the old data; nothing of the failed run.
    expect(before.advisoriesFor('npm', 'left-pad')).toHaveLength(1);
    before.close();
    withStore((s) => {
      expect(s.advisoriesFor('npm', 'left-pad')).toHaveLength(1);
      expect(s.advisoriesFor('npm', 'b')).toHaveLength(0);
    });
    expect(readdirSync(vulnDbDir(dataDir)).sort()).toEqual(['osv.sqlite']);
  });

  it('a zip whose entry data is damaged fails the whole import', async () => {
    const good = zipOf({ 'A-1.json': { ...record('A-1', 'npm', 'a'), details: 'y'.repeat(5000) } });
    const damaged = Buffer.from(good);
    // Flip bytes in the middle of the compressed data: the CRC or inflate check must catch it.
    for (let i = 60; i < 90; i++) damaged[i] = damaged[i]! ^ 0xff;
    const err = await importOsv(dataDir, [write('damaged.zip', damaged)]).catch((e: unknown) => e);
    expect((err as VulnDbError).code).toBe('ZIP_CORRUPT');
    expect(existsSync(vulnDbPath(dataDir))).toBe(false);
  });

  it('reads folders recursively, JSON arrays and osv.dev {vulns} answers', async () => {
    write('tree/a/A-1.json', JSON.stringify(record('A-1', 'Go', 'golang.org/x/net')));
    write(
      'tree/b/c/list.json',
      JSON.stringify([record('B-1', 'Go', 'stdlib'), record('B-2', 'Go', 'stdlib')]),
    );
    write('tree/b/answer.json', JSON.stringify({ vulns: [record('C-1', 'Go', 'stdlib')] }));
    write('tree/b/notes.txt', 'not imported');
    const summary = await importOsv(dataDir, [join(work, 'tree')]);
    expect(summary).toMatchObject({ records: 4, skipped: 0, ecosystems: { Go: 4 } });
    withStore((s) =>
      expect(s.advisoriesFor('Go', 'stdlib').map((a) => a.record.id)).toEqual(['B-1', 'B-2', 'C-1']),
    );
  });

  it('fills cve_severity from NVD 2.0 feeds (plain and gzip), preferring the Primary source', async () => {
    const feed = {
      resultsPerPage: 3,
      startIndex: 0,
      totalResults: 3,
      format: 'NVD_CVE',
      version: '2.0',
      timestamp: '2024-10-01T00:00:00.000',
      vulnerabilities: [
        {
          cve: {
            id: 'CVE-2021-44228',
            lastModified: '2024-07-24T17:08:24.167',
            descriptions: [
              { lang: 'en', value: 'Log4Shell, with "quotes" and {braces} [brackets] \\ inside' },
            ],
            metrics: {
              cvssMetricV31: [
                {
                  source: 'other@example.com',
                  type: 'Secondary',
                  cvssData: {
                    version: '3.1',
                    vectorString: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:L/I:L/A:L',
                    baseScore: 5.6,
                  },
                },
                {
                  source: 'nvd@nist.gov',
                  type: 'Primary',
                  cvssData: {
                    version: '3.1',
                    vectorString: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H',
                    baseScore: 10,
                  },
                },
              ],
              cvssMetricV2: [
                {
                  source: 'nvd@nist.gov',
                  type: 'Primary',
                  cvssData: { version: '2.0', vectorString: 'AV:N/AC:M/Au:N/C:C/I:C/A:C', baseScore: 9.3 },
                },
              ],
            },
          },
        },
        { cve: { id: 'CVE-2024-0001', lastModified: '2024-01-01T00:00:00.000', metrics: {} } },
        {
          cve: {
            id: 'CVE-2024-0002',
            lastModified: '2024-01-01T00:00:00.000',
            metrics: {
              cvssMetricV40: [
                {
                  source: 'x',
                  type: 'Secondary',
                  cvssData: {
                    vectorString: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
                    baseScore: 9.3,
                  },
                },
              ],
            },
          },
        },
      ],
    };
    const text = JSON.stringify(feed, null, 2);
    write('feeds/nvdcve-2.0-2021.json', text.replace(/CVE-2024-0002/g, 'CVE-2023-9999'));
    write('feeds/nvdcve-2.0-2024.json.gz', gzipSync(Buffer.from(text)));
    // An OSV-format CVE record (as osv.dev publishes) also supplies a severity.
    write(
      'feeds/CVE-2022-0001.json',
      JSON.stringify({
        id: 'CVE-2022-0001',
        modified: '2024-01-01T00:00:00Z',
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:N/A:N' }],
      }),
    );
    const summary = await importOsv(dataDir, [join(work, 'feeds')]);
    // 2021 feed: 44228 + 9999; 2024 feed: 44228 again (same lastModified: unchanged) + 0002; OSV: 0001.
    expect(summary.cves).toBe(4);
    withStore((s) => {
      expect(s.cveSeverity('CVE-2021-44228')).toEqual([
        { type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H' },
        { type: 'CVSS_V2', score: 'AV:N/AC:M/Au:N/C:C/I:C/A:C' },
      ]);
      expect(s.cveSeverity('cve-2024-0002')?.[0]?.type).toBe('CVSS_V4');
      expect(s.cveSeverity('CVE-2024-0001')).toBeUndefined();
      expect(s.cveSeverity('CVE-2022-0001')?.[0]?.score).toMatch(/^CVSS:3\.1\/AV:L/);
      expect(s.cveCount()).toBe(4);
    });
  });

  it('recovers from an import that was killed: stale lock and temp file are cleared', async () => {
    await importOsv(dataDir, [write('a.json', JSON.stringify(record('A-1', 'npm', 'a')))]);
    const dir = vulnDbDir(dataDir);
    // A dead writer: pid that cannot exist, half-written temp copy beside the live file.
    writeFileSync(join(dir, 'import.lock'), '2147483646');
    writeFileSync(join(dir, 'osv.sqlite.import-1-deadbeef'), 'partial');
    withStore((s) => expect(s.advisoriesFor('npm', 'a')).toHaveLength(1));
    await importOsv(dataDir, [write('b.json', JSON.stringify(record('B-1', 'npm', 'b')))]);
    expect(readdirSync(dir).sort()).toEqual(['osv.sqlite']);
    withStore((s) => expect(s.ecosystems()).toEqual(['npm']));
  });

  it('refuses a second writer while one holds the lock', async () => {
    mkdirSync(vulnDbDir(dataDir), { recursive: true });
    writeFileSync(join(vulnDbDir(dataDir), 'import.lock'), String(process.pid));
    const err = await importOsv(dataDir, [write('a.json', JSON.stringify(record('A-1', 'npm', 'a')))]).catch(
      (e: unknown) => e,
    );
    expect((err as VulnDbError).code).toBe('DB_LOCKED');
  });

  it('names a missing input', async () => {
    const missing = join(work, 'nope.zip');
    await expect(importOsv(dataDir, [missing])).rejects.toThrow(missing);
  });
});
