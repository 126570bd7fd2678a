/**
 * Debian OSV records written for the tests, shaped like osv.dev's DSA and DEBIAN-CVE entries
 * (source package names, source versions, one affected entry per release). The ids and CVE
 * numbers are invented (CVE-2026-9xxxx) so they can never be mistaken for real advisories.
 */
const record = (
  id: string,
  name: string,
  events: Array<Record<string, string>>,
  extra: Record<string, unknown> = {},
  ecosystem = 'Debian:12',
) => ({
  schema_version: '1.6.0',
  id,
  modified: '2026-10-01T00:00:00Z',
  published: '2026-09-01T00:00:00Z',
  summary: `${name}: test advisory ${id}`,
  affected: [{ package: { ecosystem, name, purl: `pkg:deb/debian/${name}?arch=source` }, ranges: [{ type: 'ECOSYSTEM', events }] }],
  references: [{ type: 'ADVISORY', url: `https://security-tracker.debian.org/tracker/${id}` }],
  ...extra,
});

export const DEBIAN_TEST_RECORDS = [
  // openssl 3.0.20-1~deb12u2 is installed: a fix at 3.0.21 affects every binary built from openssl.
  record('DSA-9901-1', 'openssl', [{ introduced: '0' }, { fixed: '3.0.21-1~deb12u1' }], { upstream: ['CVE-2026-90001'] }),
  record('DEBIAN-CVE-2026-90001', 'openssl', [{ introduced: '0' }, { fixed: '3.0.21-1~deb12u1' }], { upstream: ['CVE-2026-90001'] }),
  // A tilde version below the installed one: already fixed.
  record('DEBIAN-CVE-2026-90002', 'openssl', [{ introduced: '0' }, { fixed: '3.0.20-1~deb12u1' }], { upstream: ['CVE-2026-90002'] }),
  // openssh 1:9.2p1-2+deb12u10: fixed earlier in the same epoch → no finding.
  record('DEBIAN-CVE-2026-90003', 'openssh', [{ introduced: '0' }, { fixed: '1:9.2p1-2+deb12u5' }], { upstream: ['CVE-2026-90003'] }),
  // Fixed later in the same epoch → finding for every openssh binary package.
  record('DEBIAN-CVE-2026-90004', 'openssh', [{ introduced: '0' }, { fixed: '1:9.2p1-2+deb12u11' }], { upstream: ['CVE-2026-90004'] }),
  // A fix version without the epoch sorts below any epoch-1 version → no finding.
  record('DEBIAN-CVE-2026-90005', 'openssh', [{ introduced: '0' }, { fixed: '9.9p1-1' }], { upstream: ['CVE-2026-90005'] }),
  // Unfixed: no fixed event, still a finding, reported with no fix.
  record('DEBIAN-CVE-2026-90006', 'python-urllib3', [{ introduced: '0' }], { upstream: ['CVE-2026-90006'] }),
  // Fixed exactly at the installed version → no finding.
  record('DEBIAN-CVE-2026-90007', 'apache-log4j2', [{ introduced: '0' }, { fixed: '2.19.0-2' }], { upstream: ['CVE-2026-90007'] }),
  // Another release only → no finding on bookworm.
  record('DEBIAN-CVE-2026-90008', 'openssl', [{ introduced: '0' }], { upstream: ['CVE-2026-90008'] }, 'Debian:11'),
  // Withdrawn → no finding.
  record('DEBIAN-CVE-2026-90009', 'openssl', [{ introduced: '0' }], { upstream: ['CVE-2026-90009'], withdrawn: '2026-10-02T00:00:00Z' }),
  // An upstream CVE record carrying the severity that distro records lack.
  {
    schema_version: '1.6.0',
    id: 'CVE-2026-90001',
    modified: '2026-10-01T00:00:00Z',
    severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:N' }],
    affected: [],
  },
];

/** Ids the Debian fixture must report, and the ones it must not. */
export const DEBIAN_EXPECTED = {
  findings: ['DEBIAN-CVE-2026-90001', 'DEBIAN-CVE-2026-90004', 'DEBIAN-CVE-2026-90006'],
  nonFindings: ['DEBIAN-CVE-2026-90002', 'DEBIAN-CVE-2026-90003', 'DEBIAN-CVE-2026-90005', 'DEBIAN-CVE-2026-90007', 'DEBIAN-CVE-2026-90008', 'DEBIAN-CVE-2026-90009'],
};
