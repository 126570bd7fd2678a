// The registry client against registries that misbehave on purpose: each test gives a tiny local
// server one bad habit and checks that the client stops with a clear, bounded error.
import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { createServer, type RequestListener, type ServerResponse } from 'node:http';
import { createServer as createNetServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { oneLineFailure as failure, readAll } from '../helpers/oci-results.js';
import { startScriptedServer, type ScriptedServer } from '../helpers/scripted-server.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyseInput } from '../../src/analyse/index.js';
import { parseImageInput } from '../../src/oci/index.js';
import { MediaType } from '../../src/oci/media-types.js';
import { RegistrySource } from '../../src/oci/registry.js';
import { resolveImages } from '../../src/oci/resolve.js';
import { tarOf } from '../helpers/image-builder.js';

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const REPO = 'hostile/app';

const blob = randomBytes(64 * 1024);
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: MediaType.ociManifest,
    config: { mediaType: MediaType.ociConfig, digest: sha(blob), size: blob.length },
    layers: [],
  }),
);

let scripted: ScriptedServer;

beforeAll(async () => {
  scripted = await startScriptedServer();
});

afterAll(async () => {
  await scripted.close();
});

const source = (timeoutMs = 300): RegistrySource =>
  new RegistrySource(`127.0.0.1:${scripted.port}/${REPO}:v1`, { insecure: true, timeoutMs });

/** Sends the body one byte every `everyMs`, for as long as the client listens. */
function drip(res: ServerResponse, body: Buffer, everyMs: number): void {
  let i = 0;
  const timer = setInterval(() => {
    if (i < body.length) res.write(body.subarray(i, ++i));
    else {
      clearInterval(timer);
      res.end();
    }
  }, everyMs);
  res.on('close', () => clearInterval(timer));
}



describe('RegistrySource against a registry that stalls', () => {
  it('names the manifest it waited for when no headers come', async () => {
    scripted.handler = () => {}; // never answers
    const err = await failure(source(200).root());
    expect(err.code).toBe('REGISTRY_TIMEOUT');
    expect(err.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: no answer from 127.0.0.1:${scripted.port} within 200 ms for manifest v1`,
    );
  });

  it('gives a manifest sent a byte at a time one timeout for its whole body', async () => {
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': manifest.length });
      drip(res, manifest, 20); // never idle for 300 ms, but would take seconds
    };
    const started = Date.now();
    const err = await failure(source(300).root());
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.code).toBe('REGISTRY_TIMEOUT');
    expect(err.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: 127.0.0.1:${scripted.port} did not send all of manifest v1 within 300 ms`,
    );
  });

  it('fails a blob that trickles in under the floor rate', async () => {
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': blob.length });
      drip(res, blob, 20);
    };
    const started = Date.now();
    const err = await failure(source(300).openBlob({ digest: sha(blob), size: blob.length }).then((s) => readAll(s)));
    expect(Date.now() - started).toBeLessThan(2000);
    expect(err.code).toBe('REGISTRY_TIMEOUT');
    expect(err.message).toContain(`is sending blob ${sha(blob)} too slowly`);
  });

  it('does not count a slow consumer against the registry', async () => {
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-length': blob.length });
      // Several writes, so the body arrives in several chunks.
      for (let i = 0; i < blob.length; i += 8192) res.write(blob.subarray(i, i + 8192));
      res.end();
    };
    // The consumer takes far longer than the timeout between chunks; the network never does.
    const stream = await source(100).openBlob({ digest: sha(blob), size: blob.length });
    const got = await readAll(stream, 150);
    expect(got.equals(blob)).toBe(true);
  });
});

describe('RegistrySource and resolveImages against a registry that sends terminal escapes', () => {
  it('escapes a reason phrase and cuts it short', async () => {
    // Node's http server refuses control characters in a reason phrase; a raw socket does not.
    const raw = createNetServer((socket) => {
      socket.once('data', () => {
        socket.end(`HTTP/1.1 500 Bad \x1b[31mRED\x1b]0;pwned\x07${'x'.repeat(300)}\r\nContent-Length: 0\r\n\r\n`);
      });
    });
    await new Promise<void>((resolve) => raw.listen(0, '127.0.0.1', resolve));
    const rawPort = (raw.address() as AddressInfo).port;
    try {
      const src = new RegistrySource(`127.0.0.1:${rawPort}/${REPO}:v1`, { insecure: true, timeoutMs: 2000 });
      const err = await failure(src.root());
      expect(err.code).toBe('REGISTRY_ERROR');
      expect(err.message).not.toMatch(/[\x00-\x1f\x7f]/);
      expect(err.message).toContain('answered 500 Bad \\x1b[31mRED\\x1b]0;pwned\\x07xxx');
      expect(err.message.length).toBeLessThan(250);
    } finally {
      await new Promise((r) => raw.close(r));
    }
  });

  it('lists an index’s platforms escaped, each once, and only the first twenty', async () => {
    const evil = { os: 'linux\x1b[2J', architecture: 'arm\x1b]0;t\x07' };
    const manifests = [
      ...Array.from({ length: 1000 }, () => ({ mediaType: MediaType.ociManifest, digest: sha(manifest), size: 1, platform: evil })),
      ...Array.from({ length: 30 }, (_, i) => ({
        mediaType: MediaType.ociManifest,
        digest: sha(manifest),
        size: 1,
        platform: { os: 'linux', architecture: `a${i}` },
      })),
    ];
    const index = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: MediaType.ociIndex, manifests }));
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.ociIndex, 'content-length': index.length });
      res.end(index);
    };
    const err = await failure(resolveImages(source()));
    expect(err.code).toBe('PLATFORM_NOT_FOUND');
    expect(err.message).not.toMatch(/[\x00-\x1f\x7f]/);
    expect(err.message).toContain('(available: linux\\x1b[2J/arm\\x1b]0;t\\x07, linux/a0, ');
    expect(err.message).toContain('linux/a18 and 11 more); use --platform');
  });

  it('escapes a media type taken from the manifest or the Content-Type header', async () => {
    const doc = Buffer.from(JSON.stringify({ schemaVersion: 2, mediaType: 'application/x\x1b[31m' }));
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': doc.length });
      res.end(doc);
    };
    const fromBody = await failure(resolveImages(source()));
    expect(fromBody.code).toBe('MANIFEST_UNSUPPORTED');
    expect(fromBody.message).toMatch(/unsupported media type application\/x\\x1b\[31m$/);
    // Header values may carry bytes 0x80-0xff, read as Latin-1: 0x9b is the one-byte CSI.
    const plain = Buffer.from('{"schemaVersion":2}');
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'text/x\x9b2J', 'content-length': plain.length });
      res.end(plain);
    };
    const fromHeader = await failure(resolveImages(source()));
    expect(fromHeader.message).toMatch(/unsupported media type text\/x\\x9b2j$/);
  });
});

describe('resolveImages against a registry that lists too much', () => {
  it('refuses a manifest of more than 1,000 layers before fetching its config', async () => {
    const layers = Array.from({ length: 1001 }, () => ({ mediaType: MediaType.ociLayerGzip, digest: sha(blob), size: blob.length }));
    const big = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: sha(blob), size: blob.length },
        layers,
      }),
    );
    const paths: string[] = [];
    scripted.handler = (req, res) => {
      paths.push(req.url ?? '');
      res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': big.length });
      res.end(big);
    };
    const err = await failure(resolveImages(source()));
    expect(err.code).toBe('MANIFEST_INVALID');
    expect(err.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: manifest ${sha(big)} lists 1001 layers, more than the 1000 portcullis reads (container runtimes stop at about 128)`,
    );
    expect(paths).toEqual([`/v2/${REPO}/manifests/v1`]);
  });
});

describe('RegistrySource against a registry that sends too much', () => {
  it('says so when the response headers are over the limit, without reading them', async () => {
    scripted.handler = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1/t",x="${'a'.repeat(100_000)}"` });
      res.end();
    };
    const err = await failure(source().root());
    expect(err.code).toBe('REGISTRY_ERROR');
    expect(err.message).toMatch(/: 127\.0\.0\.1:\d+ answered manifest v1 with headers over Node's \d+-byte limit \(a broken registry or proxy\?\)$/);
  });

  it('stops reading an endless manifest at the document limit', async () => {
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': MediaType.ociManifest }); // chunked, no length
      const chunk = Buffer.alloc(64 * 1024, 0x20);
      const pump = (): void => {
        while (res.write(chunk));
      };
      res.on('drain', pump);
      pump();
    };
    const err = await failure(source().root());
    expect(err.code).toBe('DOCUMENT_TOO_LARGE');
    expect(err.message).toContain('manifest v1 from 127.0.0.1');
  });
});

describe('RegistrySource keeps credentials on the registry', () => {
  const USER = 'alice';
  const PASSWORD = 'pw-Secret-1';
  const basic = `Basic ${Buffer.from(`${USER}:${PASSWORD}`).toString('base64')}`;

  /** A second origin (another scripted.port) that records what reaches it and answers with `answer`. */
  async function otherOrigin(answer: RequestListener): Promise<{ port: number; seen: Array<string | undefined>; close(): Promise<void> }> {
    const seen: Array<string | undefined> = [];
    const other = createServer((req, res) => {
      seen.push(req.headers.authorization);
      answer(req, res);
    });
    await new Promise<void>((resolve) => other.listen(0, '127.0.0.1', resolve));
    return {
      port: (other.address() as AddressInfo).port,
      seen,
      close: async () => {
        other.closeAllConnections();
        await new Promise((r) => other.close(r));
      },
    };
  }

  const withCredentials = (): RegistrySource =>
    new RegistrySource(`127.0.0.1:${scripted.port}/${REPO}:v1`, { insecure: true, timeoutMs: 2000, username: USER, password: PASSWORD });

  it('sends no Basic credentials to another origin a blob is redirected to, nor answers its 401', async () => {
    const other = await otherOrigin((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Basic realm="s3"` });
      res.end();
    });
    try {
      const registrySeen: Array<string | undefined> = [];
      scripted.handler = (req, res) => {
        registrySeen.push(req.headers.authorization);
        if (req.headers.authorization !== basic) {
          res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' });
          res.end();
          return;
        }
        res.writeHead(307, { location: `http://127.0.0.1:${other.port}/bucket/blob?sig=1` });
        res.end();
      };
      const err = await failure(withCredentials().openBlob({ digest: sha(blob), size: blob.length }));
      expect(err.code).toBe('REGISTRY_ERROR');
      expect(err.message).toContain(`127.0.0.1:${other.port}, where 127.0.0.1:${scripted.port} redirected blob`);
      expect(registrySeen).toEqual([undefined, basic]);
      expect(other.seen).toEqual([undefined]); // asked once, without credentials, and not again
    } finally {
      await other.close();
    }
  });

  it('does not follow a token service redirect with the credentials meant for it', async () => {
    const other = await otherOrigin((_req, res) => {
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"token":"stolen"}');
    });
    try {
      scripted.handler = (req, res) => {
        if (req.url?.startsWith('/token')) {
          res.writeHead(307, { location: `http://127.0.0.1:${other.port}/token` });
          res.end();
          return;
        }
        res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${scripted.port}/token",service="s"` });
        res.end();
      };
      const err = await failure(withCredentials().root());
      expect(err.code).toBe('REGISTRY_ERROR');
      expect(err.message).toBe(`127.0.0.1:${scripted.port}/${REPO}:v1: token service 127.0.0.1:${scripted.port} answered 307 Temporary Redirect`);
      expect(other.seen).toEqual([]);
    } finally {
      await other.close();
    }
  });

  it('refuses a redirect or a token realm with credentials in its URL, and quotes neither', async () => {
    scripted.handler = (_req, res) => {
      res.writeHead(307, { location: 'http://user:pw-in-url@127.0.0.1:9/blob?X-Amz-Signature=sig-in-url' });
      res.end();
    };
    const redirect = await failure(source().openBlob({ digest: sha(blob), size: blob.length }));
    expect(redirect.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: 127.0.0.1:${scripted.port} redirected to a URL with credentials in it, on 127.0.0.1:9; refusing`,
    );
    scripted.handler = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': 'Bearer realm="http://user:pw-in-url@127.0.0.1:9/token?sig=sig-in-url"' });
      res.end();
    };
    const realm = await failure(withCredentials().root());
    expect(realm.message).toBe(
      `127.0.0.1:${scripted.port}/${REPO}:v1: 127.0.0.1:${scripted.port} sent a Bearer challenge without a usable realm URL`,
    );
    for (const e of [redirect, realm]) expect(e.message).not.toMatch(/in-url/);
  });

  it('stops a redirect loop after five hops', async () => {
    let hops = 0;
    scripted.handler = (req, res) => {
      hops++;
      res.writeHead(302, { location: req.url ?? '/' });
      res.end();
    };
    const err = await failure(source().root());
    expect(err.message).toBe(`127.0.0.1:${scripted.port}/${REPO}:v1: more than 5 redirects from 127.0.0.1:${scripted.port}`);
    expect(hops).toBe(6);
  });

  it('answers a 401 that follows a fresh token once, not in a loop', async () => {
    let tokens = 0;
    let manifestGets = 0;
    scripted.handler = (req, res) => {
      if (req.url?.startsWith('/token')) {
        tokens++;
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end('{"token":"t0k3n","expires_in":0}');
        return;
      }
      manifestGets++;
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${scripted.port}/token",service="s"` });
      res.end();
    };
    const err = await failure(withCredentials().root());
    expect(err.code).toBe('UNAUTHORIZED');
    expect([tokens, manifestGets]).toEqual([1, 2]);
  });
});

describe('a scan from a registry that serves a tampered layer', () => {
  it('fails with the digest and caches nothing for that layer', async () => {
    const tar = await tarOf([
      { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.0\n' },
      { name: 'data/big', content: Buffer.alloc(1 << 20, 0x61) },
    ]);
    // One byte inside a file's content: every tar header still parses, so the walk completes
    // and only the digest check at the end of the blob can tell.
    const tampered = Buffer.from(tar);
    tampered[4096] = 0x62;
    const config = Buffer.from(
      JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [sha(tar)] } }),
    );
    const image = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: MediaType.ociManifest,
        config: { mediaType: MediaType.ociConfig, digest: sha(config), size: config.length },
        layers: [{ mediaType: MediaType.ociLayerTar, digest: sha(tar), size: tar.length }],
      }),
    );
    let layerBytes: Buffer = tampered;
    scripted.handler = (req, res) => {
      const url = req.url ?? '';
      const body = url.endsWith(sha(tar)) ? layerBytes : url.endsWith(sha(config)) ? config : image;
      res.writeHead(200, { 'content-type': MediaType.ociManifest, 'content-length': body.length });
      res.end(body);
    };
    const cacheDir = mkdtempSync(join(tmpdir(), 'portcullis-hostile-cache-'));
    try {
      const scan = () =>
        analyseInput(parseImageInput(`127.0.0.1:${scripted.port}/${REPO}:v1`), { cacheDir, insecure: true, timeoutMs: 2000, scratchRoot: cacheDir });
      const err = await failure(scan());
      expect(err.code).toBe('DIGEST_MISMATCH');
      expect(err.message).toContain(sha(tar));
      const cached = (): string[] => readdirSync(cacheDir, { recursive: true, encoding: 'utf8' }).filter((f) => f.endsWith('.json'));
      expect(cached()).toEqual([]);
      // The same scan against honest bytes works and is cached: the cache was not simply off.
      layerBytes = tar;
      const [result] = await scan();
      expect(result!.os?.family).toBe('alpine');
      expect(cached()).toHaveLength(1);
    } finally {
      rmSync(cacheDir, { recursive: true, force: true });
    }
  });
});
