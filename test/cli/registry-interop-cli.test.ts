// `portcullis scan` against registries that are legal but unusual: what the user sees.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { registryToolsMissing, startDockerRegistry, type RunningRegistry } from '../helpers/docker-registry.js';
import { HAVE_FIXTURES, REPO_ROOT, fixtureImage } from '../helpers/fixtures.js';
import { loopbackCertificate, startScriptedServer, type ScriptedServer } from '../helpers/scripted-server.js';

const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-interop-cli-'));
const certificate = loopbackCertificate();
const caFile = join(tmp, 'ca.pem');

const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } }));
const manifest = Buffer.from(
  JSON.stringify({
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
    layers: [],
  }),
);

let tls: ScriptedServer | undefined;
let plain: ScriptedServer;

beforeAll(async () => {
  plain = await startScriptedServer();
  if (certificate) {
    writeFileSync(caFile, certificate.cert);
    tls = await startScriptedServer(certificate);
  }
});

afterAll(async () => {
  await tls?.close();
  await plain.close();
  rmSync(tmp, { recursive: true, force: true });
});

function scan(image: string, extra: string[] = []): Promise<{ code: number | null; stderr: string }> {
  const args = [CLI, 'scan', image, '--no-vulns', '--no-cache', '--format', 'json', '--data', join(tmp, 'data'), ...extra];
  return new Promise((resolve) => {
    const child = spawn('node', args, {
      stdio: ['ignore', 'ignore', 'pipe'],
      env: { ...process.env, NODE_EXTRA_CA_CERTS: caFile },
    });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr }));
  });
}

describe.skipIf(!certificate)('scan of an https registry', () => {
  it('reads an image over https from a registry whose CA the user trusts', async () => {
    tls!.handler = (req, res) => {
      const body = req.url?.includes('/manifests/') ? manifest : config;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': body.length });
      res.end(body);
    };
    const r = await scan(`127.0.0.1:${tls!.port}/app:v1`);
    expect(r.code, r.stderr).toBe(0);
  });

  it('refuses a blob redirect from https to plain http in one line naming the blob', async () => {
    const plainSeen: string[] = [];
    plain.handler = (req, res) => {
      plainSeen.push(req.url ?? '');
      res.writeHead(200, { 'content-length': config.length });
      res.end(config);
    };
    tls!.handler = (req, res) => {
      if (req.url?.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': manifest.length });
        res.end(manifest);
        return;
      }
      res.writeHead(307, { location: `http://127.0.0.1:${plain.port}/bucket/config?X-Amz-Signature=secret-sig` });
      res.end();
    };
    const r = await scan(`127.0.0.1:${tls!.port}/app:v1`);
    expect(r.code).toBe(2);
    // --insecure would not help (it makes the registry itself plain http), so it is not suggested.
    expect(r.stderr).toBe(
      `portcullis: 127.0.0.1:${tls!.port}/app:v1: 127.0.0.1:${tls!.port} redirected blob ${sha(config)} to plain http on 127.0.0.1:${plain.port}; refusing to leave https\n`,
    );
    expect(plainSeen).toEqual([]);
  });

  it('refuses a plain-http token service named by an https registry, without suggesting --insecure', async () => {
    tls!.handler = (_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="http://127.0.0.1:${plain.port}/token",service="s"` });
      res.end();
    };
    const r = await scan(`127.0.0.1:${tls!.port}/app:v1`);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `portcullis: 127.0.0.1:${tls!.port}/app:v1: 127.0.0.1:${tls!.port} points to a plain-http token service at 127.0.0.1:${plain.port}; refusing to fetch a token outside https\n`,
    );
  });
});

describe.skipIf(!certificate)('scan --insecure of an https registry', () => {
  it('says the registry speaks TLS when it hangs up on plain http', async () => {
    tls!.handler = (_req, res) => {
      res.writeHead(500);
      res.end();
    };
    const r = await scan(`127.0.0.1:${tls!.port}/app:v1`, ['--insecure']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `portcullis: 127.0.0.1:${tls!.port}/app:v1: 127.0.0.1:${tls!.port} closed the connection on a plain-http request (other side closed); if it is an https registry, leave out --insecure\n`,
    );
  });
});

const toolsMissing = registryToolsMissing();

describe.skipIf(!certificate || !!toolsMissing || !HAVE_FIXTURES)('scan of CNCF distribution over https', () => {
  let registry: RunningRegistry;
  beforeAll(async () => {
    registry = await startDockerRegistry(certificate);
    await registry.push(`oci-archive:${fixtureImage('alpine-3.20.tar')}`, 'library/alpine:3.20.3');
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
  });

  it('reads the image when the CA is trusted', async () => {
    const r = await scan(`${registry.host}/library/alpine:3.20.3`);
    expect(r.code, r.stderr).toBe(0);
  });

  it('with --insecure, says the registry speaks https rather than "answered 400 Bad Request"', async () => {
    const r = await scan(`${registry.host}/library/alpine:3.20.3`, ['--insecure']);
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `portcullis: ${registry.host}/library/alpine:3.20.3: ${registry.host} speaks https (it answered plain http with 400); leave out --insecure\n`,
    );
  });
});
