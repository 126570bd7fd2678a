import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { onPath, run } from '../helpers/docker-registry.js';
import { HAVE_FIXTURES, fixtureImage } from '../helpers/fixtures.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

const FIXTURES: { file: string; tag: string; all: boolean }[] = [
  { file: 'alpine-3.11.tar', tag: '3.11.13', all: false },
  { file: 'alpine-3.20.tar', tag: '3.20.3', all: false },
  { file: 'alpine-3.20-multiarch.tar', tag: '3.20.3-multi', all: true },
  { file: 'debian-12-minbase.tar', tag: '12-minbase', all: false },
  { file: 'node-app.tar', tag: '1.0.0', all: false },
  { file: 'go-app.tar', tag: 'go-1.0.0', all: false },
];

const skipReason = !onPath('skopeo')
  ? 'skopeo not installed (apt-get install skopeo)'
  : !HAVE_FIXTURES
    ? '../shared/fixtures is absent'
    : undefined;

const sha256 = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function skopeo(args: string[]) {
  // --insecure-policy: the test must not depend on the host's /etc/containers/policy.json.
  return run('skopeo', ['--insecure-policy', ...args]);
}

async function rawDigest(ref: string, extra: string[] = []): Promise<string> {
  const r = await run('skopeo', ['inspect', '--raw', ...extra, ref]);
  expect(r.code, r.output).toBe(0);
  // skopeo prints the manifest bytes as stored; the digest is over those bytes.
  return sha256(Buffer.from(r.stdout, 'utf8'));
}

describe.skipIf(skipReason !== undefined)(`skopeo against portcullis serve${skipReason ? ` [SKIPPED: ${skipReason}]` : ''}`, () => {
  let reg: TestRegistry;
  let work: string;
  const creds = () => `admin:${reg.password}`;

  beforeAll(async () => {
    reg = await startTestRegistry('skopeo-test-pw');
    work = await mkdtemp(join(tmpdir(), 'portcullis-skopeo-'));
  });
  afterAll(async () => {
    await reg?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const fx of FIXTURES) {
    it(`copies ${fx.file} in and out with identical manifest digests`, { timeout: 240_000 }, async () => {
      const source = `oci-archive:${fixtureImage(fx.file)}`;
      expect(existsSync(fixtureImage(fx.file))).toBe(true);
      const dest = `docker://${reg.host}/library/x:${fx.tag}`;
      const all = fx.all ? ['--all'] : [];
      const push = await skopeo(['copy', '--quiet', ...all, '--dest-creds', creds(), '--dest-tls-verify=false', source, dest]);
      expect(push.code, push.output).toBe(0);

      const expected = await rawDigest(source);
      expect(await rawDigest(dest, ['--creds', creds(), '--tls-verify=false'])).toBe(expected);

      const out = join(work, fx.file.replace(/\.tar$/, ''));
      const pull = await skopeo(['copy', '--quiet', ...all, '--src-creds', creds(), '--src-tls-verify=false', dest, `oci:${out}:${fx.tag}`]);
      expect(pull.code, pull.output).toBe(0);
      const index = JSON.parse(await readFile(join(out, 'index.json'), 'utf8')) as { manifests: { digest: string }[] };
      expect(index.manifests.map((m) => m.digest)).toEqual([expected]);
    });
  }

  it('skopeo inspect and list-tags work', async () => {
    const inspect = await skopeo(['inspect', '--creds', creds(), '--tls-verify=false', `docker://${reg.host}/library/x:3.20.3`]);
    expect(inspect.code, inspect.output).toBe(0);
    const info = JSON.parse(inspect.stdout) as { Digest: string; Architecture: string };
    expect(info.Digest).toBe('sha256:f1a7fa83ec499f620a848cc2a5a0a0c9db0a260e69d54af5d87564a8538cc7f6');
    expect(info.Architecture).toBe('amd64');
    const tags = await skopeo(['list-tags', '--creds', creds(), '--tls-verify=false', `docker://${reg.host}/library/x`]);
    expect(tags.code, tags.output).toBe(0);
    expect((JSON.parse(tags.stdout) as { Tags: string[] }).Tags.sort()).toEqual(FIXTURES.map((f) => f.tag).sort());
  });

  it('skopeo delete removes a manifest', async () => {
    const ref = `docker://${reg.host}/library/x:go-1.0.0`;
    const del = await skopeo(['delete', '--creds', creds(), '--tls-verify=false', ref]);
    expect(del.code, del.output).toBe(0);
    const after = await skopeo(['inspect', '--raw', '--creds', creds(), '--tls-verify=false', ref]);
    expect(after.code).not.toBe(0);
  });

  it('refuses an unauthenticated push and a wrong password', async () => {
    const source = `oci-archive:${fixtureImage('alpine-3.11.tar')}`;
    const anon = await skopeo(['copy', '--quiet', '--dest-no-creds', '--dest-tls-verify=false', source, `docker://${reg.host}/library/anon:1`]);
    expect(anon.code).not.toBe(0);
    expect(anon.output).toMatch(/unauthori[sz]ed|authentication required|401/i);
    const wrong = await skopeo(['copy', '--quiet', '--dest-creds', 'admin:wrong', '--dest-tls-verify=false', source, `docker://${reg.host}/library/anon:1`]);
    expect(wrong.code).not.toBe(0);
    const tags = await skopeo(['list-tags', '--creds', creds(), '--tls-verify=false', `docker://${reg.host}/library/anon`]);
    expect(tags.code).not.toBe(0);
  });
});
