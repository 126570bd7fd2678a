import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { importOsv } from '../../src/vulndb/import.js';
import {
  AdvisoryStore,
  packageKey,
  SCHEMA_VERSION,
  VulnDbError,
  vulnDbPath,
} from '../../src/vulndb/store.js';
import { parseOsvRecord } from '../../src/vulndb/osv-schema.js';
import { PortcullisError } from '../../src/errors.js';

let work: string;
let dataDir: string;

beforeEach(() => {
  work = mkdtempSync(join(tmpdir(), 'portcullis-store-'));
  dataDir = join(work, 'data');
});

afterEach(() => {
  rmSync(work, { recursive: true, force: true });
});

async function importRecords(records: unknown[]): Promise<void> {
  const file = join(work, `records-${Math.random()}.json`);
  writeFileSync(file, JSON.stringify(records));
  await importOsv(dataDir, [file]);
}

const GHSA = {
  schema_version: '1.4.0',
  id: 'GHSA-aaaa-bbbb-cccc',
  modified: '2024-02-01T00:00:00Z',
  published: '2024-01-01T00:00:00Z',
  aliases: ['CVE-2024-1111'],
  summary: 'Bad thing',
  details: 'long text that is not stored',
  severity: [{ type: 'CVSS_V4', score: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N' }],
  affected: [
    {
      package: { ecosystem: 'PyPI', name: 'Jinja2', purl: 'pkg:pypi/jinja2' },
      ranges: [
        { type: 'ECOSYSTEM', events: [{ introduced: '0' }, { last_affected: '3.1.2' }] },
        { type: 'GIT', repo: 'https://github.com/pallets/jinja', events: [{ introduced: 'abc' }] },
      ],
      versions: ['3.1.0', '3.1.1', '3.1.2'],
      severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N' }],
      database_specific: { anything: true },
      some_future_field: 1,
    },
  ],
  references: [{ type: 'WEB', url: 'https://example.com/a' }],
  database_specific: { severity: 'MODERATE', github_reviewed: true },
  credits: [{ name: 'someone' }],
};

describe('AdvisoryStore', () => {
  it('tells the user how to get a database when there is none', () => {
    let err: unknown;
    try {
      AdvisoryStore.open(dataDir);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(VulnDbError);
    expect(err).toBeInstanceOf(PortcullisError);
    expect((err as VulnDbError).code).toBe('DB_MISSING');
    expect((err as Error).message).toContain('portcullis db update');
    expect((err as Error).message).toContain('portcullis db import PATH');
  });

  it('stores what matching needs and returns it compactly', async () => {
    await importRecords([GHSA]);
    const store = AdvisoryStore.open(dataDir);
    try {
      const hits = store.advisoriesFor('PyPI', 'jinja2');
      expect(hits).toHaveLength(1);
      expect(hits[0]).toEqual({
        record: {
          id: 'GHSA-aaaa-bbbb-cccc',
          aliases: ['CVE-2024-1111'],
          upstream: [],
          summary: 'Bad thing',
          modified: '2024-02-01T00:00:00Z',
          published: '2024-01-01T00:00:00Z',
          severity: GHSA.severity,
          databaseSeverity: 'MODERATE',
          references: ['https://example.com/a'],
          source: expect.stringContaining('records-'),
        },
        name: 'Jinja2',
        ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { last_affected: '3.1.2' }] }],
        versions: ['3.1.0', '3.1.1', '3.1.2'],
        severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N' }],
      });
      // PEP 503: Jinja2, jinja2 and jinja_2-style spellings are one project.
      expect(store.advisoriesFor('PyPI', 'JINJA2')).toHaveLength(1);
      // Other ecosystems compare exactly, and the ecosystem string must match exactly.
      expect(store.advisoriesFor('pypi', 'jinja2')).toEqual([]);
      // Parsed records are cached: repeated lookups share one object.
      expect(store.advisoriesFor('PyPI', 'jinja2')[0]!.record).toBe(hits[0]!.record);
      expect(store.ecosystems()).toEqual(['PyPI']);
      expect(store.status()).toEqual([
        {
          ecosystem: 'PyPI',
          records: 1,
          newestModified: '2024-02-01T00:00:00Z',
          source: expect.any(String),
          importedAt: expect.any(String),
        },
      ]);
      expect(store.cveSeverity('CVE-2024-1111')).toBeUndefined();
    } finally {
      store.close();
    }
  });

  it('refuses a database written by a newer schema', async () => {
    await importRecords([GHSA]);
    const db = new Database(vulnDbPath(dataDir));
    db.prepare("UPDATE meta SET value = ? WHERE key = 'schema_version'").run(String(SCHEMA_VERSION + 1));
    db.close();
    expect(() => AdvisoryStore.open(dataDir)).toThrow(
      /schema version 2, but this Portcullis understands up to 1/,
    );
    try {
      AdvisoryStore.open(dataDir);
    } catch (err) {
      expect((err as VulnDbError).code).toBe('DB_SCHEMA_NEWER');
    }
    // An import must not overwrite it either.
    await expect(importRecords([GHSA])).rejects.toMatchObject({ code: 'DB_SCHEMA_NEWER' });
  });

  it('rejects a file that is not a Portcullis database', () => {
    mkdirSync(join(dataDir, 'vulndb'), { recursive: true });
    const db = new Database(vulnDbPath(dataDir));
    db.exec('CREATE TABLE other (x)');
    db.close();
    expect(() => AdvisoryStore.open(dataDir)).toThrow(VulnDbError);
  });
});

describe('osv-schema', () => {
  it('accepts real-world extras and rejects what would mislead matching', () => {
    expect(parseOsvRecord(GHSA).ok).toBe(true);
    expect(parseOsvRecord({ id: 'X', modified: '0001-01-01T00:00:00Z' }).ok).toBe(true);
    const bad = parseOsvRecord({
      id: 'X',
      modified: 'm',
      affected: [{ ranges: [{ type: 'SEMVER', events: [{ fixed: 1 }] }] }],
    });
    expect(bad).toMatchObject({
      ok: false,
      reason: expect.stringContaining('X: affected.0.ranges.0.events.0'),
    });
    expect(parseOsvRecord({ modified: 'm' })).toMatchObject({
      ok: false,
      reason: expect.stringContaining('(no id)'),
    });
    expect(
      parseOsvRecord({ id: 'X', modified: 'm', affected: [{ ranges: [{ type: 'SEMVER', events: [] }] }] }).ok,
    ).toBe(false);
  });

  it('packageKey normalises only PyPI', () => {
    expect(packageKey('PyPI', 'Foo_Bar.baz')).toBe('foo-bar-baz');
    expect(packageKey('npm', 'Foo_Bar')).toBe('Foo_Bar');
  });
});
