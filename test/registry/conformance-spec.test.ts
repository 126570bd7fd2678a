import { mkdtemp, rm } from 'node:fs/promises';
import { Agent, request, type IncomingHttpHeaders } from 'node:http';
import type { Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type RunningServer } from '../../src/cli/serve-command.js';
import { hashPassword } from '../../src/registry/index.js';
import { SqliteRegistryMetadata } from '../../src/store/index.js';
import { freePort } from '../helpers/docker-registry.js';
import { sha256 } from './push-client.js';
import { errorCode, registryCaller, startTestRegistry, type TestRegistry } from './registry-harness.js';

// HTTP-level checks of OCI Distribution Specification v1.1 statements that the conformance suite
// (opencontainers/distribution-spec, conformance/) exercises, run with authentication on.

const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const INDEX = 'application/vnd.oci.image.index.v1+json';

let reg: TestRegistry;

beforeAll(async () => {
  reg = await startTestRegistry();
});
afterAll(async () => {
  await reg?.stop();
});

const call = registryCaller(() => reg);

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
      { listen: `127.0.0.1:${port}`, data: join(tmp, 'data'), gate: false },
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

  it('a token narrower than the account gets a 401 insufficient_scope challenge; one the account cannot widen gets 403', async () => {
    const meta = await SqliteRegistryMetadata.open(join(tmp, 'data'));
    try {
      await meta.putUser({ name: 'reader', passwordHash: await hashPassword('reader-pw'), admin: false });
      await meta.putProjectMember('mount', 'reader', 'reader');
    } finally {
      await meta.close();
    }
    const tokenFor = async (user: string, pw: string, scope: string) => {
      const r = await fetch(`${base}/token?service=${encodeURIComponent(server.address)}&scope=${encodeURIComponent(scope)}`, {
        headers: { authorization: `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}` },
      });
      expect(r.status).toBe(200);
      return `Bearer ${((await r.json()) as { token: string }).token}`;
    };
    // The admin's pull-only token, reused for an upload (and an upload's status): widen, not refuse.
    const pullOnly = await tokenFor('admin', password, 'repository:mount/dst:pull');
    const post = await fetch(`${base}/v2/mount/dst/blobs/uploads/`, { method: 'POST', headers: { authorization: pullOnly } });
    expect(post.status).toBe(401);
    const challenge = post.headers.get('www-authenticate') ?? '';
    expect(challenge).toMatch(/^Bearer /);
    expect(challenge).toContain('error="insufficient_scope"');
    expect(scopeOf(challenge)).toBe('repository:mount/dst:pull,push');
    const wide = await tokenFor('admin', password, scopeOf(challenge)!);
    const retried = await fetch(`${base}/v2/mount/dst/blobs/uploads/`, { method: 'POST', headers: { authorization: wide } });
    expect(retried.status).toBe(202);
    const status = await fetch(`${base}${retried.headers.get('location')!}`, { headers: { authorization: pullOnly } });
    expect(status.status).toBe(401);
    expect((await fetch(`${base}${retried.headers.get('location')!}`, { headers: { authorization: wide } })).status).toBe(204);

    // A token for the mount's target alone, reused for a mount from elsewhere: widen too, with
    // both scopes, and the wider token mounts (201) instead of starting an upload.
    const bytes = 'mounted with a widened token';
    const digest = sha256(bytes);
    const pushed = await fetch(`${base}/v2/mount/src/blobs/uploads/?digest=${digest}`, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`admin:${password}`).toString('base64')}`, 'content-type': 'application/octet-stream' },
      body: bytes,
    });
    expect(pushed.status).toBe(201);
    const mountPath = `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`;
    const narrow = await fetch(`${base}${mountPath}`, { method: 'POST', headers: { authorization: wide } });
    expect(narrow.status).toBe(401);
    const mountChallenge = narrow.headers.get('www-authenticate') ?? '';
    expect(mountChallenge).toContain('error="insufficient_scope"');
    expect(scopeOf(mountChallenge)?.split(' ').sort()).toEqual(['repository:mount/dst:pull,push', 'repository:mount/src:pull']);
    const both = await tokenFor('admin', password, scopeOf(mountChallenge)!);
    expect((await fetch(`${base}${mountPath}`, { method: 'POST', headers: { authorization: both } })).status).toBe(201);

    // A reader's token can never carry push: that stays a 403 DENIED.
    const readerToken = await tokenFor('reader', 'reader-pw', 'repository:mount/dst:pull,push');
    const denied = await fetch(`${base}/v2/mount/dst/blobs/uploads/`, { method: 'POST', headers: { authorization: readerToken } });
    expect(denied.status).toBe(403);
    expect(((await denied.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('DENIED');
  });
});

describe('OCI distribution spec: error bodies', () => {
  // The spec's table of error codes; a JSON error body MUST use one of them.
  const SPEC_CODES = [
    'BLOB_UNKNOWN',
    'BLOB_UPLOAD_INVALID',
    'BLOB_UPLOAD_UNKNOWN',
    'DIGEST_INVALID',
    'MANIFEST_BLOB_UNKNOWN',
    'MANIFEST_INVALID',
    'MANIFEST_UNKNOWN',
    'NAME_INVALID',
    'NAME_UNKNOWN',
    'SIZE_INVALID',
    'UNAUTHORIZED',
    'DENIED',
    'UNSUPPORTED',
    'TOOMANYREQUESTS',
  ];

  it('the registry knows no error code outside the spec table', async () => {
    const { OCI_ERROR_STATUS } = await import('../../src/registry/errors.js');
    expect(Object.keys(OCI_ERROR_STATUS).sort()).toEqual([...SPEC_CODES].sort());
  });

  it('range errors (chunk out of order, retried chunk, unsatisfiable read) are 416 with spec codes', async () => {
    const start = await call('POST', '/v2/spec/errors/blobs/uploads/');
    const location = start.headers.get('location')!;
    const octets = { 'content-type': 'application/octet-stream' };
    const first = await call('PATCH', location, { body: 'abcd', headers: { ...octets, 'content-range': '0-3' } });
    expect(first.status).toBe(202);
    const next = first.headers.get('location')!;
    const responses = [
      await call('PATCH', next, { body: 'abcd', headers: { ...octets, 'content-range': '0-3' } }), // the same chunk again
      await call('PATCH', next, { body: 'xy', headers: { ...octets, 'content-range': '8-9' } }), // a gap
      await call('PATCH', next, { body: 'xy', headers: { ...octets, 'content-range': 'nonsense' } }),
    ];
    for (const r of responses) {
      expect(r.status).toBe(416);
      expect(SPEC_CODES).toContain(errorCode(r));
    }
    // Out of order, the answer also says where the upload stands.
    for (const r of responses.slice(0, 2)) expect(r.headers.get('range')).toBe('0-3');
    // The session survives the refused chunks.
    const status = await call('GET', next);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-3');
    expect(status.headers.get('location')).toBe(next);

    const digest = await pushBlob('spec/errors', '0123456789');
    const unsatisfiable = await call('GET', `/v2/spec/errors/blobs/${digest}`, { headers: { range: 'bytes=50-60' } });
    expect(unsatisfiable.status).toBe(416);
    expect(SPEC_CODES).toContain(errorCode(unsatisfiable));
  });

  it('4xx answers carry {errors:[{code,message,detail}]} with a code from the table', async () => {
    const digest = sha256('no such blob');
    const answers = [
      await call('GET', '/v2/spec/none/manifests/latest'),
      await call('GET', `/v2/spec/errors/blobs/${digest}`),
      await call('GET', '/v2/spec/errors/blobs/sha256:nothex'),
      await call('GET', '/v2/spec/errors/blobs/uploads/00000000-0000-0000-0000-000000000000'),
      await call('PUT', '/v2/spec/errors/manifests/bad', { body: 'not json', headers: { 'content-type': MANIFEST } }),
      await call('GET', '/v2/Spec/Upper/tags/list'),
      await call('GET', '/v2/spec/errors/tags/list', { auth: null }),
      await call('PATCH', '/v2/spec/errors/manifests/latest'),
    ];
    for (const r of answers) {
      expect(r.status).toBeGreaterThanOrEqual(400);
      expect(r.status).toBeLessThan(500);
      const errors = r.json().errors as { code: string; message?: unknown }[];
      expect(Array.isArray(errors) && errors.length > 0).toBe(true);
      for (const e of errors) {
        expect(e.code).toMatch(/^[A-Z_]+$/);
        expect(SPEC_CODES).toContain(e.code);
        expect(typeof e.message).toBe('string');
      }
    }
  });
});

describe('OCI distribution spec: listing tags', () => {
  it('lists tags in case-insensitive lexical order, pages with n and last, and n=0 gives an empty list without Link', async () => {
    const tags = ['b', 'A', 'a', 'C', 'a1', 'B2', '_x', '0'];
    for (const tag of tags) await pushImage('spec/tags', tag);
    const expected = ['0', '_x', 'A', 'a', 'a1', 'b', 'B2', 'C'];
    const all = await call('GET', '/v2/spec/tags/tags/list');
    expect(all.status).toBe(200);
    expect(all.json()).toEqual({ name: 'spec/tags', tags: expected });

    // Walking the pages returns every tag once, in the same order.
    const walked: string[] = [];
    let next: string | null = '/v2/spec/tags/tags/list?n=3';
    while (next) {
      const page = await call('GET', next);
      const got = page.json().tags as string[];
      expect(got.length).toBeLessThanOrEqual(3);
      walked.push(...got);
      const link = page.headers.get('link');
      // Fewer than n only on the last page; a Link header whenever more follow.
      if (link) expect(got.length).toBe(3);
      next = link ? link.slice(1, link.indexOf('>')) : null;
    }
    expect(walked).toEqual(expected);
    expect((await call('GET', '/v2/spec/tags/tags/list?n=2&last=a')).json().tags).toEqual(['a1', 'b']);
    expect((await call('GET', '/v2/spec/tags/tags/list?n=2&last=A')).json().tags).toEqual(['a', 'a1']);

    const none = await call('GET', '/v2/spec/tags/tags/list?n=0');
    expect(none.status).toBe(200);
    expect(none.json().tags).toEqual([]);
    expect(none.headers.get('link')).toBeNull();
  });
});

describe('OCI distribution spec: MUST and SHOULD statements for pull, push, discovery and deletion', () => {
  const EMPTY = '{}';

  it('blob push: POST gives 202 with a session Location, PATCH 202 with Location and Range, PUT 201 with a pullable Location', async () => {
    const start = await call('POST', '/v2/spec/push/blobs/uploads/');
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    expect(location).toMatch(/^\/v2\/spec\/push\/blobs\/uploads\/[0-9a-f-]{36}$/);
    const patch = await call('PATCH', location, { body: 'chunk', headers: { 'content-type': 'application/octet-stream' } });
    expect(patch.status).toBe(202);
    expect(patch.headers.get('location')).toBeTruthy();
    expect(patch.headers.get('range')).toBe('0-4');
    const digest = sha256('chunk');
    const done = await call('PUT', `${patch.headers.get('location')!}?digest=${digest}`, { headers: { 'content-length': '0' } });
    expect(done.status).toBe(201);
    const blobLocation = done.headers.get('location')!;
    const pulled = await call('GET', blobLocation);
    expect(pulled.status).toBe(200);
    expect(pulled.body.toString()).toBe('chunk');
    expect(pulled.headers.get('docker-content-digest')).toBe(sha256(pulled.body));

    // Single-request monolithic upload: 201 with a Location too.
    const mono = await call('POST', `/v2/spec/push/blobs/uploads/?digest=${sha256('mono')}`, { body: 'mono', headers: { 'content-type': 'application/octet-stream' } });
    expect(mono.status).toBe(201);
    expect(mono.headers.get('location')).toBe(`/v2/spec/push/blobs/${sha256('mono')}`);
  });

  it('HEAD answers 200 with digest and length for blobs and manifests, 404 without a body when missing', async () => {
    const { manifest, digest, configDigest } = await pushImage('spec/head', 'v1');
    const blob = await call('HEAD', `/v2/spec/head/blobs/${configDigest}`);
    expect(blob.status).toBe(200);
    expect(blob.headers.get('docker-content-digest')).toBe(configDigest);
    expect(Number(blob.headers.get('content-length'))).toBeGreaterThan(0);
    const man = await call('HEAD', `/v2/spec/head/manifests/v1`);
    expect(man.status).toBe(200);
    expect(man.headers.get('docker-content-digest')).toBe(digest);
    expect(man.headers.get('content-length')).toBe(String(Buffer.byteLength(manifest)));
    for (const path of [`/v2/spec/head/blobs/${sha256('missing')}`, `/v2/spec/head/manifests/${sha256('missing')}`, '/v2/spec/head/manifests/missing', '/v2/spec/nowhere/manifests/v1']) {
      const r = await call('HEAD', path);
      expect(r.status, path).toBe(404);
      expect(r.body.length).toBe(0);
    }
    // A repository that does not exist: 404 for pulls of every kind.
    for (const path of ['/v2/spec/nowhere/manifests/v1', `/v2/spec/nowhere/blobs/${configDigest}`, '/v2/spec/nowhere/tags/list']) {
      expect((await call('GET', path)).status, path).toBe(404);
    }
  });

  it('ignores parameters on a pushed Content-Type and serves the media type without them', async () => {
    const configDigest = await pushBlob('spec/ctype', EMPTY);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: 2 },
      layers: [],
    });
    const put = await putManifest('spec/ctype', 'v1', manifest, `${MANIFEST}; charset=utf-8`);
    expect(put.status, put.body.toString()).toBe(201);
    for (const method of ['GET', 'HEAD']) {
      const r = await call(method, '/v2/spec/ctype/manifests/v1', { headers: { accept: MANIFEST } });
      expect(r.status).toBe(200);
      expect(r.headers.get('content-type')).toBe(MANIFEST);
    }
  });

  it('stores the exact bytes and answers with the digest the client pushed by, sha512 included', async () => {
    const configDigest = await pushBlob('spec/exact', EMPTY);
    // Odd whitespace and key order: the registry must not re-serialise.
    const manifest = `{\n  "schemaVersion" : 2,\t"mediaType": "${MANIFEST}",\n"layers": [ ], "config": {"mediaType": "application/vnd.oci.empty.v1+json", "size": 2, "digest": "${configDigest}"}}\n`;
    const { createHash } = await import('node:crypto');
    const sha512 = `sha512:${createHash('sha512').update(manifest).digest('hex')}`;
    const put = await putManifest('spec/exact', sha512, manifest);
    expect(put.status, put.body.toString()).toBe(201);
    expect(put.headers.get('docker-content-digest')).toBe(sha512);
    expect(put.headers.get('location')).toBe(`/v2/spec/exact/manifests/${sha512}`);
    const got = await call('GET', `/v2/spec/exact/manifests/${sha512}`);
    expect(got.status).toBe(200);
    expect(got.body.toString()).toBe(manifest);
    const byTag = await putManifest('spec/exact', 'v1', manifest);
    expect(byTag.headers.get('docker-content-digest')).toBe(sha256(manifest));
  });

  it('accepts a manifest of 4 MiB and refuses a bigger one with 413', async () => {
    const configDigest = await pushBlob('spec/size', EMPTY);
    const shell = (pad: string) =>
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: configDigest, size: 2 },
        layers: [],
        annotations: { pad },
      });
    const limit = 4 * 1024 * 1024;
    const exact = shell('x'.repeat(limit - Buffer.byteLength(shell(''))));
    expect(Buffer.byteLength(exact)).toBe(limit);
    const ok = await putManifest('spec/size', 'big', exact);
    expect(ok.status, ok.body.toString().slice(0, 200)).toBe(201);
    expect((await call('GET', '/v2/spec/size/manifests/big')).body.length).toBe(limit);
    const over = await putManifest('spec/size', 'bigger', shell('x'.repeat(limit - Buffer.byteLength(shell('')) + 1)));
    expect(over.status).toBe(413);
  });

  it('deletes by tag (202, the manifest stays), by digest (202) and answers 404 for what is not there', async () => {
    const { digest, configDigest } = await pushImage('spec/delete', 'v1');
    await pushImage('spec/delete', 'v2');
    const byTag = await call('DELETE', '/v2/spec/delete/manifests/v1');
    expect(byTag.status).toBe(202);
    expect((await call('GET', '/v2/spec/delete/manifests/v1')).status).toBe(404);
    expect((await call('GET', `/v2/spec/delete/manifests/${digest}`)).status).toBe(200);
    expect((await call('GET', '/v2/spec/delete/tags/list')).json().tags).toEqual(['v2']);
    expect((await call('DELETE', `/v2/spec/delete/manifests/${digest}`)).status).toBe(202);
    expect((await call('GET', `/v2/spec/delete/manifests/${digest}`)).status).toBe(404);
    expect((await call('DELETE', `/v2/spec/delete/manifests/${digest}`)).status).toBe(404);
    expect((await call('DELETE', `/v2/spec/nowhere/manifests/${digest}`)).status).toBe(404);
    expect((await call('DELETE', `/v2/spec/delete/blobs/${configDigest}`)).status).toBe(202);
    const gone = await call('DELETE', `/v2/spec/delete/blobs/${configDigest}`);
    expect(gone.status).toBe(404);
    expect(errorCode(gone)).toBe('BLOB_UNKNOWN');
  });

  it('referrers: a subject may be pushed after its referrer; artifactType falls back to the config type; an index without one has none', async () => {
    const emptyDigest = await pushBlob('spec/referrers', EMPTY);
    const subjectConfig = JSON.stringify({ architecture: 'arm64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
    const subjectConfigDigest = await pushBlob('spec/referrers', subjectConfig);
    const subject = JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: subjectConfigDigest, size: Buffer.byteLength(subjectConfig) },
      layers: [],
    });
    const subjectDigest = sha256(subject);
    const subjectDesc = { mediaType: MANIFEST, digest: subjectDigest, size: Buffer.byteLength(subject) };

    // Referrer first, subject absent: MUST be accepted, with OCI-Subject.
    const noArtifactType = JSON.stringify({
      schemaVersion: 2,
      mediaType: MANIFEST,
      config: { mediaType: 'application/vnd.example.config+json', digest: emptyDigest, size: 2 },
      layers: [],
      subject: subjectDesc,
      annotations: { 'org.example.kind': 'config-typed' },
    });
    const first = await putManifest('spec/referrers', sha256(noArtifactType), noArtifactType);
    expect(first.status, first.body.toString()).toBe(201);
    expect(first.headers.get('oci-subject')).toBe(subjectDigest);

    const index = JSON.stringify({ schemaVersion: 2, mediaType: INDEX, manifests: [], subject: subjectDesc, annotations: { 'org.example.kind': 'index' } });
    const indexPut = await putManifest('spec/referrers', sha256(index), index, INDEX);
    expect(indexPut.status, indexPut.body.toString()).toBe(201);
    expect(indexPut.headers.get('oci-subject')).toBe(subjectDigest);

    expect((await putManifest('spec/referrers', 'subject', subject)).status).toBe(201);

    const list = await call('GET', `/v2/spec/referrers/referrers/${subjectDigest}`);
    expect(list.status).toBe(200);
    expect(list.headers.get('content-type')).toBe(INDEX);
    const body = list.json() as { schemaVersion: number; mediaType: string; manifests: { digest: string; mediaType: string; size: number; artifactType?: string; annotations?: Record<string, string> }[] };
    expect(body.schemaVersion).toBe(2);
    expect(body.mediaType).toBe(INDEX);
    const byDigest = new Map(body.manifests.map((m) => [m.digest, m]));
    expect(byDigest.get(sha256(noArtifactType))).toMatchObject({
      mediaType: MANIFEST,
      size: Buffer.byteLength(noArtifactType),
      artifactType: 'application/vnd.example.config+json',
      annotations: { 'org.example.kind': 'config-typed' },
    });
    const indexDesc = byDigest.get(sha256(index))!;
    expect(indexDesc).toMatchObject({ mediaType: INDEX, annotations: { 'org.example.kind': 'index' } });
    expect('artifactType' in indexDesc).toBe(false);

    // Filtering by the fallback type works, with the header saying a filter was applied.
    const filtered = await call('GET', `/v2/spec/referrers/referrers/${subjectDigest}?artifactType=${encodeURIComponent('application/vnd.example.config+json')}`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect((filtered.json().manifests as { digest: string }[]).map((m) => m.digest)).toEqual([sha256(noArtifactType)]);

    // A deleted referrer leaves the list; no referrers is an empty list, never a 404.
    expect((await call('DELETE', `/v2/spec/referrers/manifests/${sha256(index)}`)).status).toBe(202);
    const after = (await call('GET', `/v2/spec/referrers/referrers/${subjectDigest}`)).json().manifests as { digest: string }[];
    expect(after.map((m) => m.digest)).toEqual([sha256(noArtifactType)]);
    for (const path of [`/v2/spec/referrers/referrers/${sha256('nothing refers to this')}`, `/v2/spec/nowhere/referrers/${subjectDigest}`]) {
      const r = await call('GET', path);
      expect(r.status, path).toBe(200);
      expect(r.json().manifests).toEqual([]);
    }
    const bad = await call('GET', '/v2/spec/referrers/referrers/sha256:not-a-digest');
    expect(bad.status).toBe(400);
  });
});

describe('OCI distribution spec: referrers in pages', () => {
  it('splits a long referrers list with a Link rel="next" header that keeps the filter', async () => {
    const { REFERRERS_PAGE_SIZE } = await import('../../src/registry/app.js');
    const { digest: subject, manifest } = await pushImage('spec/many', 'v1');
    const emptyDigest = await pushBlob('spec/many', '{}');
    const total = REFERRERS_PAGE_SIZE + 10;
    const pushed: string[] = [];
    for (let i = 0; i < total; i++) {
      const m = JSON.stringify({
        schemaVersion: 2,
        mediaType: MANIFEST,
        artifactType: i % 2 === 0 ? 'application/vnd.example.even' : 'application/vnd.example.odd',
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
        layers: [],
        subject: { mediaType: MANIFEST, digest: subject, size: Buffer.byteLength(manifest) },
        annotations: { n: String(i) },
      });
      const r = await putManifest('spec/many', sha256(m), m);
      expect(r.status).toBe(201);
      pushed.push(sha256(m));
    }
    const walk = async (first: string) => {
      const seen: string[] = [];
      const links: string[] = [];
      let next: string | null = first;
      while (next) {
        const page = await call('GET', next);
        expect(page.status).toBe(200);
        expect(page.headers.get('content-type')).toBe(INDEX);
        const got = page.json().manifests as { digest: string }[];
        expect(got.length).toBeLessThanOrEqual(REFERRERS_PAGE_SIZE);
        seen.push(...got.map((m) => m.digest));
        const link = page.headers.get('link');
        if (link) {
          expect(link).toMatch(/^<\/v2\/spec\/many\/referrers\/[^>]+>; rel="next"$/);
          links.push(link);
        }
        next = link ? link.slice(1, link.indexOf('>')) : null;
      }
      return { seen, links };
    };
    const all = await walk(`/v2/spec/many/referrers/${subject}`);
    expect(all.links).toHaveLength(1);
    expect(new Set(all.seen).size).toBe(total);
    expect([...all.seen].sort()).toEqual([...pushed].sort());

    // A filtered list that fits in one page has no Link; the filter survives into later pages.
    const even = await walk(`/v2/spec/many/referrers/${subject}?artifactType=application/vnd.example.even`);
    expect(even.links).toHaveLength(0);
    expect(even.seen.length).toBe(Math.ceil(total / 2));
    expect(all.links[0]).not.toContain('artifactType');
    const firstPage = await call('GET', `/v2/spec/many/referrers/${subject}`);
    const nextUrl = firstPage.headers.get('link')!.slice(1, firstPage.headers.get('link')!.indexOf('>'));
    const filteredNext = await call('GET', `${nextUrl}&artifactType=application/vnd.example.odd`);
    expect(filteredNext.headers.get('oci-filters-applied')).toBe('artifactType');
    expect(errorCode(await call('GET', `/v2/spec/many/referrers/${subject}?last=not-a-digest`))).toBe('DIGEST_INVALID');
  });
});

describe('OCI distribution spec: connections', () => {
  // The conformance suite's Go client drops a `Connection: close` from the answers it shows and
  // quietly opens a new connection, so the suite passes even if the registry closes connections it
  // should keep. The root onSend hook closes those whose request body is still arriving; none of
  // these steps leaves one arriving (the challenged requests send their small body with their
  // headers), so every answer must keep the connection.
  it('answers every step of a push, mount, pull and delete on one kept-alive connection, 401 challenges included', async () => {
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    const sockets = new Set<Socket>();
    const closing: string[] = [];
    const basic = `Basic ${Buffer.from(`admin:${reg.password}`).toString('base64')}`;
    const [hostname, port] = reg.host.split(':') as [string, string];
    // `body` as an array is written piece by piece with chunked transfer encoding.
    function send(method: string, path: string, body?: Buffer | Buffer[], headers: Record<string, string> = {}, auth = true) {
      return new Promise<{ status: number; headers: IncomingHttpHeaders; body: Buffer }>((resolve, reject) => {
        const all: Record<string, string> = { ...headers, ...(auth ? { authorization: basic } : {}) };
        if (!Array.isArray(body)) all['content-length'] = String(body?.length ?? 0);
        const req = request({ agent, host: hostname, port: Number(port), method, path, headers: all }, (res) => {
          sockets.add(res.socket);
          if (res.headers.connection === 'close') closing.push(`${method} ${path} ${res.statusCode}`);
          const parts: Buffer[] = [];
          res.on('data', (d: Buffer) => parts.push(d));
          res.on('end', () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(parts) }));
        });
        req.on('error', reject);
        if (Array.isArray(body)) {
          for (const b of body) req.write(b);
          req.end();
        } else req.end(body);
      });
    }
    try {
      const repo = 'spec/keep';
      // The challenge a client meets first: an empty POST, a manifest PUT, a chunk PATCH.
      expect((await send('POST', `/v2/${repo}/blobs/uploads/`, undefined, {}, false)).status).toBe(401);
      expect((await send('PUT', `/v2/${repo}/manifests/v0`, Buffer.from('{}'), { 'content-type': MANIFEST }, false)).status).toBe(401);
      expect((await send('PATCH', `/v2/${repo}/blobs/uploads/x`, Buffer.from('abc'), { 'content-type': 'application/octet-stream' }, false)).status).toBe(401);

      // Chunked upload: an empty POST, a chunk big enough to span many TCP segments, a chunk sent
      // with chunked transfer encoding, a closing PUT without a body.
      const first = Buffer.alloc(256 * 1024, 'a');
      const second = [Buffer.from('bb'), Buffer.from('cc')];
      const start = await send('POST', `/v2/${repo}/blobs/uploads/`);
      expect(start.status).toBe(202);
      const patch1 = await send('PATCH', start.headers.location!, first, {
        'content-type': 'application/octet-stream',
        'content-range': `0-${first.length - 1}`,
      });
      expect(patch1.status).toBe(202);
      const patch2 = await send('PATCH', patch1.headers.location!, second, { 'content-type': 'application/octet-stream' });
      expect(patch2.status).toBe(202);
      const layer = sha256(Buffer.concat([first, ...second]));
      const done = await send('PUT', `${patch2.headers.location!}?digest=${layer}`);
      expect(done.status).toBe(201);

      // Monolithic in one request, an upload finished by a PUT with the body, a mount, a manifest.
      const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
      const configDigest = sha256(config);
      expect((await send('POST', `/v2/${repo}/blobs/uploads/?digest=${configDigest}`, config, { 'content-type': 'application/octet-stream' })).status).toBe(201);
      const other = Buffer.from('other');
      const session = await send('POST', `/v2/${repo}/blobs/uploads/`);
      expect((await send('PUT', `${session.headers.location!}?digest=${sha256(other)}`, other, { 'content-type': 'application/octet-stream' })).status).toBe(201);
      expect((await send('POST', `/v2/spec/keep-mounted/blobs/uploads/?mount=${layer}&from=${repo}`)).status).toBe(201);
      const manifest = Buffer.from(
        JSON.stringify({
          schemaVersion: 2,
          mediaType: MANIFEST,
          config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: config.length },
          layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: first.length + 4 }],
        }),
      );
      expect((await send('PUT', `/v2/${repo}/manifests/v1`, manifest, { 'content-type': MANIFEST })).status).toBe(201);

      // Refusals: an invalid manifest (read), a chunk out of order (refused before it is read).
      expect((await send('PUT', `/v2/${repo}/manifests/bad`, Buffer.from('{"schemaVersion":2}'), { 'content-type': MANIFEST })).status).toBe(400);
      const late = await send('POST', `/v2/${repo}/blobs/uploads/`);
      expect((await send('PATCH', late.headers.location!, Buffer.from('xyz'), { 'content-type': 'application/octet-stream', 'content-range': '5-7' })).status).toBe(416);

      // Pull, list, delete, and what is not there.
      expect((await send('GET', `/v2/${repo}/manifests/v1`, undefined, { accept: MANIFEST })).status).toBe(200);
      expect((await send('HEAD', `/v2/${repo}/blobs/${layer}`)).status).toBe(200);
      const pulled = await send('GET', `/v2/spec/keep-mounted/blobs/${layer}`);
      expect(sha256(pulled.body)).toBe(layer);
      expect((await send('GET', `/v2/${repo}/blobs/${layer}`, undefined, { range: 'bytes=0-9' })).status).toBe(206);
      expect((await send('GET', `/v2/${repo}/tags/list`)).status).toBe(200);
      expect((await send('GET', `/v2/${repo}/referrers/${sha256(manifest)}`)).status).toBe(200);
      expect((await send('DELETE', `/v2/${repo}/manifests/${sha256(manifest)}`)).status).toBe(202);
      expect((await send('GET', `/v2/${repo}/manifests/v1`)).status).toBe(404);
      expect((await send('DELETE', `/v2/${repo}/blobs/${configDigest}`)).status).toBe(202);

      expect(closing).toEqual([]);
      expect(sockets.size).toBe(1);
    } finally {
      agent.destroy();
    }
  });
});
