// podman and buildah against the real `portcullis serve` (a child process on a free loopback port,
// token auth on): pull a fixture in from its oci-archive, push it to the registry, delete it
// locally, pull it back and compare. podman and buildah recompress layers on push, so the pushed
// manifest is not the fixture's; what must hold is: the digest push reports (--digestfile) is the
// digest of the manifest the registry serves and of the image pulled back, and the image ID (the
// config digest) is the source's.
//
// Storage is vfs in a temp folder (--root/--runroot), with temp registries.conf, containers.conf,
// storage.conf, policy.json and auth file, so nothing on the host is read or written.
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freePort, onPath } from '../helpers/docker-registry.js';
import { HAVE_FIXTURES, REPO_ROOT, fixtureImage } from '../helpers/fixtures.js';

const PASSWORD = 'podman-test-pw';
const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const sha256 = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

interface Sandbox {
  dir: string;
  env: NodeJS.ProcessEnv;
  policy: string;
  authfile: string;
}

/** Temp config files so podman/buildah never read the host's registries, policy or auth. */
function makeSandbox(dir: string): Sandbox {
  mkdirSync(join(dir, 'tmp'), { recursive: true });
  const file = (name: string, text: string) => {
    const p = join(dir, name);
    writeFileSync(p, text);
    return p;
  };
  const registries = file(
    'registries.conf',
    'unqualified-search-registries = []\nshort-name-mode = "disabled"\n',
  );
  const containers = file(
    'containers.conf',
    '[engine]\ncgroup_manager = "cgroupfs"\nevents_logger = "file"\n',
  );
  const storage = file(
    'storage.conf',
    `[storage]\ndriver = "vfs"\nrunroot = "${join(dir, 'run')}"\ngraphroot = "${join(dir, 'root')}"\n`,
  );
  const policy = file('policy.json', '{"default":[{"type":"insecureAcceptAnything"}]}\n');
  const authfile = file('auth.json', '{"auths":{}}\n');
  return {
    dir,
    policy,
    authfile,
    env: {
      ...process.env,
      CONTAINERS_REGISTRIES_CONF: registries,
      CONTAINERS_CONF: containers,
      CONTAINERS_STORAGE_CONF: storage,
      REGISTRY_AUTH_FILE: authfile,
      TMPDIR: join(dir, 'tmp'),
    },
  };
}

/** Global flags: vfs storage in the sandbox; podman also gets the sandbox-friendly engine flags. */
function globalFlags(tool: 'podman' | 'buildah', sb: Sandbox, store: string): string[] {
  const common = [
    '--root',
    join(sb.dir, store, 'root'),
    '--runroot',
    join(sb.dir, store, 'run'),
    '--storage-driver',
    'vfs',
  ];
  return tool === 'podman' ? [...common, '--cgroup-manager=cgroupfs', '--events-backend=file'] : common;
}

/** Why `tool` cannot run here (not installed, or fails even on `images` against empty temp storage). */
function toolUnusable(tool: 'podman' | 'buildah'): string | undefined {
  if (!onPath(tool)) return `${tool} not installed (apt-get install ${tool})`;
  const dir = mkdtempSync(join(tmpdir(), `portcullis-${tool}-probe-`));
  try {
    const sb = makeSandbox(dir);
    const r = spawnSync(tool, [...globalFlags(tool, sb, 'probe'), 'images'], {
      env: sb.env,
      encoding: 'utf8',
      timeout: 60_000,
    });
    if (r.status !== 0)
      return `\`${tool} images\` on vfs temp storage fails here: ${(r.stderr || String(r.error)).trim().split('\n').slice(-1)[0]}`;
    return undefined;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function exec(
  cmd: string,
  args: string[],
  env: NodeJS.ProcessEnv,
): Promise<{ code: number | null; stdout: string; output: string }> {
  return new Promise((res) => {
    const child = spawn(cmd, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('error', (err) => res({ code: -1, stdout, output: `${stdout}${stderr}${String(err)}` }));
    child.on('close', (code) =>
      res({ code, stdout, output: `$ ${cmd} ${args.join(' ')}\n${stdout}${stderr}` }),
    );
  });
}

interface Server {
  host: string;
  log(): string;
  stop(): Promise<void>;
}

/** `node bin/portcullis.js serve` in a child process with a temp data folder; resolves once /v2/ answers 401. */
async function startServer(): Promise<Server> {
  if (!existsSync(join(REPO_ROOT, 'dist'))) throw new Error('dist/ is missing: run `npm run build` first');
  const data = await mkdtemp(join(tmpdir(), 'portcullis-podman-data-'));
  const port = await freePort();
  const host = `127.0.0.1:${port}`;
  let log = '';
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', host, '--data', data, '--no-gate'], {
    env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: PASSWORD, PORTCULLIS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout.on('data', (d: Buffer) => (log += d.toString()));
  child.stderr.on('data', (d: Buffer) => (log += d.toString()));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    }
    await rm(data, { recursive: true, force: true });
  };
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) {
      await stop();
      throw new Error(`portcullis serve exited ${child.exitCode}: ${log}`);
    }
    try {
      const res = await fetch(`http://${host}/v2/`);
      await res.arrayBuffer();
      if (res.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) {
      await stop();
      throw new Error(`portcullis serve did not answer /v2/ within 30 s: ${log}`);
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  return { host, log: () => log, stop };
}

/** The manifest the registry serves for repo:ref (Basic auth), and its digest. */
async function servedManifest(
  host: string,
  repo: string,
  ref: string,
): Promise<{ digest: string; header: string | null; config: string }> {
  const res = await fetch(`http://${host}/v2/${repo}/manifests/${ref}`, {
    headers: {
      authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`,
      accept:
        'application/vnd.oci.image.manifest.v1+json, application/vnd.docker.distribution.manifest.v2+json',
    },
  });
  const body = Buffer.from(await res.arrayBuffer());
  expect(res.status, body.toString()).toBe(200);
  const manifest = JSON.parse(body.toString()) as { config: { digest: string } };
  return {
    digest: sha256(body),
    header: res.headers.get('docker-content-digest'),
    config: manifest.config.digest,
  };
}

const FIXTURE_NAMES = ['alpine-3.20.tar', 'debian-12-minbase.tar', 'node-app.tar', 'alpine-3.11.tar'];
const fixturesMissing = !HAVE_FIXTURES
  ? '../shared/fixtures is absent'
  : FIXTURE_NAMES.find((f) => !existsSync(fixtureImage(f)))
    ? `fixture ${FIXTURE_NAMES.find((f) => !existsSync(fixtureImage(f)))} is absent`
    : undefined;
const podmanSkip = fixturesMissing ?? toolUnusable('podman');
const buildahSkip = fixturesMissing ?? toolUnusable('buildah');

/**
 * The round trip both tools make: load a fixture archive into the local store, push it with
 * --digestfile, check what the server stores, empty the local store (so the pull really downloads
 * every layer again) and pull it back.
 */
async function pushThenPullBack(
  tool: (args: string[]) => ReturnType<typeof exec>,
  sb: Sandbox,
  reg: Server,
  remote: string[],
  file: string,
  repo: string,
) {
        const pull = await tool([
          'pull',
          '--signature-policy',
          sb.policy,
          `oci-archive:${fixtureImage(file)}`,
        ]);
        expect(pull.code, pull.output).toBe(0);
        const sourceId = pull.stdout.trim().split('\n').pop()!;
        expect(sourceId).toMatch(/^[0-9a-f]{64}$/);

        const digestFile = join(sb.dir, `${repo.replace('/', '-')}.digest`);
        const ref = `${reg.host}/${repo}:v1`;
        const push = await tool([
          'push',
          '--signature-policy',
          sb.policy,
          ...remote,
          '--digestfile',
          digestFile,
          sourceId,
          `docker://${ref}`,
        ]);
        expect(push.code, `${push.output}\n--- server log ---\n${reg.log()}`).toBe(0);
        const pushed = (await readFile(digestFile, 'utf8')).trim();
        expect(pushed).toMatch(/^sha256:[0-9a-f]{64}$/);

        const served = await servedManifest(reg.host, repo, 'v1');
        expect(served.digest).toBe(pushed);
        expect(served.header).toBe(pushed);
        expect(served.config).toBe(`sha256:${sourceId}`);

        // Empty the local store so the pull really downloads every layer again.
        const rmi = await tool(['rmi', '--all', '--force']);
        expect(rmi.code, rmi.output).toBe(0);
        expect((await tool(['images', '--quiet'])).stdout.trim()).toBe('');

        const back = await tool(['pull', '--signature-policy', sb.policy, ...remote, ref]);
        expect(back.code, `${back.output}\n--- server log ---\n${reg.log()}`).toBe(0);
  return { sourceId, pushed, ref, back };
}

describe.skipIf(podmanSkip !== undefined)(
  `podman against portcullis serve${podmanSkip ? ` [SKIPPED: ${podmanSkip}]` : ''}`,
  () => {
    let reg: Server;
    let sb: Sandbox;
    const podman = (args: string[]) =>
      exec('podman', [...globalFlags('podman', sb, 'store'), ...args], sb.env);
    const remote = ['--tls-verify=false', '--creds', `admin:${PASSWORD}`];

    beforeAll(async () => {
      reg = await startServer();
      sb = makeSandbox(await mkdtemp(join(tmpdir(), 'portcullis-podman-')));
    });
    afterAll(async () => {
      await reg?.stop();
      if (sb) await rm(sb.dir, { recursive: true, force: true });
    });

    for (const [file, repo] of [
      ['alpine-3.20.tar', 'library/alpine'],
      ['debian-12-minbase.tar', 'library/debian'],
    ] as const) {
      it(`pushes ${file} and pulls back the same manifest and image ID`, { timeout: 300_000 }, async () => {
        const { sourceId, pushed, ref } = await pushThenPullBack(podman, sb, reg, remote, file, repo);
        const inspect = await podman(['image', 'inspect', '--format', '{{.ID}} {{.Digest}}', ref]);
        expect(inspect.code, inspect.output).toBe(0);
        expect(inspect.stdout.trim()).toBe(`${sourceId} ${pushed}`);

        // And by digest, from a clean store.
        expect((await podman(['rmi', '--all', '--force'])).code).toBe(0);
        const byDigest = await podman([
          'pull',
          '--signature-policy',
          sb.policy,
          ...remote,
          `${reg.host}/${repo}@${pushed}`,
        ]);
        expect(byDigest.code, byDigest.output).toBe(0);
        expect(byDigest.stdout.trim().split('\n').pop()).toBe(sourceId);
        expect((await podman(['rmi', '--all', '--force'])).code).toBe(0);
      });
    }

    it('logs in with the token flow and refuses a wrong password', { timeout: 120_000 }, async () => {
      const ok = await podman([
        'login',
        '--tls-verify=false',
        '--authfile',
        sb.authfile,
        '--username',
        'admin',
        '--password',
        PASSWORD,
        reg.host,
      ]);
      expect(ok.code, ok.output).toBe(0);
      const auth = JSON.parse(await readFile(sb.authfile, 'utf8')) as { auths: Record<string, unknown> };
      expect(Object.keys(auth.auths)).toContain(reg.host);
      // With the stored login (no --creds) the earlier push is visible.
      const viaLogin = await podman([
        'pull',
        '--signature-policy',
        sb.policy,
        '--tls-verify=false',
        '--authfile',
        sb.authfile,
        `${reg.host}/library/alpine:v1`,
      ]);
      expect(viaLogin.code, viaLogin.output).toBe(0);
      const wrong = await podman([
        'login',
        '--tls-verify=false',
        '--authfile',
        join(sb.dir, 'wrong.json'),
        '--username',
        'admin',
        '--password',
        'not-it',
        reg.host,
      ]);
      expect(wrong.code).not.toBe(0);
      expect(wrong.output).toMatch(/unauthori[sz]ed|invalid username\/password|401/i);
      const logout = await podman(['logout', '--authfile', sb.authfile, reg.host]);
      expect(logout.code, logout.output).toBe(0);
      expect((await podman(['rmi', '--all', '--force'])).code).toBe(0);
    });

    it('refuses an anonymous push', { timeout: 120_000 }, async () => {
      const pull = await podman([
        'pull',
        '--signature-policy',
        sb.policy,
        `oci-archive:${fixtureImage('alpine-3.11.tar')}`,
      ]);
      expect(pull.code, pull.output).toBe(0);
      const id = pull.stdout.trim().split('\n').pop()!;
      await writeFile(join(sb.dir, 'empty-auth.json'), '{"auths":{}}\n');
      const anon = await podman([
        'push',
        '--signature-policy',
        sb.policy,
        '--tls-verify=false',
        '--authfile',
        join(sb.dir, 'empty-auth.json'),
        id,
        `docker://${reg.host}/library/anon:1`,
      ]);
      expect(anon.code).not.toBe(0);
      expect(anon.output).toMatch(/unauthori[sz]ed|authentication required|401/i);
      const res = await fetch(`http://${reg.host}/v2/library/anon/tags/list`, {
        headers: { authorization: `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}` },
      });
      await res.arrayBuffer();
      expect(res.status).toBe(404);
    });
  },
);

describe.skipIf(buildahSkip !== undefined)(
  `buildah against portcullis serve${buildahSkip ? ` [SKIPPED: ${buildahSkip}]` : ''}`,
  () => {
    let reg: Server;
    let sb: Sandbox;
    const buildah = (args: string[]) =>
      exec('buildah', [...globalFlags('buildah', sb, 'store'), ...args], sb.env);
    const remote = ['--tls-verify=false', '--creds', `admin:${PASSWORD}`];

    beforeAll(async () => {
      reg = await startServer();
      sb = makeSandbox(await mkdtemp(join(tmpdir(), 'portcullis-buildah-')));
    });
    afterAll(async () => {
      await reg?.stop();
      if (sb) await rm(sb.dir, { recursive: true, force: true });
    });

    for (const [file, repo] of [
      ['node-app.tar', 'apps/node'],
      ['alpine-3.11.tar', 'library/alpine-old'],
    ] as const) {
      it(`pushes ${file} and pulls back the same manifest and image ID`, { timeout: 300_000 }, async () => {
        const { sourceId, pushed, ref, back } = await pushThenPullBack(buildah, sb, reg, remote, file, repo);
        expect(back.stdout.trim().split('\n').pop()).toBe(sourceId);
        const inspect = await buildah([
          'inspect',
          '--type',
          'image',
          '--format',
          '{{.FromImageID}} {{.FromImageDigest}}',
          ref,
        ]);
        expect(inspect.code, inspect.output).toBe(0);
        expect(inspect.stdout.trim()).toBe(`${sourceId} ${pushed}`);

        // A working container from the pulled image: its root filesystem is really there.
        const from = await buildah(['from', '--signature-policy', sb.policy, '--pull=never', ref]);
        expect(from.code, from.output).toBe(0);
        const ctr = from.stdout.trim().split('\n').pop()!;
        const mount = await buildah(['mount', ctr]);
        expect(mount.code, mount.output).toBe(0);
        const rootfs = mount.stdout.trim();
        expect(existsSync(join(rootfs, 'etc', 'os-release'))).toBe(true);
        await buildah(['umount', ctr]);
        expect((await buildah(['rm', ctr])).code).toBe(0);
        expect((await buildah(['rmi', '--all', '--force'])).code).toBe(0);
      });
    }
  },
);
