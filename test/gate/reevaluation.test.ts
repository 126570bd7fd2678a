import { afterEach, describe, expect, it } from 'vitest';
import { encodeFacts, matchKeyRows, packageIndexRows, type StoredVerdict } from '../../src/gate/index.js';
import type { ScanResult } from '../../src/sbom/result.js';
import { rm } from 'node:fs/promises';
import { importRecordsInto, startGatedRegistry, waitFor, type GatedRegistry } from './gate-harness.js';

const POLICY = `version: 1
name: fixable
defaultAction: ignore
rules:
  - id: fixable
    action: fail
    vulnerability: { severity: any, fixAvailable: true }
`;

const advisory = (id: string, name: string, fixed: string) => ({
  id,
  modified: '2026-01-01T00:00:00Z',
  affected: [{ package: { ecosystem: 'Alpine:v3.20', name }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }] }],
});

const layer = { index: 0, digest: `sha256:${'a'.repeat(64)}` };
const apk = (name: string, version: string) => ({ type: 'apk' as const, namespace: 'alpine', name, version, sourceName: name, purl: `pkg:apk/alpine/${name}@${version}`, paths: ['lib/apk/db/installed'], licenses: [], layer, foundBy: 'apk' });

function facts(digest: string, zlib: string): ScanResult {
  return {
    schemaVersion: 1,
    generator: { name: 'portcullis', version: 'test' },
    scannedAt: '2026-01-01T00:00:00Z',
    image: { reference: digest, manifestDigest: digest, configDigest: digest, layers: [layer] },
    os: { family: 'alpine', version: '3.20.3' },
    packages: [apk('musl', '1.2.5-r1'), apk('zlib', zlib)],
    warnings: [],
    secrets: [],
    misconfigurations: [],
  };
}

let reg: GatedRegistry | undefined;
afterEach(async () => {
  await reg?.stop();
  reg = undefined;
});

describe('re-evaluation after a database import', () => {
  it('decides again every image holding a changed package: the statuses follow the new database, only those whose status moved get a new document and emit verdict_changed', async () => {
    reg = await startGatedRegistry(POLICY, { startRunner: false });
    await reg.importRecords([advisory('ALPINE-CVE-2026-2000', 'musl', '1.2.5-r1')]);
    const { artifacts } = reg.app.registry.metadata;
    // 45 images (more than one batch), 30 with the zlib the coming advisory affects; one digest is in two repositories.
    const images: { repository: string; digest: string; affected: boolean }[] = [];
    for (let i = 0; i < 45; i++) {
      const digest = `sha256:${i.toString(16).padStart(64, '0')}`;
      const result = facts(digest, i < 30 ? '1.3.1-r1' : '1.3.1-r2');
      await artifacts.putFacts(digest, encodeFacts(result), packageIndexRows(result));
      images.push({ repository: `team/app${i % 4}`, digest, affected: i < 30 });
      if (i === 0) images.push({ repository: 'other/app', digest, affected: true });
    }
    for (const img of images) expect((await reg.gate.verdicts.evaluate(img.repository, img.digest))?.status).toBe('pass');
    reg.events.length = 0;

    await reg.importRecords([advisory('ALPINE-CVE-2026-3000', 'zlib', '1.3.1-r2')]);
    const version = reg.gate.vulndb.version();
    await waitFor('the re-evaluation', async () => reg!.events.some((e) => e.type === 'new_advisory_affects'));

    for (const img of images) {
      const row = await artifacts.getVerdict(img.repository, img.digest);
      expect(row?.status).toBe(img.affected ? 'fail' : 'pass');
      // A changed status is stored deferred (status and failed rules; the document is still the
      // old one, of the old status); an unchanged one keeps its row. Either is evaluated in full on
      // the new database when read.
      const stored = JSON.parse(row!.verdict) as StoredVerdict;
      expect(stored.status).toBe('pass');
      expect(stored.dbVersion === version).toBe(false);
      if (img.affected) expect(JSON.parse(row!.deferred!)).toMatchObject({ failReasons: ['fixable'], dbVersion: version });
      else expect(row?.deferred ?? null).toBeNull();
      const current = await reg.gate.verdicts.current(img.repository, img.digest);
      expect(current?.status).toBe(row?.status);
      expect(current?.dbVersion).toBe(version);
      expect(current?.verdict?.reasons[0]?.ruleId).toBe(img.affected ? 'fixable' : undefined);
      // That read stored the full document: no longer deferred.
      expect((await artifacts.getVerdict(img.repository, img.digest))?.deferred ?? null).toBeNull();
    }
    const changed = reg.events.filter((e) => e.type === 'verdict_changed');
    expect(changed).toHaveLength(31);
    expect(changed.every((e) => e.type === 'verdict_changed' && e.from === 'pass' && e.to === 'fail' && e.reasons[0] === 'fixable')).toBe(true);
    expect(new Set(changed.map((e) => (e.type === 'verdict_changed' ? `${e.repository}@${e.digest}` : '')))).toEqual(
      new Set(images.filter((i) => i.affected).map((i) => `${i.repository}@${i.digest}`)),
    );
    const affects = reg.events.filter((e) => e.type === 'new_advisory_affects');
    expect(affects).toHaveLength(1);
    expect(affects[0]).toMatchObject({ advisory: 'ALPINE-CVE-2026-3000', fixAvailable: true });
    expect(affects[0]?.type === 'new_advisory_affects' && affects[0].artifacts).toHaveLength(31);
  });

  it('decides from stored match keys what a full evaluation decides, exceptions and projects included', async () => {
    const policy = `${POLICY}exceptions:
  - id: ALPINE-CVE-2026-3000
    scope: { repository: team/app1 }
    reason: not reachable
  - id: ALPINE-CVE-2026-3000
    scope: { project: other }
    reason: accepted for now
    expires: 2020-01-01
`;
    reg = await startGatedRegistry(policy, { startRunner: false });
    await reg.importRecords([advisory('ALPINE-CVE-2026-2000', 'musl', '1.2.5-r1')]);
    const { artifacts } = reg.app.registry.metadata;
    const images: { repository: string; digest: string }[] = [];
    for (let i = 0; i < 24; i++) {
      const digest = `sha256:${(i + 100).toString(16).padStart(64, '0')}`;
      const result = facts(digest, ['1.3.1-r0', '1.3.1-r1', '1.3.1-r2'][i % 3]!);
      await artifacts.putFacts(digest, encodeFacts(result), packageIndexRows(result), matchKeyRows(result));
      images.push({ repository: i % 4 === 3 ? 'other/app' : `team/app${i % 4}`, digest });
    }
    for (const img of images) await reg.gate.verdicts.evaluate(img.repository, img.digest);
    reg.events.length = 0;

    await reg.importRecords([advisory('ALPINE-CVE-2026-3000', 'zlib', '1.3.1-r2')]);
    await waitFor('the re-evaluation', async () => reg!.events.some((e) => e.type === 'new_advisory_affects'));
    const decided = new Map<string, string>();
    for (const img of images) decided.set(`${img.repository}@${img.digest}`, (await artifacts.getVerdict(img.repository, img.digest))!.status);
    // A full evaluation of each, from its facts: the same statuses.
    for (const img of images) {
      const full = await reg.gate.verdicts.evaluate(img.repository, img.digest);
      expect(decided.get(`${img.repository}@${img.digest}`), `${img.repository}@${img.digest}`).toBe(full?.status);
    }
    const statuses = [...decided.entries()].map(([k, v]) => `${k.split('@')[0]} ${v}`);
    expect(statuses.filter((s) => s.endsWith('fail')).length).toBeGreaterThan(0);
    expect(statuses.filter((s) => s.startsWith('team/app1')).every((s) => s.endsWith('pass'))).toBe(true);
    expect(statuses.filter((s) => s.startsWith('other/app') && s.endsWith('fail')).length).toBeGreaterThan(0);
  });

  it('catches up at start with an update imported while the server was down, once, even with a second server on the same data', async () => {
    reg = await startGatedRegistry(POLICY, { startRunner: false, keepData: true });
    const dataDir = reg.dataDir;
    try {
      await reg.importRecords([advisory('ALPINE-CVE-2026-2000', 'musl', '1.2.5-r1')]);
      const { artifacts } = reg.app.registry.metadata;
      const digests: string[] = [];
      for (let i = 0; i < 3; i++) {
        const digest = `sha256:${(i + 200).toString(16).padStart(64, '0')}`;
        const result = facts(digest, '1.3.1-r1');
        await artifacts.putFacts(digest, encodeFacts(result), packageIndexRows(result), matchKeyRows(result));
        expect((await reg.gate.verdicts.evaluate('team/app', digest))?.status).toBe('pass');
        digests.push(digest);
      }
      // The monitor has recorded how far it followed the database.
      await waitFor('the checkpoint', async () => JSON.parse((await artifacts.getGateState('vulndb-checkpoint')) ?? '{"generation":0}').generation === 1);
      await reg.stop();
      reg = undefined;

      await importRecordsInto(dataDir, [advisory('ALPINE-CVE-2026-3000', 'zlib', '1.3.1-r2')]);
      // Two servers on the same data folder, as two replicas looking at once: only one re-decides and announces.
      reg = await startGatedRegistry(POLICY, { startRunner: false, dataDir, keepData: true, monitorMs: false });
      const second = await startGatedRegistry(POLICY, { startRunner: false, dataDir, keepData: true, monitorMs: false });
      try {
        const decided = await Promise.all([reg.gate.checkDatabase(), second.gate.checkDatabase()]);
        expect(decided.sort()).toEqual([0, 3]);
        const all = [...reg.events, ...second.events];
        expect(all.filter((e) => e.type === 'new_advisory_affects')).toHaveLength(1);
        expect(all.filter((e) => e.type === 'verdict_changed')).toHaveLength(3);
        for (const digest of digests) expect((await reg.app.registry.metadata.artifacts.getVerdict('team/app', digest))?.status).toBe('fail');
      } finally {
        await second.stop();
      }
    } finally {
      await reg?.stop();
      reg = undefined;
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});
