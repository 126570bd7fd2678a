import { describe, expect, it } from 'vitest';

import { TITLE_WIDTH, toTable } from '../../src/sbom/table.js';
import { makeConfigOnlyResult, makeResult, makeSecretsResult, makeVulnResult, REDACTED } from './fixture.js';

describe('toTable', () => {
  const result = makeResult();

  it('prints a header and aligned, sorted rows without colour', () => {
    const lines = toTable(result, { color: false }).split('\n');
    expect(lines.slice(0, 5)).toEqual([
      'Image:    docker.io/library/example:1.0',
      `Digest:   ${result.image.manifestDigest}`,
      'Platform: linux/amd64',
      'OS:       Debian GNU/Linux 12 (bookworm)',
      'Packages: 7 (deb 2, golang 1, maven 1, npm 2, pypi 1)',
    ]);
    expect(lines.slice(6, 14)).toEqual([
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
    expect(lines.slice(14)).toEqual(['', 'Warnings:', '  - layer 1: skipped 1 unreadable file']);
    expect(lines.join('\n')).not.toContain('\u001b[');
    for (const line of lines) expect(line).not.toMatch(/ $/);
  });

  it('shows control characters from the image as escapes, coloured or not', () => {
    const hostile = makeResult();
    hostile.os = { ...hostile.os!, name: 'Alp\u001b[2Jine' };
    const first = hostile.packages[0]!;
    hostile.packages[0] = { ...first, name: 'evil\u001b[31mRED\u001b]0;pwn\u0007', version: '1.0\r\u009b5m' };
    hostile.warnings = ['a file named x\u001b[8m'];
    for (const color of [false, true]) {
      // The only escape sequences left are the table's own SGR colours.
      const text = toTable(hostile, { color }).replace(/\u001b\[\d+m/g, '');
      expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
      expect(text).toContain('OS:       Alp\\x1b[2Jine');
      expect(text).toContain('evil\\x1b[31mRED\\x1b]0;pwn\\x07');
      expect(text).toContain('1.0\\x0d\\x9b5m');
      expect(text).toContain('  - a file named x\\x1b[8m');
    }
    // The result itself is left as it was (JSON output shows the true values).
    expect(hostile.packages[0]!.name).toBe('evil\u001b[31mRED\u001b]0;pwn\u0007');
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
      'Platform: linux/amd64',
      'OS:       unknown',
      'Packages: 0',
    ]);
  });

  it('a root filesystem folder has no digest and no platform, but its OS and packages are said', () => {
    const folder = toTable(
      {
        ...result,
        image: {
          reference: 'dir:/srv/rootfs',
          manifestDigest: '',
          configDigest: '',
          layers: [{ index: 0, digest: '' }],
        },
        packages: [],
        warnings: [],
      },
      { color: false },
    );
    expect(folder.split('\n')).toEqual([
      'Image:    dir:/srv/rootfs',
      'OS:       Debian GNU/Linux 12 (bookworm)',
      'Packages: 0',
    ]);
  });
});

describe('toTable with vulnerabilities', () => {
  const result = makeVulnResult();
  const strip = (text: string): string => text.replace(/\u001b\[\d+m/g, '');

  it('replaces the package rows with findings grouped by package, worst first', () => {
    const lines = toTable(result, { color: false }).split('\n');
    expect(lines.slice(0, 5)).toEqual([
      'Image:    docker.io/library/example:1.0',
      `Digest:   ${result.image.manifestDigest}`,
      'Platform: linux/amd64',
      'OS:       Debian GNU/Linux 12 (bookworm)',
      'Packages: 7 (deb 2, golang 1, maven 1, npm 2, pypi 1)',
    ]);
    expect(lines.slice(5)).toEqual([
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
    expect(clean.split('\n').slice(4)).toEqual([
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

describe('toTable with secrets and misconfigurations', () => {
  const result = makeSecretsResult();
  const text = toTable(result, { color: false });
  const lines = text.split('\n');
  const strip = (t: string): string => t.replace(/\u001b\[\d+m/g, '');

  it('adds a Secrets section after the vulnerabilities, worst first, with its totals', () => {
    const start = lines.indexOf('Secrets');
    expect(start).toBeGreaterThan(lines.findIndex((l) => l.startsWith('Vulnerabilities:')));
    expect(lines.slice(start, start + 8)).toEqual([
      'Secrets',
      '  SEVERITY  RULE               WHERE                       LAYER  SECRET',
      `  critical  aws-access-key-id  /app/config/settings.py:12  2      ${REDACTED.aws}`,
      `  critical  github-pat         config Env[2]               -      ${REDACTED.pat}`,
      `  high      private-key        /root/.ssh/id_rsa:1         1      ${REDACTED.key} (deleted in a later layer)`,
      `  medium    npm-access-token   history[3].created_by       -      ${REDACTED.token}`,
      '',
      'Secrets: 4 (critical 2, high 1, medium 1, low 0, unknown 0)',
    ]);
  });

  it('adds a Misconfigurations section with references and remedies, then its totals', () => {
    const start = lines.indexOf('Misconfigurations');
    expect(start).toBeGreaterThan(
      lines.indexOf('Secrets: 4 (critical 2, high 1, medium 1, low 0, unknown 0)'),
    );
    expect(lines.slice(start)).toEqual([
      'Misconfigurations',
      '  ID          SEVERITY  TITLE                        WHERE                  REF           MESSAGE',
      '  PC-K8S-002  critical  Privileged container         deploy/web.yaml:27     PSS baseline  container "web" of Deployment/web runs privileged',
      '    Remedy: Set securityContext.privileged to false.',
      '  PC-IMG-011  high      Download piped into a shell  history[4].created_by  -             history step 4 pipes a download into a shell',
      '    Remedy: Download to a file, verify its checksum, then run it.',
      '  PC-IMG-001  medium    Image runs as root           config.User            CIS 4.1       the image sets no USER, so it runs as root',
      '    Remedy: Add a USER instruction naming an unprivileged user',
      '  PC-IMG-009  low       setuid or setgid files       usr/bin/passwd         CIS 4.8       2 setuid/setgid files: /usr/bin/passwd, /usr/bin/chsh',
      '    Remedy: Remove the setuid and setgid bits from files that do not need them.',
      '',
      'Misconfigurations: 4 (critical 1, high 1, medium 1, low 1, unknown 0)',
      '',
      'Warnings:',
      '  - layer 1: skipped 1 unreadable file',
    ]);
    for (const line of lines) expect(line).not.toMatch(/ $/);
  });

  it('keeps the order whatever the input order, and colours only when asked', () => {
    const shuffled = {
      ...result,
      secrets: [...(result.secrets ?? [])].reverse(),
      misconfigurations: [...(result.misconfigurations ?? [])].reverse(),
    };
    expect(toTable(shuffled, { color: false })).toBe(text);
    const coloured = toTable(result, { color: true });
    expect(coloured).toContain('\u001b[33m(deleted in a later layer)');
    expect(strip(coloured)).toBe(text);
    expect(text).not.toContain('\u001b[');
  });

  it('prints only the totals when the checks found nothing', () => {
    const clean = toTable({ ...result, secrets: [], misconfigurations: [] }, { color: false }).split('\n');
    expect(clean).not.toContain('Secrets');
    expect(clean).not.toContain('Misconfigurations');
    expect(clean).toContain('Secrets: 0 (critical 0, high 0, medium 0, low 0, unknown 0)');
    expect(clean).toContain('Misconfigurations: 0 (critical 0, high 0, medium 0, low 0, unknown 0)');
  });

  it('prints nothing about secrets or misconfigurations when the checks did not run', () => {
    const { secrets: _s, misconfigurations: _m, ...plain } = result;
    expect(toTable(plain, { color: false })).toBe(toTable(makeVulnResult(), { color: false }));
    expect(toTable(plain, { color: false })).not.toMatch(/Secrets|Misconfigurations/);
  });

  it('follows the package rows of an SBOM result', () => {
    const { vulnerabilities: _v, suppressed: _s, ...sbom } = result;
    const sbomLines = toTable(sbom, { color: false }).split('\n');
    expect(sbomLines.indexOf('Secrets')).toBeGreaterThan(sbomLines.findIndex((l) => l.startsWith('TYPE')));
  });

  it('keeps only the Image line of the header for a config-only scan', () => {
    expect(toTable(makeConfigOnlyResult(), { color: false }).split('\n')).toEqual([
      'Image:    Dockerfile',
      '',
      'Misconfigurations',
      '  ID         SEVERITY  TITLE                      WHERE         REF      MESSAGE',
      '  PC-DF-003  medium    ADD used for a remote URL  Dockerfile:5  CIS 4.9  ADD fetches https://example.org/tool.tgz',
      '    Remedy: Use curl or wget with a checksum check in a RUN step instead.',
      '',
      'Misconfigurations: 1 (critical 0, high 0, medium 1, low 0, unknown 0)',
    ]);
  });
});
