import { describe, expect, it } from 'vitest';

import { toTable } from '../../src/sbom/table.js';
import { makeResult } from './fixture.js';

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
