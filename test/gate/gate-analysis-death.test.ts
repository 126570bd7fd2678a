import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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
const PASSWORD = 'analysis-death-pw';
const POLICY = 'version: 1\ndefaultAction: ignore\nrules:\n  - id: no-secrets\n    action: fail\n    secret: {}\n';

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

/** The processes `pid` started (Linux). */
const childrenOf = (pid: number): number[] =>
  readFileSync(`/proc/${pid}/task/${pid}/children`, 'utf8')
    .split(' ')
    .filter((s) => s !== '')
    .map(Number);

/** CPU time a process has used, in clock ticks (Linux: utime + stime of /proc/PID/stat). */
const cpuTicks = (pid: number): number => {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return Number(fields[11]) + Number(fields[12]);
};

describe.skipIf(!BUILT || process.platform !== 'linux')(`an analysis process that dies on an image${BUILT ? '' : ' [SKIPPED: run npm run build first]'}`, () => {
  it.each([
    ['SIGKILL', 'is not started on that image a third time: the image gets an error verdict that names the death, not "still being analysed" for ever'],
    ['SIGTERM', 'is started again when it was stopped (Ctrl-C or systemd reach it with the server): the image is not refused for it'],
  ] as const)('killed with %s %s', async (signal, _what) => {
    const root = await mkdtemp(join(tmpdir(), 'portcullis-analysis-death-'));
    const data = join(root, 'data');
    writeFileSync(join(root, 'policy.yaml'), POLICY);
    const port = await freePort();
    const server = spawn(process.execPath, [BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--policy', join(root, 'policy.yaml')], {
      env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: PASSWORD, PORTCULLIS_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(server);
    let log = '';
    server.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    const meta = await SqliteRegistryMetadata.open(data);
    try {
      const client = PushClient.basic(`http://127.0.0.1:${port}`, 'admin', PASSWORD);
      await waitFor('serve to answer', async () => {
        if (server.exitCode !== null) throw new Error(`serve exited ${server.exitCode}: ${log}`);
        return client.call('GET', '/v2/').then((r) => r.status === 200, () => false);
      });
      // Long enough to analyse (about a second) that the process can be killed in the middle, as
      // the kernel's OOM killer or V8's heap limit would end it.
      const files = Array.from({ length: 150_000 }, (_, i) => ({ name: `srv/d${i % 100}/f${i}`, content: '' }));
      const img = await pushTestImage(client, 'team/app', 'v1', [files]);
      const job = async () => (await meta.jobs.list({ kind: 'analyse' })).find((j) => (j.payload as { digest: string }).digest === img.digest);
      for (const attempt of [1, 2]) {
        const [pid, before] = await waitFor(`attempt ${attempt} to run`, async () => {
          const j = await job();
          const pid = childrenOf(server.pid!)[0];
          return j?.state === 'running' && j.attempts === attempt && pid !== undefined && ([pid, cpuTicks(pid)] as const);
        });
        // The job is marked running before its request reaches the process, which the server
        // starts ahead of time and which sits idle until then: killed in that gap, the request
        // would go to a new process and succeed. Kill it once it is seen working.
        await waitFor(`attempt ${attempt}'s analysis to be under way`, async () => cpuTicks(pid) - before >= 5);
        process.kill(pid, signal);
      }
      const verdict = await waitFor('a verdict', async () => meta.artifacts.getVerdict('team/app', img.digest), 30_000);
      if (signal === 'SIGTERM') {
        // Analysed on the third attempt; the policy has nothing against an image of empty files.
        expect([verdict.status, (await job())?.attempts]).toEqual(['pass', 3]);
        return;
      }
      expect(verdict.status).toBe('error');
      expect((await job())?.attempts).toBe(2);
      const pull = await client.call('GET', `/v2/team/app/manifests/${img.digest}`, undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });
      // An administrator may pull a refused image; the report says why it is refused.
      expect(pull.status).toBe(200);
      const report = await client.call('GET', `/api/v1/repositories/team/app/artifacts/${img.digest}`);
      expect(report.body.toString()).toMatch(/the analysis process exited \(signal SIGKILL\) on both attempts to analyse it; out of memory, most likely/);
    } finally {
      await meta.close();
      server.kill('SIGTERM');
      await new Promise((r) => (server.exitCode !== null ? r(null) : server.once('exit', r)));
      await rm(root, { recursive: true, force: true });
    }
  }, 90_000);
});
