import { describe, expect, it } from 'vitest';

import { CDX_PROPERTY, toCycloneDx, validateCycloneDx } from '../../src/sbom/cyclonedx.js';
import { makeAlpineResult, makeResult, makeVulnResult } from './fixture.js';

interface CdxComponent {
  type: string;
  name: string;
  group?: string;
  version?: string;
  purl?: string;
  'bom-ref'?: string;
  licenses?: ({ license: { id?: string; name?: string } } | { expression: string })[];
  properties?: { name: string; value: string }[];
}

interface CdxBom {
  bomFormat: string;
  specVersion: string;
  serialNumber: string;
  metadata: { timestamp: string; component: CdxComponent; properties?: { name: string; value: string }[] };
  components: CdxComponent[];
  dependencies: { ref: string; dependsOn?: string[] }[];
}

describe('toCycloneDx', () => {
  const result = makeResult();
  const bom = toCycloneDx(result) as CdxBom;
  const byPurl = (purl: string) => bom.components.find((c) => c.purl === purl);

  it('is CycloneDX 1.6 JSON that passes the strict schema validator', async () => {
    expect(bom.bomFormat).toBe('CycloneDX');
    expect(bom.specVersion).toBe('1.6');
    expect(bom.serialNumber).toMatch(
      /^urn:uuid:[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/,
    );
    expect(await validateCycloneDx(JSON.stringify(bom))).toBeNull();
    expect(await validateCycloneDx(JSON.stringify(toCycloneDx(makeAlpineResult())))).toBeNull();
  });

  it('reports invalid documents', async () => {
    const broken = { ...bom, components: [{ type: 'not-a-type', name: 'x' }] };
    expect(await validateCycloneDx(JSON.stringify(broken))).not.toBeNull();
  });

  it('describes the image as the metadata component', () => {
    const image = bom.metadata.component;
    expect(image.type).toBe('container');
    expect(image.name).toBe('docker.io/library/example:1.0');
    expect(image.version).toBe(result.image.manifestDigest);
    expect(image.purl).toBe(
      `pkg:oci/example@${result.image.manifestDigest}?arch=amd64&repository_url=docker.io%2Flibrary%2Fexample&tag=1.0`,
    );
    expect(bom.metadata.timestamp).toBe('2024-05-01T12:34:56.789Z');
    expect(bom.metadata.properties).toContainEqual({ name: CDX_PROPERTY.warning, value: result.warnings[0] });
  });

  it('contains every package with its purl and layer properties', () => {
    for (const pkg of result.packages) {
      const c = byPurl(pkg.purl);
      expect(c, pkg.purl).toBeDefined();
      expect(c?.type).toBe('library');
      expect(c?.['bom-ref']).toBe(pkg.purl);
      expect(c?.version).toBe(pkg.version);
      expect(c?.properties).toContainEqual({ name: CDX_PROPERTY.layerDigest, value: pkg.layer.digest });
      for (const path of pkg.paths)
        expect(c?.properties).toContainEqual({ name: CDX_PROPERTY.path, value: path });
    }
    expect(bom.components.filter((c) => c.type === 'library')).toHaveLength(result.packages.length);
  });

  it('adds the operating system and a dependency graph from the image', () => {
    const os = bom.components.find((c) => c.type === 'operating-system');
    expect(os).toMatchObject({ name: 'debian', version: '12' });
    const root = bom.dependencies.find((d) => d.ref === bom.metadata.component['bom-ref']);
    expect(root?.dependsOn).toHaveLength(result.packages.length + 1);
  });

  it('uses SPDX ids, expressions or names for licenses', () => {
    expect(byPurl('pkg:npm/%40babel/core@7.23.0')?.licenses).toEqual([{ license: { id: 'MIT' } }]);
    expect(byPurl('pkg:npm/left-pad@1.3.0')?.licenses).toEqual([{ expression: 'MIT OR Apache-2.0' }]);
    const login = byPurl('pkg:deb/debian/login@1:4.13+dfsg1-1+b1?arch=amd64&distro=debian-12');
    expect(login?.licenses).toEqual(
      expect.arrayContaining([{ license: { name: 'GPL-2+' } }, { license: { id: 'BSD-3-Clause' } }]),
    );
  });

  it('names Go modules by path and groups npm scopes and Maven groupIds', () => {
    expect(byPurl('pkg:golang/github.com/sirupsen/logrus@v1.9.3')?.name).toBe('github.com/sirupsen/logrus');
    expect(byPurl('pkg:npm/%40babel/core@7.23.0')?.group).toBe('@babel');
    expect(byPurl('pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1')?.group).toBe(
      'org.apache.logging.log4j',
    );
  });

  it('is reproducible for the same scan', () => {
    expect(JSON.stringify(toCycloneDx(makeResult()))).toBe(JSON.stringify(bom));
  });
});

interface CdxVulnerability {
  'bom-ref': string;
  id: string;
  source?: { name?: string; url?: string };
  references?: { id: string; source: { name?: string; url?: string } }[];
  ratings?: {
    score?: number;
    severity?: string;
    method?: string;
    vector?: string;
    source?: { name?: string };
  }[];
  description?: string;
  recommendation?: string;
  advisories?: { url: string }[];
  published?: string;
  updated?: string;
  affects: { ref: string; versions?: { version?: string; status?: string }[] }[];
}

describe('toCycloneDx with vulnerabilities', () => {
  const result = makeVulnResult();
  const bom = toCycloneDx(result) as CdxBom & { vulnerabilities: CdxVulnerability[] };
  const vuln = (id: string, purlStart: string) =>
    bom.vulnerabilities.find((v) => v.id === id && v.affects[0]?.ref.startsWith(purlStart));

  it('still passes the strict 1.6 schema validator', async () => {
    expect(await validateCycloneDx(JSON.stringify(bom))).toBeNull();
  });

  it('writes one vulnerability per finding, affecting its package component', () => {
    expect(bom.vulnerabilities).toHaveLength(result.vulnerabilities?.length ?? -1);
    for (const finding of result.vulnerabilities ?? []) {
      const v = vuln(finding.id, finding.package.purl);
      expect(v, `${finding.id} ${finding.package.purl}`).toBeDefined();
      const component = bom.components.find((c) => c['bom-ref'] === v?.affects[0]?.ref);
      expect(component?.purl).toBe(finding.package.purl);
      expect(v?.affects).toEqual([
        { ref: component?.['bom-ref'], versions: [{ version: finding.package.version, status: 'affected' }] },
      ]);
    }
    const refs = bom.vulnerabilities.map((v) => v['bom-ref']);
    expect(new Set(refs).size).toBe(refs.length);
    // Suppressed findings are not written.
    expect(bom.vulnerabilities.some((v) => v.id === 'CVE-2023-29383')).toBe(false);
  });

  it('carries ratings, sources, aliases, advisories, dates and a recommendation', () => {
    const ssl = vuln('CVE-2024-0001', 'pkg:deb/debian/libssl3@');
    expect(ssl).toMatchObject({
      source: { name: 'Debian', url: 'https://security-tracker.debian.org/tracker/CVE-2024-0001' },
      references: [{ id: 'DSA-5600-1', source: { name: 'Debian' } }],
      ratings: [
        {
          score: 9.8,
          severity: 'critical',
          method: 'CVSSv31',
          vector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
          source: { name: 'Debian' },
        },
      ],
      description: 'Heap buffer overflow in the certificate parser allows remote code execution',
      recommendation: 'Upgrade libssl3 to 3.0.13-1~deb12u1 or later',
      published: '2024-01-10T00:00:00.000Z',
      updated: '2024-02-01T12:00:00.000Z',
    });
    expect(ssl?.advisories).toHaveLength(2);

    const babel = vuln('GHSA-67hx-6x53-jw92', 'pkg:npm/%40babel/core@');
    expect(babel?.source?.name).toBe('GitHub');
    expect(babel?.references).toEqual([
      {
        id: 'CVE-2023-45133',
        source: { name: 'NVD', url: 'https://nvd.nist.gov/vuln/detail/CVE-2023-45133' },
      },
    ]);
    expect(babel?.ratings?.[0]).toMatchObject({ method: 'CVSSv4', score: 9.3, severity: 'critical' });

    // Rated from the upstream CVE record: NVD is the rating's source.
    expect(vuln('CVE-2024-0002', 'pkg:deb/debian/login@')?.ratings?.[0]?.source?.name).toBe('NVD');

    const gpasswd = vuln('CVE-2023-4641', 'pkg:deb/debian/login@');
    expect(gpasswd?.ratings).toEqual([
      {
        severity: 'high',
        source: { name: 'Debian', url: 'https://security-tracker.debian.org/tracker/CVE-2023-4641' },
      },
    ]);
    expect(gpasswd?.recommendation).toBeUndefined();

    const leftPad = vuln('OSV-2020-111', 'pkg:npm/left-pad@');
    expect(leftPad?.source?.name).toBe('OSV');
    expect(leftPad?.ratings).toEqual([{ severity: 'unknown' }]);
  });

  it('writes no vulnerabilities for an SBOM result', () => {
    expect(bom.components).toEqual((toCycloneDx(makeResult()) as CdxBom).components);
    expect(toCycloneDx(makeResult())).not.toHaveProperty('vulnerabilities');
  });

  it('is reproducible whatever the finding order', () => {
    const shuffled = { ...result, vulnerabilities: [...(result.vulnerabilities ?? [])].reverse() };
    expect(JSON.stringify(toCycloneDx(shuffled))).toBe(JSON.stringify(bom));
  });
});
