import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type RunningServer } from '../../src/cli/serve-command.js';
import { freePort } from '../helpers/docker-registry.js';
import { sha256 } from './push-client.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

// HTTP-level checks of OCI Distribution Specification v1.1 statements that the conformance suite
// (opencontainers/distribution-spec, conformance/) exercises, run with authentication on.

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

let reg: TestRegistry;
let authHeader: string;

beforeAll(async () => {
  reg = await startTestRegistry();
  authHeader = `Basic ${Buffer.from(`admin:${reg.password}`).toString('base64')}`;
});
afterAll(async () => {
  await reg?.stop();
});

async function call(method: string, path: string, init: { body?: Uint8Array | string; headers?: Record<string, string>; auth?: string | null } = {}) {
  const headers: Record<string, string> = { ...(init.headers ?? {}) };
  if (init.auth !== null) headers.authorization = init.auth ?? authHeader;
  const res = await fetch(`${reg.base}${path}`, { method, headers, ...(init.body !== undefined ? { body: typeof init.body === 'string' ? init.body : new Uint8Array(init.body) } : {}) });
  const body = Buffer.from(await res.arrayBuffer());
  return { status: res.status, headers: res.headers, body, json: () => JSON.parse(body.toString('utf8')) as Record<string, unknown> };
}

function errorCode(r: { json(): Record<string, unknown> }): string {
  return ((r.json().errors as { code: string }[])[0] ?? { code: '' }).code;
}

async function pushBlob(repo: string, bytes: string): Promise<string> {
  const digest = sha256(bytes);
  const r = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  expect(r.status).toBe(201);
  return digest;
}

async function putManifest(repo: string, reference: string, manifest: string, contentType = MANIFEST) {
  return call('PUT', `/v2/${repo}/manifests/${reference}`, { body: manifest, headers: { 'content-type': contentType } });
}

async function pushImage(repo: string, tag: string) {
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag });
  const configDigest = await pushBlob(repo, config);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: Buffer.byteLength(config) },
    layers: [],
  });
  const r = await putManifest(repo, tag, manifest);
  expect(r.status, r.body.toString()).toBe(201);
  return { manifest, digest: sha256(manifest), configDigest };
}

describe('OCI distribution spec: pulling manifests', () => {
  it('answers 404 MANIFEST_UNKNOWN (not 400) to GET, HEAD and DELETE of a reference that cannot be a tag', async () => {
    await pushImage('spec/pull', 'v1');
    for (const reference of ['.INVALID_MANIFEST_NAME', '-dash-first', 'a'.repeat(129)]) {
      const get = await call('GET', `/v2/spec/pull/manifests/${reference}`);
      expect(get.status, reference).toBe(404);
      expect(errorCode(get)).toBe('MANIFEST_UNKNOWN');
      expect((await call('HEAD', `/v2/spec/pull/manifests/${reference}`)).status, reference).toBe(404);
      const del = await call('DELETE', `/v2/spec/pull/manifests/${reference}`);
      expect(del.status, reference).toBe(404);
      expect(errorCode(del)).toBe('MANIFEST_UNKNOWN');
    }
    // Without credentials the answer is still the challenge, not a hint about the reference.
    expect((await call('GET', '/v2/spec/pull/manifests/.INVALID_MANIFEST_NAME', { auth: null })).status).toBe(401);
    // A push to such a tag stays a client error.
    const { manifest } = await pushImage('spec/pull', 'v2');
    const put = await putManifest('spec/pull', '.INVALID_MANIFEST_NAME', manifest);
    expect(put.status).toBe(400);
    expect(errorCode(put)).toBe('MANIFEST_INVALID');
  });
});

describe('OCI distribution spec: cross-repository mount with token authentication', () => {
  const password = 'mount-test-password-0123';
  let server: RunningServer;
  let base: string;
  let tmp: string;
  beforeAll(async () => {
    tmp = await mkdtemp(join(tmpdir(), 'portcullis-mount-'));
    const port = await freePort();
    server = await startServe(
      { listen: `127.0.0.1:${port}`, data: join(tmp, 'data') },
      { ...process.env, PORTCULLIS_ADMIN_PASSWORD: password, PORTCULLIS_LOG_LEVEL: 'silent' },
    );
    base = `http://${server.address}`;
  });
  afterAll(async () => {
    await server?.close();
    await rm(tmp, { recursive: true, force: true });
  });

  const scopeOf = (challenge: string) => /scope="([^"]*)"/.exec(challenge)?.[1];

  it('challenges for pull on `from` as well, so one token lets the mount answer 201', async () => {
    const basic = `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`;
    const bytes = 'blob to be mounted';
    const digest = sha256(bytes);
    const pushed = await fetch(`${base}/v2/mount/src/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { authorization: basic, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(pushed.status).toBe(201);

    const mountPath = `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`;
    const anon = await fetch(`${base}${mountPath}`, { method: 'POST' });
    expect(anon.status).toBe(401);
    const scope = scopeOf(anon.headers.get('www-authenticate') ?? '');
    expect(scope?.split(' ').sort()).toEqual(['repository:mount/dst:pull,push', 'repository:mount/src:pull']);

    // What a token client does: ask for exactly the challenged scope, then retry.
    const tokenRes = await fetch(`${base}/token?service=${encodeURIComponent(server.address)}&scope=${encodeURIComponent(scope!)}`, { headers: { authorization: basic } });
    expect(tokenRes.status).toBe(200);
    const { token } = (await tokenRes.json()) as { token: string };
    const mounted = await fetch(`${base}${mountPath}`, { method: 'POST', headers: { authorization: `Bearer ${token}` } });
    expect(mounted.status).toBe(201);
    expect(mounted.headers.get('location')).toBe(`/v2/mount/dst/blobs/${digest}`);
    const read = await fetch(`${base}/v2/mount/dst/blobs/${digest}`, { headers: { authorization: `Bearer ${token}` } });
    expect(await read.text()).toBe(bytes);

    // Without `from`, or with a `from` that is not a repository name, only the target is challenged.
    for (const path of [`/v2/mount/dst/blobs/uploads/?mount=${digest}`, `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=Not%20A%20Name`]) {
      const r = await fetch(`${base}${path}`, { method: 'POST' });
      expect(r.status).toBe(401);
      expect(scopeOf(r.headers.get('www-authenticate') ?? '')).toBe('repository:mount/dst:pull,push');
    }
  });
});
