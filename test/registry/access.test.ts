import { createHash } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type RunningServer } from '../../src/cli/serve-command.js';
import { hashPassword, hashRobotSecret } from '../../src/registry/index.js';
import { SqliteRegistryMetadata } from '../../src/store/index.js';
import { freePort, onPath, run } from '../helpers/docker-registry.js';

const ADMIN_PW = 'access-admin-pw';
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;

let data: string;
let server: RunningServer;
let base: string;
let meta: SqliteRegistryMetadata;
const pw: Record<string, string> = {};
let robotSecret = '';

/** A minimal image (config + one layer), pushed monolithically; returns the PUT status and digest. */
async function pushImage(repo: string, tag: string, auth: Record<string, string>, salt = repo): Promise<{ status: number; digest: string }> {
  const config = Buffer.from(JSON.stringify({ architecture: 'amd64', os: 'linux', salt }));
  const layer = Buffer.from(`layer of ${salt}`);
  for (const blob of [config, layer]) {
    const r = await fetch(`${base}/v2/${repo}/blobs/uploads/?digest=${sha(blob)}`, { method: 'POST', headers: auth, body: blob });
    if (r.status !== 201) return { status: r.status, digest: '' };
  }
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(layer), size: layer.length }],
    }),
  );
  const r = await fetch(`${base}/v2/${repo}/manifests/${tag}`, {
    method: 'PUT',
    headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
    body: manifest,
  });
  return { status: r.status, digest: sha(manifest) };
}

const as = (user: string) => ({ authorization: basic(user, pw[user]!) });
const admin = () => ({ authorization: basic('admin', ADMIN_PW) });
const pull = (repo: string, ref: string, headers: Record<string, string> = {}) => fetch(`${base}/v2/${repo}/manifests/${ref}`, { headers });
const del = (repo: string, ref: string, headers: Record<string, string>) => fetch(`${base}/v2/${repo}/manifests/${ref}`, { method: 'DELETE', headers });

async function token(scope: string, auth?: Record<string, string>): Promise<{ status: number; token?: string; access?: { name: string; actions: string[] }[] }> {
  const r = await fetch(`${base}/token?service=${encodeURIComponent(new URL(base).host)}&scope=${encodeURIComponent(scope)}`, { headers: auth ?? {} });
  if (r.status !== 200) return { status: r.status };
  const body = (await r.json()) as { token: string };
  const payload = JSON.parse(Buffer.from(body.token.split('.')[1]!, 'base64url').toString()) as { access: { name: string; actions: string[] }[] };
  return { status: 200, token: body.token, access: payload.access };
}

async function addUser(name: string, opts: { canCreate?: boolean } = {}) {
  pw[name] = `${name}-pw`;
  await meta.putUser({ name, passwordHash: await hashPassword(pw[name]!), admin: false });
  if (opts.canCreate) await meta.setUserCanCreateProjects(name, true);
}

beforeAll(async () => {
  data = await mkdtemp(join(tmpdir(), 'portcullis-access-'));
  // A fixed port: the token service name (and realm) come from the listen address.
  server = await startServe({ listen: `127.0.0.1:${await freePort()}`, data, gate: false }, { PORTCULLIS_ADMIN_PASSWORD: ADMIN_PW, PORTCULLIS_LOG_LEVEL: 'silent' });
  base = `http://${server.address}`;
  // A second connection to the same file, as the CLI would use while the server runs.
  meta = await SqliteRegistryMetadata.open(data);
  for (const u of ['reader', 'dev', 'maint', 'outsider']) await addUser(u);
  await addUser('creator', { canCreate: true });
  // The admin's push creates the project `team`.
  expect((await pushImage('team/app', 'v1', admin())).status).toBe(201);
  await meta.putProjectMember('team', 'reader', 'reader');
  await meta.putProjectMember('team', 'dev', 'developer');
  await meta.putProjectMember('team', 'maint', 'maintainer');
});

afterAll(async () => {
  await meta?.close();
  // A refused upload whose body the server never read can keep its connection busy until the
  // keep-alive timeout (about 70 s); the registry's close waits for it. Not this suite's subject,
  // so the wait is bounded here (the worker process ends anyway).
  await Promise.race([server?.close(), new Promise((res) => setTimeout(res, 10_000).unref())]);
  await rm(data, { recursive: true, force: true });
});

describe('access control: projects and roles', () => {
  it('creates a missing project, private, with the pushing admin as project admin', async () => {
    expect(await meta.getProject('team')).toMatchObject({ name: 'team', public: false, createdBy: 'admin' });
    expect(await meta.listProjectMembers('team')).toContainEqual({ project: 'team', user: 'admin', role: 'admin' });
  });

  it('applies the role matrix: reader pulls only, developer pushes, maintainer deletes', async () => {
    expect((await pull('team/app', 'v1', as('reader'))).status).toBe(200);
    expect((await pushImage('team/app', 'reader', as('reader'))).status).toBe(403);
    expect((await pull('team/app', 'v1', as('outsider'))).status).toBe(403);

    const pushed = await pushImage('team/app', 'dev', as('dev'), 'dev-image');
    expect(pushed.status).toBe(201);
    expect((await del('team/app', pushed.digest, as('dev'))).status).toBe(403);
    expect((await del('team/app', pushed.digest, as('maint'))).status).toBe(202);
    expect((await pull('team/app', pushed.digest, as('reader'))).status).toBe(404);
  });

  it('lets a can_create_projects user create a project by pushing, and nobody else', async () => {
    expect((await pushImage('fresh/app', 'v1', as('creator'))).status).toBe(201);
    expect(await meta.listProjectMembers('fresh')).toEqual([{ project: 'fresh', user: 'creator', role: 'admin' }]);
    expect((await pushImage('other/app', 'v1', as('dev'))).status).toBe(403);
    expect(await meta.getProject('other')).toBeNull();
  });

  it('creates the project through the token endpoint too, and grants pull with push', async () => {
    const t = await token('repository:viatoken/app:pull,push', admin());
    expect(t.access).toEqual([{ type: 'repository', name: 'viatoken/app', actions: ['pull', 'push'] }]);
    expect(await meta.getProject('viatoken')).toMatchObject({ public: false });
  });

  it('grants nothing for a scope name no route can serve, and creates no project from it', async () => {
    for (const name of ['localhost:5000/foo', '[::1]:80/zzz', 'registry.example.com:443/team/app']) {
      const t = await token(`repository:${name}:pull,push`, admin());
      expect(t.status, name).toBe(200);
      expect(t.access ?? [], name).toEqual([]);
    }
    const names = (await meta.listProjects()).map((p) => p.name);
    expect(names.filter((n) => /[:[A-Z]/.test(n))).toEqual([]);
  });

  it('filters the catalog to what the caller may pull, with Basic and with a token', async () => {
    const list = async (auth: Record<string, string>) =>
      ((await (await fetch(`${base}/v2/_catalog`, { headers: auth })).json()) as { repositories: string[] }).repositories;
    expect(await list(as('reader'))).toEqual(['team/app']);
    expect(await list(as('outsider'))).toEqual([]);
    expect(await list(admin())).toEqual(expect.arrayContaining(['team/app', 'fresh/app']));
    const t = await token('registry:catalog:*', as('reader'));
    expect(await list({ authorization: `Bearer ${t.token}` })).toEqual(['team/app']);
  });

  it("reads only the caller's projects: no chosen last or n tells anything about other repositories", async () => {
    // 6,000 repositories the reader may not see, all before `team/app`. A listing that examined
    // them and stopped after 5,000 answered differently depending on where `last` fell, which the
    // review used to recover their names one character at a time.
    for (let i = 0; i < 6000; i++) await meta.ensureRepository(`secret-${String(i).padStart(4, '0')}/svc`);
    for (const q of ['?n=1', '?n=1&last=secret-2999/svc', '?n=1&last=secret-4999%2fsvc', '?n=6000&last=s', '?n=10000', '?n=1&last=a']) {
      const r = await fetch(`${base}/v2/_catalog${q}`, { headers: as('reader') });
      expect(r.status, q).toBe(200);
      expect(((await r.json()) as { repositories: string[] }).repositories, q).toEqual(['team/app']);
      expect(r.headers.get('link'), q).toBeNull();
    }
    // The administrator, who may see everything, still pages through all of it.
    const all = await fetch(`${base}/v2/_catalog?n=10000`, { headers: admin() });
    expect(((await all.json()) as { repositories: string[] }).repositories.filter((n) => n.startsWith('secret-'))).toHaveLength(6000);
  }, 60_000);
});

describe('access control: anonymous and public projects', () => {
  beforeAll(async () => {
    expect((await pushImage('pub/app', 'v1', admin())).status).toBe(201);
    await meta.setProjectPublic('pub', true);
  });

  it('lets anonymous pull from a public project through an anonymous token, and never push', async () => {
    const t = await token('repository:pub/app:pull,push');
    expect(t.access).toEqual([{ type: 'repository', name: 'pub/app', actions: ['pull'] }]);
    expect((await pull('pub/app', 'v1', { authorization: `Bearer ${t.token}` })).status).toBe(200);
    // Authenticated non-members may pull public projects as well.
    expect((await pull('pub/app', 'v1', as('outsider'))).status).toBe(200);
  });

  it('refuses anonymous pull from a private project', async () => {
    const t = await token('repository:team/app:pull');
    expect(t.access).toEqual([]);
    const r = await pull('team/app', 'v1', { authorization: `Bearer ${t.token}` });
    expect(r.status).toBe(401);
    expect((await pull('team/app', 'v1')).status).toBe(401);
  });
});

describe('access control: robots', () => {
  beforeAll(async () => {
    robotSecret = 'robot-secret-value-1234567890';
    const hash = await hashPassword(robotSecret);
    await meta.createRobot({ name: 'robot$team+ci', project: 'team', secretHash: hash, actions: ['pull'], expiresAt: null, createdBy: 'test' });
    await meta.createRobot({ name: 'robot$team+old', project: 'team', secretHash: hash, actions: ['pull', 'push'], expiresAt: new Date(Date.now() - 60_000).toISOString(), createdBy: 'test' });
    await meta.createRobot({ name: 'robot$team+gone', project: 'team', secretHash: hash, actions: ['pull'], expiresAt: null, createdBy: 'test' });
  });
  const robot = (name: string) => ({ authorization: basic(name, robotSecret) });

  it('a pull-only robot can pull and cannot push, with Basic and with tokens', async () => {
    expect((await pull('team/app', 'v1', robot('robot$team+ci'))).status).toBe(200);
    expect((await pushImage('team/app', 'robot', robot('robot$team+ci'))).status).toBe(403);
    // Its project only.
    expect((await pull('fresh/app', 'v1', robot('robot$team+ci'))).status).toBe(403);
    const t = await token('repository:team/app:pull,push', robot('robot$team+ci'));
    expect(t.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${t.token}` })).status).toBe(200);
  });

  it('says which action is missing and the command that grants it, for robots and users', async () => {
    const denial = async (repo: string, method: 'POST' | 'GET', headers: Record<string, string>) => {
      const path = method === 'POST' ? `/v2/${repo}/blobs/uploads/` : `/v2/${repo}/manifests/v1`;
      const r = await fetch(`${base}${path}`, { method, headers });
      expect(r.status).toBe(403);
      return ((await r.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    };
    // A push asks for pull and push: name only the one the caller lacks.
    const robotPush = await denial('team/app', 'POST', robot('robot$team+ci'));
    expect(robotPush.code).toBe('DENIED');
    expect(robotPush.message).toContain('robot$team+ci may not push team/app (it may pull)');
    expect(robotPush.message).toContain('portcullis robot create team NAME --actions pull,push');
    const elsewhere = await denial('fresh/app', 'GET', robot('robot$team+ci'));
    expect(elsewhere.message).toContain('robot$team+ci may not pull fresh/app;');
    expect(elsewhere.message).toContain('only in its own project (team)');
    const readerPush = await denial('team/app', 'POST', as('reader'));
    expect(readerPush.message).toContain('reader may not push team/app (it may pull)');
    expect(readerPush.message).toContain('portcullis project member team reader developer');
    const outsider = await denial('team/app', 'GET', as('outsider'));
    expect(outsider.message).toContain('outsider may not pull team/app;');
    expect(outsider.message).toContain('needs the reader role in project team');
    // The hint is the same for a project that does not exist: it tells nothing about which do.
    const missing = await denial('nosuchproject/app', 'GET', as('outsider'));
    expect(missing.message.replaceAll('nosuchproject', 'team')).toBe(outsider.message);
  });

  it('a robot may pull from a public project, as anyone may, and nothing more', async () => {
    expect((await pull('pub/app', 'v1', robot('robot$team+ci'))).status).toBe(200);
    expect((await pushImage('pub/app', 'robot', robot('robot$team+ci'))).status).toBe(403);
    const t = await token('repository:pub/app:pull,push', robot('robot$team+ci'));
    expect(t.access).toEqual([{ type: 'repository', name: 'pub/app', actions: ['pull'] }]);
    expect((await pull('pub/app', 'v1', { authorization: `Bearer ${t.token}` })).status).toBe(200);
    // An expired robot is refused there too rather than taken for anonymous.
    expect((await pull('pub/app', 'v1', robot('robot$team+old'))).status).toBe(401);
  });

  it('a refreshed secret works at once and the old one stops, cached logins and tokens included', async () => {
    await meta.createRobot({ name: 'robot$team+rot', project: 'team', secretHash: hashRobotSecret('old-secret-0123456789'), actions: ['pull'], expiresAt: null, createdBy: 'test' });
    const old = { authorization: basic('robot$team+rot', 'old-secret-0123456789') };
    expect((await pull('team/app', 'v1', old)).status).toBe(200);
    const oldToken = await token('repository:team/app:pull', old);
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${oldToken.token}` })).status).toBe(200);
    await meta.refreshRobotSecret('robot$team+rot', hashRobotSecret('new-secret-0123456789'));
    expect((await pull('team/app', 'v1', old)).status).toBe(401);
    // A token issued with the old secret ends with it, not when it expires: it names no one now.
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${oldToken.token}` })).status).toBe(401);
    const fresh = { authorization: basic('robot$team+rot', 'new-secret-0123456789') };
    expect((await pull('team/app', 'v1', fresh)).status).toBe(200);
    const newToken = await token('repository:team/app:pull', fresh);
    await meta.deleteRobot('robot$team+rot');
    expect((await pull('team/app', 'v1', fresh)).status).toBe(401);
    // Deleted and made again under the same name: the earlier robot's token does not come back.
    await meta.createRobot({ name: 'robot$team+rot', project: 'team', secretHash: hashRobotSecret('third-secret-0123456789'), actions: ['pull'], expiresAt: null, createdBy: 'test' });
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${newToken.token}` })).status).toBe(401);
    expect((await pull('team/app', 'v1', { authorization: basic('robot$team+rot', 'third-secret-0123456789') })).status).toBe(200);
  });

  it("a user's new password ends the tokens the old one got; a user removed and added again does not inherit them", async () => {
    await addUser('rotating');
    await meta.putProjectMember('team', 'rotating', 'reader');
    const oldToken = await token('repository:team/app:pull', as('rotating'));
    expect(oldToken.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull'] }]);
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${oldToken.token}` })).status).toBe(200);
    await meta.putUser({ name: 'rotating', passwordHash: await hashPassword('rotating-new-pw'), admin: false });
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${oldToken.token}` })).status).toBe(401);
    const newToken = await token('repository:team/app:pull', { authorization: basic('rotating', 'rotating-new-pw') });
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${newToken.token}` })).status).toBe(200);

    await meta.deleteUser('rotating');
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${newToken.token}` })).status).toBe(401);
    // Same name, same password, new account: the earlier account's token stays dead.
    await meta.putUser({ name: 'rotating', passwordHash: await hashPassword('rotating-new-pw'), admin: false });
    await meta.putProjectMember('team', 'rotating', 'reader');
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${newToken.token}` })).status).toBe(401);
    expect((await pull('team/app', 'v1', { authorization: basic('rotating', 'rotating-new-pw') })).status).toBe(200);
  });

  it("an admin's token ends with the password it was got with, on routes that only ask who the caller is too", async () => {
    await addUser('second-admin');
    await meta.setUserAdmin('second-admin', true);
    const t = await token('repository:team/app:pull', as('second-admin'));
    const bearer = { authorization: `Bearer ${t.token}` };
    const get = (path: string) => fetch(`${base}${path}`, { headers: bearer }).then((r) => r.status);
    for (const path of ['/v2/', '/api/v1/audit', '/api/v1/projects', '/api/v1/events']) expect(await get(path), path).toBe(200);
    await meta.putUser({ name: 'second-admin', passwordHash: await hashPassword('second-admin-new-pw'), admin: true });
    // The audit log (admins only) and every other route: the old token identifies no one now.
    for (const path of ['/v2/', '/api/v1/audit', '/api/v1/projects', '/api/v1/events', '/v2/_catalog']) expect(await get(path), path).toBe(401);
    const r = await fetch(`${base}/api/v1/audit`, { headers: bearer });
    expect(r.headers.get('www-authenticate')).toMatch(/^Bearer realm=/);
  });

  it("a token's grants end with the membership or role they came from", async () => {
    await addUser('member');
    await meta.putProjectMember('team', 'member', 'developer');
    const t = await token('repository:team/app:pull,push', as('member'));
    expect(t.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    const bearer = { authorization: `Bearer ${t.token}` };
    const startPush = () => fetch(`${base}/v2/team/app/blobs/uploads/`, { method: 'POST', headers: bearer });
    expect((await pull('team/app', 'v1', bearer)).status).toBe(200);
    expect((await startPush()).status).toBe(202);
    // Lowered to reader: the token still pulls, no longer pushes.
    await meta.putProjectMember('team', 'member', 'reader');
    expect((await pull('team/app', 'v1', bearer)).status).toBe(200);
    expect([401, 403]).toContain((await startPush()).status);
    // Removed from the project: nothing.
    await meta.removeProjectMember('team', 'member');
    expect([401, 403]).toContain((await pull('team/app', 'v1', bearer)).status);
  });

  it('refuses an expired robot', async () => {
    expect((await pull('team/app', 'v1', robot('robot$team+old'))).status).toBe(401);
    expect((await token('repository:team/app:pull', robot('robot$team+old'))).status).toBe(401);
  });

  it('refuses a revoked robot from the next request on, tokens included', async () => {
    const t = await token('repository:team/app:pull', robot('robot$team+gone'));
    expect((await pull('team/app', 'v1', robot('robot$team+gone'))).status).toBe(200);
    await meta.revokeRobot('robot$team+gone');
    expect((await pull('team/app', 'v1', robot('robot$team+gone'))).status).toBe(401);
    expect((await pull('team/app', 'v1', { authorization: `Bearer ${t.token}` })).status).toBe(401);
    expect((await token('repository:team/app:pull', robot('robot$team+gone'))).status).toBe(401);
  });

  const skopeoSkip = onPath('skopeo') ? undefined : 'skopeo not installed (apt-get install skopeo)';
  it.skipIf(skopeoSkip !== undefined)(`skopeo with --creds robot$team+ci works for pull, not push${skopeoSkip ? ` [SKIPPED: ${skopeoSkip}]` : ''}`, async () => {
    const host = new URL(base).host;
    const creds = `robot$team+ci:${robotSecret}`;
    const inspect = await run('skopeo', ['inspect', '--raw', '--tls-verify=false', '--creds', creds, `docker://${host}/team/app:v1`]);
    expect(inspect.code, inspect.output).toBe(0);
    const work = await mkdtemp(join(tmpdir(), 'portcullis-access-skopeo-'));
    try {
      const out = join(work, 'layout');
      const copy = await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--src-tls-verify=false', '--src-creds', creds, `docker://${host}/team/app:v1`, `oci:${out}:v1`]);
      expect(copy.code, copy.output).toBe(0);
      const push = await run('skopeo', ['--insecure-policy', 'copy', '--quiet', '--dest-tls-verify=false', '--dest-creds', creds, `oci:${out}:v1`, `docker://${host}/team/app:robot-push`]);
      expect(push.code).not.toBe(0);
    } finally {
      await rm(work, { recursive: true, force: true });
    }
  });
});

describe('access control: failed logins and the audit log', () => {
  it('rate-limits failed Basic logins on /v2 with the limiter /token uses', async () => {
    await addUser('victim');
    await meta.putProjectMember('team', 'victim', 'reader');
    const bad = { authorization: basic('victim', 'wrong') };
    for (let i = 0; i < 5; i++) expect((await pull('team/app', 'v1', bad)).status).toBe(401);
    // Locked now: even the right password is refused, on /v2, the API and /token alike, with 429
    // and when to come back (a 401 would tell the client its password is wrong).
    const locked = await pull('team/app', 'v1', as('victim'));
    expect(locked.status).toBe(429);
    expect(Number(locked.headers.get('retry-after'))).toBeGreaterThan(0);
    expect(((await locked.json()) as { errors: { code: string }[] }).errors[0]!.code).toBe('TOOMANYREQUESTS');
    const api = await fetch(`${base}/api/v1/projects`, { headers: as('victim') });
    expect(api.status).toBe(429);
    expect(Number(api.headers.get('retry-after'))).toBeGreaterThan(0);
    expect((await token('repository:team/app:pull', as('victim'))).status).toBe(429);
    // Other users from the same address are not affected.
    expect((await pull('team/app', 'v1', as('reader'))).status).toBe(200);
  });

  it('answers a burst of parallel guesses for one user with 429 past five checks, and keeps serving others', async () => {
    await addUser('guessed');
    await addUser('bystander');
    const tokenFor = (user: string, password: string) =>
      fetch(`${base}/token?service=${encodeURIComponent(new URL(base).host)}&scope=repository:team/app:pull`, {
        headers: { authorization: basic(user, password) },
      });
    // Thirty different wrong passwords at once from one address: the limiter counts failures only
    // once they are known, so before this all thirty reached scrypt.
    const guesses = Array.from({ length: 30 }, (_, i) => tokenFor('guessed', `guess-${i}`));
    // Another user logging in during the burst still gets in.
    const other = await fetch(`${base}/v2/`, { headers: as('bystander') });
    const answers = await Promise.all(guesses);
    expect(other.status).toBe(200);
    const statuses = answers.map((r) => r.status);
    // Five checks may be under way at once, and the limiter stops new ones once five failed: a
    // request is checked only while fewer than five are failed and fewer than five under way, so
    // nine at most (how many depends on how the requests interleave with the checks).
    const checked = statuses.filter((s) => s === 401).length;
    expect(checked).toBeGreaterThanOrEqual(5);
    expect(checked).toBeLessThanOrEqual(9);
    expect(statuses.filter((s) => s === 429)).toHaveLength(30 - checked);
    // Refused while checks were under way (not by the limiter after five failures): Retry-After 1.
    const refused = await Promise.all(
      answers.filter((r) => r.status === 429).map(async (r) => ({ retryAfter: r.headers.get('retry-after'), body: (await r.json()) as { errors: { code: string; message: string }[] } })),
    );
    expect(refused.every((r) => r.body.errors[0]?.code === 'TOOMANYREQUESTS')).toBe(true);
    expect(refused.some((r) => r.retryAfter === '1' && /being checked at once/.test(r.body.errors[0]?.message ?? ''))).toBe(true);
    // The same over Basic on /v2.
    const basicBurst = await Promise.all(Array.from({ length: 12 }, (_, i) => fetch(`${base}/v2/`, { headers: { authorization: basic('bystander', `wrong-${i}`) } })));
    expect(basicBurst.filter((r) => r.status === 401).length).toBeLessThanOrEqual(9);
    expect(basicBurst.filter((r) => r.status === 429).length).toBeGreaterThanOrEqual(3);
    // Parallel requests with the right password share one check and are never told to wait.
    await addUser('parallel');
    const same = await Promise.all(Array.from({ length: 20 }, () => fetch(`${base}/v2/`, { headers: as('parallel') })));
    expect(same.map((r) => r.status)).toEqual(Array.from({ length: 20 }, () => 200));
  });

  it('records pushes, pulls, deletes, logins, failed logins and tokens', async () => {
    // The writer batches on a short timer; wait for the last events of the previous tests to land.
    let rows = await meta.listAudit({ limit: 1000 });
    for (let i = 0; i < 50 && !rows.some((r) => r.action === 'login_failed' && r.principal === 'victim' && r.detail?.startsWith('locked out')); i++) {
      await new Promise((res) => setTimeout(res, 100));
      rows = await meta.listAudit({ limit: 1000 });
    }
    const find = (pred: (r: (typeof rows)[number]) => boolean) => rows.find(pred);
    expect(find((r) => r.action === 'push' && r.principal === 'admin' && r.repository === 'team/app' && r.reference === 'v1' && r.outcome === 'success')).toMatchObject({
      clientIp: '127.0.0.1',
      digest: expect.stringMatching(/^sha256:/),
    });
    expect(find((r) => r.action === 'delete' && r.principal === 'dev' && r.outcome === 'denied')).toBeDefined();
    expect(find((r) => r.action === 'pull' && r.principal === 'reader' && r.outcome === 'success')).toBeDefined();
    expect(find((r) => r.action === 'delete' && r.principal === 'maint' && r.outcome === 'success')).toBeDefined();
    expect(find((r) => r.action === 'login' && r.principal === 'reader' && r.detail === 'via=basic')).toMatchObject({ clientIp: '127.0.0.1' });
    expect(find((r) => r.action === 'login' && r.principal === 'robot$team+ci' && r.detail === 'via=token')).toMatchObject({ clientIp: '127.0.0.1' });
    expect(find((r) => r.action === 'login_failed' && r.principal === 'victim')).toBeDefined();
    // The attempts refused unchecked while the user was locked out are there too: three of them
    // (/v2, the API, /token) within a minute, so one row.
    expect(rows.filter((r) => r.principal === 'victim' && r.detail?.startsWith('locked out'))).toHaveLength(1);
    expect(find((r) => r.action === 'login_failed' && r.principal === 'victim' && (r.detail ?? '').startsWith('locked out: too many failed logins'))).toMatchObject({
      clientIp: '127.0.0.1',
    });
    expect(find((r) => r.action === 'login_failed' && r.principal === 'robot$team+gone' && /revoked/.test(r.detail ?? ''))).toBeDefined();
    expect(find((r) => r.action === 'token' && r.principal === 'anonymous' && r.repository === 'pub/app')).toMatchObject({
      detail: 'requested=pull,push granted=pull',
      clientIp: '127.0.0.1',
    });
    // Nothing resembling a credential is ever stored.
    const all = JSON.stringify(rows);
    expect(all).not.toContain(robotSecret);
    expect(all).not.toContain(ADMIN_PW);
  });
});
