import { request as httpRequest, type ClientRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { BlobInfo } from '../../src/store/index.js';
import { fsck } from '../../src/store/fsck.js';
import { MAX_MANIFEST_BYTES } from '../../src/registry/index.js';
import { PushClient, imageOf, pushImage, randomLayer, sha256, verifyImage, type HttpResult } from './push-client.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

let reg: TestRegistry;
let client: PushClient;
let before: BlobInfo[];

async function blobList(): Promise<BlobInfo[]> {
  const all: BlobInfo[] = [];
  for await (const b of reg.app.registry.blobs.list()) all.push(b);
  return all;
}

const code = (r: HttpResult) => ((JSON.parse(r.body.toString() || '{}') as { errors?: { code: string }[] }).errors ?? [])[0]?.code;

/** A raw request line: fetch would normalise `..` segments away before they reach the server. */
function raw(method: string, path: string, body?: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const [hostname, port] = reg.host.split(':');
    const req = httpRequest(
      { hostname, port: Number(port), path, method, headers: { authorization: `Basic ${Buffer.from(`admin:${reg.password}`).toString('base64')}` } },
      (res) => {
        let text = '';
        res.on('data', (d: Buffer) => (text += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

/** Starts a request whose body stops after `sent` of `declared` bytes; the caller destroys it. */
function stalled(method: string, path: string, declared: number, sent: Buffer, contentType = 'application/octet-stream'): ClientRequest {
  const [hostname, port] = reg.host.split(':');
  const req = httpRequest({
    hostname,
    port: Number(port),
    path,
    method,
    headers: {
      authorization: `Basic ${Buffer.from(`admin:${reg.password}`).toString('base64')}`,
      'content-type': contentType,
      'content-length': String(declared),
    },
  });
  req.on('error', () => undefined);
  req.write(sent);
  return req;
}

beforeAll(async () => {
  reg = await startTestRegistry('hostile-pw');
  client = PushClient.basic(reg.base, 'admin', reg.password);
  // One good image, so "nothing changed" is checked against a non-empty store.
  await pushImage(client, 'good/app', 'v1', imageOf([randomLayer(4096)], 'good'));
  before = await blobList();
});
afterAll(async () => {
  await reg?.stop();
});

describe('hostile clients', () => {
  it('refuses path traversal in repository names', async () => {
    for (const path of [
      '/v2/../../etc/blobs/uploads/',
      '/v2/good/../../../etc/manifests/latest',
      '/v2/a/..%2f..%2fetc/manifests/latest',
      '/v2/%2e%2e/%2e%2e/blobs/uploads/',
      '/v2/./x/blobs/uploads/',
    ]) {
      const r = await raw(path.includes('uploads') ? 'POST' : 'PUT', path, '{}');
      expect([400, 404], `${path}: ${r.body}`).toContain(r.status);
      expect(r.body, path).toMatch(/NAME_INVALID|UNSUPPORTED|MANIFEST_INVALID|NAME_UNKNOWN/);
    }
  });

  it('refuses path traversal in digests and upload ids', async () => {
    const bad = ['sha256:../../../../etc/passwd', 'sha256:..%2f..%2fmeta.sqlite', `sha256:${'a'.repeat(63)}/`, 'md5:abc', `sha256:${'A'.repeat(64)}`];
    for (const d of bad) {
      const get = await raw('GET', `/v2/good/app/blobs/${d}`);
      expect([400, 404], `${d}: ${get.body}`).toContain(get.status);
      const put = await raw('POST', `/v2/good/app/blobs/uploads/?digest=${encodeURIComponent(d)}`, 'x');
      expect(put.status, put.body).toBe(400);
      expect(put.body).toMatch(/DIGEST_INVALID/);
      const mount = await raw('POST', `/v2/good/app/blobs/uploads/?mount=${encodeURIComponent(d)}&from=good/app`);
      expect(mount.body).toMatch(/DIGEST_INVALID/);
    }
    for (const uuid of ['..%2F..%2Fregistry%2Fmeta.sqlite', '..', '%2e%2e']) {
      const r = await raw('PATCH', `/v2/good/app/blobs/uploads/${uuid}`, 'x');
      expect([400, 404], `${uuid}: ${r.body}`).toContain(r.status);
    }
  });

  it('refuses oversize manifests, with and without Content-Length', async () => {
    const big = Buffer.alloc(MAX_MANIFEST_BYTES + 10, 0x20);
    const r = await client.putManifest('good/app', 'huge', big);
    expect(r.status).toBe(413);
    expect(code(r)).toBe('SIZE_INVALID');
    // Chunked (no Content-Length): the cap is enforced while reading. The server stops storing
    // the body there and answers 413 before it closes the connection (a reset before).
    const chunked = await fetch(`${reg.base}/v2/good/app/manifests/huge2`, {
      method: 'PUT',
      headers: { authorization: `Basic ${Buffer.from(`admin:${reg.password}`).toString('base64')}`, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: new ReadableStream({
        start(c) {
          for (let i = 0; i < 5; i++) c.enqueue(new Uint8Array(1024 * 1024));
          c.close();
        },
      }),
      duplex: 'half',
    } as RequestInit).then(
      (res) => res.status,
      (err: Error) => String((err.cause as { code?: string } | undefined)?.code ?? err),
    );
    expect(chunked).toBe(413);
    expect((await client.call('GET', '/v2/')).status).toBe(200);
    expect((await client.call('HEAD', '/v2/good/app/manifests/huge2')).status).toBe(404);
  });

  it('refuses wrong digests for blobs and manifests', async () => {
    const bytes = Buffer.from('some content');
    const wrong = sha256('other content');
    const mono = await client.call('POST', `/v2/good/app/blobs/uploads/?digest=${wrong}`, bytes, { 'content-type': 'application/octet-stream' });
    expect(mono.status).toBe(400);
    expect(code(mono)).toBe('DIGEST_INVALID');
    const start = await client.call('POST', '/v2/good/app/blobs/uploads/');
    const loc = new URL(start.headers.get('location')!, reg.base);
    loc.searchParams.set('digest', wrong);
    const put = await client.call('PUT', loc.toString(), bytes, { 'content-type': 'application/octet-stream' });
    expect(code(put)).toBe('DIGEST_INVALID');
    const img = imageOf([randomLayer(100)], 'wrong-digest');
    const m = await client.putManifest('good/app', sha256('not the manifest'), img.manifest);
    expect(code(m)).toBe('DIGEST_INVALID');
    // A manifest whose blobs were never pushed.
    const unknown = await client.putManifest('good/app', 'missing-blobs', img.manifest);
    expect(code(unknown)).toBe('MANIFEST_BLOB_UNKNOWN');
  });

  it('refuses bad Content-Range values on chunk uploads', async () => {
    const start = await client.call('POST', '/v2/good/app/blobs/uploads/');
    const loc = new URL(start.headers.get('location')!, reg.base).toString();
    const cases: [string, number][] = [
      ['bytes=abc', 416],
      ['5-10', 416], // does not start at the current offset (0)
      ['10-5', 416],
      ['0-99', 400], // Content-Length 4 does not match the 100 bytes announced
    ];
    for (const [range, status] of cases) {
      const r = await client.call('PATCH', loc, 'abcd', { 'content-range': range, 'content-type': 'application/octet-stream' });
      expect(r.status, range).toBe(status);
      expect(['BLOB_UPLOAD_INVALID', 'SIZE_INVALID']).toContain(code(r));
    }
    const status = await client.call('GET', loc);
    expect(status.headers.get('range')).toBe('0-0');
    await client.call('DELETE', loc);
  });

  it('refuses malformed JSON manifests', async () => {
    for (const body of ['{', '[]', 'null', '{"schemaVersion":2}', '{"schemaVersion":1,"name":"x","tag":"y","fsLayers":[]}', '{"schemaVersion":2,"config":{"digest":"sha256:zz"},"layers":[]}']) {
      const r = await client.putManifest('good/app', 'bad', body);
      expect(r.status, body).toBe(400);
      expect(code(r), body).toBe('MANIFEST_INVALID');
    }
  });

  it('refuses a manifest nested deeper than any real one before parsing it', async () => {
    // 4 MiB of brackets: JSON.parse would spend some 230 MB on it. Brackets inside strings do not count.
    const deep = `${'['.repeat(2 * 1024 * 1024 - 8)}${']'.repeat(2 * 1024 * 1024 - 8)}`;
    const r = await client.putManifest('good/app', 'deep', deep);
    expect(r.status).toBe(400);
    expect(code(r)).toBe('MANIFEST_INVALID');
    expect(r.body.toString()).toMatch(/nested deeper than 64 levels/);
    expect((await client.call('HEAD', '/v2/good/app/manifests/deep')).status).toBe(404);
    const bracketsInStrings = JSON.stringify({ schemaVersion: 2, annotations: { note: '['.repeat(500) } });
    expect(code(await client.putManifest('good/app', 'strings', bracketsInStrings))).not.toMatch(/nested/);
  });

  it('survives clients that stall mid-body; other pushes (same repository too) keep working', async () => {
    const start = await client.call('POST', '/v2/good/app/blobs/uploads/');
    const loc = new URL(start.headers.get('location')!, reg.base);
    const patch = stalled('PATCH', loc.pathname, 1024 * 1024, randomLayer(1000));
    const manifest = stalled('PUT', '/v2/good/app/manifests/stalled', 5000, Buffer.from('{"schemaVersion":2,'), 'application/vnd.oci.image.manifest.v1+json');
    const monolithic = stalled('POST', `/v2/good/app/blobs/uploads/?digest=${sha256('x')}`, 1000, Buffer.from('x'));
    await new Promise((r) => setTimeout(r, 200));
    const img = imageOf([randomLayer(2048)], 'while stalled');
    await pushImage(client, 'good/app', 'v2', img);
    expect(await verifyImage(client, 'good/app', 'v2', img)).toEqual([]);
    for (const req of [patch, manifest, monolithic]) req.destroy();
    await new Promise((r) => setTimeout(r, 200));
    // The aborted chunk recorded nothing; the session is still usable from offset 0.
    const status = await client.call('GET', loc.toString());
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');
    expect((await client.call('HEAD', '/v2/good/app/manifests/stalled')).status).toBe(404);
    await client.call('DELETE', loc.toString());
    // Remove the legitimate v2 push from the comparison: only hostile traffic must leave no trace.
    const now = (await blobList()).filter((b) => ![img.digest, sha256(img.config), ...img.layers.map((l) => sha256(l))].includes(b.digest));
    expect(now).toEqual(before);
  });

  it('refuses manifests of types it does not serve, and images that pose as artifacts', async () => {
    // The good image's blobs are in good/app already; only the manifest's framing changes.
    const img = JSON.parse((await client.call('GET', '/v2/good/app/manifests/v1', undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' })).body.toString()) as Record<string, unknown>;
    const { mediaType: _mediaType, ...untyped } = img;
    for (const [contentType, body] of [
      ['text/html', untyped],
      ['application/x-not-a-manifest', untyped],
      ['application/vnd.oci.image.manifest.v1+json', { ...img, artifactType: 'application/vnd.example.not-an-image' }],
      ['application/vnd.oci.image.manifest.v1+json', { ...img, mediaType: 'application/vnd.oci.artifact.manifest.v1+json' }],
    ] as const) {
      const r = await client.call('PUT', '/v2/good/app/manifests/posing', JSON.stringify(body), { 'content-type': contentType });
      expect(r.status, contentType).toBe(400);
      expect(code(r), contentType).toBe('MANIFEST_INVALID');
    }
    expect((await client.call('HEAD', '/v2/good/app/manifests/posing')).status).toBe(404);
    const posing = await client.call('PUT', '/v2/good/app/manifests/posing', JSON.stringify({ ...img, artifactType: 'application/vnd.example.not-an-image' }), {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
    });
    expect((JSON.parse(posing.body.toString()) as { errors: { message: string }[] }).errors[0]!.message).toMatch(/must not declare artifactType/);
    // An artifact with its own config type may carry an artifactType, and a bare one with a generic Content-Type is still taken as OCI.
    const config = (img.config as { digest: string; size: number });
    const artifact = { ...img, config: { ...config, mediaType: 'application/vnd.example.config.v1+json' }, artifactType: 'application/vnd.example.thing' };
    expect((await client.call('PUT', '/v2/good/app/manifests/artifact', JSON.stringify(artifact), { 'content-type': 'application/vnd.oci.image.manifest.v1+json' })).status).toBe(201);
    expect((await client.call('PUT', '/v2/good/app/manifests/untyped', JSON.stringify(untyped), { 'content-type': 'application/json' })).status).toBe(201);
    for (const tag of ['artifact', 'untyped']) {
      const head = await client.call('HEAD', `/v2/good/app/manifests/${tag}`);
      expect(head.headers.get('content-type'), tag).toBe('application/vnd.oci.image.manifest.v1+json');
      await client.call('DELETE', `/v2/good/app/manifests/${head.headers.get('docker-content-digest')}`);
    }
  });

  it('leaves the store consistent and unchanged by hostile traffic', async () => {
    expect((await fsck(reg.app.registry, { verifyContent: true })).problems).toEqual([]);
    expect((await reg.app.registry.metadata.listUploads()).length).toBe(0);
  });
});
