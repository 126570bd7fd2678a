import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AccessControl } from '../../src/registry/access/index.js';
import { bearerAuth, loadOrCreateSigningKey } from '../../src/registry/auth/index.js';
import { buildRegistry, hashPassword, type Principal, type RegistryAction, type RegistryAuth } from '../../src/registry/index.js';
import { SqliteRegistryMetadata } from '../../src/store/index.js';

// The text of a 403 names the actions the caller lacks by asking about each alone. It must ask a
// check that changes nothing: an auth hook's authorize may act on what it allows (Portcullis's
// access control creates the project a push names).
let app: FastifyInstance;
let dataDir: string;
let base: string;
/** Projects the hook's authorize created, and how often each hook method was called. */
const created: string[] = [];
const calls = { authorize: 0, permits: 0 };

/** A writer that may push into projects that do not exist yet (creating them), but never pull. */
const allows = (_principal: Principal, _repo: string, actions: RegistryAction[]) => actions.length > 0 && actions.every((a) => a === 'push');
const auth: RegistryAuth = {
  authenticate: async (req) => (req.headers.authorization === 'Basic d3JpdGVyOnB3' ? { name: 'writer', kind: 'user' } : null),
  authorize: (principal, repo, actions) => {
    calls.authorize++;
    const ok = allows(principal, repo, actions);
    if (ok) created.push(repo.split('/')[0]!);
    return ok;
  },
  permits: (principal, repo, actions) => {
    calls.permits++;
    return allows(principal, repo, actions);
  },
  challenge: () => 'Basic realm="test"',
};

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'portcullis-denial-'));
  app = await buildRegistry({ dataDir, auth });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});
afterAll(async () => {
  await app?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('the text of a 403', () => {
  it('names the missing action through the pure check, and the refusal creates nothing', async () => {
    // An upload asks for pull and push; the writer may only push.
    const r = await fetch(`${base}/v2/newproject/app/blobs/uploads/`, { method: 'POST', headers: { authorization: 'Basic d3JpdGVyOnB3' } });
    expect(r.status).toBe(403);
    const error = ((await r.json()) as { errors: { code: string; message: string }[] }).errors[0]!;
    expect(error.code).toBe('DENIED');
    expect(error.message).toContain('writer may not pull newproject/app (it may push)');
    expect(created).toEqual([]);
    // authorize was asked once, for the request; the hint asked permits, once per action.
    expect(calls).toEqual({ authorize: 1, permits: 2 });
  });

  it('names every action asked for when the hook has no pure check', async () => {
    const { permits, ...withoutPermits } = auth;
    expect(permits).toBeDefined();
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-denial-'));
    const bare = await buildRegistry({ dataDir: dir, auth: withoutPermits });
    try {
      calls.authorize = 0;
      const r = await bare.inject({ method: 'POST', url: '/v2/other/app/blobs/uploads/', headers: { authorization: 'Basic d3JpdGVyOnB3' } });
      expect(r.statusCode).toBe(403);
      expect((r.json() as { errors: { message: string }[] }).errors[0]!.message).toContain('writer may not pull or push other/app;');
      expect(calls.authorize).toBe(1);
      expect(created).toEqual([]);
    } finally {
      await bare.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
  it("is asked of the access control's pure decision, which creates no project", async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-denial-'));
    const meta = await SqliteRegistryMetadata.open(dir);
    const access = await AccessControl.create(meta);
    try {
      await meta.putUser({ name: 'creator', passwordHash: await hashPassword('creator-pw'), admin: false });
      await meta.setUserCanCreateProjects('creator', true);
      await access.refresh();
      const hook = access.wrap(
        bearerAuth({
          key: await loadOrCreateSigningKey(dir),
          service: 'test',
          issuer: 'test',
          realm: 'http://test.invalid/token',
          authorizeBasic: (principal, repo, actions) => access.decide(principal, repo, actions),
          permitsBasic: (principal, repo, actions) => access.permits(principal, repo, actions),
        }),
      );
      const creator: Principal = { name: 'creator', kind: 'user' };
      // The same answers as authorize: a creator may push into a project that does not exist.
      expect(hook.permits!(creator, 'fresh/app', ['push'])).toBe(true);
      expect(hook.permits!(creator, 'fresh/app', ['delete'])).toBe(false);
      await access.close();
      expect(await meta.getProject('fresh')).toBeNull();
      // authorize acts on the same answer.
      expect(hook.authorize(creator, 'fresh/app', ['push'])).toBe(true);
      await access.close();
      expect(await meta.getProject('fresh')).not.toBeNull();
    } finally {
      await access.close();
      await meta.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});
