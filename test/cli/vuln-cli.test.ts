import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { zipSync, strToU8 } from 'fflate';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { validateSarif } from '../../src/sbom/index.js';
import { run } from '../helpers/docker-registry.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { writeOciLayout } from '../helpers/image-builder.js';

const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-vcli-'));
const data = join(tmp, 'data');
const image = join(tmp, 'image');
const portcullis = (args: string[]) => run('node', [CLI, ...args]);
const scan = (...args: string[]) => portcullis(['scan', `oci:${image}`, '--data', data, ...args]);

const record = (id: string, ecosystem: string, name: string, events: object[], extra: object = {}) => ({
  id,
  modified: '2026-01-01T00:00:00Z',
  summary: `${name} flaw ${id}`,
  affected: [{ package: { ecosystem, name }, ranges: [{ type: ecosystem === 'npm' ? 'SEMVER' : 'ECOSYSTEM', events }] }],
  ...extra,
});
const RECORDS = [
  record('ALPINE-CVE-2026-1000', 'Alpine:v3.20', 'musl', [{ introduced: '0' }, { fixed: '1.2.5-r1' }], { upstream: ['CVE-2026-1000'] }),
  record('ALPINE-CVE-2026-1001', 'Alpine:v3.20', 'zlib', [{ introduced: '0' }], { upstream: ['CVE-2026-1001'] }),
  record('ALPINE-CVE-2026-1002', 'Alpine:v3.20', 'zlib', [{ introduced: '0' }, { fixed: '1.3.1-r0' }], { upstream: ['CVE-2026-1002'] }),
  record('GHSA-aaaa-bbbb-cccc', 'npm', 'left-pad', [{ introduced: '0' }, { fixed: '1.3.1' }], {
    aliases: ['CVE-2026-2000'],
    severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N' }],
  }),
  { id: 'CVE-2026-1000', modified: '2026-01-01T00:00:00Z', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H' }] },
  { id: 'CVE-2026-1001', modified: '2026-01-01T00:00:00Z', severity: [{ type: 'CVSS_V3', score: 'CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N' }] },
];

interface JsonOut {
  vulnerabilities: Array<{ id: string; severity: string; fixedVersions: string[]; package: { name: string } }>;
  suppressed?: Array<{ finding: { id: string }; reason: string }>;
}
const parse = (s: string) => JSON.parse(s) as JsonOut;

let server: Server;
let baseUrl: string;

beforeAll(async () => {
  await writeOciLayout(image, [
    [
      { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\nPRETTY_NAME="Alpine Linux v3.20"\n' },
      { name: 'lib/apk/db/installed', content: 'P:musl\nV:1.2.5-r0\no:musl\n\nP:zlib\nV:1.3.1-r1\no:zlib\n' },
      { name: 'app/node_modules/left-pad/package.json', content: '{"name":"left-pad","version":"1.3.0","license":"WTFPL"}' },
    ],
  ]);
  const osvDir = join(tmp, 'osv');
  mkdirSync(osvDir);
  for (const r of RECORDS) writeFileSync(join(osvDir, `${r.id}.json`), JSON.stringify(r));
  const zip = zipSync(Object.fromEntries(RECORDS.filter((r) => r.id.startsWith('GHSA')).map((r) => [`${r.id}.json`, strToU8(JSON.stringify(r))])));
  server = createServer((req, res) => {
    if (req.url === '/npm/all.zip') {
      res.writeHead(200, { 'content-length': zip.length });
      res.end(Buffer.from(zip));
    } else {
      res.writeHead(500);
      res.end('boom');
    }
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  baseUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  const imported = await portcullis(['db', 'import', osvDir, '--data', data]);
  expect(imported.code, imported.stderr).toBe(0);
  expect(imported.stdout).toMatch(/imported 6 records/);
});
afterAll(() => {
  server?.close();
  rmSync(tmp, { recursive: true, force: true });
});

describe('portcullis scan with vulnerabilities', () => {
  it('fails closed: asking for an exit code with no database is an error', async () => {
    const r = await portcullis(['scan', `oci:${image}`, '--data', join(tmp, 'empty'), '--fail-on', 'high']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no vulnerability database .*portcullis db update/);
    const lenient = await portcullis(['scan', `oci:${image}`, '--data', join(tmp, 'empty')]);
    expect(lenient.code).toBe(0);
    expect(lenient.stderr).toMatch(/vulnerabilities not checked/);
  });

  it('reports findings with severities from vectors and upstream CVEs', async () => {
    const r = await scan('--format', 'json');
    expect(r.code, r.stderr).toBe(0);
    const v = parse(r.stdout).vulnerabilities.map((f) => `${f.package.name} ${f.id} ${f.severity} ${f.fixedVersions.join() || 'no-fix'}`);
    expect(v.sort()).toEqual([
      'left-pad GHSA-aaaa-bbbb-cccc high 1.3.1',
      'musl ALPINE-CVE-2026-1000 critical 1.2.5-r1',
      'zlib ALPINE-CVE-2026-1001 low no-fix',
    ]);
  });

  it('filters by severity and fixability, and sets the exit code', async () => {
    expect(parse((await scan('--format', 'json', '--severity', 'CRITICAL,HIGH')).stdout).vulnerabilities).toHaveLength(2);
    expect(parse((await scan('--format', 'json', '--ignore-unfixed')).stdout).vulnerabilities.map((f) => f.id)).not.toContain('ALPINE-CVE-2026-1001');
    expect((await scan('--fail-on', 'critical')).code).toBe(1);
    expect((await scan('--fail-on', 'critical', '--exit-code', '5')).code).toBe(5);
    expect((await scan('--exit-code', '3', '--severity', 'MEDIUM')).code).toBe(0);
    expect((await scan('--fail-on', 'bogus')).code).toBe(2);
  });

  it('an ignore file suppresses with a reason until it expires; VEX not_affected suppresses too', async () => {
    const ignore = join(tmp, 'ignore.yaml');
    writeFileSync(
      ignore,
      'ignore:\n  - id: CVE-2026-1000\n    reason: musl is not reachable from the entrypoint\n    expires: 2999-01-01\n  - id: GHSA-aaaa-bbbb-cccc\n    reason: old exception\n    expires: 2020-01-01\n',
    );
    const r = await scan('--format', 'json', '--ignorefile', ignore, '--fail-on', 'critical');
    expect(r.code).toBe(0);
    const out = parse(r.stdout);
    expect(out.suppressed!.map((s) => s.finding.id)).toEqual(['ALPINE-CVE-2026-1000']);
    expect(out.suppressed![0]!.reason).toMatch(/not reachable/);
    expect(out.vulnerabilities.map((f) => f.id)).toContain('GHSA-aaaa-bbbb-cccc');
    expect(r.stderr).toMatch(/ignore entry for GHSA-aaaa-bbbb-cccc expired/);

    const vex = join(tmp, 'doc.vex.json');
    writeFileSync(
      vex,
      JSON.stringify({
        '@context': 'https://openvex.dev/ns/v0.2.0',
        '@id': 'https://example.test/vex/1',
        author: 'test',
        timestamp: '2026-01-01T00:00:00Z',
        statements: [
          {
            vulnerability: { name: 'CVE-2026-2000' },
            products: [{ '@id': 'pkg:npm/left-pad@1.3.0' }],
            status: 'not_affected',
            justification: 'vulnerable_code_not_in_execute_path',
          },
        ],
      }),
    );
    const v = parse((await scan('--format', 'json', '--vex', vex)).stdout);
    expect(v.suppressed!.map((s) => s.finding.id)).toEqual(['GHSA-aaaa-bbbb-cccc']);
    expect(v.suppressed![0]!.reason).toMatch(/vulnerable_code_not_in_execute_path/);
  });

  it('writes SARIF that validates and a table with totals', async () => {
    const sarif = await scan('--format', 'sarif');
    expect(sarif.code).toBe(0);
    expect(validateSarif(sarif.stdout)).toBeNull();
    const table = await scan();
    expect(table.stdout).toMatch(/Vulnerabilities: 3 \(critical 1, high 1, medium 0, low 1/);
  });

  it('db status lists the ecosystems; db update replaces atomically and a failing mirror keeps the old data', async () => {
    const status = JSON.parse((await portcullis(['db', 'status', '--data', data, '--format', 'json'])).stdout);
    expect(status.ecosystems.map((e: { ecosystem: string }) => e.ecosystem).sort()).toEqual(['Alpine:v3.20', 'npm']);
    const failed = await portcullis(['db', 'update', '--ecosystem', 'PyPI', '--base-url', baseUrl, '--data', data]);
    expect(failed.code).toBe(2);
    expect(failed.stderr).toMatch(/PyPI\/all\.zip/);
    expect((await scan('--format', 'json')).stdout).toContain('ALPINE-CVE-2026-1000');
    const ok = await portcullis(['db', 'update', '--ecosystem', 'npm', '--base-url', baseUrl, '--data', data]);
    expect(ok.code, ok.stderr).toBe(0);
  });

  it('db import and db status show control characters from the archive as escapes', async () => {
    // Whoever made an archive chose its entry names and ecosystem strings; neither may drive the terminal.
    const own = join(tmp, 'escapes-data');
    const zip = join(tmp, 'escapes.zip');
    const weird = record('WEIRD-1', 'npm\u009b2J', 'left-pad', [{ introduced: '0' }]);
    // A name with characters beyond Latin-1 is stored as UTF-8 (an ASCII-only one would be read as
    // code page 437, where ESC is an arrow), so the C1 CSI and the ESC reach the reader as such.
    writeFileSync(zip, zipSync({ '\u009b2J\u202eowned\u001b.json': strToU8('{"not": "osv"}'), 'WEIRD-1.json': strToU8(JSON.stringify(weird)) }));
    const imported = await portcullis(['db', 'import', zip, '--data', own]);
    expect(imported.code, imported.stderr).toBe(0);
    expect(imported.stderr).toContain('!\\x9b2J\\u202eowned\\x1b.json: ');
    const status = await portcullis(['db', 'status', '--data', own]);
    for (const out of [imported.stdout, imported.stderr, status.stdout]) expect(out).not.toMatch(/[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u202e]/);
    expect(status.stdout).toContain('npm\\x9b2J');
  });
});
