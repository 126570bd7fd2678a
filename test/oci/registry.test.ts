import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { OciError } from '../../src/errors.js';
import { MediaType } from '../../src/oci/media-types.js';
import { RegistrySource, parseAuthChallenges } from '../../src/oci/registry.js';
import { MAX_DOCUMENT_BYTES } from '../../src/oci/source.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const REPO = 'test/app';
const USER = 'alice';
const PASSWORD = 's3cr3t-Pa55';
const TOKEN = 'tok-ABCDEF0123456789';

// One image: a config, a layer big enough to arrive in several chunks, and a manifest naming them.
const config = Buffer.from(
  JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }),
);
const layer = randomBytes(700 * 1024);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha(config), size: config.length },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha(layer), size: layer.length }],
  }),
);
const manifestDigest = sha(manifest);
// A blob the registry serves under a digest that its content does not have.
const corrupt = randomBytes(4096);
const corruptDigest = sha(Buffer.from('what the digest promises'));
// A blob the registry only redirects to (served by a second server: another origin).
const redirected = randomBytes(64 * 1024);
const stallDigest = sha(Buffer.from('a blob that never finishes'));
const schema1 = Buffer.from(JSON.stringify({ schemaVersion: 1, name: REPO, tag: 'old', fsLayers: [] }));

type AuthMode = 'none' | 'basic' | 'bearer';

interface Seen {
  url: string;
  authorization?: string;
}

interface State {
  auth: AuthMode;
  /** Field the token endpoint uses. */
  tokenField: 'token' | 'access_token';
  /** Value sent as Docker-Content-Digest for manifests; default the true digest. */
  manifestDigestHeader?: string;
  requests: Seen[];
  blobRequests: Seen[];
  tokenRequests: Seen[];
}

let state: State;
let registry: Server;
let blobHost: Server;
let port: number;
let blobPort: number;

function send(
  res: ServerResponse,
  status: number,
  body: Buffer | string,
  headers: Record<string, string> = {},
): void {
  const b = typeof body === 'string' ? Buffer.from(body) : body;
  res.writeHead(status, { 'content-length': String(b.length), ...headers });
  res.end(b);
}

function errorBody(code: string): string {
  return JSON.stringify({ errors: [{ code, message: `${code.toLowerCase()} happened`, detail: null }] });
}

function authorized(req: IncomingMessage): boolean {
  const auth = req.headers.authorization;
  if (state.auth === 'none') return true;
  if (state.auth === 'basic')
    return auth === `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;
  return auth === `Bearer ${TOKEN}`;
}

function challenge(res: ServerResponse): void {
  const header =
    state.auth === 'basic'
      ? 'Basic realm="fake registry"'
      : // Quoted values with commas and an escaped quote, as real registries send them.
        `Bearer realm="http://127.0.0.1:${port}/token",service="fake \\"registry\\"",scope="repository:${REPO}:pull,push",error="invalid_token"`;
  send(res, 401, errorBody('UNAUTHORIZED'), {
    'www-authenticate': header,
    'content-type': 'application/json',
  });
}

function handleToken(req: IncomingMessage, res: ServerResponse, url: URL): void {
  state.tokenRequests.push({ url: req.url ?? '', authorization: req.headers.authorization });
  if (req.headers.authorization !== `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`) {
    send(res, 401, '{"details":"incorrect username or password"}');
    return;
  }
  if (
    url.searchParams.get('service') !== 'fake "registry"' ||
    url.searchParams.getAll('scope').join(' ') !== `repository:${REPO}:pull`
  ) {
    send(res, 400, '{"details":"bad service or scope"}');
    return;
  }
  send(res, 200, JSON.stringify({ [state.tokenField]: TOKEN, expires_in: 300 }), {
    'content-type': 'application/json',
  });
}

function handleRegistry(req: IncomingMessage, res: ServerResponse): void {
  const url = new URL(req.url ?? '/', `http://127.0.0.1:${port}`);
  if (url.pathname === '/token') return handleToken(req, res, url);
  state.requests.push({ url: url.pathname, authorization: req.headers.authorization });
  if (!authorized(req)) return challenge(res);
  const m = /^\/v2\/(.+)\/(manifests|blobs)\/([^/]+)$/.exec(url.pathname);
  if (!m || m[1] !== REPO)
    return send(res, 404, errorBody('NAME_UNKNOWN'), { 'content-type': 'application/json' });
  const [, , kind, ref] = m;
  if (kind === 'manifests') {
    if (ref === 'boom') return send(res, 500, 'internal error');
    if (ref === 'old') return send(res, 200, schema1, { 'content-type': MediaType.dockerSchema1Signed });
    if (ref === 'huge') {
      res.writeHead(200, {
        'content-type': MediaType.ociManifest,
        'content-length': String(MAX_DOCUMENT_BYTES + 1),
      });
      res.end();
      return;
    }
    if (ref === 'hang') return; // never answers
    if (ref === 'v1' || ref === manifestDigest) {
      return send(res, 200, manifest, {
        'content-type': MediaType.ociManifest,
        'docker-content-digest': state.manifestDigestHeader ?? manifestDigest,
      });
    }
    return send(res, 404, errorBody('MANIFEST_UNKNOWN'), { 'content-type': 'application/json' });
  }
  if (ref === sha(config)) return send(res, 200, config);
  if (ref === sha(layer)) return send(res, 200, layer);
  if (ref === corruptDigest) return send(res, 200, corrupt);
  if (ref === stallDigest) {
    // Headers and half the body, then silence: the idle timeout must notice.
    res.writeHead(200, { 'content-length': String(layer.length) });
    res.write(layer.subarray(0, 1000));
    return;
  }
  if (ref === sha(redirected)) {
    res.writeHead(307, { location: `http://127.0.0.1:${blobPort}/signed/blob?X-Signature=sig123` });
    res.end();
    return;
  }
  return send(res, 404, errorBody('BLOB_UNKNOWN'), { 'content-type': 'application/json' });
}

function listen(server: Server): Promise<number> {
  return new Promise((resolve) =>
    server.listen(0, '127.0.0.1', () => resolve((server.address() as AddressInfo).port)),
  );
}

async function readAll(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

async function failure(p: Promise<unknown>): Promise<OciError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OciError);
  const e = err as OciError;
  // Whatever failed, no secret may leak into what the user sees.
  for (const secret of [PASSWORD, TOKEN, Buffer.from(`${USER}:${PASSWORD}`).toString('base64'), 'sig123']) {
    expect(e.message).not.toContain(secret);
  }
  return e;
}

const ref = (tail = ':v1'): string => `127.0.0.1:${port}/${REPO}${tail}`;
const creds = { insecure: true, username: USER, password: PASSWORD };

beforeAll(async () => {
  registry = createServer(handleRegistry);
  blobHost = createServer((req, res) => {
    state.blobRequests.push({ url: req.url ?? '', authorization: req.headers.authorization });
    send(res, 200, redirected);
  });
  port = await listen(registry);
  blobPort = await listen(blobHost);
});

afterAll(async () => {
  registry.closeAllConnections();
  blobHost.closeAllConnections();
  await Promise.all([new Promise((r) => registry.close(r)), new Promise((r) => blobHost.close(r))]);
});

beforeEach(() => {
  state = { auth: 'none', tokenField: 'token', requests: [], blobRequests: [], tokenRequests: [] };
});

describe('parseAuthChallenges', () => {
  it('reads quoted values with commas and escapes', () => {
    expect(
      parseAuthChallenges(
        'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/alpine:pull,push"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.docker.io/token',
          service: 'registry.docker.io',
          scope: 'repository:library/alpine:pull,push',
        },
      },
    ]);
    expect(parseAuthChallenges('Bearer realm="a\\"b", Service = x')).toEqual([
      { scheme: 'bearer', params: { realm: 'a"b', service: 'x' } },
    ]);
  });

  it('splits several challenges and tolerates token68 and junk', () => {
    expect(parseAuthChallenges('Basic realm="r", Bearer realm="t",scope="a,b"')).toEqual([
      { scheme: 'basic', params: { realm: 'r' } },
      { scheme: 'bearer', params: { realm: 't', scope: 'a,b' } },
    ]);
    expect(parseAuthChallenges('Negotiate dGVzdA==, Basic realm=x')).toEqual([
      { scheme: 'negotiate', params: {} },
      { scheme: 'basic', params: { realm: 'x' } },
    ]);
    expect(parseAuthChallenges('')).toEqual([]);
    expect(parseAuthChallenges('Bearer realm="unterminated')).toEqual([
      { scheme: 'bearer', params: { realm: 'unterminated' } },
    ]);
    expect(() => parseAuthChallenges('"", ,=;;== Basic')).not.toThrow();
  });
});

describe('RegistrySource against a fake registry', () => {
  it('reads an image anonymously: manifest and every blob, streamed and verified', async () => {
    const src = new RegistrySource(ref(), { insecure: true });
    const root = await src.root();
    expect(root.digest).toBe(manifestDigest);
    expect(root.mediaType).toBe(MediaType.ociManifest);
    expect(root.bytes.equals(manifest)).toBe(true);
    expect((await src.readBlob({ digest: sha(config), size: config.length }, 1 << 20)).equals(config)).toBe(
      true,
    );
    expect(
      (await readAll(await src.openBlob({ digest: sha(layer), size: layer.length }))).equals(layer),
    ).toBe(true);
    expect(state.requests.every((r) => r.authorization === undefined)).toBe(true);
    await src.close();
  });

  it('answers a Basic challenge with the given credentials', async () => {
    state.auth = 'basic';
    const src = new RegistrySource(ref(), creds);
    expect((await src.root()).digest).toBe(manifestDigest);
    expect((await readAll(await src.openBlob({ digest: sha(layer) }))).equals(layer)).toBe(true);
    // Anonymous first, then Basic; the Basic header is reused without a second challenge.
    expect(state.requests.map((r) => r.authorization?.split(' ')[0] ?? 'none')).toEqual([
      'none',
      'Basic',
      'Basic',
    ]);
  });

  it('runs the Bearer token flow with Basic credentials and caches the token', async () => {
    state.auth = 'bearer';
    const src = new RegistrySource(ref(), creds);
    expect((await src.root()).digest).toBe(manifestDigest);
    await Promise.all([
      src.readBlob({ digest: sha(config) }, 1 << 20),
      readAll(await src.openBlob({ digest: sha(layer), size: layer.length })),
    ]);
    expect(state.tokenRequests).toHaveLength(1);
    const tokenUrl = new URL(state.tokenRequests[0]!.url, 'http://x');
    expect(tokenUrl.searchParams.get('scope')).toBe(`repository:${REPO}:pull`);
    expect(state.requests.map((r) => r.authorization ?? 'none')).toEqual([
      'none',
      `Bearer ${TOKEN}`,
      `Bearer ${TOKEN}`,
      `Bearer ${TOKEN}`,
    ]);
  });

  it('reads access_token when the token service uses the OAuth2 field name', async () => {
    state.auth = 'bearer';
    state.tokenField = 'access_token';
    const src = new RegistrySource(ref(), creds);
    expect((await src.root()).digest).toBe(manifestDigest);
  });

  it('takes credentials from a docker config file', async () => {
    state.auth = 'bearer';
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-reg-'));
    try {
      const path = join(dir, 'config.json');
      await writeFile(
        path,
        JSON.stringify({
          auths: {
            [`http://127.0.0.1:${port}`]: { auth: Buffer.from(`${USER}:${PASSWORD}`).toString('base64') },
          },
        }),
      );
      const src = new RegistrySource(ref(), { insecure: true, dockerConfigPath: path });
      expect((await src.root()).digest).toBe(manifestDigest);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it.each(['basic', 'bearer'] as const)(
    'refuses a wrong password (%s) with UNAUTHORIZED and no secret in the message',
    async (mode) => {
      state.auth = mode;
      const src = new RegistrySource(ref(), { insecure: true, username: USER, password: 'wrong' });
      const err = await failure(src.root());
      expect(err.code).toBe('UNAUTHORIZED');
      expect(err.message).toBe(
        `${ref()}: access denied by 127.0.0.1:${port} (check --username/--password-stdin or docker login)`,
      );
    },
  );

  it('shares one token fetch between concurrent first requests', async () => {
    state.auth = 'bearer';
    const src = new RegistrySource(ref(), creds);
    const [a, b] = await Promise.all([
      src.readBlob({ digest: sha(config) }, 1 << 20),
      src.openBlob({ digest: sha(layer) }).then(readAll),
    ]);
    expect(a.equals(config) && b.equals(layer)).toBe(true);
    expect(state.tokenRequests).toHaveLength(1);
  });

  it('cancels a download the consumer abandons', async () => {
    const src = new RegistrySource(ref(), { insecure: true });
    const stream = await src.openBlob({ digest: sha(layer), size: layer.length });
    for await (const chunk of stream) {
      expect((chunk as Buffer).length).toBeGreaterThan(0);
      break; // destroys the stream
    }
    expect(stream.destroyed).toBe(true);
    // The source is still usable afterwards.
    expect((await src.readBlob({ digest: sha(config) }, 1 << 20)).equals(config)).toBe(true);
    await src.close();
  });

  it('fails a stream whose server goes silent mid-body', async () => {
    const src = new RegistrySource(ref(), { insecure: true, timeoutMs: 300 });
    const err = await failure(src.openBlob({ digest: stallDigest }).then(readAll));
    expect(err.code).toBe('REGISTRY_TIMEOUT');
    expect(err.message).toContain(stallDigest);
  });

  it.each(['basic', 'bearer'] as const)(
    'says access denied when credentials are needed and none are known (%s)',
    async (mode) => {
      state.auth = mode;
      const src = new RegistrySource(ref(), {
        insecure: true,
        dockerConfigPath: join(tmpdir(), 'portcullis-no-such-config.json'),
      });
      expect((await failure(src.root())).code).toBe('UNAUTHORIZED');
    },
  );

  it('maps 404s to MANIFEST_UNKNOWN and BLOB_UNKNOWN naming what was missing', async () => {
    const src = new RegistrySource(ref(':nope'), { insecure: true });
    const m = await failure(src.root());
    expect(m.code).toBe('MANIFEST_UNKNOWN');
    expect(m.message).toContain('manifest nope not found in test/app');
    const other = await failure(
      new RegistrySource(`127.0.0.1:${port}/other/repo:v1`, { insecure: true }).root(),
    );
    expect(other.message).toContain('repository other/repo does not exist');
    const missing = `sha256:${'0'.repeat(64)}`;
    const b = await failure(src.openBlob({ digest: missing }));
    expect(b.code).toBe('BLOB_UNKNOWN');
    expect(b.message).toContain(missing);
  });

  it('maps 5xx to REGISTRY_ERROR naming the status', async () => {
    const err = await failure(new RegistrySource(ref(':boom'), { insecure: true }).root());
    expect(err.code).toBe('REGISTRY_ERROR');
    expect(err.message).toMatch(/answered 500 Internal Server Error for manifest boom/);
  });

  it('fails a blob whose content does not match its digest, streamed or buffered', async () => {
    const src = new RegistrySource(ref(), { insecure: true });
    const streamed = await failure(readAll(await src.openBlob({ digest: corruptDigest })));
    expect(streamed.code).toBe('DIGEST_MISMATCH');
    const buffered = await failure(src.readBlob({ digest: corruptDigest }, 1 << 20));
    expect(buffered.code).toBe('DIGEST_MISMATCH');
  });

  it('checks sizes against the descriptor', async () => {
    const src = new RegistrySource(ref(), { insecure: true });
    expect((await failure(src.openBlob({ digest: sha(config), size: config.length + 1 }))).code).toBe(
      'SIZE_MISMATCH',
    );
    expect((await failure(src.readBlob({ digest: sha(layer), size: layer.length }, 1024))).code).toBe(
      'DOCUMENT_TOO_LARGE',
    );
    expect((await failure(src.readBlob({ digest: sha(layer) }, 1024))).code).toBe('DOCUMENT_TOO_LARGE');
  });

  it('follows a blob redirect to another host without sending the Authorization header there', async () => {
    state.auth = 'bearer';
    const src = new RegistrySource(ref(), creds);
    const got = await readAll(await src.openBlob({ digest: sha(redirected), size: redirected.length }));
    expect(got.equals(redirected)).toBe(true);
    expect(state.blobRequests).toHaveLength(1);
    expect(state.blobRequests[0]!.authorization).toBeUndefined();
    expect(state.requests.at(-1)!.authorization).toBe(`Bearer ${TOKEN}`);
  });

  it('verifies a digest reference and the Docker-Content-Digest header', async () => {
    const byDigest = await new RegistrySource(ref(`@${manifestDigest}`), { insecure: true }).root();
    expect(byDigest.digest).toBe(manifestDigest);
    const wrong = `sha256:${'1'.repeat(64)}`;
    expect((await failure(new RegistrySource(ref(`:v1@${wrong}`), { insecure: true }).root())).code).toBe(
      'MANIFEST_UNKNOWN',
    );
    state.manifestDigestHeader = wrong;
    const lied = await failure(new RegistrySource(ref(), { insecure: true }).root());
    expect(lied.code).toBe('DIGEST_MISMATCH');
    expect(lied.message).toContain('Docker-Content-Digest');
  });

  it('refuses schema 1 manifests and oversized manifests', async () => {
    const old = await failure(new RegistrySource(ref(':old'), { insecure: true }).root());
    expect(old.code).toBe('MANIFEST_UNSUPPORTED');
    expect(old.message).toMatch(/schema 1/);
    expect((await failure(new RegistrySource(ref(':huge'), { insecure: true }).root())).code).toBe(
      'DOCUMENT_TOO_LARGE',
    );
  });

  it('times out when the registry does not answer', async () => {
    const err = await failure(new RegistrySource(ref(':hang'), { insecure: true, timeoutMs: 200 }).root());
    expect(err.code).toBe('REGISTRY_TIMEOUT');
  });

  it('suggests --insecure when https meets a plain-http registry', async () => {
    const err = await failure(new RegistrySource(ref(), { timeoutMs: 5000 }).root());
    expect(err.code).toBe('REGISTRY_TLS');
    expect(err.message).toMatch(/--insecure/);
    expect(err.message.split('\n')).toHaveLength(1);
  });

  it('says when the connection is refused', async () => {
    const closed = createServer();
    const closedPort = await listen(closed);
    await new Promise((r) => closed.close(r));
    const err = await failure(new RegistrySource(`127.0.0.1:${closedPort}/a/b:c`, { insecure: true }).root());
    expect(err.code).toBe('REGISTRY_UNREACHABLE');
    expect(err.message).toBe(
      `127.0.0.1:${closedPort}/a/b:c: cannot connect to 127.0.0.1:${closedPort} (connection refused)`,
    );
  });

  it('refuses half-given credentials and invalid references up front', () => {
    expect(() => new RegistrySource(ref(), { username: 'x' })).toThrow(/both a username and a password/);
    expect(() => new RegistrySource('Bad/Name')).toThrow(OciError);
  });
});
