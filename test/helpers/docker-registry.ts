import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

export const REGISTRY_BIN = '/usr/bin/docker-registry';

export function onPath(bin: string): boolean {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

/** Why registry tests cannot run here, or undefined when docker-registry and skopeo are present. */
export function registryToolsMissing(): string | undefined {
  if (!existsSync(REGISTRY_BIN)) return `${REGISTRY_BIN} not installed (apt-get install docker-registry)`;
  if (!onPath('skopeo')) return 'skopeo not installed (apt-get install skopeo)';
  return undefined;
}

export function freePort(): Promise<number> {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => res(port));
    });
  });
}

export function run(cmd: string, args: string[], input?: string): Promise<{ code: number | null; stdout: string; stderr: string; output: string }> {
  return new Promise((res) => {
    const child = spawn(cmd, args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => res({ code: -1, stdout, stderr: String(err), output: String(err) }));
    child.on('close', (code) => res({ code, stdout, stderr, output: stdout + stderr }));
    child.stdin.end(input ?? '');
  });
}

export interface RunningRegistry {
  port: number;
  host: string;
  log(): string;
  /** skopeo copy into the registry (no TLS, digests preserved). */
  /** skopeo copy into the registry; `all` copies every platform of an index. */
  push(source: string, repoAndTag: string, opts?: { all?: boolean }): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts CNCF distribution 2.8 on a free loopback port with filesystem storage in a temp folder;
 * over https with `tls` (a key and certificate in PEM, such as loopbackCertificate() makes).
 */
export async function startDockerRegistry(tls?: { key: string; cert: string }): Promise<RunningRegistry> {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-distribution-'));
  const port = await freePort();
  const config = join(dir, 'config.yml');
  if (tls) {
    await writeFile(join(dir, 'key.pem'), tls.key);
    await writeFile(join(dir, 'cert.pem'), tls.cert);
  }
  await writeFile(
    config,
    [
      'version: 0.1',
      'log:',
      '  level: warn',
      '  accesslog:',
      '    disabled: true',
      'storage:',
      '  filesystem:',
      `    rootdirectory: ${join(dir, 'data')}`,
      'http:',
      `  addr: 127.0.0.1:${port}`,
      ...(tls ? ['  tls:', `    certificate: ${join(dir, 'cert.pem')}`, `    key: ${join(dir, 'key.pem')}`] : []),
      '',
    ].join('\n'),
  );
  let log = '';
  const registry: ChildProcess = spawn(REGISTRY_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  registry.stdout?.on('data', (d: Buffer) => (log += d.toString()));
  registry.stderr?.on('data', (d: Buffer) => (log += d.toString()));
  const stop = async () => {
    if (registry.exitCode === null) {
      const exited = new Promise((r) => registry.once('exit', r));
      registry.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (registry.exitCode === null) registry.kill('SIGKILL');
    }
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 20_000;
  for (;;) {
    if (registry.exitCode !== null) {
      await stop();
      throw new Error(`docker-registry exited ${registry.exitCode}: ${log}`);
    }
    try {
      // Over TLS, Go answers this plain-http probe with 400: listening, which is all we ask.
      const res = await fetch(`http://127.0.0.1:${port}/v2/`);
      await res.arrayBuffer();
      if (res.status === (tls ? 400 : 200)) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`docker-registry did not answer /v2/ within 20 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const host = `127.0.0.1:${port}`;
  return {
    port,
    host,
    log: () => log,
    async push(source, repoAndTag, opts = {}) {
      // --insecure-policy: the test must not depend on the host's /etc/containers/policy.json.
      const all = opts.all ? ['--all'] : [];
      const copy = await run('skopeo', ['--insecure-policy', 'copy', '--quiet', ...all, '--preserve-digests', '--dest-tls-verify=false', source, `docker://${host}/${repoAndTag}`]);
      if (copy.code !== 0) throw new Error(`skopeo copy failed (${copy.code}): ${copy.output}`);
    },
    stop,
  };
}
