// `portcullis scan` against a local registry that misbehaves: what the user sees on stderr.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/fixtures.js';

const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-hostile-cli-'));

let handler: RequestListener = (_req, res) => res.end();
let server: Server;
let port: number;

beforeAll(async () => {
  server = createServer((req, res) => handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as AddressInfo).port;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
  rmSync(tmp, { recursive: true, force: true });
});

function scan(env: Record<string, string> = {}): Promise<{ code: number | null; stderr: string; ms: number }> {
  const started = Date.now();
  const args = [CLI, 'scan', `127.0.0.1:${port}/app:v1`, '--insecure', '--no-vulns', '--no-cache'];
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
    handler = () => {}; // never answers
    const r = await scan({ PORTCULLIS_REGISTRY_TIMEOUT: '0.3' });
    expect(r.code).toBe(2);
    expect(r.stderr).toBe(
      `portcullis: 127.0.0.1:${port}/app:v1: no answer from 127.0.0.1:${port} within 300 ms for manifest v1\n`,
    );
    expect(r.ms).toBeLessThan(4000);
  });

  it('refuses a PORTCULLIS_REGISTRY_TIMEOUT that is not a number of seconds', async () => {
    const r = await scan({ PORTCULLIS_REGISTRY_TIMEOUT: '30s' });
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^portcullis: PORTCULLIS_REGISTRY_TIMEOUT must be a number of seconds .*"30s"\n$/);
  });
});
