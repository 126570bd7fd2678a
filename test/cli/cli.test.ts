import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync, existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateCycloneDx, validateSpdx } from '../../src/sbom/index.js';
import { validateSarif } from '../../src/sbom/sarif.js';
import { run } from '../helpers/docker-registry.js';
import { FIXTURE_SKIP_REASON, HAVE_FIXTURES, REPO_ROOT, fixtureImage } from '../helpers/fixtures.js';
import { writeOciLayout } from '../helpers/image-builder.js';

const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-cli-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const portcullis = (args: string[], input?: string) => run('node', [CLI, ...args], input);

describe('portcullis CLI errors', () => {
  it('a missing archive, a bad transport path and bad flags are one-line errors with exit code 2', async () => {
    for (const args of [
      ['scan', `oci-archive:${join(tmp, 'nope.tar')}`],
      ['scan', 'oci:'],
      ['scan', `oci:${tmp}`, '--format', 'xml'],
      ['scan', `oci:${tmp}`, '--platform', 'linux'],
      ['scan', 'registry.invalid/UPPER/case'],
      ['sbom', `oci:${tmp}`, '--password-stdin'],
      ['sbom', `dockerfile:${tmp}`],
      ['scan', `oci:${tmp}`, '--platform', 'linux/arm64', '--all-platforms'],
    ]) {
      const r = await portcullis([...args, '--data', join(tmp, 'data')]);
      expect(r.code, args.join(' ')).toBe(2);
      expect(r.stderr.trim().split('\n'), r.stderr).toHaveLength(1);
      expect(r.stderr).not.toMatch(/\bat .*\.js:\d+/); // no stack trace
    }
  });

  it('an --output that cannot be written is refused before the scan, in one line', async () => {
    const dir = join(tmp, 'img-output');
    await writeOciLayout(dir, [[{ name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.0\n' }]]);
    const missing = join(tmp, 'no-such-folder', 'out.json');
    const a = await portcullis(['scan', `oci:${dir}`, '-o', missing, '--no-cache', '--data', join(tmp, 'd5')]);
    expect(a.code).toBe(2);
    expect(a.stderr.trim()).toBe(`portcullis: cannot write --output ${missing}: folder ${join(tmp, 'no-such-folder')} does not exist`);
    const b = await portcullis(['sbom', `oci:${dir}`, '-o', tmp, '--no-cache', '--data', join(tmp, 'd5')]);
    expect(b.code).toBe(2);
    expect(b.stderr.trim()).toBe(`portcullis: cannot write --output ${tmp}: it is a folder`);
    const ok = join(tmp, 'out.json');
    const c = await portcullis(['sbom', `oci:${dir}`, '-o', ok, '--format', 'json', '--no-cache', '--data', join(tmp, 'd5')]);
    expect(c.code, c.stderr).toBe(0);
    expect(JSON.parse(readFileSync(ok, 'utf8')).os.family).toBe('alpine');
  });

  it('--data before the command name is the data folder of the command; one after it wins', async () => {
    const dir = join(tmp, 'img-global');
    await writeOciLayout(dir, [[{ name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.0\n' }]]);
    const before = join(tmp, 'global-before');
    const after = join(tmp, 'global-after');
    const a = await portcullis(['--data', before, 'sbom', `oci:${dir}`, '--format', 'json']);
    expect(a.code, a.stderr).toBe(0);
    expect(readdirSync(join(before, 'cache')).length).toBeGreaterThan(0);
    const b = await portcullis(['--data', before, 'sbom', `oci:${dir}`, '--format', 'json', '--data', after]);
    expect(b.code, b.stderr).toBe(0);
    expect(existsSync(join(after, 'cache'))).toBe(true);
    const c = await portcullis(['--data', before, 'policy', 'show']);
    expect(c.code).toBe(2);
    expect(c.stderr.trim()).toBe('portcullis: --data does not apply to "policy show"');
  });

  it('a truncated archive and a tampered layer name the image and exit 2', async () => {
    const dir = join(tmp, 'img');
    await writeOciLayout(dir, [[{ name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.0\n' }]], {
      corruptLayer: (b) => Buffer.concat([b, Buffer.from('extra')]),
    });
    const r = await portcullis(['scan', `oci:${dir}`, '--no-cache', '--data', join(tmp, 'd4')]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(new RegExp(`^portcullis: oci:${dir}.*(larger than its descriptor|digest)`));

    const archive = join(tmp, 'trunc.tar');
    const whole = readFileSync(fixtureOr(join(tmp, 'fallback.tar')));
    writeFileSync(archive, whole.subarray(0, Math.floor(whole.length / 2)));
    const t = await portcullis(['scan', `oci-archive:${archive}`, '--no-cache', '--data', join(tmp, 'd4')]);
    expect(t.code).toBe(2);
    expect(t.stderr.trim().split('\n')).toHaveLength(1);
    expect(t.stderr).toContain(archive);
  });
});

/** The Alpine fixture when present, else a small archive built here, so the test runs everywhere. */
function fixtureOr(fallback: string): string {
  if (HAVE_FIXTURES) return fixtureImage('alpine-3.20.tar');
  writeFileSync(fallback, Buffer.alloc(10240, 1));
  return fallback;
}

describe.skipIf(!HAVE_FIXTURES)(`portcullis sbom on the fixtures${FIXTURE_SKIP_REASON}`, () => {
  it('writes CycloneDX 1.6 and SPDX 2.3 documents that validate, to --output files', async () => {
    const data = join(tmp, 'data-sbom');
    const cdx = join(tmp, 'debian.cdx.json');
    const spdx = join(tmp, 'debian.spdx.json');
    const a = await portcullis(['sbom', `oci-archive:${fixtureImage('debian-12-minbase.tar')}`, '-o', cdx, '--data', data]);
    expect(a.code, a.stderr).toBe(0);
    expect(a.stdout).toBe('');
    const b = await portcullis(['sbom', `oci-archive:${fixtureImage('debian-12-minbase.tar')}`, '--format', 'spdx', '-o', spdx, '--data', data]);
    expect(b.code, b.stderr).toBe(0);
    const cdxText = readFileSync(cdx, 'utf8');
    expect(await validateCycloneDx(cdxText)).toBeNull();
    const bom = JSON.parse(cdxText);
    expect(bom.specVersion).toBe('1.6');
    const purls = bom.components.map((c: { purl?: string }) => c.purl).filter(Boolean);
    expect(purls).toContain('pkg:maven/org.apache.logging.log4j/log4j-core@2.19.0');
    expect(purls.filter((p: string) => p.startsWith('pkg:deb/'))).toHaveLength(144);
    const spdxText = readFileSync(spdx, 'utf8');
    expect(validateSpdx(spdxText)).toBeNull();
    expect(JSON.parse(spdxText).spdxVersion).toBe('SPDX-2.3');
    // The cache lives in the data folder; scratch space was cleaned up.
    expect(readdirSync(join(data, 'cache', 'layers', 'sha256')).length).toBe(2);
    expect(existsSync(join(data, 'cache', 'scratch')) ? readdirSync(join(data, 'cache', 'scratch')) : []).toEqual([]);
  });

  it('--all-platforms --format json prints one result per platform; no progress output when not a terminal', async () => {
    const r = await portcullis(['scan', `oci-archive:${fixtureImage('alpine-3.20-multiarch.tar')}`, '--all-platforms', '--format', 'json', '--no-cache', '--no-vulns', '--data', join(tmp, 'd2')]);
    expect(r.code).toBe(0);
    expect(r.stderr).toBe('');
    const results = JSON.parse(r.stdout);
    expect(results.map((x: { image: { platform: { architecture: string } } }) => x.image.platform.architecture).sort()).toEqual(['amd64', 'arm64']);
  });

  it('--all-platforms: JSON is an array even for one platform, SARIF one log with a run per platform', async () => {
    const single = await portcullis(['scan', `oci-archive:${fixtureImage('alpine-3.20.tar')}`, '--all-platforms', '--format', 'json', '--no-cache', '--no-vulns', '--data', join(tmp, 'd2')]);
    expect(single.code, single.stderr).toBe(0);
    const one = JSON.parse(single.stdout);
    expect(Array.isArray(one)).toBe(true);
    expect(one).toHaveLength(1);
    const out = join(tmp, 'multi.sarif');
    const r = await portcullis(['scan', `oci-archive:${fixtureImage('alpine-3.20-multiarch.tar')}`, '--all-platforms', '--format', 'sarif', '-o', out, '--no-cache', '--no-vulns', '--data', join(tmp, 'd2')]);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(out, 'utf8');
    expect(validateSarif(text)).toBeNull();
    const log = JSON.parse(text);
    expect(log.runs.map((run: { automationDetails: { id: string } }) => run.automationDetails.id).sort()).toEqual([
      'portcullis/linux-amd64/',
      'portcullis/linux-arm64-v8/',
    ]);
  });

  it('the table lists packages with their source and layer', async () => {
    const r = await portcullis(['scan', `oci-archive:${fixtureImage('node-app.tar')}`, '--no-cache', '--no-vulns', '--data', join(tmp, 'd3')]);
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/Packages:\s+83 \(apk 14, npm 69\)/);
    expect(r.stdout).toMatch(/^npm\s+lodash\s+4\.17\.15\s.*\s1\s+app\/node_modules\/lodash\/package\.json/m);
  });
});

describe('portcullis output to a closed pipe', () => {
  it('stops quietly when the reader goes away (scan | head)', async () => {
    const { spawn } = await import('node:child_process');
    const child = spawn('node', [CLI, 'db', 'status', '--help'], { stdio: ['ignore', 'pipe', 'pipe'] });
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    const code = await new Promise<number | null>((resolve) => child.on('close', resolve));
    expect(stderr).not.toMatch(/EPIPE|Unhandled/);
    expect(code).toBe(0);
  });
});
