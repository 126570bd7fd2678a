/** A hand-built ScanResult shared by the SBOM writer tests. */
import type { Finding, Misconfiguration, SecretFinding } from '../../src/sbom/finding.js';
import type { OsInfo, Package, PackageRecord } from '../../src/sbom/model.js';
import { buildPurl } from '../../src/sbom/purl.js';
import type { ScanResult } from '../../src/sbom/result.js';

export const LAYERS = [
  { index: 0, digest: `sha256:${'a'.repeat(64)}`, diffId: `sha256:${'b'.repeat(64)}` },
  { index: 1, digest: `sha256:${'c'.repeat(64)}` },
  { index: 2, digest: `sha256:${'d'.repeat(64)}` },
];

export const DEBIAN: OsInfo = {
  family: 'debian',
  version: '12',
  name: 'Debian GNU/Linux 12 (bookworm)',
  codename: 'bookworm',
};

function pkg(record: PackageRecord, layer: number, foundBy: string, os: OsInfo | null = DEBIAN): Package {
  const ref = LAYERS[layer];
  if (!ref) throw new Error(`no layer ${layer}`);
  return {
    ...record,
    purl: buildPurl(record, os),
    paths: record.paths ?? [],
    licenses: record.licenses ?? [],
    layer: ref,
    foundBy,
  };
}

export function makeResult(): ScanResult {
  return {
    schemaVersion: 1,
    generator: { name: 'portcullis', version: '0.1.0' },
    scannedAt: '2024-05-01T12:34:56.789Z',
    image: {
      reference: 'docker.io/library/example:1.0',
      manifestDigest: `sha256:${'1'.repeat(64)}`,
      configDigest: `sha256:${'2'.repeat(64)}`,
      platform: { os: 'linux', architecture: 'amd64' },
      layers: LAYERS,
      repoTags: ['example:1.0'],
      created: '2024-04-30T08:00:00Z',
    },
    os: DEBIAN,
    packages: [
      pkg(
        {
          type: 'deb',
          name: 'libssl3',
          version: '3.0.11-1~deb12u2',
          sourceName: 'openssl',
          arch: 'amd64',
          licenses: ['Apache-2.0'],
          paths: ['/var/lib/dpkg/status'],
        },
        0,
        'dpkg',
      ),
      pkg(
        {
          type: 'deb',
          name: 'login',
          version: '1:4.13+dfsg1-1+b1',
          sourceName: 'shadow',
          sourceVersion: '1:4.13+dfsg1-1',
          arch: 'amd64',
          licenses: ['GPL-2+', 'BSD-3-clause'],
          paths: ['/var/lib/dpkg/status'],
        },
        0,
        'dpkg',
      ),
      pkg(
        {
          type: 'npm',
          namespace: '@babel',
          name: 'core',
          version: '7.23.0',
          licenses: ['MIT'],
          paths: ['/app/node_modules/@babel/core/package.json'],
          properties: { installPath: 'node_modules/@babel/core' },
        },
        2,
        'npm',
      ),
      pkg(
        {
          type: 'npm',
          name: 'left-pad',
          version: '1.3.0',
          licenses: ['mit or apache-2.0'],
          dev: true,
          paths: ['/app/package-lock.json'],
        },
        2,
        'npm',
      ),
      pkg(
        {
          type: 'maven',
          namespace: 'org.apache.logging.log4j',
          name: 'log4j-core',
          version: '2.17.1',
          licenses: ['Apache-2.0'],
          paths: ['/app/lib/log4j-core-2.17.1.jar'],
        },
        2,
        'java',
      ),
      pkg(
        {
          type: 'golang',
          namespace: 'github.com/sirupsen',
          name: 'logrus',
          version: 'v1.9.3',
          licenses: [],
          paths: ['/usr/local/bin/app'],
          properties: { goToolchain: 'go1.21.5' },
        },
        1,
        'go-binary',
      ),
      pkg(
        {
          type: 'pypi',
          name: 'typing-extensions',
          version: '4.8.0',
          licenses: ['Python Software Foundation License'],
          paths: ['/usr/lib/python3/dist-packages/typing_extensions-4.8.0.dist-info/METADATA'],
          properties: { originalName: 'typing_extensions' },
        },
        1,
        'python',
      ),
    ],
    warnings: ['layer 1: skipped 1 unreadable file'],
  };
}

/** An Alpine image with one apk package. */
export function makeAlpineResult(): ScanResult {
  const alpine: OsInfo = { family: 'alpine', version: '3.19.1', name: 'Alpine Linux v3.19' };
  const base = makeResult();
  return {
    ...base,
    image: { ...base.image, reference: 'alpine:3.19' },
    os: alpine,
    packages: [
      pkg(
        {
          type: 'apk',
          name: 'musl',
          version: '1.2.4_git20230717-r4',
          sourceName: 'musl',
          arch: 'x86_64',
          licenses: ['MIT'],
          paths: ['/lib/apk/db/installed'],
        },
        0,
        'apk',
        alpine,
      ),
    ],
    warnings: [],
  };
}

function findingFor(
  result: ScanResult,
  purlPrefix: string,
  finding: Omit<
    Finding,
    'package' | 'installedVersion' | 'matchedName' | 'aliases' | 'references' | 'fixedVersions'
  > &
    Partial<Pick<Finding, 'installedVersion' | 'matchedName' | 'aliases' | 'references' | 'fixedVersions'>>,
): Finding {
  const p = result.packages.find((candidate) => candidate.purl.startsWith(purlPrefix));
  if (!p) throw new Error(`no package ${purlPrefix}`);
  return {
    aliases: [],
    references: [],
    fixedVersions: [],
    matchedName: p.sourceName ?? p.name,
    installedVersion: p.sourceVersion ?? p.version,
    ...finding,
    package: {
      type: p.type,
      namespace: p.namespace,
      name: p.name,
      version: p.version,
      purl: p.purl,
      sourceName: p.sourceName,
      layer: p.layer,
      paths: p.paths,
    },
  };
}

/**
 * `makeResult` matched against a vulnerability database: six findings in four packages (one id,
 * CVE-2024-0002, in two of them), covering a CVSS 3.1 and a CVSS 4.0 vector, a rating from the
 * database alone, no fix, unknown severity and aliases, plus one suppressed finding.
 */
export function makeVulnResult(): ScanResult {
  const base = makeResult();
  const vulnerabilities: Finding[] = [
    findingFor(base, 'pkg:deb/debian/libssl3@', {
      id: 'CVE-2024-0001',
      aliases: ['DSA-5600-1'],
      ecosystem: 'Debian:12',
      severity: 'critical',
      score: 9.8,
      cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
      severitySource: 'record',
      summary: 'Heap buffer overflow in the certificate parser allows remote code execution',
      fixedVersions: ['3.0.13-1~deb12u1'],
      published: '2024-01-10T00:00:00Z',
      modified: '2024-02-01T12:00:00Z',
      references: [
        'https://security-tracker.debian.org/tracker/CVE-2024-0001',
        'https://www.openssl.org/news/secadv/20240110.txt',
      ],
    }),
    findingFor(base, 'pkg:deb/debian/libssl3@', {
      id: 'CVE-2024-0002',
      ecosystem: 'Debian:12',
      severity: 'medium',
      score: 5.3,
      cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L',
      severitySource: 'upstream-cve',
      summary:
        'Excessive time spent checking overly long DH keys and parameters, which can be used for denial of service by a remote peer',
      fixedVersions: ['3.0.13-1~deb12u1'],
      references: ['https://nvd.nist.gov/vuln/detail/CVE-2024-0002'],
    }),
    findingFor(base, 'pkg:deb/debian/login@', {
      id: 'CVE-2023-4641',
      ecosystem: 'Debian:12',
      severity: 'high',
      severitySource: 'database',
      summary: 'gpasswd leaves the password in memory',
    }),
    findingFor(base, 'pkg:deb/debian/login@', {
      id: 'CVE-2024-0002',
      ecosystem: 'Debian:12',
      severity: 'medium',
      score: 5.3,
      cvssVector: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L',
      severitySource: 'upstream-cve',
      fixedVersions: ['1:4.13+dfsg1-1+deb12u1'],
    }),
    findingFor(base, 'pkg:npm/%40babel/core@', {
      id: 'GHSA-67hx-6x53-jw92',
      aliases: ['CVE-2023-45133'],
      ecosystem: 'npm',
      severity: 'critical',
      score: 9.3,
      cvssVector: 'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
      severitySource: 'record',
      summary: 'Arbitrary code execution when compiling specifically crafted malicious code',
      fixedVersions: ['7.23.2', '8.0.0-alpha.4'],
      published: '2023-10-16T13:55:36Z',
      references: ['https://github.com/babel/babel/security/advisories/GHSA-67hx-6x53-jw92'],
    }),
    findingFor(base, 'pkg:npm/left-pad@', {
      id: 'OSV-2020-111',
      ecosystem: 'npm',
      severity: 'unknown',
      fixedVersions: ['1.3.1'],
    }),
  ];
  const suppressedFinding = findingFor(base, 'pkg:deb/debian/login@', {
    id: 'CVE-2023-29383',
    ecosystem: 'Debian:12',
    severity: 'low',
    score: 3.3,
    cvssVector: 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:N/I:L/A:N',
    severitySource: 'record',
    summary: 'chfn accepts control characters',
  });
  return {
    ...base,
    vulnerabilities,
    suppressed: [
      { finding: suppressedFinding, reason: 'chfn is not installed setuid', source: '.portcullisignore' },
    ],
  };
}

/** The redacted values in `makeSecretsResult`; the fixture holds no real secret, only these. */
export const REDACTED = {
  aws: 'AKIA…(20 chars)',
  pat: 'ghp_…(40 chars)',
  key: '----…(1679 chars)',
  token: 'npm_…(40 chars)',
};

/**
 * `makeVulnResult` with the secret and misconfiguration checks run: a file secret with a line
 * and a layer, one in a file a later layer deleted, one in the config's Env and one in a history
 * step; image misconfigurations with CIS sections (one on a config field, one on an image path,
 * one on a history step) and a Kubernetes one with a PSS level and a line.
 */
export function makeSecretsResult(): ScanResult {
  const base = makeVulnResult();
  const [layer0, layer1, layer2] = LAYERS;
  if (!layer0 || !layer1 || !layer2) throw new Error('fixture needs three layers');
  const secrets: SecretFinding[] = [
    {
      ruleId: 'aws-access-key-id',
      title: 'AWS access key ID',
      severity: 'critical',
      location: 'file',
      target: '/app/config/settings.py',
      line: 12,
      layer: layer2,
      redacted: REDACTED.aws,
    },
    {
      ruleId: 'private-key',
      title: 'Private key',
      severity: 'high',
      location: 'file',
      target: '/root/.ssh/id_rsa',
      line: 1,
      layer: layer1,
      redacted: REDACTED.key,
      deleted: true,
    },
    {
      ruleId: 'github-pat',
      title: 'GitHub personal access token',
      severity: 'critical',
      location: 'config',
      target: 'Env[2]',
      redacted: REDACTED.pat,
    },
    {
      ruleId: 'npm-access-token',
      title: 'npm access token',
      severity: 'medium',
      location: 'history',
      target: 'history[3].created_by',
      redacted: REDACTED.token,
    },
  ];
  const misconfigurations: Misconfiguration[] = [
    {
      id: 'PC-IMG-001',
      title: 'Image runs as root',
      severity: 'medium',
      message: 'the image sets no USER, so it runs as root',
      remedy: 'Add a USER instruction naming an unprivileged user',
      cis: '4.1',
      target: 'config.User',
    },
    {
      id: 'PC-IMG-009',
      title: 'setuid or setgid files',
      severity: 'low',
      message: '2 setuid/setgid files: /usr/bin/passwd, /usr/bin/chsh',
      remedy: 'Remove the setuid and setgid bits from files that do not need them.',
      cis: '4.8',
      target: 'usr/bin/passwd',
    },
    {
      id: 'PC-IMG-011',
      title: 'Download piped into a shell',
      severity: 'high',
      message: 'history step 4 pipes a download into a shell',
      remedy: 'Download to a file, verify its checksum, then run it.',
      target: 'history[4].created_by',
    },
    {
      id: 'PC-K8S-002',
      title: 'Privileged container',
      severity: 'critical',
      message: 'container "web" of Deployment/web runs privileged',
      remedy: 'Set securityContext.privileged to false.',
      pss: 'baseline',
      target: 'deploy/web.yaml',
      line: 27,
    },
  ];
  return { ...base, secrets, misconfigurations };
}

/** A Dockerfile and a Kubernetes folder checked on their own: no image, no packages. */
export function makeConfigOnlyResult(): ScanResult {
  const base = makeResult();
  return {
    ...base,
    image: { reference: 'Dockerfile', manifestDigest: '', configDigest: '', layers: [] },
    os: null,
    packages: [],
    warnings: [],
    misconfigurations: [
      {
        id: 'PC-DF-003',
        title: 'ADD used for a remote URL',
        severity: 'medium',
        message: 'ADD fetches https://example.org/tool.tgz',
        remedy: 'Use curl or wget with a checksum check in a RUN step instead.',
        cis: '4.9',
        target: 'Dockerfile',
        line: 5,
      },
    ],
  };
}
