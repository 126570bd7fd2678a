import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Ajv2020 } from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import Fastify from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { apiRoutes } from '../../src/api/index.js';
import { DocumentRenderer, RenderLimiter, RenderedCache } from '../../src/api/render-cache.js';
import { startServe, type RunningServer } from '../../src/cli/serve-command.js';
import { VulnDbHandle, type Gate } from '../../src/gate/index.js';
import { hashPassword, type RegistryAuth } from '../../src/registry/index.js';
import { SqliteRegistryMetadata, type RegistryMetadata } from '../../src/store/index.js';
import { importOsv } from '../../src/vulndb/index.js';
import { pushTestImage, waitFor, type PushedImage } from '../gate/gate-harness.js';
import { freePort } from '../helpers/docker-registry.js';
import { PushClient } from '../registry/push-client.js';

const TOKEN = `ghp_${randomBytes(27)
  .toString('base64')
  .replace(/[^A-Za-z0-9]/g, 'x')
  .slice(0, 36)}`;
const ROBOT_SECRET = 'robot-secret-for-the-api-test';

const POLICY = `version: 1
name: api-test
defaultAction: ignore
rules:
  - id: fixable
    action: fail
    vulnerability: { severity: any, fixAvailable: true }
  - id: no-secrets
    action: fail
    secret: {}
exceptions:
  - id: ALPINE-CVE-2026-2000
    scope: { project: pub }
    reason: musl is not reachable in the public library
    author: sec@example.com
    expires: 2099-01-01
  - id: ALPINE-CVE-2026-2000
    scope: { repository: other/old }
    reason: long gone
    expires: 2020-01-01
projects:
  team:
    defaultAction: warn
    exceptions:
      - id: no-secrets
        reason: test fixtures hold fake tokens
        expires: 2099-06-30
`;

const RECORDS = [
  {
    id: 'ALPINE-CVE-2026-2000',
    modified: '2026-01-01T00:00:00Z',
    aliases: ['CVE-2026-2000'],
    affected: [
      {
        package: { ecosystem: 'Alpine:v3.20', name: 'musl' },
        ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '1.2.5-r1' }] }],
      },
    ],
  },
];

const ALPINE = (musl: string) => [
  { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' },
  { name: 'lib/apk/db/installed', content: `P:musl\nV:${musl}\no:musl\n\nP:zlib\nV:1.3.1-r1\no:zlib\n` },
];

interface Doc {
  paths: Record<
    string,
    {
      get: {
        responses: Record<string, { content?: Record<string, { schema: unknown }> }>;
        parameters?: { name: string; in: string }[];
        security: unknown[];
      };
    }
  >;
  components: { schemas: Record<string, unknown> };
}

let root: string;
let server: RunningServer;
let base: string;
let doc: Doc;
let ajv: Ajv2020;
const images: Record<string, PushedImage> = {};

const basic = (user: string, pw: string) => `Basic ${Buffer.from(`${user}:${pw}`).toString('base64')}`;
const AS = {
  admin: basic('admin', 'admin-pw'),
  dev: basic('dev', 'dev-pw'),
  outsider: basic('outsider', 'outsider-pw'),
  lead: basic('lead', 'lead-pw'),
  robot: basic('robot$team+ci', ROBOT_SECRET),
};

async function get(path: string, authorization?: string) {
  const res = await fetch(`${base}${path}`, authorization ? { headers: { authorization } } : {});
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text);
  } catch {
    // not JSON
  }
  return {
    status: res.status,
    headers: res.headers,
    body: body as Record<string, unknown> & { error?: { code: string; message: string } },
  };
}

/** Checks a response against the schema the OpenAPI document declares for `template` and its status. */
function expectDeclared(template: string, status: number, body: unknown, type = 'application/json') {
  const op = doc.paths[template]?.get;
  expect(op, `${template} is documented`).toBeDefined();
  const schema = op!.responses[String(status)]?.content?.[type]?.schema;
  expect(schema, `${template} declares ${status} ${type}`).toBeDefined();
  const validate = ajv.compile(schema as object);
  const ok = validate(body);
  expect(ok, `${template} ${status}: ${ajv.errorsText(validate.errors)}`).toBe(true);
}

beforeAll(async () => {
  root = await mkdtemp(join(tmpdir(), 'portcullis-api-'));
  const data = join(root, 'data');
  mkdirSync(data);
  const policyFile = join(root, 'policy.yaml');
  writeFileSync(policyFile, POLICY);
  const config = join(root, 'portcullis.yaml');
  writeFileSync(config, 'serve: {}\n');
  const osv = join(root, 'osv');
  mkdirSync(osv);
  RECORDS.forEach((r, i) => writeFileSync(join(osv, `r${i}.json`), JSON.stringify(r)));
  await importOsv(data, [osv]);

  const meta = await SqliteRegistryMetadata.open(data);
  try {
    await meta.putUser({ name: 'admin', passwordHash: await hashPassword('admin-pw'), admin: true });
    for (const u of ['dev', 'outsider', 'lead'])
      await meta.putUser({ name: u, passwordHash: await hashPassword(`${u}-pw`), admin: false });
    await meta.createProject({ name: 'team', public: false, createdBy: 'admin' }, 'lead');
    await meta.createProject({ name: 'pub', public: true, createdBy: 'admin' }, 'admin');
    await meta.createProject({ name: 'hidden', public: false, createdBy: 'admin' }, 'admin');
    await meta.putProjectMember('team', 'dev', 'reader');
    await meta.updateProject('team', { immutableTags: ['v*'], quotaBytes: 10_000_000 });
    await meta.createRobot({
      name: 'robot$team+ci',
      project: 'team',
      secretHash: await hashPassword(ROBOT_SECRET),
      actions: ['pull'],
      expiresAt: null,
      createdBy: 'lead',
    });
  } finally {
    await meta.close();
  }
  const port = await freePort();
  base = `http://127.0.0.1:${port}`;
  server = await startServe(
    { listen: `127.0.0.1:${port}`, data, policy: policyFile, config },
    { PORTCULLIS_LOG_LEVEL: 'silent' },
  );

  const admin = PushClient.basic(base, 'admin', 'admin-pw');
  images.bad = await pushTestImage(admin, 'team/app', 'bad', [
    ALPINE('1.2.5-r0'),
    [{ name: 'app/.env', content: `GITHUB_TOKEN=${TOKEN}\n` }],
  ]);
  images.good = await pushTestImage(admin, 'team/app', 'good', [ALPINE('1.2.5-r1')]);
  images.third = await pushTestImage(admin, 'team/app', 'third', [
    ALPINE('1.2.5-r1'),
    [{ name: 'x.txt', content: 'x' }],
  ]);
  images.pub = await pushTestImage(admin, 'pub/lib', '1', [ALPINE('1.2.5-r0')]);
  images.hidden = await pushTestImage(admin, 'hidden/x', '1', [ALPINE('1.2.5-r1')]);
  for (const r of ['team/a1', 'team/a2']) await admin.pushBlob(r, Buffer.from(r));
  for (const [repo, img] of [
    ['team/app', images.bad],
    ['team/app', images.good],
    ['team/app', images.third],
    ['pub/lib', images.pub],
    ['hidden/x', images.hidden],
  ] as const) {
    await waitFor(`${repo}@${img!.digest} analysed`, async () => {
      const r = await get(`/api/v1/repositories/${repo}/artifacts/${img!.digest}`, AS.admin);
      return (r.body as { verdict?: unknown }).verdict ? r : undefined;
    });
  }
  // The SBOM and report referrers are attached after the verdict.
  await waitFor('referrers', async () => {
    const r = await get('/api/v1/repositories/pub/lib/artifacts?referrers=true', AS.admin);
    return (r.body as { artifacts: unknown[] }).artifacts.length >= 3;
  });

  doc = (await get('/api/v1/openapi.json')).body as unknown as Doc;
  ajv = new Ajv2020({ strict: false, allErrors: true });
  addFormats.default(ajv);
  ajv.addSchema({ $id: 'https://portcullis.test/openapi', components: doc.components } as object);
  // Component references are document-relative: resolve them against the document added above.
  const compile = ajv.compile.bind(ajv);
  ajv.compile = ((schema: object) =>
    compile({ $id: `https://portcullis.test/op/${Math.random()}`, ...rebase(schema) })) as typeof ajv.compile;
}, 120_000);

function rebase(schema: unknown): Record<string, unknown> {
  return JSON.parse(
    JSON.stringify(schema).replaceAll('"#/components/', '"https://portcullis.test/openapi#/components/'),
  ) as Record<string, unknown>;
}

afterAll(async () => {
  await server?.close();
  await rm(root, { recursive: true, force: true });
});

describe('the OpenAPI document', () => {
  it('is OpenAPI 3.1, needs no credentials and declares exactly the routes the app registers under /api/v1', async () => {
    const r = await get('/api/v1/openapi.json');
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    expectDeclared('/api/v1/openapi.json', 200, r.body);
    // The schema checks below are not vacuous: a wrong body fails them.
    const artifact = ajv.compile(
      doc.paths['/api/v1/repositories/{repository}/artifacts/{digest}']!.get.responses['200']!.content![
        'application/json'
      ]!.schema as object,
    );
    expect(artifact({ repository: 'a', digest: 1 })).toBe(false);
    const schemes = (r.body.components as { securitySchemes: Record<string, { scheme: string }> })
      .securitySchemes;
    expect(
      Object.values(schemes)
        .map((s) => s.scheme)
        .sort(),
    ).toEqual(['basic', 'bearer']);

    // The route list of an app with the API registered, as Fastify reports it.
    const app = Fastify();
    const urls: string[] = [];
    app.addHook('onRoute', (route) => {
      if (route.url.startsWith('/api/v1') && route.method === 'GET') urls.push(route.url);
    });
    await apiRoutes(app, { auth: {} as RegistryAuth, metadata: {} as RegistryMetadata });
    await app.ready();
    await app.close();
    const documented = Object.keys(doc.paths);
    const served = (template: string) => {
      const at = template.indexOf('{repository}');
      return at >= 0 ? `${template.slice(0, at)}*` : template.replace(/\{([a-z]+)\}/g, ':$1');
    };
    expect(new Set(documented.map(served))).toEqual(new Set(urls));
    expect(documented.sort()).toEqual(
      [
        '/api/v1/audit',
        '/api/v1/events',
        '/api/v1/exceptions',
        '/api/v1/openapi.json',
        '/api/v1/policy',
        '/api/v1/projects',
        '/api/v1/projects/{name}',
        '/api/v1/projects/{name}/repositories',
        '/api/v1/repositories/{repository}/artifacts',
        '/api/v1/repositories/{repository}/artifacts/{digest}',
        '/api/v1/repositories/{repository}/artifacts/{digest}/findings',
        '/api/v1/repositories/{repository}/artifacts/{digest}/sbom',
        '/api/v1/search',
      ].sort(),
    );
    // Every documented path answers (no route-level 404) and every operation declares its errors.
    for (const template of documented) {
      const path =
        template
          .replace('{repository}', 'team/app')
          .replace('{digest}', images.bad!.digest)
          .replace('{name}', 'team') + (template.endsWith('/search') ? '?package=musl' : '');
      const res = await get(path, AS.admin);
      expect([200], `${path}: ${JSON.stringify(res.body).slice(0, 200)}`).toContain(res.status);
      const op = doc.paths[template]!.get;
      if (op.security.length > 0) expect(op.responses['401']).toBeDefined();
      for (const p of op.parameters ?? []) expect(['path', 'query']).toContain(p.in);
    }
  });
});

describe('authentication and authorisation', () => {
  it('answers 401 with the registry challenge without credentials, and with bad ones', async () => {
    for (const path of [
      '/api/v1/projects',
      '/api/v1/events',
      '/api/v1/audit',
      '/api/v1/policy',
      '/api/v1/search?package=musl',
    ]) {
      const r = await get(path);
      expect(r.status, path).toBe(401);
      expect(r.headers.get('www-authenticate')).toMatch(
        /^Bearer realm="http:\/\/127\.0\.0\.1:\d+\/token",service="127\.0\.0\.1:\d+"/,
      );
      expectDeclared(path.split('?')[0]!, 401, r.body);
    }
    const repo = await get(`/api/v1/repositories/team/app/artifacts/${images.bad!.digest}`);
    expect(repo.status).toBe(401);
    expect(repo.headers.get('www-authenticate')).toContain('scope="repository:team/app:pull"');
    expect((await get('/api/v1/projects', basic('dev', 'wrong'))).status).toBe(401);
  });

  it('refuses a caller without pull with 403 whether or not the project exists; 404 only to those who may read', async () => {
    const denied = await get('/api/v1/repositories/team/app/artifacts', AS.outsider);
    expect(denied.status).toBe(403);
    expect(denied.body.error!.code).toBe('DENIED');
    expectDeclared('/api/v1/repositories/{repository}/artifacts', 403, denied.body);
    expect((await get('/api/v1/repositories/nosuch/app/artifacts', AS.outsider)).status).toBe(403);
    expect((await get('/api/v1/projects/hidden', AS.dev)).status).toBe(403);
    expect((await get('/api/v1/projects/nosuch', AS.dev)).status).toBe(403);
    const missing = await get('/api/v1/projects/nosuch', AS.admin);
    expect(missing.status).toBe(404);
    expectDeclared('/api/v1/projects/{name}', 404, missing.body);
    expect((await get('/api/v1/repositories/nosuch/app/artifacts', AS.admin)).status).toBe(404);
    expect(
      (await get(`/api/v1/repositories/team/app/artifacts/sha256:${'0'.repeat(64)}`, AS.dev)).status,
    ).toBe(404);
    // Public projects are readable by any user and robot; a robot's other access is its own project's.
    expect((await get('/api/v1/repositories/pub/lib/artifacts', AS.outsider)).status).toBe(200);
    expect((await get('/api/v1/repositories/team/app/artifacts', AS.robot)).status).toBe(200);
    expect((await get('/api/v1/repositories/pub/lib/artifacts', AS.robot)).status).toBe(200);
    expect((await get('/api/v1/repositories/hidden/app/artifacts', AS.robot)).status).toBe(403);
  });

  it('accepts Bearer tokens from /token: listings follow the account, one repository needs a token scoped for it', async () => {
    const tokenFor = async (scope?: string) => {
      const q = new URLSearchParams({ service: new URL(base).host, ...(scope ? { scope } : {}) });
      const r = await fetch(`${base}/token?${q.toString()}`, { headers: { authorization: AS.dev } });
      expect(r.status).toBe(200);
      return `Bearer ${((await r.json()) as { token: string }).token}`;
    };
    const scoped = await tokenFor('repository:team/app:pull');
    expect((await get(`/api/v1/repositories/team/app/artifacts/${images.bad!.digest}`, scoped)).status).toBe(
      200,
    );
    const narrow = await get('/api/v1/repositories/pub/lib/artifacts', scoped);
    expect(narrow.status).toBe(401);
    expect(narrow.headers.get('www-authenticate')).toContain('error="insufficient_scope"');
    expect(narrow.headers.get('www-authenticate')).toContain('scope="repository:pub/lib:pull"');
    const plain = await tokenFor();
    const projects = await get('/api/v1/projects', plain);
    expect(projects.status).toBe(200);
    expect((projects.body.projects as { name: string }[]).map((p) => p.name)).toEqual(['pub', 'team']);
    // A token never makes its holder an administrator of the audit log unless the account is one.
    expect((await get('/api/v1/audit', plain)).status).toBe(403);
    expect((await get('/api/v1/projects', 'Bearer not-a-token')).status).toBe(401);
  });
});

describe('projects and repositories', () => {
  it('lists the projects each caller can see, with their role', async () => {
    const names = async (who: string) =>
      ((await get('/api/v1/projects', who)).body.projects as { name: string }[]).map((p) => p.name);
    const dev = await get('/api/v1/projects', AS.dev);
    expectDeclared('/api/v1/projects', 200, dev.body);
    expect(dev.body.projects).toEqual([
      expect.objectContaining({ name: 'pub', public: true, role: null }),
      expect.objectContaining({ name: 'team', public: false, role: 'reader' }),
    ]);
    expect(await names(AS.admin)).toEqual(['hidden', 'pub', 'team']);
    expect(await names(AS.outsider)).toEqual(['pub']);
    expect(await names(AS.robot)).toEqual(['pub', 'team']);
  });

  it('shows settings, quota and usage to readers, and members and robots (no secrets) to project admins', async () => {
    const dev = await get('/api/v1/projects/team', AS.dev);
    expect(dev.status).toBe(200);
    expectDeclared('/api/v1/projects/{name}', 200, dev.body);
    expect(dev.body).toMatchObject({
      name: 'team',
      public: false,
      role: 'reader',
      immutableTags: ['v*'],
      quota: { limitBytes: 10_000_000 },
    });
    expect((dev.body.quota as { usedBytes: number }).usedBytes).toBeGreaterThan(0);
    expect(dev.body.members).toBeUndefined();
    expect(dev.body.robots).toBeUndefined();
    const lead = await get('/api/v1/projects/team', AS.lead);
    expectDeclared('/api/v1/projects/{name}', 200, lead.body);
    expect(lead.body.role).toBe('admin');
    expect(lead.body.members).toEqual(
      expect.arrayContaining([
        { user: 'dev', role: 'reader' },
        { user: 'lead', role: 'admin' },
      ]),
    );
    expect(lead.body.robots).toEqual([
      expect.objectContaining({ name: 'robot$team+ci', actions: ['pull'], revoked: false }),
    ]);
    const text = JSON.stringify(lead.body);
    expect(text).not.toContain('scrypt');
    expect(text).not.toContain('secretHash');
    expect(text).not.toContain('passwordHash');
    expect((await get('/api/v1/projects/team', AS.admin)).body.members).toBeDefined();
  });

  it("pages a project's repositories with n and last, like the catalog", async () => {
    const first = await get('/api/v1/projects/team/repositories?n=2', AS.dev);
    expect(first.status).toBe(200);
    expectDeclared('/api/v1/projects/{name}/repositories', 200, first.body);
    expect(first.body.repositories).toEqual([
      expect.objectContaining({ name: 'team/a1', tags: 0, manifests: 0 }),
      expect.objectContaining({ name: 'team/a2' }),
    ]);
    const link = first.headers.get('link')!;
    expect(link).toBe('</api/v1/projects/team/repositories?n=2&last=team%2Fa2>; rel="next"');
    const second = await get(link.slice(1, link.indexOf('>')), AS.dev);
    expect(second.body.repositories).toEqual([expect.objectContaining({ name: 'team/app', tags: 3 })]);
    expect(second.headers.get('link')).toBeNull();
    expect((await get('/api/v1/projects/team/repositories?last=pub%2Flib', AS.dev)).status).toBe(400);
  });
});

describe('artifacts', () => {
  it('pages artifacts with tags, verdict status and analysis state; referrers only when asked', async () => {
    const all: { digest: string; tags: string[]; verdict: { status: string } | null; analysis: string }[] =
      [];
    let path: string | undefined = '/api/v1/repositories/team/app/artifacts?n=2';
    while (path) {
      const r = await get(path, AS.dev);
      expect(r.status).toBe(200);
      expectDeclared('/api/v1/repositories/{repository}/artifacts', 200, r.body);
      all.push(...(r.body.artifacts as typeof all));
      const link = r.headers.get('link');
      path = link ? link.slice(1, link.indexOf('>')) : undefined;
    }
    expect(all.map((a) => a.digest)).toEqual(
      [images.bad!.digest, images.good!.digest, images.third!.digest].sort(),
    );
    const bad = all.find((a) => a.digest === images.bad!.digest)!;
    expect(bad).toMatchObject({ tags: ['bad'], verdict: { status: 'fail' }, analysis: 'analysed' });
    expect(all.find((a) => a.digest === images.good!.digest)).toMatchObject({
      tags: ['good'],
      verdict: { status: 'warn' },
    });
    const withReferrers = await get('/api/v1/repositories/team/app/artifacts?referrers=true&n=1000', AS.dev);
    const referrers = (
      withReferrers.body.artifacts as { subjectDigest: string | null; analysis: string }[]
    ).filter((a) => a.subjectDigest !== null);
    expect(referrers.length).toBeGreaterThanOrEqual(6);
    expect(referrers.every((a) => a.analysis === 'not-applicable')).toBe(true);
  });

  it('gives the verdict in force with reasons and remedies', async () => {
    const r = await get(`/api/v1/repositories/team/app/artifacts/${images.bad!.digest}`, AS.dev);
    expect(r.status).toBe(200);
    expectDeclared('/api/v1/repositories/{repository}/artifacts/{digest}', 200, r.body);
    const verdict = r.body.verdict as {
      status: string;
      verdict: { reasons: { ruleId: string; remedy: string }[]; exceptionsApplied: { id: string }[] };
    };
    expect(r.body).toMatchObject({
      repository: 'team/app',
      digest: images.bad!.digest,
      tags: ['bad'],
      analysis: { state: 'analysed' },
    });
    expect(verdict.status).toBe('fail');
    // Fail reasons first; the team override's defaultAction turns the rest into warnings.
    expect(verdict.verdict.reasons.map((x) => x.ruleId)).toEqual(['fixable', 'default']);
    expect(verdict.verdict.reasons[0]!.remedy).toContain('1.2.5-r1');
    // The team override's exception covers the planted token.
    expect(verdict.verdict.exceptionsApplied.map((e) => e.id)).toEqual(['no-secrets']);
    // Encoded slashes address the same repository.
    expect(
      (await get(`/api/v1/repositories/team%2Fapp/artifacts/${images.bad!.digest}`, AS.dev)).status,
    ).toBe(200);
  });

  it('lists findings: vulnerabilities matched now, redacted secrets, misconfigurations', async () => {
    const r = await get(`/api/v1/repositories/team/app/artifacts/${images.bad!.digest}/findings`, AS.dev);
    expect(r.status).toBe(200);
    expectDeclared('/api/v1/repositories/{repository}/artifacts/{digest}/findings', 200, r.body);
    expect(r.body.vulnerabilities).toEqual([
      expect.objectContaining({
        id: 'ALPINE-CVE-2026-2000',
        aliases: ['CVE-2026-2000'],
        installedVersion: '1.2.5-r0',
        fixedVersions: ['1.2.5-r1'],
      }),
    ]);
    expect(r.body.secrets).toEqual([
      expect.objectContaining({ ruleId: expect.stringContaining('github') as string, target: 'app/.env' }),
    ]);
    expect(JSON.stringify(r.body)).not.toContain(TOKEN);
    expect(JSON.stringify(r.body)).toContain(TOKEN.slice(0, 4));
    expect(r.body.database).toMatchObject({ available: true });
    expect((r.body.counts as { packages: number }).packages).toBe(2);
  });

  it('serves the SBOM as CycloneDX, or SPDX on request', async () => {
    const path = `/api/v1/repositories/team/app/artifacts/${images.bad!.digest}/sbom`;
    const cdx = await get(path, AS.dev);
    expect(cdx.status).toBe(200);
    expect(cdx.headers.get('content-type')).toContain('application/vnd.cyclonedx+json');
    expect(cdx.body).toMatchObject({ bomFormat: 'CycloneDX', specVersion: '1.6' });
    expectDeclared(
      '/api/v1/repositories/{repository}/artifacts/{digest}/sbom',
      200,
      cdx.body,
      'application/vnd.cyclonedx+json',
    );
    expect(JSON.stringify(cdx.body)).toContain('pkg:apk/alpine/musl@1.2.5-r0');
    const spdx = await get(`${path}?format=spdx`, AS.dev);
    expect(spdx.headers.get('content-type')).toContain('application/spdx+json');
    expect(spdx.body.spdxVersion).toBe('SPDX-2.3');
    expectDeclared(
      '/api/v1/repositories/{repository}/artifacts/{digest}/sbom',
      200,
      spdx.body,
      'application/spdx+json',
    );
  });

  it('validates path and query parameters at the edge with 400s that say what is wrong', async () => {
    const badDigest = await get('/api/v1/repositories/team/app/artifacts/sha256:xyz', AS.dev);
    expect(badDigest.status).toBe(400);
    expect(badDigest.body.error).toMatchObject({ code: 'PATH_INVALID' });
    expect(badDigest.body.error!.message).toContain('digest');
    expectDeclared('/api/v1/repositories/{repository}/artifacts/{digest}', 400, badDigest.body);
    expect(
      (await get(`/api/v1/repositories/Team/App/artifacts/${images.bad!.digest}`, AS.dev)).body.error,
    ).toMatchObject({ code: 'PATH_INVALID' });
    const n = await get('/api/v1/repositories/team/app/artifacts?n=0', AS.dev);
    expect(n.status).toBe(400);
    expect(n.body.error).toMatchObject({ code: 'QUERY_INVALID', details: ['n: must be at least 1'] });
    expect((await get('/api/v1/repositories/team/app/artifacts?n=abc', AS.dev)).status).toBe(400);
    expect(
      (await get(`/api/v1/repositories/team/app/artifacts/${images.bad!.digest}/sbom?format=xml`, AS.dev))
        .status,
    ).toBe(400);
    expect((await get('/api/v1/projects/Not_A_Project', AS.dev)).status).toBe(400);
    for (const path of [
      '/api/v1/repositories/team/app/whatever',
      '/api/v1/nothing',
      '/api/v1/projects/team/nothing',
    ]) {
      const unknown = await get(path, AS.dev);
      expect(unknown.status, path).toBe(404);
      expect(unknown.body.error, path).toMatchObject({ code: 'NOT_FOUND' });
    }
  });
});

describe('SBOM rendering', () => {
  /** Counts the renders it runs; each first waits `delayMs`, so parallel requests overlap. */
  class CountingRenderer extends DocumentRenderer {
    renders = 0;
    delayMs = 0;
    override get(key: string, render: (signal: AbortSignal) => Promise<{ doc: Buffer; keep: boolean }>, signal?: AbortSignal) {
      return super.get(
        key,
        async (stop) => {
          this.renders++;
          await new Promise((r) => setTimeout(r, this.delayMs));
          return render(stop);
        },
        signal,
      );
    }
  }

  let app: ReturnType<typeof Fastify>;
  let meta: SqliteRegistryMetadata;
  let url: string;
  let documents: CountingRenderer;
  /** The database version the API sees: the real one with `suffix` appended. */
  let suffix = '';

  beforeAll(async () => {
    const data = join(root, 'data');
    meta = await SqliteRegistryMetadata.open(data);
    const real = new VulnDbHandle(data);
    const vulndb = {
      version: () => real.version() + suffix,
      get: () => {
        const { store, version } = real.get();
        return { store, version: version + suffix };
      },
    };
    const everyone: RegistryAuth = {
      authenticate: async () => ({ name: 'reader', kind: 'user' }),
      authorize: () => true,
      challenge: () => 'Basic realm="test"',
    };
    documents = new CountingRenderer(new RenderedCache(), new RenderLimiter(1, 1));
    app = Fastify();
    await apiRoutes(app, { auth: everyone, metadata: meta, gate: { vulndb } as unknown as Gate, documents });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await app?.close();
    await meta?.close();
  });

  const sbom = async (image: string, repo = 'team/app', format = '') => {
    const res = await fetch(
      `${url}/api/v1/repositories/${repo}/artifacts/${images[image]!.digest}/sbom${format}`,
    );
    return { status: res.status, headers: res.headers, body: Buffer.from(await res.arrayBuffer()) };
  };

  it('renders a document once per facts, format and database version, byte for byte what the server renders', async () => {
    documents.renders = 0;
    const first = await sbom('bad');
    expect(first.status).toBe(200);
    expect(first.headers.get('content-type')).toBe('application/vnd.cyclonedx+json; charset=utf-8');
    // The server's own route (no cache of this one's) renders the same bytes.
    const fresh = await fetch(`${base}/api/v1/repositories/team/app/artifacts/${images.bad!.digest}/sbom`, {
      headers: { authorization: AS.dev },
    });
    expect(Buffer.from(await fresh.arrayBuffer()).equals(first.body)).toBe(true);
    const again = await sbom('bad');
    expect(again.body.equals(first.body)).toBe(true);
    expect(again.headers.get('content-length')).toBe(String(first.body.length));
    expect(documents.renders).toBe(1);
    // Another format, another image: rendered.
    expect((await sbom('bad', 'team/app', '?format=spdx')).headers.get('content-type')).toBe(
      'application/spdx+json; charset=utf-8',
    );
    await sbom('good');
    expect(documents.renders).toBe(3);
    // A new database version renders again.
    suffix = ':next';
    try {
      expect((await sbom('bad')).body.equals(first.body)).toBe(true);
      expect(documents.renders).toBe(4);
    } finally {
      suffix = '';
    }
  });

  it('requests for the same document share one render', async () => {
    documents.renders = 0;
    documents.delayMs = 100;
    try {
      const all = await Promise.all([1, 2, 3, 4].map(() => sbom('third', 'team/app', '?format=spdx')));
      expect(all.map((r) => r.status)).toEqual([200, 200, 200, 200]);
      expect(all.every((r) => r.body.equals(all[0]!.body))).toBe(true);
      expect(documents.renders).toBe(1);
    } finally {
      documents.delayMs = 0;
    }
  });

  it('renders one at a time with one waiting here; more get 429 with Retry-After', async () => {
    documents.delayMs = 150;
    suffix = ':limits';
    try {
      const all = await Promise.all([sbom('bad'), sbom('good'), sbom('third'), sbom('pub', 'pub/lib')]);
      expect(all.map((r) => r.status).sort()).toEqual([200, 200, 429, 429]);
      const refused = all.find((r) => r.status === 429)!;
      expect(refused.headers.get('retry-after')).toBe('2');
      const body = JSON.parse(refused.body.toString()) as unknown;
      expect(body).toMatchObject({ error: { code: 'TOO_MANY_REQUESTS' } });
      expectDeclared('/api/v1/repositories/{repository}/artifacts/{digest}/sbom', 429, body);
    } finally {
      documents.delayMs = 0;
      suffix = '';
    }
  });

  it('findings share the renders\' limiter: with it full they get 429 too', async () => {
    documents.delayMs = 500;
    suffix = ':findings';
    try {
      const renders = Promise.all([sbom('bad'), sbom('good')]);
      // Until one renders and one waits: the limiter (1 and 1 here) is then full.
      while (documents.limiter.load.waiting < 1) await new Promise((r) => setTimeout(r, 5));
      const busy = await fetch(`${url}/api/v1/repositories/team/app/artifacts/${images.third!.digest}/findings`);
      expect(busy.status).toBe(429);
      expect(busy.headers.get('retry-after')).toBe('2');
      expectDeclared('/api/v1/repositories/{repository}/artifacts/{digest}/findings', 429, (await busy.json()) as unknown);
      expect((await renders).map((r) => r.status)).toEqual([200, 200]);
      const free = await fetch(`${url}/api/v1/repositories/team/app/artifacts/${images.third!.digest}/findings`);
      expect(free.status).toBe(200);
    } finally {
      documents.delayMs = 0;
      suffix = '';
    }
  });
});

describe('SBOM rendering for clients that go away', () => {
  // Its own server: the abort tests watch the limiter's counts, which others' renders would move.
  const wait = (ms: number) => new Promise((r) => setTimeout(r, ms));
  let app: ReturnType<typeof Fastify>;
  let meta: SqliteRegistryMetadata;
  let url: string;
  let limiter: RenderLimiter;
  let documents: DocumentRenderer;
  let renders = 0;
  let finished = 0;
  let delayMs = 0;
  /** Whether the first step stops when nobody waits (else only the route's own steps check). */
  let stoppable = true;

  beforeAll(async () => {
    const data = join(root, 'data');
    meta = await SqliteRegistryMetadata.open(data);
    const real = new VulnDbHandle(data);
    const everyone: RegistryAuth = {
      authenticate: async () => ({ name: 'reader', kind: 'user' }),
      authorize: () => true,
      challenge: () => 'Basic realm="test"',
    };
    limiter = new RenderLimiter(1, 4);
    documents = new (class extends DocumentRenderer {
      override get(key: string, render: (signal: AbortSignal) => Promise<{ doc: Buffer; keep: boolean }>, signal?: AbortSignal) {
        return super.get(
          key,
          async (stop) => {
            renders++;
            // A long first step (as decoding a large image is), stopping as the route's steps do.
            await new Promise<void>((resolve, reject) => {
              const timer = setTimeout(resolve, delayMs);
              if (stoppable) stop?.addEventListener('abort', () => (clearTimeout(timer), reject(stop.reason as Error)), { once: true });
            });
            const out = await render(stop);
            finished++;
            return out;
          },
          signal,
        );
      }
    })(new RenderedCache(), limiter);
    app = Fastify();
    await apiRoutes(app, { auth: everyone, metadata: meta, gate: { vulndb: real } as unknown as Gate, documents });
    url = await app.listen({ host: '127.0.0.1', port: 0 });
  });

  afterAll(async () => {
    await app?.close();
    await meta?.close();
  });

  const sbomOf = (image: string, signal?: AbortSignal, repo = 'team/app') =>
    fetch(`${url}/api/v1/repositories/${repo}/artifacts/${images[image]!.digest}/sbom`, { signal }).then(
      async (r) => ({ status: r.status, body: Buffer.from(await r.arrayBuffer()) }),
      () => 'aborted' as const,
    );

  it('stops a render whose client has gone and gives its slot back at once', async () => {
    renders = finished = 0;
    delayMs = 5_000;
    const client = new AbortController();
    const asked = sbomOf('bad', client.signal);
    while (limiter.load.running < 1) await wait(5);
    const gone = Date.now();
    client.abort();
    expect(await asked).toBe('aborted');
    while (limiter.load.running > 0 && Date.now() - gone < 4_000) await wait(10);
    // Before, the render held its slot for its whole 5 s and then cached a document nobody read.
    expect(Date.now() - gone).toBeLessThan(1_000);
    expect(limiter.load.running).toBe(0);
    expect(finished).toBe(0);
    expect(documents.cache.size.entries).toBe(0);
    // The next request for it renders afresh and gets the document.
    delayMs = 0;
    const again = await sbomOf('bad');
    expect(again).toMatchObject({ status: 200 });
    expect(renders).toBe(2);
  });

  it('never starts a waiting render whose client has gone', async () => {
    renders = finished = 0;
    delayMs = 300;
    const first = sbomOf('good');
    while (limiter.load.running < 1) await wait(5);
    const client = new AbortController();
    const second = sbomOf('third', client.signal);
    while (limiter.load.waiting < 1) await wait(5);
    client.abort();
    expect(await second).toBe('aborted');
    expect(await first).toMatchObject({ status: 200 });
    await wait(50);
    expect(renders).toBe(1);
    expect(limiter.load).toEqual({ running: 0, waiting: 0 });
  });

  it('the route\'s own steps stop once the client has gone', async () => {
    renders = finished = 0;
    delayMs = 300;
    stoppable = false;
    try {
      const kept = documents.cache.size.entries;
      const client = new AbortController();
      const asked = sbomOf('third', client.signal);
      while (limiter.load.running < 1) await wait(5);
      client.abort();
      expect(await asked).toBe('aborted');
      while (limiter.load.running > 0) await wait(10);
      // Decoding, matching and writing never ran: nothing was kept.
      expect([renders, finished]).toEqual([1, 0]);
      expect(documents.cache.size.entries).toBe(kept);
    } finally {
      stoppable = true;
    }
  });

  it('goes on with a shared render while one of its requests still waits', async () => {
    renders = finished = 0;
    delayMs = 300;
    const client = new AbortController();
    const leaving = sbomOf('pub', client.signal, 'pub/lib');
    const staying = sbomOf('pub', undefined, 'pub/lib');
    while (limiter.load.running < 1) await wait(5);
    await wait(20);
    client.abort();
    expect(await leaving).toBe('aborted');
    expect(await staying).toMatchObject({ status: 200 });
    expect([renders, finished]).toEqual([1, 1]);
  });
});

describe('search, policy, exceptions', () => {
  it('finds artifacts by advisory and by package, only in repositories the caller may read', async () => {
    const byAdvisory = await get('/api/v1/search?advisory=ALPINE-CVE-2026-2000', AS.dev);
    expect(byAdvisory.status).toBe(200);
    expectDeclared('/api/v1/search', 200, byAdvisory.body);
    expect((byAdvisory.body.artifacts as { repository: string }[]).map((a) => a.repository).sort()).toEqual([
      'pub/lib',
      'team/app',
    ]);
    const byPackage = await get('/api/v1/search?package=musl&type=apk', AS.outsider);
    expectDeclared('/api/v1/search', 200, byPackage.body);
    expect(byPackage.body.artifacts).toEqual([
      {
        repository: 'pub/lib',
        digest: images.pub!.digest,
        type: 'apk',
        name: 'musl',
        versions: ['1.2.5-r0'],
      },
    ]);
    expect(((await get('/api/v1/search?package=musl', AS.admin)).body.artifacts as unknown[]).length).toBe(5);
    for (const q of ['', '?advisory=CVE-1&package=musl', '?package=musl&type=exe', '?advisory=bad%20id']) {
      const r = await get(`/api/v1/search${q}`, AS.dev);
      expect(r.status, q).toBe(400);
      expect(r.body.error!.code).toBe('QUERY_INVALID');
    }
  });

  it('shows the policy in force and the effective policy of a project', async () => {
    const r = await get('/api/v1/policy', AS.dev);
    expect(r.status).toBe(200);
    expectDeclared('/api/v1/policy', 200, r.body);
    expect(r.body.source).toMatch(/policy\.yaml$/);
    expect((r.body.document as { rules: { id: string }[] }).rules.map((x) => x.id)).toEqual([
      'fixable',
      'no-secrets',
    ]);
    expect(r.body.effective).toBeUndefined();
    const team = await get('/api/v1/policy?project=team', AS.dev);
    expectDeclared('/api/v1/policy', 200, team.body);
    expect(team.body.effective).toMatchObject({
      project: 'team',
      appliedOverrides: ['team'],
      document: { defaultAction: 'warn' },
    });
    expect((await get('/api/v1/policy?project=Bad!', AS.dev)).status).toBe(400);
  });

  it('lists exceptions with scope, reason, author, expiry and whether expired', async () => {
    const r = await get('/api/v1/exceptions', AS.admin);
    expect(r.status).toBe(200);
    expectDeclared('/api/v1/exceptions', 200, r.body);
    expect(r.body.exceptions).toEqual([
      {
        id: 'ALPINE-CVE-2026-2000',
        scope: { project: 'pub' },
        reason: 'musl is not reachable in the public library',
        author: 'sec@example.com',
        expires: '2099-01-01',
        expired: false,
        origin: 'exceptions[0]',
      },
      {
        id: 'ALPINE-CVE-2026-2000',
        scope: { repository: 'other/old' },
        reason: 'long gone',
        author: null,
        expires: '2020-01-01',
        expired: true,
        origin: 'exceptions[1]',
      },
      {
        id: 'no-secrets',
        scope: { project: 'team' },
        reason: 'test fixtures hold fake tokens',
        author: null,
        expires: '2099-06-30',
        expired: false,
        origin: 'projects.team.exceptions[0]',
      },
    ]);
    // Others read only what concerns projects they can see: dev is in team, and pub is public;
    // the exception naming other/old is not theirs to read.
    const dev = await get('/api/v1/exceptions', AS.dev);
    expect((dev.body.exceptions as { origin: string }[]).map((e) => e.origin)).toEqual(['exceptions[0]', 'projects.team.exceptions[0]']);
    const outsider = await get('/api/v1/exceptions', AS.outsider);
    expect((outsider.body.exceptions as { origin: string }[]).map((e) => e.origin)).toEqual(['exceptions[0]']);
    expect((await get('/api/v1/exceptions?project=team', AS.outsider)).status).toBe(403);
    const doc = (await get('/api/v1/policy', AS.outsider)).body.document as { projects: Record<string, unknown>; exceptions: unknown[] };
    expect(Object.keys(doc.projects)).toEqual([]);
    expect(doc.exceptions).toHaveLength(1);
    expect((await get('/api/v1/policy?project=team', AS.outsider)).status).toBe(403);
    const team = await get('/api/v1/exceptions?project=team', AS.dev);
    expect((team.body.exceptions as { origin: string }[]).map((e) => e.origin)).toEqual([
      'projects.team.exceptions[0]',
    ]);
  });
});

describe('events and audit', () => {
  it('pages events after an id, by type, showing each caller only what it may read', async () => {
    const all = await get('/api/v1/events?limit=1000', AS.admin);
    expect(all.status).toBe(200);
    expectDeclared('/api/v1/events', 200, all.body);
    const events = all.body.events as { id: number; type: string; data: { repository?: string } }[];
    expect(events.length).toBeGreaterThan(5);
    expect(events.map((e) => e.id)).toEqual([...events.map((e) => e.id)].sort((a, b) => a - b));
    expect(all.body.last).toBe(events[events.length - 1]!.id);
    expect(events.some((e) => e.data.repository === 'hidden/x')).toBe(true);

    const dev = (await get('/api/v1/events?limit=1000', AS.dev)).body.events as typeof events;
    expect(dev.length).toBeGreaterThan(0);
    expect(dev.every((e) => e.data.repository === 'team/app' || e.data.repository === 'pub/lib')).toBe(true);

    const pushed = (await get('/api/v1/events?type=pushed&limit=2', AS.admin)).body;
    expect((pushed.events as typeof events).map((e) => e.type)).toEqual(['pushed', 'pushed']);
    const next = await get(`/api/v1/events?type=pushed&limit=1000&after=${String(pushed.last)}`, AS.admin);
    expect((next.body.events as typeof events)[0]!.id).toBeGreaterThan(pushed.last as number);
    const end = await get(`/api/v1/events?after=${String(all.body.last)}`, AS.admin);
    expect(end.body).toEqual({ events: [], last: null });
    expectDeclared('/api/v1/events', 200, end.body);
    for (const q of ['limit=0', 'limit=1001', 'type=bogus', 'after=-1', 'after=x']) {
      const r = await get(`/api/v1/events?${q}`, AS.admin);
      expect(r.status, q).toBe(400);
      expectDeclared('/api/v1/events', 400, r.body);
    }
  });

  it('shows the audit log to system administrators only', async () => {
    const r = await get('/api/v1/audit?since=1h&limit=50', AS.admin);
    expect(r.status).toBe(200);
    expectDeclared('/api/v1/audit', 200, r.body);
    const entries = r.body.entries as { action: string; principal: string; time: string }[];
    expect(entries.length).toBeGreaterThan(0);
    expect(entries.length).toBeLessThanOrEqual(50);
    expect(entries.some((e) => e.action === 'push' && e.principal === 'admin')).toBe(true);
    expect(entries.map((e) => e.time)).toEqual([...entries.map((e) => e.time)].sort().reverse());
    expect(JSON.stringify(r.body)).not.toContain('admin-pw');
    const denied = await get('/api/v1/audit', AS.dev);
    expect(denied.status).toBe(403);
    expectDeclared('/api/v1/audit', 403, denied.body);
    expect((await get('/api/v1/audit', AS.robot)).status).toBe(403);
    expect((await get('/api/v1/audit?since=yesterday-ish', AS.admin)).status).toBe(400);
    expect(((await get('/api/v1/audit?since=2099-01-01', AS.admin)).body.entries as unknown[]).length).toBe(
      0,
    );
  });
});

describe('without the gate (serve --no-gate)', () => {
  it('still serves projects and the document, and answers 503 where the gate is needed', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-api-nogate-'));
    const port = await freePort();
    const plain = await startServe(
      { listen: `127.0.0.1:${port}`, data, gate: false, config: join(root, 'portcullis.yaml') },
      { PORTCULLIS_ADMIN_PASSWORD: 'admin-pw', PORTCULLIS_LOG_LEVEL: 'silent' },
    );
    try {
      const call = (path: string) =>
        fetch(`http://127.0.0.1:${port}${path}`, { headers: { authorization: AS.admin } });
      expect((await call('/api/v1/projects')).status).toBe(200);
      expect((await call('/api/v1/openapi.json')).status).toBe(200);
      const policy = await call('/api/v1/policy');
      expect(policy.status).toBe(503);
      expect(((await policy.json()) as { error: { code: string } }).error.code).toBe('GATE_DISABLED');
      expect((await call('/api/v1/search?advisory=CVE-2026-1')).status).toBe(503);
    } finally {
      await plain.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});

describe('a project repository list cut short by its bound', () => {
  it('continues by its sealed Link and never names a repository the caller may not see', async () => {
    const dataDir = await mkdtemp(join(tmpdir(), 'portcullis-api-projects-'));
    const meta = await SqliteRegistryMetadata.open(dataDir);
    const app = Fastify();
    try {
      await meta.createProject({ name: 'team', public: false, createdBy: 'admin' }, 'admin');
      for (let i = 0; i < 5200; i++) await meta.ensureRepository(`team/h${String(i).padStart(5, '0')}`);
      await meta.ensureRepository('team/zz');
      // An embedding whose listing rules are per repository: the viewer sees team/zz only.
      const auth: RegistryAuth = {
        authenticate: async () => ({ name: 'viewer', kind: 'user' }),
        authorize: (_p, repo) => repo === 'team' || repo === 'team/zz',
        canList: (_p, repo) => repo === 'team' || repo === 'team/zz',
        challenge: () => 'Basic realm="t"',
      };
      await apiRoutes(app, { auth, metadata: meta });
      const first = await app.inject({ url: '/api/v1/projects/team/repositories?n=10' });
      expect(first.statusCode).toBe(200);
      expect((first.json() as { repositories: unknown[] }).repositories).toEqual([]);
      const link = String(first.headers.link);
      expect(link).toMatch(/last=%7E/);
      expect(link).not.toMatch(/team%2Fh/);
      const next = await app.inject({ url: link.slice(1, link.indexOf('>')) });
      expect(next.statusCode, next.body).toBe(200);
      expect((next.json() as { repositories: { name: string }[] }).repositories.map((r) => r.name)).toEqual(['team/zz']);
    } finally {
      await app.close();
      await meta.close();
      await rm(dataDir, { recursive: true, force: true });
    }
  }, 60_000);
});
