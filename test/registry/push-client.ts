import { createHash, randomBytes } from 'node:crypto';

/** A tiny OCI push/pull client over fetch with Basic auth, for GC, crash and hostile tests. */
export const sha256 = (b: Uint8Array | string) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

export interface HttpResult {
  status: number;
  headers: Headers;
  body: Buffer;
}

export class PushClient {
  constructor(
    readonly base: string,
    private readonly auth: string,
  ) {}

  static basic(base: string, user: string, password: string): PushClient {
    return new PushClient(base, `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`);
  }

  async call(method: string, path: string, body?: Uint8Array | string, headers: Record<string, string> = {}): Promise<HttpResult> {
    const res = await fetch(path.startsWith('http') ? path : `${this.base}${path}`, {
      method,
      headers: { authorization: this.auth, ...headers },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : new Uint8Array(body) } : {}),
    });
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  }

  /** POST + PUT (two-step monolithic); skips the upload when the repository already has it. */
  async pushBlob(repo: string, bytes: Buffer): Promise<string> {
    const digest = sha256(bytes);
    if ((await this.call('HEAD', `/v2/${repo}/blobs/${digest}`)).status === 200) return digest;
    const start = await this.call('POST', `/v2/${repo}/blobs/uploads/`);
    if (start.status !== 202) throw new Error(`POST upload ${repo}: ${start.status} ${start.body.toString()}`);
    const location = new URL(start.headers.get('location')!, this.base);
    location.searchParams.set('digest', digest);
    const put = await this.call('PUT', location.toString(), bytes, { 'content-type': 'application/octet-stream' });
    if (put.status !== 201) throw new Error(`PUT blob ${repo}@${digest}: ${put.status} ${put.body.toString()}`);
    return digest;
  }

  async putManifest(repo: string, reference: string, manifest: Buffer | string): Promise<HttpResult> {
    return this.call('PUT', `/v2/${repo}/manifests/${reference}`, manifest, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
  }
}

export interface TestImage {
  config: Buffer;
  layers: Buffer[];
  manifest: Buffer;
  digest: string;
}

export function imageOf(layers: Buffer[], label: string): TestImage {
  const config = Buffer.from(
    JSON.stringify({ architecture: 'amd64', os: 'linux', config: { Labels: { label } }, rootfs: { type: 'layers', diff_ids: layers.map((l) => sha256(l)) } }),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha256(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: sha256(l), size: l.length })),
    }),
  );
  return { config, layers, manifest, digest: sha256(manifest) };
}

export function randomLayer(bytes: number): Buffer {
  return randomBytes(bytes);
}

/** Pushes an image (blobs, then the manifest by tag); throws on any failure. */
export async function pushImage(client: PushClient, repo: string, tag: string, image: TestImage): Promise<void> {
  for (const layer of image.layers) await client.pushBlob(repo, layer);
  await client.pushBlob(repo, image.config);
  const r = await client.putManifest(repo, tag, image.manifest);
  if (r.status !== 201) throw new Error(`PUT manifest ${repo}:${tag}: ${r.status} ${r.body.toString()}`);
}

/** Pulls the image by tag and checks every digest; returns a list of what was wrong. */
export async function verifyImage(client: PushClient, repo: string, tag: string, image: TestImage): Promise<string[]> {
  const wrong: string[] = [];
  const m = await client.call('GET', `/v2/${repo}/manifests/${tag}`, undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });
  if (m.status !== 200 || sha256(m.body) !== image.digest) wrong.push(`${repo}:${tag} manifest ${m.status}`);
  for (const b of [image.config, ...image.layers]) {
    const r = await client.call('GET', `/v2/${repo}/blobs/${sha256(b)}`);
    if (r.status !== 200 || sha256(r.body) !== sha256(b)) wrong.push(`${repo} blob ${sha256(b)} ${r.status}`);
  }
  return wrong;
}
