// The registry client against registries and proxies that behave legally but unusually: each test
// gives the scripted server one habit that docker, containerd or skopeo accept, and checks that
// the client reads the image, or refuses with one clear line where they refuse too.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MediaType } from '../../src/oci/media-types.js';
import { RegistrySource } from '../../src/oci/registry.js';
import { oneLineFailure as failure, readAll } from '../helpers/oci-results.js';
import { startScriptedServer, type ScriptedServer } from '../helpers/scripted-server.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const REPO = 'interop/app';

// A layer as registries store it (already gzip: random bytes, so a second gzip makes it larger)
// and a config that compresses well (so a gzip of it is smaller): both directions of a wrong size.
const layer = gzipSync(randomBytes(200 * 1024));
const config = Buffer.from(
  JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, pad: 'x'.repeat(4096) }),
);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha(config), size: config.length },
    layers: [{ mediaType: MediaType.ociLayerGzip, digest: sha(layer), size: layer.length }],
  }),
);

let scripted: ScriptedServer;

beforeAll(async () => {
  scripted = await startScriptedServer();
});

afterAll(async () => {
  await scripted.close();
});

const source = (): RegistrySource =>
  new RegistrySource(`127.0.0.1:${scripted.port}/${REPO}:v1`, { insecure: true, timeoutMs: 2000 });



/** The stored bytes of whatever a request names: the manifest for /manifests/, else the blob. */
function stored(url: string): Buffer {
  if (url.includes('/manifests/')) return manifest;
  return url.endsWith(sha(layer)) ? layer : config;
}

describe('a proxy that adds Content-Encoding', () => {
  it('undoes a gzip coding, then checks size and digest of the bytes the manifest names', async () => {
    const accepted: Array<string | undefined> = [];
    scripted.handler = (req, res) => {
      accepted.push(req.headers['accept-encoding']);
      const body = gzipSync(stored(req.url ?? ''));
      res.writeHead(200, {
        'content-type': req.url?.includes('/manifests/') ? MediaType.ociManifest : 'application/octet-stream',
        'content-encoding': 'gzip',
        'content-length': body.length, // the encoded length, as HTTP defines it
      });
      res.end(body);
    };
    const src = source();
    const root = await src.root();
    expect(root.bytes.equals(manifest)).toBe(true);
    expect(root.digest).toBe(sha(manifest));
    expect((await src.readBlob({ digest: sha(config), size: config.length }, 1 << 20)).equals(config)).toBe(true);
    // The layer is gzip as stored; the proxy's gzip goes around it and comes off, the layer's stays.
    const got = await readAll(await src.openBlob({ digest: sha(layer), size: layer.length }));
    expect(got.equals(layer)).toBe(true);
    expect(accepted.every((a) => a !== undefined && /gzip/.test(a))).toBe(true);
    await src.close();
  });

  it('undoes deflate and a chain of two codings', async () => {
    for (const coding of ['deflate', 'gzip, gzip']) {
      const { deflateSync } = await import('node:zlib');
      scripted.handler = (req, res) => {
        const raw = stored(req.url ?? '');
        const body = coding === 'deflate' ? deflateSync(raw) : gzipSync(gzipSync(raw));
        res.writeHead(200, { 'content-encoding': coding, 'content-length': body.length });
        res.end(body);
      };
      const got = await readAll(await source().openBlob({ digest: sha(layer), size: layer.length }));
      expect(got.equals(layer), coding).toBe(true);
    }
  });

  it('refuses a coding it cannot undo, naming the blob and the coding', async () => {
    // A zstd frame's magic and then anything: fetch passes a coding it does not know through.
    const encoded = Buffer.concat([Buffer.from([0x28, 0xb5, 0x2f, 0xfd]), randomBytes(layer.length)]);
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-encoding': 'zstd', 'content-length': encoded.length });
      res.end(encoded);
    };
    const err = await failure(source().openBlob({ digest: sha(layer), size: layer.length }).then(readAll));
    expect(err.code).toBe('REGISTRY_ERROR');
    expect(err.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: 127.0.0.1:${scripted.port} sent blob ${sha(layer)} with Content-Encoding zstd, which portcullis cannot undo`,
    );
  });

  it('says a coding was undone when the result fails its check (storage that labels a .gz blob so)', async () => {
    // The layer sent as stored, but labelled gzip: undoing the label yields the random bytes inside.
    scripted.handler = (req, res) => {
      const body = stored(req.url ?? '');
      res.writeHead(200, { 'content-encoding': 'x-gzip', 'content-length': body.length });
      res.end(body);
    };
    const note = `; 127.0.0.1:${scripted.port} sent it with Content-Encoding x-gzip, which was undone first (a blob stored under that label fails so)`;
    const streamed = await failure(source().openBlob({ digest: sha(layer), size: layer.length }).then(readAll));
    expect(streamed.code).toBe('SIZE_MISMATCH');
    expect(streamed.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: blob ${sha(layer)} is 204800 bytes, its descriptor says ${layer.length} (truncated?)${note}`,
    );
    const gzConfig = gzipSync(config);
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': gzConfig.length });
      res.end(gzConfig);
    };
    const buffered = await failure(source().readBlob({ digest: sha(gzConfig), size: gzConfig.length }, 1 << 20));
    expect(buffered.code).toBe('SIZE_MISMATCH');
    expect(buffered.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: blob ${sha(gzConfig)} is ${config.length} bytes, its descriptor says ${gzConfig.length}${note.replace('x-gzip', 'gzip')}`,
    );
  });

  it('says a labelled body that does not decode is not a network failure', async () => {
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-encoding': 'gzip', 'content-length': config.length });
      res.end(config);
    };
    const ref = { digest: sha(config), size: config.length };
    for (const read of [() => source().readBlob(ref, 1 << 20), () => source().openBlob(ref).then(readAll)]) {
      const err = await failure(read());
      expect(err.code).toBe('REGISTRY_ERROR');
      expect(err.message).toBe(
        `127.0.0.1:${scripted.port}/${REPO}:v1: blob ${sha(config)} from 127.0.0.1:${scripted.port} does not decode (incorrect header check); 127.0.0.1:${scripted.port} sent it with Content-Encoding gzip, which was undone first (a blob stored under that label fails so)`,
      );
    }
  });

  it('takes identity as no coding at all', async () => {
    scripted.handler = (req, res) => {
      const body = stored(req.url ?? '');
      res.writeHead(200, { 'content-encoding': 'identity', 'content-length': body.length });
      res.end(body);
    };
    const got = await readAll(await source().openBlob({ digest: sha(layer), size: layer.length }));
    expect(got.equals(layer)).toBe(true);
  });
});

describe('a registry that asks the client to slow down (429)', () => {
  /** Answers 429 with `retryAfter` to the first `limited` requests, then serves the image. */
  function limitedFor(limited: number, retryAfter?: string): number[] {
    const at: number[] = [];
    scripted.handler = (req, res) => {
      at.push(Date.now());
      if (at.length <= limited) {
        res.writeHead(429, { 'content-type': 'application/json', ...(retryAfter !== undefined ? { 'retry-after': retryAfter } : {}) });
        res.end('{"errors":[{"code":"TOOMANYREQUESTS"}]}');
        return;
      }
      const body = stored(req.url ?? '');
      res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': body.length });
      res.end(body);
    };
    return at;
  }

  it('waits as long as Retry-After says and tries again, as skopeo does', async () => {
    const at = limitedFor(1, '1');
    const got = await readAll(await source().openBlob({ digest: sha(layer), size: layer.length }));
    expect(got.equals(layer)).toBe(true);
    expect(at).toHaveLength(2);
    expect(at[1]! - at[0]!).toBeGreaterThanOrEqual(900);
  });

  it('tries a few times, then says the registry is rate limiting', async () => {
    const at = limitedFor(2, '0');
    expect((await source().root()).bytes.equals(manifest)).toBe(true);
    expect(at).toHaveLength(3);

    const always = limitedFor(Infinity, '0');
    const err = await failure(source().root());
    expect(err.code).toBe('REGISTRY_ERROR');
    expect(err.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: 127.0.0.1:${scripted.port} is rate limiting requests (429) for manifest v1, still after 4 tries; retry later or log in`,
    );
    expect(always).toHaveLength(4);
  });

  it('does not sit out a long Retry-After, in seconds or as a date, and says how long it was', async () => {
    for (const [retryAfter, says] of [
      ['3600', '3600 s'],
      [new Date(Date.now() + 7200_000).toUTCString(), '7200 s'],
    ] as const) {
      const at = limitedFor(Infinity, retryAfter);
      const err = await failure(source().root());
      expect(err.message).toMatch(
        new RegExp(`is rate limiting requests \\(429\\) for manifest v1 and asks to wait (${says}|${Number(says.split(' ')[0]) - 1} s); retry later or log in$`),
      );
      expect(at).toHaveLength(1);
    }
  });

  it('stops waiting when the source is closed', async () => {
    limitedFor(Infinity, '5');
    const src = source();
    const started = Date.now();
    const pending = failure(src.root());
    setTimeout(() => void src.close(), 100);
    expect((await pending).message).toContain('is rate limiting requests (429) for manifest v1;');
    expect(Date.now() - started).toBeLessThan(2000);
  });

  it('answers a 401 that comes after a 429', async () => {
    let n = 0;
    scripted.handler = (req, res) => {
      n++;
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"token":"t"}');
        return;
      }
      if (n === 1) {
        res.writeHead(429, { 'retry-after': '0' });
        res.end();
        return;
      }
      if (req.headers.authorization !== 'Bearer t') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${scripted.port}/token"` });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': manifest.length });
      res.end(manifest);
    };
    expect((await source().root()).bytes.equals(manifest)).toBe(true);
  });
});

describe('a registry that challenges only at /v2/', () => {
  it('takes the challenge from /v2/ when a 401 carries none, as docker and skopeo do', async () => {
    const seen: string[] = [];
    scripted.handler = (req, res) => {
      seen.push(`${req.url} ${req.headers.authorization ?? '-'}`);
      if (req.url?.startsWith('/token')) {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"token":"t"}');
        return;
      }
      if (req.headers.authorization !== 'Bearer t') {
        // Only the version check says how to authenticate; resources answer a bare 401.
        const challenge = `Bearer realm="http://127.0.0.1:${scripted.port}/token",service="s"`;
        res.writeHead(401, req.url === '/v2/' ? { 'www-authenticate': challenge } : {});
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': manifest.length });
      res.end(manifest);
    };
    expect((await source().root()).bytes.equals(manifest)).toBe(true);
    expect(seen).toEqual([
      `/v2/${REPO}/manifests/v1 -`,
      '/v2/ -',
      `/token?service=s&scope=repository%3A${encodeURIComponent(REPO)}%3Apull -`,
      `/v2/${REPO}/manifests/v1 Bearer t`,
    ]);
  });

  it('still says no challenge came when /v2/ has none either', async () => {
    scripted.handler = (req, res) => {
      res.writeHead(req.url === '/v2/' ? 200 : 401);
      res.end();
    };
    const err = await failure(source().root());
    expect(err.code).toBe('UNAUTHORIZED');
    expect(err.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: access denied by 127.0.0.1:${scripted.port}, which sent no authentication challenge`,
    );
  });
});

describe('storage a registry redirects blobs to', () => {
  it('says storage refused a redirected blob, with its error code, and does not suggest logging in', async () => {
    const storage = await startScriptedServer();
    try {
      storage.handler = (_req, res) => {
        // How S3 (and GCS's and Azure's XML APIs) refuse an expired or skewed pre-signed URL.
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      };
      scripted.handler = (_req, res) => {
        res.writeHead(307, { location: `http://127.0.0.1:${storage.port}/bucket/blob?X-Amz-Expires=60` });
        res.end();
      };
      const err = await failure(source().openBlob({ digest: sha(layer), size: layer.length }));
      expect(err.code).toBe('REGISTRY_ERROR');
      expect(err.message).toBe(
        `127.0.0.1:${scripted.port}/${REPO}:v1: 127.0.0.1:${storage.port}, where 127.0.0.1:${scripted.port} redirected blob ${sha(layer)}, answered 403 Forbidden [AccessDenied]`,
      );
    } finally {
      await storage.close();
    }
  });
});

describe('a docker login that stored an identity token (Azure Container Registry)', () => {
  it('trades the identity token for an access token with the OAuth2 POST, as docker does', async () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-identity-'));
    try {
      // What `docker login` writes for such a registry: a placeholder user, no password, the token.
      const dockerConfig = join(dir, 'config.json');
      const auth = Buffer.from('00000000-0000-0000-0000-000000000000:').toString('base64');
      writeFileSync(
        dockerConfig,
        JSON.stringify({ auths: { [`127.0.0.1:${scripted.port}`]: { auth, identitytoken: 'refresh-Secret-1' } } }),
      );
      const tokenRequests: Array<{ method?: string; authorization?: string; form: Record<string, string> }> = [];
      scripted.handler = (req, res) => {
        if (req.url?.startsWith('/oauth2/token')) {
          let body = '';
          req.on('data', (d: Buffer) => (body += d.toString()));
          req.on('end', () => {
            const form = Object.fromEntries(new URLSearchParams(body));
            tokenRequests.push({ method: req.method, authorization: req.headers.authorization, form });
            const ok = req.method === 'POST' && form.grant_type === 'refresh_token' && form.refresh_token === 'refresh-Secret-1';
            res.writeHead(ok ? 200 : 401, { 'content-type': 'application/json' });
            res.end(ok ? '{"access_token":"acc-1","expires_in":300}' : '{"errors":[{"code":"UNAUTHORIZED"}]}');
          });
          return;
        }
        if (req.headers.authorization !== 'Bearer acc-1') {
          res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${scripted.port}/oauth2/token",service="reg.example"` });
          res.end();
          return;
        }
        res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': manifest.length });
        res.end(manifest);
      };
      const src = new RegistrySource(`127.0.0.1:${scripted.port}/${REPO}:v1`, { insecure: true, timeoutMs: 2000, dockerConfigPath: dockerConfig });
      expect((await src.root()).bytes.equals(manifest)).toBe(true);
      expect(tokenRequests).toEqual([
        {
          method: 'POST',
          authorization: undefined,
          form: {
            grant_type: 'refresh_token',
            refresh_token: 'refresh-Secret-1',
            client_id: 'portcullis',
            service: 'reg.example',
            scope: `repository:${REPO}:pull`,
          },
        },
      ]);

      // A stale identity token: the token service refuses the grant, and the user is told to log in.
      writeFileSync(
        dockerConfig,
        JSON.stringify({ auths: { [`127.0.0.1:${scripted.port}`]: { auth, identitytoken: 'expired' } } }),
      );
      const stale = new RegistrySource(`127.0.0.1:${scripted.port}/${REPO}:v1`, { insecure: true, timeoutMs: 2000, dockerConfigPath: dockerConfig });
      const err = await failure(stale.root());
      expect(err.code).toBe('UNAUTHORIZED');
      expect(err.message).not.toContain('expired');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
