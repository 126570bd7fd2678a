import { spawn, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SqliteRegistryMetadata } from '../../src/store/index.js';
import { freePort } from '../helpers/docker-registry.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { PushClient } from '../registry/push-client.js';
import { pushTestImage, waitFor } from './gate-harness.js';

const BIN = join(REPO_ROOT, 'bin', 'portcullis.js');
const BUILT = existsSync(join(REPO_ROOT, 'dist', 'bundle', 'cli.js')) || existsSync(join(REPO_ROOT, 'dist', 'cli', 'index.js'));
const PASSWORD = 'gate-crash-pw';
// Secrets and checks only: no vulnerability database is needed to reach a verdict.
const POLICY = 'version: 1\ndefaultAction: ignore\nrules:\n  - id: no-secrets\n    action: fail\n    secret: {}\n';

// A random token of the right shape, so no allowlist of documented examples can hide it.
const TOKEN = `ghp_${randomBytes(27).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 36)}`;

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

async function serve(data: string, port: number): Promise<{ child: ChildProcess; client: PushClient }> {
  const child = spawn(process.execPath, [BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--policy', join(data, '..', 'policy.yaml')], {
    env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: PASSWORD, PORTCULLIS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.push(child);
  let log = '';
  child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const client = PushClient.basic(`http://127.0.0.1:${port}`, 'admin', PASSWORD);
  await waitFor(`serve to answer (${log})`, async () => {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${log}`);
    return client.call('GET', '/v2/').then(
      (r) => r.status === 200,
      () => false,
    );
  });
  return { child, client };
}

describe.skipIf(!BUILT)(`the gate across a crash${BUILT ? '' : ' [SKIPPED: run npm run build first]'}`, () => {
  it('finishes an analysis that a SIGKILL interrupted once the server is back, and the image gets its verdict', async () => {
    const root = await mkdtemp(join(tmpdir(), 'portcullis-gate-crash-'));
    const data = join(root, 'data');
    writeFileSync(join(root, 'policy.yaml'), POLICY);
    try {
      const port = await freePort();
      const first = await serve(data, port);
      // Many small files: long enough to be caught in the middle of the analysis.
      const files = Array.from({ length: 30_000 }, (_, i) => ({ name: `srv/data/f${i}.txt`, content: `line ${i}\n` }));
      const img = await pushTestImage(first.client, 'team/app', 'v1', [files, [{ name: 'app/.env', content: `GITHUB_TOKEN=${TOKEN}\n` }]]);
      const meta = await SqliteRegistryMetadata.open(data);
      try {
        await waitFor('the analysis to start', async () => (await meta.jobs.list({ kind: 'analyse' })).some((j) => j.state === 'running'), 20_000);
        first.child.kill('SIGKILL');
        await new Promise((r) => first.child.once('exit', r));
        expect(await meta.artifacts.getVerdict('team/app', img.digest)).toBeNull();
        expect((await meta.jobs.list({ kind: 'analyse' }))[0]?.state).toBe('running');

        const second = await serve(data, port);
        // The dead worker's lease (15 s) runs out, the restarted server claims the job and finishes it.
        const verdict = await waitFor('the verdict after the restart', async () => meta.artifacts.getVerdict('team/app', img.digest), 45_000);
        expect(verdict.status).toBe('fail');
        const job = await waitFor('the job to finish', async () => (await meta.jobs.list({ kind: 'analyse' })).find((j) => j.state === 'done'), 10_000);
        expect(job.attempts).toBe(2);
        second.child.kill('SIGTERM');
        await new Promise((r) => second.child.once('exit', r));
      } finally {
        await meta.close();
      }
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  }, 90_000);
});
