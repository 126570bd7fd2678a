import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from '../helpers/docker-registry.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { PushClient } from '../registry/push-client.js';
import { pushTestImage, waitFor } from './gate-harness.js';

const BIN = join(REPO_ROOT, 'bin', 'portcullis.js');
const BUILT = existsSync(join(REPO_ROOT, 'dist', 'bundle', 'cli.js')) || existsSync(join(REPO_ROOT, 'dist', 'cli', 'index.js'));
const ADMIN_PW = 'policy-file-admin-pw';
const DEV_PW = 'policy-file-dev-pw';
// Secrets only: no vulnerability database is needed for a verdict.
const POLICY = 'version: 1\ndefaultAction: ignore\nrules:\n  - id: no-secrets\n    action: fail\n    secret: {}\n';
// Line 6 is indented one space short: a YAML error on that line.
const BROKEN = 'version: 1\ndefaultAction: ignore\nrules:\n  - id: no-secrets\n    action: fail\n   secret: {}\n';
const ACCEPTED = `${POLICY}exceptions:\n  - id: no-secrets\n    scope: global\n    reason: the token is revoked\n`;
const TOKEN = `ghp_${randomBytes(27).toString('base64').replace(/[^A-Za-z0-9]/g, 'x').slice(0, 36)}`;

const children: ChildProcess[] = [];
afterAll(() => {
  for (const c of children) if (c.exitCode === null) c.kill('SIGKILL');
});

const cli = (args: string[], input?: string) => {
  const r = spawnSync(process.execPath, [BIN, ...args], { input, encoding: 'utf8', env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: ADMIN_PW } });
  if (r.status !== 0) throw new Error(`portcullis ${args.join(' ')}: ${r.stderr}`);
};

/** The message of a registry error body. */
const messageOf = (body: Buffer) => (JSON.parse(body.toString()) as { errors: { message: string }[] }).errors[0]!.message;
const policyErrorLines = (log: string) => log.split('\n').filter((l) => l.includes('the policy file changed but cannot be loaded'));

describe.skipIf(!BUILT)(`serve with its policy file edited while it runs${BUILT ? '' : ' [SKIPPED: run npm run build first]'}`, () => {
  it('keeps the last policy that loaded through a broken edit, a deleted file and a folder, says so once per change, and takes the next good file', async () => {
    const root = await mkdtemp(join(tmpdir(), 'portcullis-policy-file-'));
    const data = join(root, 'data');
    const policyFile = join(root, 'policy.yaml');
    writeFileSync(policyFile, POLICY);
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--policy', policyFile], {
      env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: ADMIN_PW, PORTCULLIS_LOG_LEVEL: 'info' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    children.push(child);
    let log = '';
    child.stdout?.on('data', (d: Buffer) => (log += d.toString()));
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      const admin = PushClient.basic(base, 'admin', ADMIN_PW);
      const dev = PushClient.basic(base, 'dev', DEV_PW);
      await waitFor('serve to answer', async () => {
        if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${log}`);
        return admin.call('GET', '/v2/').then((r) => r.status === 200, () => false);
      });
      const clean = await pushTestImage(admin, 'team/app', 'clean', [[{ name: 'etc/hostname', content: 'app\n' }]]);
      const leaky = await pushTestImage(admin, 'team/app', 'leaky', [[{ name: 'app/.env', content: `GITHUB_TOKEN=${TOKEN}\n` }]]);
      cli(['user', 'add', '--data', data, '--password-stdin', 'dev'], `${DEV_PW}\n`);
      cli(['project', 'member', '--data', data, 'team', 'dev', 'reader']);
      // A non-administrator: an administrator's pull of a refused image is let through.
      const pull = (digest: string) => dev.call('GET', `/v2/team/app/manifests/${digest}`, undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });
      await waitFor('both verdicts', async () => (await pull(clean.digest)).status === 200 && (await pull(leaky.digest)).status === 403);
      const asBefore = async () => {
        for (let i = 0; i < 3; i++) {
          expect((await pull(clean.digest)).status).toBe(200);
          const refused = await pull(leaky.digest);
          expect(refused.status).toBe(403);
          expect(messageOf(refused.body)).toContain('[no-secrets]');
        }
      };
      // Past the re-read interval (1 s), so the server has looked at the file again.
      const settle = () => new Promise((r) => setTimeout(r, 1300));

      writeFileSync(policyFile, BROKEN);
      await settle();
      await asBefore();
      expect(policyErrorLines(log)).toHaveLength(1);
      expect(policyErrorLines(log)[0]).toContain(`${policyFile}:6`);
      const shown = JSON.parse((await admin.call('GET', '/api/v1/policy')).body.toString()) as { rejectedChange: { message: string; since: string } | null };
      expect(shown.rejectedChange?.message).toContain(`${policyFile}:6`);
      // Others learn that a change was refused, not the lines of the file.
      const toDev = JSON.parse((await dev.call('GET', '/api/v1/policy')).body.toString()) as { rejectedChange: { message: string } | null };
      expect(toDev.rejectedChange?.message).not.toContain(policyFile);

      rmSync(policyFile);
      await settle();
      await asBefore();
      mkdirSync(policyFile);
      await settle();
      await asBefore();
      expect(policyErrorLines(log)).toHaveLength(3);
      rmSync(policyFile, { recursive: true });

      // An editor's save: a new file renamed over the old one.
      writeFileSync(`${policyFile}.tmp`, ACCEPTED);
      renameSync(`${policyFile}.tmp`, policyFile);
      await waitFor('the exception to apply', async () => (await pull(leaky.digest)).status === 200, 5000);
      expect((await pull(clean.digest)).status).toBe(200);
      expect(log).toContain('gate: policy re-read after a change to its file');
      const after = JSON.parse((await admin.call('GET', '/api/v1/policy')).body.toString()) as { rejectedChange: unknown };
      expect(after.rejectedChange).toBeNull();
      // No verdict went to error and back while the file was broken.
      expect(log).not.toMatch(/"to":"error"/);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      await rm(root, { recursive: true, force: true });
    }
  }, 60_000);

  it('follows the policy file that `policy:` in the config names after the config is edited to name another one', async () => {
    const root = await mkdtemp(join(tmpdir(), 'portcullis-policy-config-'));
    const data = join(root, 'data');
    writeFileSync(join(root, 'a.yaml'), POLICY);
    writeFileSync(join(root, 'b.yaml'), POLICY);
    const configFile = join(root, 'portcullis.yaml');
    writeFileSync(configFile, 'policy: a.yaml\n');
    const port = await freePort();
    const child = spawn(process.execPath, [BIN, 'serve', '--listen', `127.0.0.1:${port}`, '--data', data, '--config', configFile], {
      env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: ADMIN_PW, PORTCULLIS_LOG_LEVEL: 'warn' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.push(child);
    let log = '';
    child.stderr?.on('data', (d: Buffer) => (log += d.toString()));
    try {
      const base = `http://127.0.0.1:${port}`;
      const admin = PushClient.basic(base, 'admin', ADMIN_PW);
      const dev = PushClient.basic(base, 'dev', DEV_PW);
      await waitFor('serve to answer', async () => {
        if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${log}`);
        return admin.call('GET', '/v2/').then((r) => r.status === 200, () => false);
      });
      const leaky = await pushTestImage(admin, 'team/app', 'leaky', [[{ name: 'app/.env', content: `GITHUB_TOKEN=${TOKEN}\n` }]]);
      cli(['user', 'add', '--data', data, '--password-stdin', 'dev'], `${DEV_PW}\n`);
      cli(['project', 'member', '--data', data, 'team', 'dev', 'reader']);
      const pull = () => dev.call('GET', `/v2/team/app/manifests/${leaky.digest}`, undefined, { accept: 'application/vnd.oci.image.manifest.v1+json' });
      await waitFor('the refusal', async () => (await pull()).status === 403 && messageOf((await pull()).body).includes('[no-secrets]'));

      writeFileSync(configFile, 'policy: b.yaml\n');
      await waitFor('b.yaml in force', async () => {
        const shown = JSON.parse((await admin.call('GET', '/api/v1/policy')).body.toString()) as { source: string };
        return shown.source === join(root, 'b.yaml');
      }, 5000);
      writeFileSync(join(root, 'b.yaml'), ACCEPTED);
      await waitFor('the exception written in b.yaml to apply', async () => (await pull()).status === 200, 5000);
    } finally {
      child.kill('SIGTERM');
      await new Promise((r) => (child.exitCode !== null ? r(null) : child.once('exit', r)));
      await rm(root, { recursive: true, force: true });
    }
  }, 60_000);
});
