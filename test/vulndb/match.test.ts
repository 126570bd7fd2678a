import { describe, expect, it } from 'vitest';
import type { Package } from '../../src/sbom/model.js';
import { evaluateRange, matchPackages, osEcosystem, type AdvisorySource } from '../../src/vulndb/match.js';
import type { StoredAffected, StoredRecord, StoredSeverity } from '../../src/vulndb/store.js';
import { compareDebianVersions } from '../../src/vulndb/versions/dpkg.js';

/** A small in-memory database with the same interface as the SQLite store. */
class MemorySource implements AdvisorySource {
  rows: Array<{ ecosystem: string; affected: StoredAffected }> = [];
  cves = new Map<string, StoredSeverity[]>();
  add(ecosystem: string, name: string, record: Partial<StoredRecord> & { id: string }, ranges: StoredAffected['ranges'], versions: string[] = []) {
    const full: StoredRecord = { aliases: [], upstream: [], modified: '2024-01-01T00:00:00Z', severity: [], references: [], source: 'test', ...record };
    this.rows.push({ ecosystem, affected: { record: full, name, ranges, versions } });
    return this;
  }
  advisoriesFor(ecosystem: string, name: string) {
    return this.rows.filter((r) => r.ecosystem === ecosystem && r.affected.name === name).map((r) => r.affected);
  }
  cveSeverity(id: string) {
    return this.cves.get(id);
  }
  ecosystems() {
    return [...new Set(this.rows.map((r) => r.ecosystem))];
  }
}

const layer = { index: 0, digest: 'sha256:' + 'a'.repeat(64) };
function pkg(p: Partial<Package> & Pick<Package, 'type' | 'name' | 'version'>): Package {
  return { purl: `pkg:${p.type}/${p.name}@${p.version}`, paths: ['x'], licenses: [], layer, foundBy: 'test', ...p };
}
const eco = (events: StoredAffected['ranges'][number]['events'], type: 'ECOSYSTEM' | 'SEMVER' = 'ECOSYSTEM') => [{ type, events }];
const debian = { family: 'debian', version: '12.15' };

describe('OSV range evaluation', () => {
  const ranges: Array<[string, StoredAffected['ranges'][number]['events'], boolean, string?]> = [
    ['1.0', [{ introduced: '0' }, { fixed: '1.5' }], true, '1.5'],
    ['1.5', [{ introduced: '0' }, { fixed: '1.5' }], false],
    ['1.7', [{ introduced: '0' }, { fixed: '1.5' }, { introduced: '2.0' }, { fixed: '2.3' }], false],
    ['2.1', [{ introduced: '2.0' }, { fixed: '2.3' }, { introduced: '0' }, { fixed: '1.5' }], true, '2.3'],
    ['2.3', [{ introduced: '1.0' }, { last_affected: '2.3' }], true],
    ['2.4', [{ introduced: '1.0' }, { last_affected: '2.3' }], false],
    ['0.9', [{ introduced: '1.0' }], false],
    ['9.9', [{ introduced: '1.0' }], true],
    ['1:1.0', [{ introduced: '0' }, { fixed: '2.0' }], false], // the epoch makes it newer than the fix
    ['2.0~rc1', [{ introduced: '0' }, { fixed: '2.0' }], true, '2.0'],
    ['3.0', [{ introduced: '0' }, { limit: '2.0' }], false],
    ['1.0', [{ introduced: '0' }, { limit: '2.0' }], true],
  ];
  it.each(ranges)('%s in %j → %s', (version, events, expected, fixed) => {
    const v = evaluateRange(version, { type: 'ECOSYSTEM', events }, compareDebianVersions);
    expect(v.affected).toBe(expected);
    if (fixed) expect(v.fixed).toBe(fixed);
  });
});

describe('matching packages', () => {
  it('maps distro releases to OSV ecosystems', () => {
    expect(osEcosystem(debian)).toBe('Debian:12');
    expect(osEcosystem({ family: 'alpine', version: '3.20.3' })).toBe('Alpine:v3.20');
    expect(osEcosystem({ family: 'ubuntu', version: '22.04' })).toBe('Ubuntu:22.04');
    expect(osEcosystem(null)).toBeUndefined();
  });

  it('matches Debian packages through their source package and source version, epochs included, unfixed too', () => {
    const db = new MemorySource()
      .add('Debian:12', 'openssl', { id: 'DSA-9001-1', upstream: ['CVE-2099-0001'], aliases: [] }, eco([{ introduced: '0' }, { fixed: '3.0.21-1~deb12u1' }]))
      .add('Debian:12', 'openssl', { id: 'DEBIAN-CVE-2099-0001', upstream: ['CVE-2099-0001'] }, eco([{ introduced: '0' }, { fixed: '3.0.21-1~deb12u1' }]))
      .add('Debian:12', 'openssh', { id: 'DEBIAN-CVE-2099-0002', upstream: ['CVE-2099-0002'] }, eco([{ introduced: '0' }]))
      .add('Debian:12', 'openssh', { id: 'DEBIAN-CVE-2099-0003' }, eco([{ introduced: '0' }, { fixed: '1:9.2p1-2+deb12u3' }]))
      .add('Debian:11', 'openssl', { id: 'DSA-OLD' }, eco([{ introduced: '0' }]));
    db.cves.set('CVE-2099-0001', [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }]);
    const packages = [
      pkg({ type: 'deb', name: 'libssl3', version: '3.0.20-1~deb12u2', sourceName: 'openssl', sourceVersion: '3.0.20-1~deb12u2' }),
      pkg({ type: 'deb', name: 'openssh-server', version: '1:9.2p1-2+deb12u10', sourceName: 'openssh', sourceVersion: '1:9.2p1-2+deb12u10' }),
    ];
    const { findings, warnings } = matchPackages(db, debian, packages);
    expect(warnings).toEqual([]);
    const summary = findings.map((f) => `${f.package.name} ${f.id} [${f.aliases.join(',')}] fix=${f.fixedVersions.join('|') || 'none'} ${f.severity}`);
    expect(summary.sort()).toEqual([
      'libssl3 DEBIAN-CVE-2099-0001 [CVE-2099-0001,DSA-9001-1] fix=3.0.21-1~deb12u1 critical',
      'openssh-server DEBIAN-CVE-2099-0002 [CVE-2099-0002] fix=none unknown',
    ]);
    expect(findings.find((f) => f.package.name === 'libssl3')!.severitySource).toBe('upstream-cve');
  });

  it('never matches OS packages against upstream language ranges, nor owned language packages by default', () => {
    const db = new MemorySource()
      .add('PyPI', 'urllib3', { id: 'PYSEC-1' }, eco([{ introduced: '0' }, { fixed: '1.26.18' }]))
      .add('Debian:12', 'python-urllib3', { id: 'DEBIAN-CVE-X' }, eco([{ introduced: '0' }, { fixed: '1.26.12-1+deb12u1' }]));
    const packages = [
      pkg({ type: 'deb', name: 'python3-urllib3', version: '1.26.12-1+deb12u4', sourceName: 'python-urllib3', sourceVersion: '1.26.12-1+deb12u4' }),
      pkg({ type: 'pypi', name: 'urllib3', version: '1.26.12', ownedBy: { type: 'deb', name: 'python3-urllib3' } }),
    ];
    expect(matchPackages(db, debian, packages).findings).toEqual([]);
    expect(matchPackages(db, debian, packages, { matchOwnedLanguagePackages: true }).findings.map((f) => f.id)).toEqual(['PYSEC-1']);
  });

  it('skips withdrawn records, uses explicit version lists, and warns when the release is missing', () => {
    const db = new MemorySource()
      .add('npm', 'lodash', { id: 'GHSA-w', withdrawn: '2024-01-01T00:00:00Z' }, eco([{ introduced: '0' }], 'SEMVER'))
      .add('npm', 'lodash', { id: 'GHSA-v', databaseSeverity: 'MODERATE' }, [], ['4.17.15'])
      .add('npm', '@scope/pkg', { id: 'GHSA-s', aliases: ['CVE-1'] }, eco([{ introduced: '1.0.0' }, { fixed: '1.2.0' }], 'SEMVER'));
    const { findings, warnings } = matchPackages(db, debian, [
      pkg({ type: 'npm', name: 'lodash', version: '4.17.15' }),
      pkg({ type: 'npm', namespace: '@scope', name: 'pkg', version: '1.1.9' }),
      pkg({ type: 'deb', name: 'bash', version: '5.2.15-2+b7' }),
    ]);
    expect(findings.map((f) => `${f.id} ${f.severity} ${f.fixedVersions.join()}`).sort()).toEqual(['GHSA-s unknown 1.2.0', 'GHSA-v medium ']);
    expect(warnings.join('\n')).toMatch(/Debian:12 is not in the vulnerability database/);
  });

  it('matches Go modules and the standard library with SEMVER ranges despite the v prefix', () => {
    const db = new MemorySource()
      .add('Go', 'stdlib', { id: 'GO-1' }, eco([{ introduced: '0' }, { fixed: '1.19.9' }], 'SEMVER'))
      .add('Go', 'golang.org/x/net', { id: 'GO-2' }, eco([{ introduced: '0' }, { fixed: '0.7.0' }], 'SEMVER'));
    const { findings } = matchPackages(db, null, [
      pkg({ type: 'golang', name: 'stdlib', version: 'v1.19.8' }),
      pkg({ type: 'golang', namespace: 'golang.org/x', name: 'net', version: 'v0.7.0' }),
    ]);
    expect(findings.map((f) => f.id)).toEqual(['GO-1']);
  });
});
