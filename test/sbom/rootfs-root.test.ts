import { describe, expect, it } from 'vitest';
import { formatResult, validateCycloneDx, validateSpdx } from '../../src/sbom/index.js';
import { makeResult } from './fixture.js';

// A dir: scan has no image digest. Its root component must then carry no version and no purl,
// rather than an empty version and a bare `pkg:oci/image` that names nothing.
const folder = () => {
  const r = makeResult();
  return {
    ...r,
    image: {
      reference: 'dir:/srv/rootfs',
      manifestDigest: '',
      configDigest: '',
      layers: [{ index: 0, digest: '' }],
    },
  };
};

describe('the root of a root-filesystem folder scan', () => {
  it('CycloneDX: a container component without version or purl, and the document validates', async () => {
    const text = formatResult(folder(), 'cyclonedx');
    const root = JSON.parse(text).metadata.component;
    expect(root).toMatchObject({ type: 'container', name: 'dir:/srv/rootfs' });
    expect(root.version).toBeUndefined();
    expect(root.purl).toBeUndefined();
    expect(await validateCycloneDx(text)).toBeNull();
  });

  it('SPDX: a package without versionInfo or purl, and the document validates', async () => {
    const text = formatResult(folder(), 'spdx');
    const root = JSON.parse(text).packages.find((p: { SPDXID: string }) => p.SPDXID === 'SPDXRef-Image');
    expect(root.name).toBe('dir:/srv/rootfs');
    expect(root.versionInfo).toBeUndefined();
    expect(root.externalRefs).toBeUndefined();
    expect(await validateSpdx(text)).toBeNull();
  });

  it('an image keeps its digest as version and its purl', () => {
    const root = JSON.parse(formatResult(makeResult(), 'cyclonedx')).metadata.component;
    expect(root.version).toMatch(/^sha256:/);
    expect(root.purl).toMatch(/^pkg:oci\//);
  });
});
