import type { Finding } from '../../src/sbom/finding.js';

/** A minimal finding; override what a test cares about. */
export function finding(
  over: Partial<Omit<Finding, 'package'>> & { package?: Partial<Finding['package']> } = {},
): Finding {
  const { package: pkg, ...rest } = over;
  return {
    id: 'CVE-2024-0001',
    aliases: [],
    ecosystem: 'Debian:12',
    matchedName: 'openssl',
    installedVersion: '3.0.11-1',
    fixedVersions: ['3.0.13-1'],
    severity: 'high',
    references: [],
    ...rest,
    package: {
      type: 'deb',
      namespace: 'debian',
      name: 'libssl3',
      version: '3.0.11-1',
      purl: 'pkg:deb/debian/libssl3@3.0.11-1?arch=amd64&distro=debian-12',
      sourceName: 'openssl',
      layer: { index: 0, digest: 'sha256:' + 'a'.repeat(64) },
      paths: [],
      ...pkg,
    },
  };
}
