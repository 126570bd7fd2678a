import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type RunningServer } from '../../src/cli/serve-command.js';
import { freePort, onPath, run } from '../helpers/docker-registry.js';
import { FIXTURE_SKIP_REASON, HAVE_FIXTURES, fixtureImage } from '../helpers/fixtures.js';

const PASSWORD = 'test-password-0123456789';
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-token-'));
const HAVE_SKOPEO = onPath('skopeo');

describe('portcullis serve with Docker token authentication', () => {
  let server: RunningServer;
  let base: string;
  beforeAll(async () => {
    const port = await freePort();
    server = await startServe(
      { listen: `127.0.0.1:${port}`, data: join(tmp, 'data'), gate: false },
      { ...process.env, PORTCULLIS_ADMIN_PASSWORD: PASSWORD, PORTCULLIS_LOG_LEVEL: 'silent' },
    );
    base = `http://${server.address}`;
  });
  afterAll(async () => {
    await server?.close();
    rmSync(tmp, { recursive: true, force: true });
  });

  it('challenges with Bearer, issues scoped tokens for valid credentials only, and the token opens /v2', async () => {
    const res = await fetch(`${base}/v2/library/alpine/manifests/1`);
    expect(res.status).toBe(401);
    const challenge = res.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(new RegExp(`^Bearer realm="${base}/token",service="${server.address}",scope="repository:library/alpine:pull"`));
    const basic = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;
    const tokenRes = await fetch(`${base}/token?service=${encodeURIComponent(server.address)}&scope=repository:library/alpine:pull,push`, {
      headers: { authorization: basic },
    });
    expect(tokenRes.status).toBe(200);
    const { token } = (await tokenRes.json()) as { token: string };
    const v2 = await fetch(`${base}/v2/`, { headers: { authorization: `Bearer ${token}` } });
    expect(v2.status).toBe(200);
    const wrong = await fetch(`${base}/token?service=${encodeURIComponent(server.address)}&scope=repository:x:pull`, {
      headers: { authorization: `Basic ${Buffer.from('admin:nope').toString('base64')}` },
    });
    expect(wrong.status).toBe(401);
    expect(await wrong.text()).not.toContain('nope');
  });

  it.skipIf(!HAVE_SKOPEO || !HAVE_FIXTURES)(
    `skopeo pushes and pulls through the token flow; without credentials it is refused${HAVE_SKOPEO ? FIXTURE_SKIP_REASON : ' [SKIPPED: skopeo is absent]'}`,
    async () => {
      const ref = `docker://${server.address}/library/alpine:3.20.3`;
      const push = await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--preserve-digests', '--dest-tls-verify=false', '--dest-creds', `admin:${PASSWORD}`, `oci-archive:${fixtureImage('alpine-3.20.tar')}`, ref]);
      expect(push.code, push.output).toBe(0);
      const inspect = await run('skopeo', ['inspect', '--tls-verify=false', '--creds', `admin:${PASSWORD}`, '--format', '{{.Digest}}', ref]);
      expect(inspect.stdout.trim()).toBe('sha256:f1a7fa83ec499f620a848cc2a5a0a0c9db0a260e69d54af5d87564a8538cc7f6');
      const anon = await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', '--dest-no-creds', `oci-archive:${fixtureImage('alpine-3.11.tar')}`, `docker://${server.address}/library/other:1`]);
      expect(anon.code).not.toBe(0);
      expect(anon.output).toMatch(/unauthorized|authentication required|401/i);
    },
  );
});
