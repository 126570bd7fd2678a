import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AdvisoryStore, importOsv } from '../../src/vulndb/index.js';

let dir: string;
let n = 0;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-changes-'));
});
afterEach(async () => rm(dir, { recursive: true, force: true }));

async function importRecords(records: unknown[]): Promise<void> {
  const src = join(dir, `src-${n++}`);
  mkdirSync(src);
  records.forEach((r, i) => writeFileSync(join(src, `r${i}.json`), JSON.stringify(r)));
  await importOsv(join(dir, 'data'), [src]);
}

const rec = (id: string, modified: string, names: string[], extra: Record<string, unknown> = {}) => ({
  id,
  modified,
  ...extra,
  affected: names.map((name) => ({ package: { ecosystem: 'Alpine:v3.20', name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2' }] }] })),
});

const pkgs = (c: { packages: { name: string }[] } | null) => (c?.packages.map((p) => p.name) ?? []).sort();

describe('the vulnerability database change log', () => {
  it('lists the packages each import changed, before and after, so a registry re-evaluates only those', async () => {
    await importRecords([rec('ALPINE-CVE-2026-1', '2026-01-01T00:00:00Z', ['musl', 'zlib']), rec('ALPINE-CVE-2026-2', '2026-01-01T00:00:00Z', ['curl'], { upstream: ['CVE-2026-2'] })]);
    let store = AdvisoryStore.open(join(dir, 'data'));
    expect(store.generation()).toBe(1);
    expect(pkgs(store.changesSince(0))).toEqual(['curl', 'musl', 'zlib']);
    expect(store.changesSince(1)).toEqual({ generation: 1, packages: [], records: [] });
    store.close();

    // A newer version of record 1 drops zlib and names openssl: all three changed. Record 2 is unchanged.
    await importRecords([rec('ALPINE-CVE-2026-1', '2026-02-01T00:00:00Z', ['musl', 'openssl']), rec('ALPINE-CVE-2026-2', '2026-01-01T00:00:00Z', ['curl'])]);
    store = AdvisoryStore.open(join(dir, 'data'));
    expect(store.generation()).toBe(2);
    const second = store.changesSince(1);
    expect(pkgs(second)).toEqual(['musl', 'openssl', 'zlib']);
    expect(second?.records).toEqual(['ALPINE-CVE-2026-1']);
    expect(pkgs(store.changesSince(0))).toEqual(['curl', 'musl', 'openssl', 'zlib']);
    store.close();

    // A CVE record that only brings a severity changes the distro records that name it.
    await importRecords([{ id: 'CVE-2026-2', modified: '2026-03-01T00:00:00Z', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] }]);
    store = AdvisoryStore.open(join(dir, 'data'));
    const third = store.changesSince(2);
    expect(pkgs(third)).toEqual(['curl']);
    expect(third?.records).toContain('ALPINE-CVE-2026-2');
    store.close();
  });

  it('says when its log no longer reaches back far enough', async () => {
    for (let i = 0; i < 22; i++) await importRecords([rec(`ALPINE-CVE-2026-${100 + i}`, '2026-01-01T00:00:00Z', [`p${i}`])]);
    const store = AdvisoryStore.open(join(dir, 'data'));
    expect(store.generation()).toBe(22);
    expect(store.changesSince(0)).toBeNull();
    expect(pkgs(store.changesSince(21))).toEqual(['p21']);
    store.close();
  });
});
