import { describe, expect, it } from 'vitest';

import { toSpdx, toSpdxExpression, validateSpdx } from '../../src/sbom/spdx.js';
import { makeAlpineResult, makeResult } from './fixture.js';

describe('toSpdxExpression', () => {
  it('keeps valid expressions in canonical form', () => {
    expect(toSpdxExpression('MIT')).toBe('MIT');
    expect(toSpdxExpression('mit or apache-2.0')).toBe('MIT OR Apache-2.0');
    expect(toSpdxExpression('(MIT OR Apache-2.0) AND BSD-3-Clause')).toBe(
      '(MIT OR Apache-2.0) AND BSD-3-Clause',
    );
    expect(toSpdxExpression('GPL-2.0-or-later WITH Classpath-exception-2.0')).toBe(
      'GPL-2.0-or-later WITH Classpath-exception-2.0',
    );
    expect(toSpdxExpression('LicenseRef-acme')).toBe('LicenseRef-acme');
  });

  it('rejects free-text names', () => {
    expect(toSpdxExpression('GPL-2+')).toBeUndefined();
    expect(toSpdxExpression('Python Software Foundation License')).toBeUndefined();
    expect(toSpdxExpression('')).toBeUndefined();
  });
});

describe('toSpdx', () => {
  const result = makeResult();
  const doc = toSpdx(result);
  const text = JSON.stringify(doc, null, 2);

  it('validates against the SPDX 2.3 document schema', () => {
    // No npm or Debian package ships the official SPDX 2.3 JSON schema, so the check is
    // validateSpdx's own zod description of the SPDX 2.3 fields Portcullis writes.
    expect(validateSpdx(text)).toBeNull();
    expect(validateSpdx(JSON.stringify(toSpdx(makeAlpineResult())))).toBeNull();
  });

  it('has the required document fields', () => {
    expect(doc).toMatchObject({
      spdxVersion: 'SPDX-2.3',
      dataLicense: 'CC0-1.0',
      SPDXID: 'SPDXRef-DOCUMENT',
      name: 'docker.io/library/example:1.0',
      creationInfo: { created: '2024-05-01T12:34:56Z', creators: ['Tool: portcullis-0.1.0'] },
    });
    expect(doc.documentNamespace).toMatch(
      /^https:\/\/spdx\.org\/spdxdocs\/portcullis\/docker.io-library-example-1.0-[0-9a-f-]{36}$/,
    );
  });

  it('gives different scans different namespaces', () => {
    const later = toSpdx({ ...result, scannedAt: '2024-05-02T00:00:00Z' });
    expect(later.documentNamespace).not.toBe(doc.documentNamespace);
    expect(toSpdx(makeResult()).documentNamespace).toBe(doc.documentNamespace);
  });

  it('lists every package with a PACKAGE-MANAGER purl reference', () => {
    for (const pkg of result.packages) {
      const found = doc.packages.filter((p) =>
        p.externalRefs?.some(
          (r) =>
            r.referenceCategory === 'PACKAGE-MANAGER' &&
            r.referenceType === 'purl' &&
            r.referenceLocator === pkg.purl,
        ),
      );
      expect(found, pkg.purl).toHaveLength(1);
      expect(found[0]).toMatchObject({
        versionInfo: pkg.version,
        downloadLocation: 'NOASSERTION',
        filesAnalyzed: false,
        primaryPackagePurpose: 'LIBRARY',
      });
      expect(found[0]?.SPDXID).toMatch(/^SPDXRef-[A-Za-z0-9.-]+$/);
    }
  });

  it('describes the image, which contains the OS and every package', () => {
    const image = doc.packages.find((p) => p.primaryPackagePurpose === 'CONTAINER');
    expect(image?.externalRefs?.[0]?.referenceLocator).toMatch(/^pkg:oci\/example@sha256:/);
    expect(image?.checksums).toEqual([{ algorithm: 'SHA256', checksumValue: '1'.repeat(64) }]);
    expect(doc.relationships).toContainEqual({
      spdxElementId: 'SPDXRef-DOCUMENT',
      relationshipType: 'DESCRIBES',
      relatedSpdxElement: image?.SPDXID,
    });
    const contained = doc.relationships.filter((r) => r.relationshipType === 'CONTAINS');
    expect(contained).toHaveLength(result.packages.length + 1);
    expect(doc.packages.find((p) => p.SPDXID === 'SPDXRef-OperatingSystem')).toMatchObject({
      name: 'debian',
      versionInfo: '12',
      comment: 'Operating system of the image: Debian GNU/Linux 12 (bookworm)',
    });
  });

  it('declares licenses as SPDX expressions, defining LicenseRefs for free text', () => {
    const byName = (name: string) => doc.packages.find((p) => p.name === name);
    expect(byName('@babel/core')?.licenseDeclared).toBe('MIT');
    expect(byName('left-pad')?.licenseDeclared).toBe('MIT OR Apache-2.0');
    expect(byName('github.com/sirupsen/logrus')?.licenseDeclared).toBe('NOASSERTION');
    const login = byName('login')?.licenseDeclared ?? '';
    expect(login).toMatch(/^LicenseRef-GPL-2-[0-9a-f]{8} AND BSD-3-Clause$/);
    const ref = login.split(' ')[0];
    expect(doc.hasExtractedLicensingInfos).toContainEqual(
      expect.objectContaining({ licenseId: ref, name: 'GPL-2+', extractedText: 'GPL-2+' }),
    );
    for (const p of doc.packages) expect(p.licenseConcluded).toBe('NOASSERTION');
    expect(byName('login')?.sourceInfo).toBe('built from source package shadow 1:4.13+dfsg1-1');
  });
});

describe('validateSpdx', () => {
  const good = toSpdx(makeResult());

  it('rejects documents that break the schema', () => {
    const cases: [string, unknown][] = [
      ['bad SPDXID', { ...good, packages: [{ ...good.packages[0], SPDXID: 'SPDXRef-has space' }] }],
      [
        'fractional seconds',
        { ...good, creationInfo: { ...good.creationInfo, created: '2024-05-01T12:34:56.789Z' } },
      ],
      ['unknown field', { ...good, extra: true }],
      ['bad license', { ...good, packages: [{ ...good.packages[0], licenseDeclared: 'MIT and-or GPL' }] }],
      [
        'dangling relationship',
        {
          ...good,
          relationships: [
            ...good.relationships,
            {
              spdxElementId: 'SPDXRef-Image',
              relationshipType: 'CONTAINS',
              relatedSpdxElement: 'SPDXRef-nope',
            },
          ],
        },
      ],
      ['undefined LicenseRef', { ...good, hasExtractedLicensingInfos: undefined }],
      ['missing namespace', { ...good, documentNamespace: undefined }],
      [
        'purpose spelt differently by 2.3 schemas',
        { ...good, packages: [{ ...good.packages[0], primaryPackagePurpose: 'OPERATING-SYSTEM' }] },
      ],
    ];
    for (const [label, doc] of cases) expect(validateSpdx(JSON.stringify(doc)), label).not.toBeNull();
    expect(validateSpdx('{')).toEqual([expect.objectContaining({ path: '' })]);
  });
});
