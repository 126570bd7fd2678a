/* global fetch */
// Starts the two registries under test as child processes on free loopback ports, each with its own
// data folder, and reads their CPU time and peak RSS from /proc.
import { spawn, spawnSync } from 'node:child_process';
import { mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { join } from 'node:path';

export const DISTRIBUTION_BIN = '/usr/bin/docker-registry';
export const PASSWORD = 'bench-admin-pw';

const live = new Set();

/** Kills every server still running (synchronously: safe in an 'exit' handler). */
export function killAll() {
  for (const s of live) {
    try {
      process.kill(s.pid, 'SIGKILL');
    } catch {
      // already gone
    }
    rmSync(s.dir, { recursive: true, force: true });
  }
  live.clear();
}

export function freePort() {
  return new Promise((res, rej) => {
    const s = createServer();
    s.once('error', rej);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address();
      s.close(() => res(port));
    });
  });
}

const CLK_TCK = Number(spawnSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).stdout.trim()) || 100;

/** utime + stime of a process, in milliseconds. */
export function cpuMs(pid) {
  const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
  return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLK_TCK;
}

function statusKb(pid, key) {
  const m = new RegExp(`${key}:\\s+(\\d+) kB`).exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  return m ? Number(m[1]) : 0;
}

/** Peak resident set size since the process started (VmHWM), in MB (10^6 bytes). */
export const peakRssMb = (pid) => (statusKb(pid, 'VmHWM') * 1024) / 1e6;
export const rssMb = (pid) => (statusKb(pid, 'VmRSS') * 1024) / 1e6;

async function waitReady(server, child, expectStatus, getLog) {
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`${server.name} exited ${child.exitCode}: ${getLog()}`);
    try {
      const res = await fetch(`${server.base}/v2/`);
      await res.arrayBuffer();
      if (res.status === expectStatus) return;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`${server.name} did not answer /v2/ within 30 s: ${getLog()}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function wrap(name, child, dir, host, { auth, creds }) {
  let log = '';
  child.stdout.on('data', (d) => {
    if (log.length < 200_000) log += d;
  });
  child.stderr.on('data', (d) => {
    if (log.length < 200_000) log += d;
  });
  const server = {
    name,
    pid: child.pid,
    dir,
    host,
    base: `http://${host}`,
    auth,
    log: () => log,
    /** skopeo flags for pushing to / pulling from this server. */
    destFlags: auth
      ? ['--dest-creds', creds, '--dest-tls-verify=false']
      : ['--dest-no-creds', '--dest-tls-verify=false'],
    srcFlags: auth
      ? ['--src-creds', creds, '--src-tls-verify=false']
      : ['--src-no-creds', '--src-tls-verify=false'],
    async stop() {
      live.delete(server);
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((r) => child.once('exit', r));
        child.kill('SIGTERM');
        await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
        if (child.exitCode === null && child.signalCode === null) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
  live.add(server);
  return server;
}

/**
 * Creates project `bench` and a pull+push robot for it with the checkout's own CLI, before the server
 * starts; returns the robot's `name:secret`, as a CI job would be given it.
 */
function benchRobot(root, dataDir) {
  const cli = (args) => {
    const r = spawnSync(process.execPath, [join(root, 'bin/portcullis.js'), ...args, '--data', dataDir], {
      encoding: 'utf8',
      env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'warn' },
    });
    if (r.status !== 0) throw new Error(`portcullis ${args.join(' ')} failed (${r.status}): ${r.stderr}`);
    return r.stdout;
  };
  cli(['project', 'create', 'bench']);
  const out = cli(['robot', 'create', 'bench', 'ci', '--actions', 'pull,push']);
  const name = /^name: (\S+)$/m.exec(out)?.[1];
  const secret = /^secret: (\S+)$/m.exec(out)?.[1];
  if (!name || !secret) throw new Error(`portcullis robot create printed no secret: ${out}`);
  return `${name}:${secret}`;
}

/**
 * `node bin/portcullis.js serve` with token auth (Basic accepted), log level warn. skopeo logs in
 * as a robot of project `bench` (`login: 'robot'`, what CI uses) or as `admin` with its password
 * (`login: 'password'`, a person: the first login of each server pays the password's scrypt).
 */
export async function startPortcullis(root, runDir, { cpuProfDir, login = 'robot' } = {}) {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const dir = join(runDir, `portcullis-${port}`);
  mkdirSync(dir, { recursive: true });
  const creds = login === 'password' ? `admin:${PASSWORD}` : benchRobot(root, join(dir, 'data'));
  const nodeArgs = cpuProfDir ? ['--cpu-prof', '--cpu-prof-dir', cpuProfDir] : [];
  const child = spawn(
    process.execPath,
    [...nodeArgs, join(root, 'bin/portcullis.js'), 'serve', '--listen', host, '--data', join(dir, 'data'), '--no-gate'],
    {
      env: {
        ...process.env,
        PORTCULLIS_ADMIN_PASSWORD: PASSWORD,
        PORTCULLIS_LOG_LEVEL: process.env.PORTCULLIS_LOG_LEVEL ?? 'warn',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    },
  );
  const server = wrap('portcullis', child, dir, host, { auth: true, creds });
  try {
    await waitReady(server, child, 401, server.log);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** CNCF distribution (Debian's docker-registry): filesystem storage, no auth, access log off, level warn. */
export async function startDistribution(runDir) {
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  const dir = join(runDir, `distribution-${port}`);
  mkdirSync(dir, { recursive: true });
  const config = join(dir, 'config.yml');
  writeFileSync(
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
      `  addr: ${host}`,
      '',
    ].join('\n'),
  );
  const child = spawn(DISTRIBUTION_BIN, ['serve', config], { stdio: ['ignore', 'pipe', 'pipe'] });
  const server = wrap('distribution', child, dir, host, { auth: false });
  try {
    await waitReady(server, child, 200, server.log);
  } catch (err) {
    await server.stop();
    throw err;
  }
  return server;
}

/** A pull-scoped Bearer token for `repo` from Portcullis's /token endpoint (Basic credentials). */
export async function bearerToken(server, repo, actions = 'pull') {
  const url = `${server.base}/token?service=${encodeURIComponent(server.host)}&scope=${encodeURIComponent(`repository:${repo}:${actions}`)}`;
  const res = await fetch(url, {
    headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
  });
  const body = await res.json();
  if (res.status !== 200 || typeof body.token !== 'string')
    throw new Error(`token request failed (${res.status}): ${JSON.stringify(body)}`);
  return body.token;
}
