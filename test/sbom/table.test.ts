import { describe, expect, it } from 'vitest';

import { TITLE_WIDTH, toTable } from '../../src/sbom/table.js';
import { makeResult, makeVulnResult } from './fixture.js';

describe('toTable', () => {
  const result = makeResult();

  it('prints a header and aligned, sorted rows without colour', () => {
    const lines = toTable(result, { color: false }).split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'Image:    docker.io/library/example:1.0',
      `Digest:   ${result.image.manifestDigest}`,
      'OS:       Debian GNU/Linux 12 (bookworm)',
      'Packages: 7 (deb 2, golang 1, maven 1, npm 2, pypi 1)',
    ]);
    expect(lines.slice(5, 13)).toEqual([
      'TYPE    NAME                                 VERSION            SOURCE                 LAYER  PATH',
      'deb     libssl3                              3.0.11-1~deb12u2   openssl                0      /var/lib/dpkg/status',
      'deb     login                                1:4.13+dfsg1-1+b1  shadow@1:4.13+dfsg1-1  0      /var/lib/dpkg/status',
      'golang  github.com/sirupsen/logrus           v1.9.3             -                      1      /usr/local/bin/app',
      'maven   org.apache.logging.log4j:log4j-core  2.17.1             -                      2      /app/lib/log4j-core-2.17.1.jar',
      'npm     @babel/core                          7.23.0             -                      2      /app/node_modules/@babel/core/package.json',
      'npm     left-pad                             1.3.0              -                      2      /app/package-lock.json',
      'pypi    typing-extensions                    4.8.0              -                      1      ' +
        '/usr/lib/python3/dist-packages/typing_extensions-4.8.0.dist-info/METADATA',
    ]);
    expect(lines.slice(13)).toEqual(['', 'Warnings:', '  - layer 1: skipped 1 unreadable file']);
    expect(lines.join('\n')).not.toContain('\u001b[');
    for (const line of lines) expect(line).not.toMatch(/ $/);
  });

  it('uses ANSI colours only when asked', () => {
    const coloured = toTable(result, { color: true });
    expect(coloured).toContain('\u001b[1m');
    // Same text once the escapes are removed.
    expect(coloured.replace(/\u001b\[\d+m/g, '')).toBe(toTable(result, { color: false }));
  });

  it('handles an image with no packages and an unknown OS', () => {
    const empty = toTable({ ...result, os: null, packages: [], warnings: [] }, { color: false });
    expect(empty.split('\n')).toEqual([
      'Image:    docker.io/library/example:1.0',
      `Digest:   ${result.image.manifestDigest}`,
      'OS:       unknown',
      'Packages: 0',
    ]);
  });
});

describe('toTable with vulnerabilities', () => {
  const result = makeVulnResult();
  const strip = (text: string): string => text.replace(/\u001b\[\d+m/g, '');

  it('replaces the package rows with findings grouped by package, worst first', () => {
    const lines = toTable(result, { color: false }).split('\n');
    expect(lines.slice(0, 4)).toEqual([
      'Image:    docker.io/library/example:1.0',
      `Digest:   ${result.image.manifestDigest}`,
      'OS:       Debian GNU/Linux 12 (bookworm)',
      'Packages: 7 (deb 2, golang 1, maven 1, npm 2, pypi 1)',
    ]);
    expect(lines.slice(4)).toEqual([
      '',
      '@babel/core 7.23.0 (npm, layer 2, /app/node_modules/@babel/core/package.json)',
      '  ID                   SEVERITY  FIXED IN                TITLE',
      '  GHSA-67hx-6x53-jw92  critical  7.23.2, 8.0.0-alpha.4   Arbitrary code execution when compiling specifically craf...',
      '',
      'libssl3 3.0.11-1~deb12u2 (deb, layer 0, /var/lib/dpkg/status)',
      '  ID                   SEVERITY  FIXED IN                TITLE',
      '  CVE-2024-0001        critical  3.0.13-1~deb12u1        Heap buffer overflow in the certificate parser allows rem...',
      '  CVE-2024-0002        medium    3.0.13-1~deb12u1        Excessive time spent checking overly long DH keys and par...',
      '',
      'login 1:4.13+dfsg1-1+b1 (deb, layer 0, /var/lib/dpkg/status)',
      '  ID                   SEVERITY  FIXED IN                TITLE',
      '  CVE-2023-4641        high      no fix                  gpasswd leaves the password in memory',
      '  CVE-2024-0002        medium    1:4.13+dfsg1-1+deb12u1  -',
      '',
      'left-pad 1.3.0 (npm, layer 2, /app/package-lock.json)',
      '  ID                   SEVERITY  FIXED IN                TITLE',
      '  OSV-2020-111         unknown   1.3.1                   -',
      '',
      'Vulnerabilities: 6 (critical 2, high 1, medium 2, low 0, unknown 1)',
      'Suppressed: 1',
      '  - CVE-2023-29383 (login 1:4.13+dfsg1-1+b1): chfn is not installed setuid [.portcullisignore]',
      '',
      'Warnings:',
      '  - layer 1: skipped 1 unreadable file',
    ]);
    for (const line of lines) expect(line).not.toMatch(/ $/);
  });

  it('keeps the order whatever the input order', () => {
    const shuffled = { ...result, vulnerabilities: [...(result.vulnerabilities ?? [])].reverse() };
    expect(toTable(shuffled, { color: false })).toBe(toTable(result, { color: false }));
  });

  it('truncates long titles to TITLE_WIDTH characters', () => {
    const lines = toTable(result, { color: false }).split('\n');
    const titleAt = lines.find((l) => l.includes('TITLE'))?.indexOf('TITLE') ?? -1;
    const titles = lines.filter((l) => l.endsWith('...')).map((l) => l.slice(titleAt));
    expect(titles.length).toBeGreaterThan(0);
    for (const t of titles) expect(t.length).toBeLessThanOrEqual(TITLE_WIDTH);
  });

  it('colours severities only when asked', () => {
    const coloured = toTable(result, { color: true });
    expect(coloured).toContain('\u001b[31mhigh');
    expect(coloured).toContain('\u001b[1m\u001b[31mcritical');
    expect(strip(coloured)).toBe(toTable(result, { color: false }));
    expect(toTable(result, { color: false })).not.toContain('\u001b[');
  });

  it('prints the totals for a clean image and nothing about suppressions it does not have', () => {
    const clean = toTable({ ...result, vulnerabilities: [], suppressed: [], warnings: [] }, { color: false });
    expect(clean.split('\n').slice(3)).toEqual([
      'Packages: 7 (deb 2, golang 1, maven 1, npm 2, pypi 1)',
      '',
      'Vulnerabilities: 0 (critical 0, high 0, medium 0, low 0, unknown 0)',
    ]);
  });

  it('prints no vulnerability section for an SBOM result', () => {
    const { vulnerabilities: _v, suppressed: _s, ...sbom } = result;
    const text = toTable(sbom, { color: false });
    expect(text).not.toContain('Vulnerabilities:');
    expect(text).not.toContain('Suppressed:');
    expect(text).toBe(toTable(makeResult(), { color: false }));
  });
});
