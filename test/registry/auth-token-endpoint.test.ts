import Fastify, { type FastifyInstance } from 'fastify';
import { exportJWK, generateKeyPair } from 'jose';
import { afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { signingKeyFromJwk, type SigningKey } from '../../src/registry/auth/keys.js';
import { LoginRateLimiter } from '../../src/registry/auth/rate-limit.js';
import {
  tokenRoutes,
  type TokenResponse,
  type TokenRoutesOptions,
} from '../../src/registry/auth/token-endpoint.js';
import { verifyToken } from '../../src/registry/auth/tokens.js';
import type { Principal, RegistryAction } from '../../src/registry/auth/types.js';

const service = 'registry.example.com';
const issuer = 'portcullis';
const PASSWORD = 's3cret:with-colon';

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

function form(fields: Record<string, string>): string {
  return new URLSearchParams(fields).toString();
}

/**
 * A small policy: alice may pull and push under alice/, pull anything public; everyone (anonymous
 * included) may pull public/*; admins may delete. It deliberately answers with more than asked
 * (delete) to prove the endpoint intersects.
 */
function grantedActions(principal: Principal, repo: string, _requested: RegistryAction[]): RegistryAction[] {
  if (repo.startsWith('public/')) return principal.kind === 'anonymous' ? ['pull'] : ['pull', 'delete'];
  if (principal.name === 'alice' && repo.startsWith('alice/')) return ['pull', 'push', 'delete'];
  return [];
}

describe('token endpoint', () => {
  let key: SigningKey;
  let app: FastifyInstance;
  let limiter: LoginRateLimiter;
  let checks: Array<[string, string]>;

  beforeAll(async () => {
    const { privateKey } = await generateKeyPair('ES256', { extractable: true });
    key = await signingKeyFromJwk(await exportJWK(privateKey));
  });

  beforeEach(async () => {
    limiter = new LoginRateLimiter();
    checks = [];
    app = Fastify({ logger: false });
    const options: TokenRoutesOptions = {
      async verifyCredentials(user, password) {
        checks.push([user, password]);
        if (user === 'alice' && password === PASSWORD) return { name: 'alice', kind: 'user' };
        if (user === 'root' && password === PASSWORD) return { name: 'root', kind: 'user', admin: true };
        return null;
      },
      grantedActions,
      key,
      service,
      issuer,
      rateLimiter: limiter,
    };
    await app.register(tokenRoutes, options);
    await app.ready();
  });

  afterEach(async () => {
    await app.close();
  });

  async function claimsOf(body: TokenResponse) {
    return verifyToken(body.token, { key, service, issuer });
  }

  it('GET with Basic credentials and two scopes grants the intersection', async () => {
    const res = await app.inject({
      method: 'GET',
      url: `/token?service=${service}&scope=repository:alice/app:pull,push&scope=repository:public/base:pull,push`,
      headers: { authorization: basic('alice', PASSWORD) },
    });
    expect(res.statusCode).toBe(200);
    expect(res.headers['cache-control']).toBe('no-store');
    const body = res.json<TokenResponse>();
    expect(body.access_token).toBe(body.token);
    expect(body.expires_in).toBe(300);
    expect(Date.parse(body.issued_at)).not.toBeNaN();
    const claims = await claimsOf(body);
    expect(claims.sub).toBe('alice');
    expect(claims.iat).toBe(Date.parse(body.issued_at) / 1000);
    // alice/app: asked pull,push, allowed pull,push,delete -> pull,push (never the delete not asked).
    // public/base: asked pull,push, allowed pull,delete -> pull only.
    expect(claims.access).toEqual([
      { type: 'repository', name: 'alice/app', actions: ['pull', 'push'] },
      { type: 'repository', name: 'public/base', actions: ['pull'] },
    ]);
    expect(checks).toEqual([['alice', PASSWORD]]);
  });

  it('anonymous GET gets a public pull but not a push, and nothing private', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/token',
      query: { service, scope: ['repository:public/base:pull,push', 'repository:alice/app:pull'] },
    });
    expect(res.statusCode).toBe(200);
    const claims = await claimsOf(res.json<TokenResponse>());
    expect(claims.sub).toBe('');
    expect(claims.access).toEqual([{ type: 'repository', name: 'public/base', actions: ['pull'] }]);
    expect(checks).toEqual([]);
  });

  it('docker login (no scope) gets a token with no access', async () => {
    const res = await app.inject({
      method: 'GET',
      url: `/token?service=${service}&account=alice`,
      headers: { authorization: basic('alice', PASSWORD) },
    });
    expect(res.statusCode).toBe(200);
    expect((await claimsOf(res.json<TokenResponse>())).access).toEqual([]);
  });

  it('expands * into the concrete actions policy allows', async () => {
    const res = await app.inject({
      method: 'GET',
      url: '/token?scope=repository:alice/app:*',
      headers: { authorization: basic('alice', PASSWORD) },
    });
    expect((await claimsOf(res.json<TokenResponse>())).access).toEqual([
      { type: 'repository', name: 'alice/app', actions: ['pull', 'push', 'delete'] },
    ]);
  });

  it('grants the catalog to admins only by default', async () => {
    const asAlice = await app.inject({
      method: 'GET',
      url: '/token?scope=registry:catalog:*',
      headers: { authorization: basic('alice', PASSWORD) },
    });
    expect((await claimsOf(asAlice.json<TokenResponse>())).access).toEqual([]);
    const asRoot = await app.inject({
      method: 'GET',
      url: '/token?scope=registry:catalog:*',
      headers: { authorization: basic('root', PASSWORD) },
    });
    expect((await claimsOf(asRoot.json<TokenResponse>())).access).toEqual([
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
  });

  it('POST password grant answers like OAuth2, with the granted scope', async () => {
    const res = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({
        grant_type: 'password',
        username: 'alice',
        password: PASSWORD,
        service,
        client_id: 'docker',
        scope: 'repository:alice/app:pull,push repository:public/base:push',
      }),
    });
    expect(res.statusCode).toBe(200);
    const body = res.json<TokenResponse>();
    expect(body.scope).toBe('repository:alice/app:pull,push');
    expect(body.access_token).toBe(body.token);
    expect((await claimsOf(body)).access).toEqual([
      { type: 'repository', name: 'alice/app', actions: ['pull', 'push'] },
    ]);
  });

  it('POST refuses other grant types and missing fields', async () => {
    const refresh = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ grant_type: 'refresh_token', refresh_token: 'x', service }),
    });
    expect(refresh.statusCode).toBe(400);
    expect(refresh.json()).toMatchObject({
      error: 'unsupported_grant_type',
      errors: [{ code: 'UNSUPPORTED' }],
    });
    const missing = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ grant_type: 'password', username: 'alice' }),
    });
    expect(missing.statusCode).toBe(400);
    expect(missing.json()).toMatchObject({ error: 'invalid_request' });
  });

  it('wrong password is a 401 with an OCI error body that echoes no secret', async () => {
    const get = await app.inject({
      method: 'GET',
      url: '/token?scope=repository:alice/app:pull',
      headers: { authorization: basic('alice', 'hunter2-wrong') },
    });
    expect(get.statusCode).toBe(401);
    expect(get.json()).toEqual({
      errors: [{ code: 'UNAUTHORIZED', message: 'Invalid username or password.' }],
    });
    expect(get.headers['www-authenticate']).toMatch(/^Basic realm="registry\.example\.com"/);
    expect(get.body).not.toContain('hunter2');

    const post = await app.inject({
      method: 'POST',
      url: '/token',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ grant_type: 'password', username: 'alice', password: 'hunter2-wrong', service }),
    });
    expect(post.statusCode).toBe(401);
    expect(post.json()).toMatchObject({ errors: [{ code: 'UNAUTHORIZED' }], error: 'invalid_grant' });
    expect(post.body).not.toContain('hunter2');
  });

  it('refuses malformed credentials, foreign services and bad scopes', async () => {
    const garbled = await app.inject({
      method: 'GET',
      url: '/token',
      headers: { authorization: 'Basic !!!notbase64' },
    });
    expect(garbled.statusCode).toBe(401);
    const bearer = await app.inject({
      method: 'GET',
      url: '/token',
      headers: { authorization: 'Bearer abc' },
    });
    expect(bearer.statusCode).toBe(401);
    const foreign = await app.inject({ method: 'GET', url: '/token?service=evil.example.com' });
    expect(foreign.statusCode).toBe(400);
    expect(foreign.json()).toMatchObject({ errors: [{ code: 'SERVICE_INVALID' }] });
    const badScope = await app.inject({ method: 'GET', url: '/token?scope=repository:UPPER:pull' });
    expect(badScope.statusCode).toBe(400);
    expect(badScope.json()).toMatchObject({ errors: [{ code: 'SCOPE_INVALID' }] });
    expect(checks).toEqual([]);
  });

  it('rate limits after 5 failures with 429 and Retry-After, without checking the password', async () => {
    const attempt = (password: string, remoteAddress = '203.0.113.7') =>
      app.inject({
        method: 'GET',
        url: '/token',
        remoteAddress,
        headers: { authorization: basic('alice', password) },
      });
    for (let i = 0; i < 5; i++) expect((await attempt(`wrong${i}`)).statusCode).toBe(401);
    const locked = await attempt(PASSWORD);
    expect(locked.statusCode).toBe(429);
    expect(Number(locked.headers['retry-after'])).toBeGreaterThan(0);
    expect(Number(locked.headers['retry-after'])).toBeLessThanOrEqual(300);
    expect(locked.json()).toMatchObject({ errors: [{ code: 'TOOMANYREQUESTS' }] });
    expect(checks).toHaveLength(5); // the locked attempt never reached verifyCredentials
    // The same user from another address is not locked out.
    expect((await attempt(PASSWORD, '198.51.100.1')).statusCode).toBe(200);
    // POST counts against the same pair.
    const post = await app.inject({
      method: 'POST',
      url: '/token',
      remoteAddress: '203.0.113.7',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      payload: form({ grant_type: 'password', username: 'alice', password: PASSWORD }),
    });
    expect(post.statusCode).toBe(429);
  });

  it('a successful login resets the failure count', async () => {
    const attempt = (password: string) =>
      app.inject({ method: 'GET', url: '/token', headers: { authorization: basic('alice', password) } });
    for (let i = 0; i < 4; i++) expect((await attempt('wrong')).statusCode).toBe(401);
    expect((await attempt(PASSWORD)).statusCode).toBe(200);
    for (let i = 0; i < 4; i++) expect((await attempt('wrong')).statusCode).toBe(401);
    expect((await attempt(PASSWORD)).statusCode).toBe(200);
  });

  it('answers 500 without detail when the credential store fails', async () => {
    const broken = Fastify({ logger: false });
    await broken.register(tokenRoutes, {
      verifyCredentials: () => Promise.reject(new Error('db down')),
      grantedActions,
      key,
      service,
      issuer,
      rateLimiter: limiter,
    });
    const res = await broken.inject({
      method: 'GET',
      url: '/token',
      headers: { authorization: basic('alice', PASSWORD) },
    });
    expect(res.statusCode).toBe(500);
    expect(res.body).not.toContain('db down');
    expect(limiter.size).toBe(0);
    await broken.close();
  });
});
