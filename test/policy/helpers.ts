import type { Finding, Misconfiguration, SecretFinding } from '../../src/sbom/finding.js';

export const LAYER = { index: 0, digest: `sha256:${'a'.repeat(64)}` };

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

/** A secret found in a file; override what a test cares about. */
export const secret = (over: Partial<SecretFinding> = {}): SecretFinding => ({
  ruleId: 'aws-access-key-id',
  title: 'AWS access key ID',
  severity: 'critical',
  location: 'file',
  target: 'app/.env',
  line: 2,
  layer: LAYER,
  redacted: 'AKIA…(20 chars)',
  ...over,
});

/** A failed misconfiguration check; override what a test cares about. */
export const check = (over: Partial<Misconfiguration> = {}): Misconfiguration => ({
  id: 'PC-IMG-001',
  title: 'Image runs as root',
  severity: 'high',
  message: 'the image sets no USER',
  remedy: 'Add USER 10001 in the final stage.',
  target: 'config.User',
  ...over,
});
