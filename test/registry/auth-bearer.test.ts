import { exportJWK, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { parseAuthChallenges } from '../../src/oci/registry.js';
import { bearerAuth, grantAllows, type BearerAuthProvider } from '../../src/registry/auth/bearer.js';
import { signingKeyFromJwk, type SigningKey } from '../../src/registry/auth/keys.js';
import { LoginRateLimiter } from '../../src/registry/auth/rate-limit.js';
import { issueToken } from '../../src/registry/auth/tokens.js';
import type {
  AuthProvider,
  Principal,
  RegistryAction,
  TokenPrincipal,
} from '../../src/registry/auth/types.js';

const service = 'registry.example.com';
const issuer = 'portcullis';
const realm = 'https://registry.example.com/token';

async function memoryKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return signingKeyFromJwk(await exportJWK(privateKey));
}

function basic(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`, 'utf8').toString('base64')}`;
}

describe('bearerAuth provider', () => {
  let key: SigningKey;
  let provider: BearerAuthProvider;
  const basicCalls: string[] = [];
  const authorizeBasicCalls: Array<[string, string, RegistryAction[]]> = [];

  beforeAll(async () => {
    key = await memoryKey();
    provider = bearerAuth({
      key,
      service,
      issuer,
      realm,
      basicFallback: async (user, password) => {
        basicCalls.push(user);
        return user === 'ci' && password === 'pw' ? { name: 'ci', kind: 'robot' } : null;
      },
      authorizeBasic: (principal, repo, actions) => {
        authorizeBasicCalls.push([principal.name, repo, actions]);
        return principal.name === 'ci' && repo === 'ci/app';
      },
    });
  });

  const token = (
    subject: string,
    access: Array<{ type: string; name: string; actions: string[] }>,
    kind?: Principal['kind'],
  ) => issueToken({ subject, subjectKind: kind, access, service, issuer, key });

  it('authenticates a bearer token and keeps its grants on the principal', async () => {
    const jwt = await token(
      'alice',
      [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }],
      'user',
    );
    const principal = (await provider.authenticate({
      headers: { authorization: `Bearer ${jwt}` },
    })) as TokenPrincipal;
    expect(principal).toEqual({
      name: 'alice',
      kind: 'user',
      grants: [{ type: 'repository', name: 'alice/app', actions: ['pull', 'push'] }],
    });
    expect(principal.admin).toBeUndefined();
    expect(provider.authorize(principal, 'alice/app', ['pull'])).toBe(true);
    expect(provider.authorize(principal, 'alice/app', ['pull', 'push'])).toBe(true);
    expect(provider.authorize(principal, 'alice/app', ['delete'])).toBe(false);
    expect(provider.authorize(principal, 'alice/app', ['pull', 'delete'])).toBe(false);
    expect(provider.authorize(principal, 'alice/other', ['pull'])).toBe(false);
    expect(provider.authorize(principal, 'alice/app', [])).toBe(false);
    expect(authorizeBasicCalls).toEqual([]);
  });

  it('maps the subject to the principal kind', async () => {
    const anon = await provider.authenticate({ headers: { authorization: `Bearer ${await token('', [])}` } });
    expect(anon).toMatchObject({ name: 'anonymous', kind: 'anonymous', grants: [] });
    const robot = await provider.authenticate({
      headers: { authorization: `Bearer ${await token('ci', [], 'robot')}` },
    });
    expect(robot).toMatchObject({ name: 'ci', kind: 'robot' });
    // A token without the private kind claim (another issuer's format) is a user.
    const plain = await provider.authenticate({
      headers: { authorization: `Bearer ${await token('bob', [])}` },
    });
    expect(plain).toMatchObject({ name: 'bob', kind: 'user' });
  });

  it('returns null for missing, malformed, expired and foreign tokens', async () => {
    expect(await provider.authenticate({ headers: {} })).toBeNull();
    expect(await provider.authenticate({ headers: { authorization: 'Bearer not.a.jwt' } })).toBeNull();
    expect(await provider.authenticate({ headers: { authorization: 'Bearer' } })).toBeNull();
    expect(await provider.authenticate({ headers: { authorization: ['Bearer a', 'Bearer b'] } })).toBeNull();
    expect(await provider.authenticate({ headers: { authorization: 'Digest abc' } })).toBeNull();
    const expired = await issueToken({
      subject: 'alice',
      access: [],
      service,
      issuer,
      key,
      now: new Date(Date.now() - 3600_000),
    });
    expect(await provider.authenticate({ headers: { authorization: `Bearer ${expired}` } })).toBeNull();
    const otherAudience = await issueToken({
      subject: 'alice',
      access: [],
      service: 'elsewhere',
      issuer,
      key,
    });
    expect(await provider.authenticate({ headers: { authorization: `Bearer ${otherAudience}` } })).toBeNull();
    const otherKey = await issueToken({
      subject: 'alice',
      access: [],
      service,
      issuer,
      key: await memoryKey(),
    });
    expect(await provider.authenticate({ headers: { authorization: `Bearer ${otherKey}` } })).toBeNull();
  });

  it('honours * grants like the distribution registry', () => {
    const grants = [{ type: 'repository', name: 'a', actions: ['*'] }];
    expect(grantAllows(grants, 'repository', 'a', ['pull', 'push', 'delete'])).toBe(true);
    expect(grantAllows(grants, 'repository', 'b', ['pull'])).toBe(false);
    expect(
      grantAllows([{ type: 'registry', name: 'catalog', actions: ['*'] }], 'registry', 'catalog', ['*']),
    ).toBe(true);
  });

  it('falls back to Basic and delegates its authorisation', async () => {
    const principal = await provider.authenticate({ headers: { authorization: basic('ci', 'pw') } });
    expect(principal).toEqual({ name: 'ci', kind: 'robot' });
    expect(provider.authorize(principal as Principal, 'ci/app', ['push'])).toBe(true);
    expect(provider.authorize(principal as Principal, 'other', ['pull'])).toBe(false);
    expect(authorizeBasicCalls).toEqual([
      ['ci', 'ci/app', ['push']],
      ['ci', 'other', ['pull']],
    ]);
    expect(await provider.authenticate({ headers: { authorization: basic('ci', 'wrong') } })).toBeNull();
  });

  it('does not let a Basic principal smuggle in grants', async () => {
    const sneaky = bearerAuth({
      key,
      service,
      issuer,
      realm,
      basicFallback: async () =>
        ({
          name: 'x',
          kind: 'user',
          grants: [{ type: 'repository', name: 'r', actions: ['push'] }],
        }) as Principal,
    });
    const principal = await sneaky.authenticate({ headers: { authorization: basic('x', 'y') } });
    expect(principal).toEqual({ name: 'x', kind: 'user' });
    // No authorizeBasic: principals without a token may do nothing.
    expect(sneaky.authorize(principal as Principal, 'r', ['push'])).toBe(false);
  });

  it('ignores Basic without a fallback', async () => {
    const strict = bearerAuth({ key, service, issuer, realm });
    expect(await strict.authenticate({ headers: { authorization: basic('ci', 'pw') } })).toBeNull();
  });

  it('rate limits Basic fallback per client and user', async () => {
    const limiter = new LoginRateLimiter({ maxFailures: 2 });
    let calls = 0;
    const limited = bearerAuth({
      key,
      service,
      issuer,
      realm,
      rateLimiter: limiter,
      basicFallback: async (_u, p) => {
        calls++;
        return p === 'pw' ? { name: 'u', kind: 'user' } : null;
      },
    });
    const req = (password: string) => ({ ip: '192.0.2.1', headers: { authorization: basic('u', password) } });
    expect(await limited.authenticate(req('bad'))).toBeNull();
    expect(await limited.authenticate(req('bad'))).toBeNull();
    // Locked: the password is not even checked, and the caller is told to wait, not that it is wrong.
    await expect(limited.authenticate(req('pw'))).rejects.toMatchObject({
      code: 'TOOMANYREQUESTS',
      status: 429,
    });
    expect(calls).toBe(2);
    // Another address with the same user is not locked.
    expect(await limited.authenticate({ ...req('pw'), ip: '192.0.2.2' })).toMatchObject({ name: 'u' });
  });

  it('challenges with the scope for the repository and actions', () => {
    const header = provider.challenge('team/app', ['push', 'pull']);
    expect(header).toBe(
      'Bearer realm="https://registry.example.com/token",service="registry.example.com",scope="repository:team/app:pull,push"',
    );
    expect(parseAuthChallenges(header)[0]?.params).toEqual({
      realm,
      service,
      scope: 'repository:team/app:pull,push',
    });
    // The provider is the plain hook too: the extra challenge argument is optional.
    const hook: AuthProvider = provider;
    expect(hook.challenge(undefined, [])).toBe(
      'Bearer realm="https://registry.example.com/token",service="registry.example.com"',
    );
    expect(provider.challenge('localhost:5000/app', ['pull'])).toContain(
      'scope="repository:localhost:5000/app:pull"',
    );
    expect(provider.challenge('team/app', ['push'], { error: 'insufficient_scope' })).toBe(
      'Bearer realm="https://registry.example.com/token",service="registry.example.com",scope="repository:team/app:push",error="insufficient_scope"',
    );
    // Never throws, even for a name that cannot go in a header.
    expect(provider.challenge('bad\r\nname', ['pull'])).not.toContain('\n');
  });
});
