import { describe, expect, it } from 'vitest';

import { CDX_PROPERTY, toCycloneDx, validateCycloneDx } from '../../src/sbom/cyclonedx.js';
import { makeAlpineResult, makeResult } from './fixture.js';

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
