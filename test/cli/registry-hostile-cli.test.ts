// `portcullis scan` against a local registry that misbehaves: what the user sees on stderr.
import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startScriptedServer, type ScriptedServer } from '../helpers/scripted-server.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/fixtures.js';

const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-hostile-cli-'));

let scripted: ScriptedServer;

beforeAll(async () => {
  scripted = await startScriptedServer();
});

afterAll(async () => {
  await scripted.close();
  rmSync(tmp, { recursive: true, force: true });
});

function scan(
  env: Record<string, string> = {},
  extra: string[] = [],
): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const args = [CLI, 'scan', `127.0.0.1:${scripted.port}/app:v1`, '--insecure', '--no-vulns', '--no-cache', ...extra];
  args.push('--format', 'json', '--data', join(tmp, 'data'));
  return new Promise((resolve) => {
    const child = spawn('node', args, { stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, ...env } });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('close', (code) => resolve({ code, stderr, ms: Date.now() - started }));
  });
}

describe('scan against a hostile registry', () => {
  it('takes the registry timeout from PORTCULLIS_REGISTRY_TIMEOUT', async () => {
    scripted.handler = () => {}; // never answers
    const r = await scan({ PORTCULLIS_REGISTRY_TIMEOUT: '0.3' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `portcullis: 127.0.0.1:${scripted.port}/app:v1: no answer from 127.0.0.1:${scripted.port} within 300 ms for manifest v1\n`,
    );
    expect(r.ms).toBeLessThan(4000);
  });

  it('refuses a PORTCULLIS_REGISTRY_TIMEOUT that is not a number of seconds', async () => {
    const r = await scan({ PORTCULLIS_REGISTRY_TIMEOUT: '30s' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^portcullis: PORTCULLIS_REGISTRY_TIMEOUT must be a number of seconds .*"30s"\n$/);
  });

  it('shows escape sequences from the registry as text, in a warning and in the error line', async () => {
    const sha = (b: Buffer): string => `sha256:${createHash('sha256').update(b).digest('hex')}`;
    // A single-platform image whose config names a platform with terminal escapes in it.
    const config = Buffer.from(
      JSON.stringify({ os: 'linux\x1b[2J\x1b]0;pwned\x07', architecture: 'amd64', rootfs: { type: 'layers', diff_ids: [] } }),
    );
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
        layers: [],
      }),
    );
    scripted.handler = (req, res) => {
      const body = req.url?.includes('/blobs/') ? config : manifest;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json', 'content-length': body.length });
      res.end(body);
    };
    const r = await scan({}, ['--platform', 'linux/arm64']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toMatch(/[\x00-\x09\x0b-\x1f\x7f]/);
    expect(r.stderr).toContain('single-platform image for linux\\x1b[2J\\x1b]0;pwned\\x07/amd64, not linux/arm64');

    // The same platform in an index that offers nothing else: the error line lists it.
    const index = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: sha(manifest), size: manifest.length, platform: { os: 'linux\x1b[2J', architecture: 'amd64' } },
        ],
      }),
    );
    scripted.handler = (_req, res) => {
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.index.v1+json', 'content-length': index.length });
      res.end(index);
    };
    const e = await scan();
    expect(e.code).toBe(2);
    expect(e.stderr).toBe(
      `portcullis: 127.0.0.1:${scripted.port}/app:v1: no image for platform linux/amd64 (available: linux\\x1b[2J/amd64); use --platform\n`,
    );
  });
});
