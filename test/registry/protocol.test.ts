import { createHash } from 'node:crypto';
import { request as httpRequest } from 'node:http';
import { existsSync, readdirSync, readlinkSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { errorCode, registryCaller, startTestRegistry, type TestRegistry } from './registry-harness.js';

const sha256 = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const sha512 = (b: Uint8Array | string) => `sha512:${createHash('sha512').update(b).digest('hex')}`;

let reg: TestRegistry;
let authHeader: string;

beforeAll(async () => {
  reg = await startTestRegistry();
  authHeader = `Basic ${Buffer.from(`admin:${reg.password}`).toString('base64')}`;
});
afterAll(async () => {
  await reg?.stop();
});

const call = registryCaller(() => reg);

/** Raw request line, untouched by URL normalisation (fetch would fold `a/../b` to `b`). */
function rawRequest(method: string, path: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const [hostname, port] = reg.host.split(':');
    const req = httpRequest({ hostname, port: Number(port), path, method, headers: { authorization: authHeader } }, (res) => {
      let body = '';
      res.on('data', (d: Buffer) => (body += d.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
    });
    req.on('error', reject);
    req.end();
  });
}

async function pushBlob(repo: string, bytes: Uint8Array | string): Promise<string> {
  const digest = sha256(bytes);
  const r = await call('POST', `/v2/${repo}/blobs/uploads/?digest=${digest}`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
  expect(r.status).toBe(201);
  return digest;
}

async function pushImage(repo: string, tag: string, extra: Record<string, unknown> = {}) {
  const config = JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, tag });
  const layer = `layer of ${repo}:${tag}`;
  const configDigest = await pushBlob(repo, config);
  const layerDigest = await pushBlob(repo, layer);
  const manifest = JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: configDigest, size: Buffer.byteLength(config) },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: layerDigest, size: Buffer.byteLength(layer) }],
    ...extra,
  });
  const r = await call('PUT', `/v2/${repo}/manifests/${tag}`, { body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
  expect(r.status, r.body.toString()).toBe(201);
  return { manifest, digest: sha256(manifest), configDigest, layerDigest, response: r };
}

describe('registry protocol (Basic auth on)', () => {
  it('GET /v2/ answers 200 with the API version header when authenticated', async () => {
    const r = await call('GET', '/v2/');
    expect(r.status).toBe(200);
    expect(r.headers.get('docker-distribution-api-version')).toBe('registry/2.0');
  });

  it('unauthenticated requests get 401 with a Basic challenge; a wrong password too', async () => {
    const anon = await call('GET', '/v2/', { auth: null });
    expect(anon.status).toBe(401);
    expect(anon.headers.get('www-authenticate')).toBe('Basic realm="portcullis"');
    expect(errorCode(anon)).toBe('UNAUTHORIZED');
    const wrong = await call('GET', '/v2/library/x/tags/list', { auth: `Basic ${Buffer.from('admin:nope').toString('base64')}` });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get('www-authenticate')).toContain('Basic');
    const push = await call('POST', '/v2/anon/blobs/uploads/', { auth: null });
    expect(push.status).toBe(401);
  });

  it('monolithic upload, blob HEAD/GET, Range reads and DELETE', async () => {
    const bytes = Buffer.from('0123456789abcdef');
    const digest = await pushBlob('blobs/mono', bytes);
    const head = await call('HEAD', `/v2/blobs/mono/blobs/${digest}`);
    expect(head.status).toBe(200);
    expect(head.headers.get('content-length')).toBe('16');
    expect(head.headers.get('docker-content-digest')).toBe(digest);
    const get = await call('GET', `/v2/blobs/mono/blobs/${digest}`);
    expect(get.body.equals(bytes)).toBe(true);
    const part = await call('GET', `/v2/blobs/mono/blobs/${digest}`, { headers: { range: 'bytes=2-5' } });
    expect(part.status).toBe(206);
    expect(part.body.toString()).toBe('2345');
    expect(part.headers.get('content-range')).toBe('bytes 2-5/16');
    const bad = await call('GET', `/v2/blobs/mono/blobs/${digest}`, { headers: { range: 'bytes=100-200' } });
    expect(bad.status).toBe(416);
    expect(bad.headers.get('content-range')).toBe('bytes */16');
    const held = await call('GET', `/v2/blobs/mono/blobs/${digest}`, { headers: { 'if-none-match': `"${digest}"`, range: 'bytes=2-5' } });
    expect([held.status, held.body.length]).toEqual([304, 0]);
    expect((await call('GET', `/v2/blobs/mono/blobs/${digest}`, { headers: { range: 'bytes=-4' } })).body.toString()).toBe('cdef');
    // RFC 9110: an unknown unit is ignored; so, here, is what cannot be parsed or is not supported
    // (several ranges): the whole blob, 200, rather than a refusal.
    for (const range of ['items=0-5', 'bytes=0-0,5-10', 'bytes=5-2', 'bytes=abc']) {
      const whole = await call('GET', `/v2/blobs/mono/blobs/${digest}`, { headers: { range } });
      expect([range, whole.status, whole.headers.get('content-range')]).toEqual([range, 200, null]);
      expect(whole.body.equals(bytes)).toBe(true);
    }
    // RFC 9110: of an empty representation only a suffix range (`bytes=-5`) is satisfiable, and
    // no 206 can carry nothing, so the range is ignored: 200, not a 416 that says it cannot be met.
    const empty = await pushBlob('blobs/mono', Buffer.alloc(0));
    const emptySuffix = await call('GET', `/v2/blobs/mono/blobs/${empty}`, { headers: { range: 'bytes=-5' } });
    expect([emptySuffix.status, emptySuffix.headers.get('content-range'), emptySuffix.body.length]).toEqual([200, null, 0]);
    expect((await call('GET', `/v2/blobs/mono/blobs/${empty}`, { headers: { range: 'bytes=0-' } })).status).toBe(416);
    // Another repository cannot read it by digest without a link.
    expect((await call('GET', `/v2/blobs/other/blobs/${digest}`)).status).toBe(404);
    const del = await call('DELETE', `/v2/blobs/mono/blobs/${digest}`);
    expect(del.status).toBe(202);
    const gone = await call('GET', `/v2/blobs/mono/blobs/${digest}`);
    expect(gone.status).toBe(404);
    expect(errorCode(gone)).toBe('BLOB_UNKNOWN');
  });

  it('sha512 digests work end to end', async () => {
    const bytes = 'sha512 content';
    const digest = sha512(bytes);
    const r = await call('POST', `/v2/blobs/sha512/blobs/uploads/?digest=${digest}`, { body: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(r.status).toBe(201);
    expect((await call('GET', `/v2/blobs/sha512/blobs/${digest}`)).body.toString()).toBe(bytes);
  });

  it('a monolithic upload with the wrong digest is refused and nothing is stored', async () => {
    const claimed = sha256('something else');
    const r = await call('POST', `/v2/blobs/wrong/blobs/uploads/?digest=${claimed}`, { body: 'actual', headers: { 'content-type': 'application/octet-stream' } });
    expect(r.status).toBe(400);
    expect(errorCode(r)).toBe('DIGEST_INVALID');
    expect((await call('HEAD', `/v2/blobs/wrong/blobs/${claimed}`)).status).toBe(404);
    expect((await call('HEAD', `/v2/blobs/wrong/blobs/${sha256('actual')}`)).status).toBe(404);
    expect(await readdir(join(reg.dataDir, 'registry', 'tmp'))).toEqual([]);
  });

  it('chunked upload: POST, PATCH with Content-Range, status GET, 416 out of order, PUT with a final chunk', async () => {
    const start = await call('POST', '/v2/blobs/chunked/blobs/uploads/');
    expect(start.status).toBe(202);
    expect(start.headers.get('range')).toBe('0-0');
    const uuid = start.headers.get('docker-upload-uuid')!;
    const location = start.headers.get('location')!;
    expect(location).toBe(`/v2/blobs/chunked/blobs/uploads/${uuid}`);
    const p1 = await call('PATCH', location, { body: 'hello ', headers: { 'content-type': 'application/octet-stream', 'content-range': '0-5' } });
    expect(p1.status).toBe(202);
    expect(p1.headers.get('range')).toBe('0-5');
    const ooo = await call('PATCH', location, { body: 'xx', headers: { 'content-type': 'application/octet-stream', 'content-range': '10-11' } });
    expect(ooo.status).toBe(416);
    expect(ooo.headers.get('range')).toBe('0-5');
    const p2 = await call('PATCH', location, { body: 'world', headers: { 'content-type': 'application/octet-stream', 'content-range': '6-10' } });
    expect(p2.status).toBe(202);
    const status = await call('GET', location);
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-10');
    const digest = sha256('hello world!');
    const done = await call('PUT', `${location}?digest=${digest}`, { body: '!', headers: { 'content-type': 'application/octet-stream', 'content-range': '11-11' } });
    expect(done.status, done.body.toString()).toBe(201);
    expect(done.headers.get('docker-content-digest')).toBe(digest);
    expect((await call('GET', `/v2/blobs/chunked/blobs/${digest}`)).body.toString()).toBe('hello world!');
    expect((await call('GET', location)).status).toBe(404);
  });

  it('an upload can be cancelled, and finishing with a wrong digest is DIGEST_INVALID', async () => {
    const a = await call('POST', '/v2/blobs/cancel/blobs/uploads/');
    const loc = a.headers.get('location')!;
    await call('PATCH', loc, { body: 'abc', headers: { 'content-type': 'application/octet-stream' } });
    expect((await call('DELETE', loc)).status).toBe(204);
    expect(errorCode(await call('GET', loc))).toBe('BLOB_UPLOAD_UNKNOWN');
    const b = await call('POST', '/v2/blobs/cancel/blobs/uploads/');
    const locB = b.headers.get('location')!;
    await call('PATCH', locB, { body: 'abc', headers: { 'content-type': 'application/octet-stream' } });
    const wrong = await call('PUT', `${locB}?digest=${sha256('abd')}`);
    expect(wrong.status).toBe(400);
    expect(errorCode(wrong)).toBe('DIGEST_INVALID');
    expect((await call('HEAD', `/v2/blobs/cancel/blobs/${sha256('abd')}`)).status).toBe(404);
  });

  it('an upload session records no repository; the finished blob does', async () => {
    const catalog = async () => (await call('GET', '/v2/_catalog?n=10000')).json().repositories as string[];
    const started = await call('POST', '/v2/sessions/only/blobs/uploads/');
    expect(started.status).toBe(202);
    const loc = started.headers.get('location')!;
    expect((await call('PATCH', loc, { body: 'abc', headers: { 'content-type': 'application/octet-stream' } })).status).toBe(202);
    expect(await catalog()).not.toContain('sessions/only');
    expect(errorCode(await call('GET', '/v2/sessions/only/tags/list'))).toBe('NAME_UNKNOWN');
    // The session itself works as before.
    expect((await call('GET', loc)).status).toBe(204);
    expect((await call('PUT', `${loc}?digest=${sha256('abc')}`)).status).toBe(201);
    expect(await catalog()).toContain('sessions/only');
    expect((await call('GET', '/v2/sessions/only/tags/list')).json()).toEqual({ name: 'sessions/only', tags: [] });
  });

  it('a cancelled, refused or finished upload keeps no file open (Linux /proc)', async () => {
    if (!existsSync('/proc/self/fd')) return;
    const tmp = join(reg.dataDir, 'registry', 'tmp');
    const openTempFiles = () =>
      readdirSync('/proc/self/fd').flatMap((fd) => {
        try {
          const target = readlinkSync(`/proc/self/fd/${fd}`);
          return target.startsWith(tmp) ? [target] : [];
        } catch {
          return [];
        }
      });
    const cancelled = (await call('POST', '/v2/blobs/fds/blobs/uploads/')).headers.get('location')!;
    expect((await call('PATCH', cancelled, { body: 'abc', headers: { 'content-type': 'application/octet-stream' } })).status).toBe(202);
    expect(openTempFiles()).toHaveLength(1);
    expect((await call('DELETE', cancelled)).status).toBe(204);
    expect(openTempFiles()).toEqual([]);
    const wrong = (await call('POST', '/v2/blobs/fds/blobs/uploads/')).headers.get('location')!;
    await call('PATCH', wrong, { body: 'abc', headers: { 'content-type': 'application/octet-stream' } });
    expect((await call('PUT', `${wrong}?digest=${sha256('abd')}`)).status).toBe(400);
    const single = await call('POST', `/v2/blobs/fds/blobs/uploads/?digest=${sha256('abd')}`, { body: 'abc', headers: { 'content-type': 'application/octet-stream' } });
    expect(single.status).toBe(400);
    expect(openTempFiles()).toEqual([]);
    const right = (await call('POST', '/v2/blobs/fds/blobs/uploads/')).headers.get('location')!;
    await call('PATCH', right, { body: 'abc', headers: { 'content-type': 'application/octet-stream' } });
    expect((await call('PUT', `${right}?digest=${sha256('abc')}`)).status).toBe(201);
    expect(openTempFiles()).toEqual([]);
  });

  it('cross-repository mount: 201 when readable from `from`, else a new upload (202)', async () => {
    const digest = await pushBlob('mount/src', 'mountable');
    const m = await call('POST', `/v2/mount/dst/blobs/uploads/?mount=${digest}&from=mount/src`);
    expect(m.status).toBe(201);
    expect(m.headers.get('location')).toBe(`/v2/mount/dst/blobs/${digest}`);
    expect((await call('GET', `/v2/mount/dst/blobs/${digest}`)).body.toString()).toBe('mountable');
    const alone = await call('POST', `/v2/mount/alone/blobs/uploads/?mount=${digest}`);
    expect(alone.status).toBe(201);
    const missing = await call('POST', `/v2/mount/dst2/blobs/uploads/?mount=${sha256('nope')}&from=mount/src`);
    expect(missing.status).toBe(202);
    expect(missing.headers.get('docker-upload-uuid')).toBeTruthy();
  });

  it('manifests: PUT by tag, GET/HEAD byte for byte by tag and digest, DELETE', async () => {
    const { manifest, digest, response } = await pushImage('app/web', 'v1');
    expect(response.headers.get('docker-content-digest')).toBe(digest);
    expect(response.headers.get('location')).toBe(`/v2/app/web/manifests/${digest}`);
    for (const ref of ['v1', digest]) {
      const g = await call('GET', `/v2/app/web/manifests/${ref}`);
      expect(g.status).toBe(200);
      expect(g.body.toString()).toBe(manifest);
      expect(g.headers.get('content-type')).toBe('application/vnd.oci.image.manifest.v1+json');
      expect(g.headers.get('docker-content-digest')).toBe(digest);
      const h = await call('HEAD', `/v2/app/web/manifests/${ref}`);
      expect(h.status).toBe(200);
      expect(h.headers.get('content-length')).toBe(String(Buffer.byteLength(manifest)));
      // A cache revalidating what it holds: 304 without a body when the ETag (the digest) matches.
      const same = await call('GET', `/v2/app/web/manifests/${ref}`, { headers: { 'if-none-match': `"${sha256('older')}", "${digest}"` } });
      expect([same.status, same.body.length, same.headers.get('etag'), same.headers.get('docker-content-digest')]).toEqual([304, 0, `"${digest}"`, digest]);
      const changed = await call('GET', `/v2/app/web/manifests/${ref}`, { headers: { 'if-none-match': `"${sha256('older')}"` } });
      expect([changed.status, changed.body.toString()]).toEqual([200, manifest]);
    }
    // PUT by digest (verified), then delete by digest removes the tag too.
    const byDigest = await call('PUT', `/v2/app/web/manifests/${digest}`, { body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    expect(byDigest.status).toBe(201);
    expect((await call('DELETE', `/v2/app/web/manifests/${digest}`)).status).toBe(202);
    const gone = await call('GET', `/v2/app/web/manifests/v1`);
    expect(gone.status).toBe(404);
    expect(errorCode(gone)).toBe('MANIFEST_UNKNOWN');
    expect(errorCode(await call('GET', '/v2/no/such/repo/manifests/latest'))).toBe('NAME_UNKNOWN');
  });

  it('refuses a manifest PUT by digest whose content does not match', async () => {
    const { manifest } = await pushImage('app/verify', 'v1');
    const r = await call('PUT', `/v2/app/verify/manifests/${sha256('other')}`, { body: manifest, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    expect(r.status).toBe(400);
    expect(errorCode(r)).toBe('DIGEST_INVALID');
    expect((await call('GET', `/v2/app/verify/manifests/${sha256('other')}`)).status).toBe(404);
  });

  it('refuses schema 1, oversize manifests and manifests with missing blobs or children', async () => {
    const s1 = await call('PUT', '/v2/bad/manifests/s1', {
      body: JSON.stringify({ schemaVersion: 1, name: 'bad', tag: 's1', fsLayers: [], history: [] }),
      headers: { 'content-type': 'application/vnd.docker.distribution.manifest.v1+prettyjws' },
    });
    expect(s1.status).toBe(400);
    expect(errorCode(s1)).toBe('MANIFEST_INVALID');
    expect(JSON.stringify(s1.json())).toMatch(/schema 1/);

    const big = await call('PUT', '/v2/bad/manifests/big', {
      body: Buffer.alloc(4 * 1024 * 1024 + 1, 0x20),
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(big.status).toBe(413);
    expect(errorCode(big)).toBe('SIZE_INVALID');

    const missing = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256('no config'), size: 9 },
      layers: [],
    });
    const m = await call('PUT', '/v2/bad/manifests/missing', { body: missing, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
    expect(m.status).toBe(400);
    expect(errorCode(m)).toBe('MANIFEST_BLOB_UNKNOWN');

    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha256('no child'), size: 1 }],
    });
    const i = await call('PUT', '/v2/bad/manifests/index', { body: index, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } });
    expect(errorCode(i)).toBe('MANIFEST_BLOB_UNKNOWN');
    for (const tag of ['s1', 'big', 'missing', 'index']) expect((await call('GET', `/v2/bad/manifests/${tag}`)).status).toBe(404);
  });

  /** PUTs an OCI index listing the one image manifest `child`. */
  const putIndexOf = (repo: string, tag: string, child: { digest: string; manifest: string | Buffer }) => {
    const index = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [{ mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: child.digest, size: Buffer.byteLength(child.manifest) }],
    });
    return call('PUT', `/v2/${repo}/manifests/${tag}`, { body: index, headers: { 'content-type': 'application/vnd.oci.image.index.v1+json' } });
  };

  it('an index is accepted once its children are pushed', async () => {
    const child = await pushImage('multi/app', 'amd64');
    const r = await putIndexOf('multi/app', 'latest', child);
    expect(r.status).toBe(201);
    expect((await call('GET', '/v2/multi/app/manifests/latest')).headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
  });

  it('a manifest an index lists cannot be deleted while the index is there', async () => {
    const child = await pushImage('multi/keep', 'amd64');
    const put = await putIndexOf('multi/keep', 'v1', child);
    expect(put.status).toBe(201);
    const indexDigest = put.headers.get('docker-content-digest')!;
    const refused = await call('DELETE', `/v2/multi/keep/manifests/${child.digest}`);
    expect(refused.status).toBe(409);
    expect(errorCode(refused)).toBe('DENIED');
    expect(JSON.stringify(refused.json())).toContain(`part of the index ${indexDigest}, tagged v1 in multi/keep; delete the index first`);
    expect((await call('GET', `/v2/multi/keep/manifests/${child.digest}`)).status).toBe(200);
    // Once the index is gone, the child may go.
    expect((await call('DELETE', `/v2/multi/keep/manifests/${indexDigest}`)).status).toBe(202);
    expect((await call('DELETE', `/v2/multi/keep/manifests/${child.digest}`)).status).toBe(202);
  });

  it('invalid names (path traversal, upper case) and digests are refused with nothing stored', async () => {
    for (const path of ['/v2/a/../b/manifests/latest', '/v2/a/%2e%2e/b/blobs/uploads/', '/v2/UPPER/tags/list', '/v2/a//b/tags/list']) {
      const r = await rawRequest(path.includes('uploads') ? 'POST' : 'GET', path);
      expect(r.status, path).toBe(400);
      expect(JSON.parse(r.body).errors[0].code, path).toBe('NAME_INVALID');
    }
    const badDigest = await call('GET', '/v2/ok/blobs/sha256:xyz');
    expect(errorCode(badDigest)).toBe('DIGEST_INVALID');
    const badUpload = await call('POST', '/v2/ok/blobs/uploads/?digest=md5:abc', { body: 'x', headers: { 'content-type': 'application/octet-stream' } });
    expect(errorCode(badUpload)).toBe('DIGEST_INVALID');
    const catalog = await call('GET', '/v2/_catalog?n=10000');
    const repos = catalog.json().repositories as string[];
    expect(repos.some((r) => r.includes('..') || r === 'b' || r === 'ok')).toBe(false);
  });

  it('tags list and catalog paginate with n/last and a Link header', async () => {
    for (const tag of ['a', 'b', 'c', 'd', 'e']) await pushImage('page/repo', tag);
    const first = await call('GET', '/v2/page/repo/tags/list?n=2');
    expect(first.json()).toEqual({ name: 'page/repo', tags: ['a', 'b'] });
    expect(first.headers.get('link')).toBe('</v2/page/repo/tags/list?n=2&last=b>; rel="next"');
    const second = await call('GET', '/v2/page/repo/tags/list?n=2&last=b');
    expect(second.json().tags).toEqual(['c', 'd']);
    const third = await call('GET', '/v2/page/repo/tags/list?n=2&last=d');
    expect(third.json().tags).toEqual(['e']);
    expect(third.headers.get('link')).toBeNull();
    expect((await call('GET', '/v2/page/repo/tags/list')).json().tags).toEqual(['a', 'b', 'c', 'd', 'e']);
    expect(errorCode(await call('GET', '/v2/page/none/tags/list'))).toBe('NAME_UNKNOWN');

    const all = (await call('GET', '/v2/_catalog')).json().repositories as string[];
    expect(all).toContain('page/repo');
    const c1 = await call('GET', '/v2/_catalog?n=1');
    expect((c1.json().repositories as string[]).length).toBe(1);
    const link = c1.headers.get('link')!;
    expect(link).toMatch(/^<\/v2\/_catalog\?n=1&last=[^>]+>; rel="next"$/);
    const next = await call('GET', link.slice(1, link.indexOf('>')));
    expect(next.json().repositories).toEqual([all[1]]);
  });

  it('referrers: manifests with a subject are listed, with OCI-Subject on push and artifactType filtering', async () => {
    const subject = await pushImage('ref/app', 'v1');
    const subjectDesc = { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: subject.digest, size: Buffer.byteLength(subject.manifest) };
    const emptyDigest = await pushBlob('ref/app', '{}');
    const makeArtifact = async (artifactType: string, note: string) => {
      const m = JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        artifactType,
        config: { mediaType: 'application/vnd.oci.empty.v1+json', digest: emptyDigest, size: 2 },
        layers: [],
        subject: subjectDesc,
        annotations: { note },
      });
      const r = await call('PUT', `/v2/ref/app/manifests/${sha256(m)}`, { body: m, headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' } });
      expect(r.status).toBe(201);
      expect(r.headers.get('oci-subject')).toBe(subject.digest);
      return sha256(m);
    };
    const sbom = await makeArtifact('application/vnd.example.sbom', 'sbom');
    const sig = await makeArtifact('application/vnd.example.signature', 'sig');
    const all = await call('GET', `/v2/ref/app/referrers/${subject.digest}`);
    expect(all.status).toBe(200);
    expect(all.headers.get('content-type')).toBe('application/vnd.oci.image.index.v1+json');
    const idx = all.json() as { manifests: { digest: string; artifactType: string; annotations: Record<string, string> }[] };
    expect(idx.manifests.map((m) => m.digest).sort()).toEqual([sbom, sig].sort());
    expect(idx.manifests.find((m) => m.digest === sbom)?.annotations).toEqual({ note: 'sbom' });
    const filtered = await call('GET', `/v2/ref/app/referrers/${subject.digest}?artifactType=application/vnd.example.sbom`);
    expect(filtered.headers.get('oci-filters-applied')).toBe('artifactType');
    expect((filtered.json().manifests as { digest: string }[]).map((m) => m.digest)).toEqual([sbom]);
    const none = await call('GET', `/v2/ref/app/referrers/${sha256('nothing')}`);
    expect(none.json().manifests).toEqual([]);
    expect(errorCode(await call('GET', '/v2/ref/app/referrers/sha256:zz'))).toBe('DIGEST_INVALID');
  });

  it('takes the media type from the body when the client sends none, and serves Docker v2 as pushed', async () => {
    const { configDigest, layerDigest } = await pushImage('media/types', 'oci');
    const docker = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: configDigest, size: 1 },
      layers: [{ mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: layerDigest, size: 1 }],
    });
    const r = await call('PUT', '/v2/media/types/manifests/docker', { body: docker });
    expect(r.status, r.body.toString()).toBe(201);
    const g = await call('GET', '/v2/media/types/manifests/docker');
    expect(g.headers.get('content-type')).toBe('application/vnd.docker.distribution.manifest.v2+json');
    expect(g.body.toString()).toBe(docker);
    const mismatch = await call('PUT', '/v2/media/types/manifests/bad', {
      body: docker,
      headers: { 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    });
    expect(errorCode(mismatch)).toBe('MANIFEST_INVALID');
  });

  it('a non-admin user may pull and push but not delete (DENIED, 403)', async () => {
    const { hashPassword } = await import('../../src/registry/index.js');
    await reg.app.registry.metadata.putUser({ name: 'dev', passwordHash: await hashPassword('dev-pw'), admin: false });
    const dev = `Basic ${Buffer.from('dev:dev-pw').toString('base64')}`;
    const { digest } = await pushImage('users/dev', 'v1');
    expect((await call('GET', '/v2/users/dev/manifests/v1', { auth: dev })).status).toBe(200);
    const del = await call('DELETE', `/v2/users/dev/manifests/${digest}`, { auth: dev });
    expect(del.status).toBe(403);
    expect(errorCode(del)).toBe('DENIED');
    expect((await call('GET', '/v2/users/dev/manifests/v1')).status).toBe(200);
  });

  it('unknown endpoints and methods answer with an OCI error body', async () => {
    const r = await call('GET', '/v2/x/unknown');
    expect(r.status).toBe(404);
    expect(r.json().errors).toBeDefined();
    const m = await call('PATCH', '/v2/x/manifests/latest');
    expect(m.status).toBe(405);
  });
});

describe('upload sessions across a restart', () => {
  it('resumes a chunked upload after the registry is rebuilt on the same data folder', async () => {
    const { mkdtemp, rm } = await import('node:fs/promises');
    const { tmpdir } = await import('node:os');
    const { basicAuth, buildRegistry, ensureAdminUser } = await import('../../src/registry/index.js');
    const dataDir = await mkdtemp(join(tmpdir(), 'portcullis-restart-'));
    const auth = `Basic ${Buffer.from('admin:restart-pw').toString('base64')}`;
    const build = () =>
      buildRegistry({
        dataDir,
        auth: async ({ metadata }) => {
          await ensureAdminUser(metadata, { PORTCULLIS_ADMIN_PASSWORD: 'restart-pw' });
          return basicAuth(metadata);
        },
      });
    const ct = { authorization: auth, 'content-type': 'application/octet-stream' };
    try {
      const first = await build();
      const start = await first.inject({ method: 'POST', url: '/v2/restart/me/blobs/uploads/', headers: { authorization: auth } });
      expect(start.statusCode).toBe(202);
      const location = start.headers.location as string;
      const p1 = await first.inject({ method: 'PATCH', url: location, headers: { ...ct, 'content-range': '0-4' }, payload: 'first' });
      expect(p1.statusCode).toBe(202);
      await first.close();

      const second = await build();
      const status = await second.inject({ method: 'GET', url: location, headers: { authorization: auth } });
      expect(status.statusCode).toBe(204);
      expect(status.headers.range).toBe('0-4');
      const p2 = await second.inject({ method: 'PATCH', url: location, headers: { ...ct, 'content-range': '5-10' }, payload: ' again' });
      expect(p2.statusCode).toBe(202);
      const digest = sha256('first again');
      const done = await second.inject({ method: 'PUT', url: `${location}?digest=${digest}`, headers: { authorization: auth } });
      expect(done.statusCode, done.body).toBe(201);
      const get = await second.inject({ method: 'GET', url: `/v2/restart/me/blobs/${digest}`, headers: { authorization: auth } });
      expect(get.body).toBe('first again');
      await second.close();
    } finally {
      await rm(dataDir, { recursive: true, force: true });
    }
  });

  it('serialises concurrent tag updates per repository without losing any', async () => {
    const results = await Promise.all(['t1', 't2', 't3', 't4'].map((t) => pushImage('concurrent/repo', t)));
    expect(results).toHaveLength(4);
    const tags = (await call('GET', '/v2/concurrent/repo/tags/list')).json().tags;
    expect(tags).toEqual(['t1', 't2', 't3', 't4']);
  });
});
