import { SignJWT, base64url, decodeProtectedHeader, exportJWK, generateKeyPair } from 'jose';
import { beforeAll, describe, expect, it } from 'vitest';
import { AuthError } from '../../src/registry/auth/errors.js';
import { signingKeyFromJwk, type SigningKey } from '../../src/registry/auth/keys.js';
import { issueToken, verifyToken } from '../../src/registry/auth/tokens.js';

async function memoryKey(): Promise<SigningKey> {
  const { privateKey } = await generateKeyPair('ES256', { extractable: true });
  return signingKeyFromJwk(await exportJWK(privateKey));
}

async function codeOf(promise: Promise<unknown>): Promise<string> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(AuthError);
  return (err as AuthError).code;
}

const service = 'registry.example.com';
const issuer = 'portcullis-token-issuer';
const access = [{ type: 'repository', name: 'team/app', actions: ['push', 'pull'] }];

describe('registry tokens', () => {
  let key: SigningKey;
  let otherKey: SigningKey;
  beforeAll(async () => {
    key = await memoryKey();
    otherKey = await memoryKey();
  });

  it('round-trips the Docker token claims', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const token = await issueToken({ subject: 'alice', access, service, issuer, key, now, ttlSeconds: 120 });
    expect(token.split('.')).toHaveLength(3);
    expect(decodeProtectedHeader(token)).toEqual({ alg: 'ES256', typ: 'JWT', kid: key.kid });
    const claims = await verifyToken(token, { key, service, issuer, now: new Date('2030-01-01T00:01:00Z') });
    const iat = now.getTime() / 1000;
    expect(claims).toMatchObject({ iss: issuer, sub: 'alice', aud: service, iat, nbf: iat, exp: iat + 120 });
    expect(claims.access).toEqual([{ type: 'repository', name: 'team/app', actions: ['pull', 'push'] }]);
    expect(claims.jti).toMatch(/^[0-9a-f-]{36}$/);
  });

  it('carries the credential fingerprint it is given, and none otherwise', async () => {
    const withCred = await verifyToken(
      await issueToken({
        subject: 'robot$team+ci',
        subjectKind: 'robot',
        access,
        service,
        issuer,
        key,
        credential: 'abc123',
      }),
      { key, service, issuer },
    );
    expect(withCred.cred).toBe('abc123');
    const without = await verifyToken(await issueToken({ subject: 'alice', access, service, issuer, key }), {
      key,
      service,
      issuer,
    });
    expect('cred' in without).toBe(false);
  });

  it('gives every token its own jti', async () => {
    const a = await verifyToken(await issueToken({ subject: 'a', access, service, issuer, key }), {
      key,
      service,
      issuer,
    });
    const b = await verifyToken(await issueToken({ subject: 'a', access, service, issuer, key }), {
      key,
      service,
      issuer,
    });
    expect(a.jti).not.toBe(b.jti);
  });

  it('defaults to five minutes and refuses absurd lifetimes', async () => {
    const claims = await verifyToken(await issueToken({ subject: 'a', access, service, issuer, key }), {
      key,
      service,
      issuer,
    });
    expect(claims.exp - claims.iat).toBe(300);
    expect(await codeOf(issueToken({ subject: 'a', access, service, issuer, key, ttlSeconds: 0 }))).toBe(
      'TOKEN_TTL_INVALID',
    );
    expect(await codeOf(issueToken({ subject: 'a', access, service, issuer, key, ttlSeconds: 1e9 }))).toBe(
      'TOKEN_TTL_INVALID',
    );
  });

  it('refuses an expired token, allowing the clock tolerance', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const token = await issueToken({ subject: 'a', access, service, issuer, key, now, ttlSeconds: 60 });
    const later = new Date('2030-01-01T00:01:20Z'); // 20 s past expiry
    await expect(
      verifyToken(token, { key, service, issuer, now: later, clockToleranceSec: 30 }),
    ).resolves.toBeTruthy();
    const err = await verifyToken(token, { key, service, issuer, now: later, clockToleranceSec: 0 }).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('TOKEN_EXPIRED');
    expect((err as AuthError).message).toMatch(/expired/);
    expect((err as AuthError).message).not.toContain(token.split('.')[1]);
  });

  it('refuses a token that is not valid yet', async () => {
    const token = await issueToken({
      subject: 'a',
      access,
      service,
      issuer,
      key,
      now: new Date('2030-01-01T01:00:00Z'),
    });
    expect(
      await codeOf(verifyToken(token, { key, service, issuer, now: new Date('2030-01-01T00:00:00Z') })),
    ).toBe('TOKEN_NOT_YET_VALID');
  });

  it('refuses the wrong audience and the wrong issuer', async () => {
    const token = await issueToken({ subject: 'a', access, service, issuer, key });
    expect(await codeOf(verifyToken(token, { key, service: 'other.example.com', issuer }))).toBe(
      'TOKEN_AUDIENCE_INVALID',
    );
    expect(await codeOf(verifyToken(token, { key, service, issuer: 'someone-else' }))).toBe(
      'TOKEN_ISSUER_INVALID',
    );
  });

  it('refuses a token signed by another key', async () => {
    const token = await issueToken({ subject: 'a', access, service, issuer, key: otherKey });
    expect(await codeOf(verifyToken(token, { key, service, issuer }))).toBe('TOKEN_SIGNATURE_INVALID');
  });

  it('refuses tampered claims and a tampered signature', async () => {
    const token = await issueToken({ subject: 'bob', access: [], service, issuer, key });
    const [header, payload, signature] = token.split('.') as [string, string, string];
    // Grant ourselves push: the signature no longer matches.
    const claims = JSON.parse(new TextDecoder().decode(base64url.decode(payload))) as Record<string, unknown>;
    claims.access = [{ type: 'repository', name: 'team/app', actions: ['push'] }];
    const forged = `${header}.${base64url.encode(JSON.stringify(claims))}.${signature}`;
    expect(await codeOf(verifyToken(forged, { key, service, issuer }))).toBe('TOKEN_SIGNATURE_INVALID');
    const sigBytes = base64url.decode(signature);
    sigBytes[10] = (sigBytes[10] as number) ^ 0xff;
    const badSig = `${header}.${payload}.${base64url.encode(sigBytes)}`;
    expect(await codeOf(verifyToken(badSig, { key, service, issuer }))).toBe('TOKEN_SIGNATURE_INVALID');
  });

  it('refuses alg none and HMAC tokens keyed with the public key', async () => {
    const claims = {
      iss: issuer,
      sub: 'mallory',
      aud: service,
      iat: Math.floor(Date.now() / 1000),
      nbf: Math.floor(Date.now() / 1000),
      exp: Math.floor(Date.now() / 1000) + 300,
      jti: 'x',
      access: [{ type: 'repository', name: 'team/app', actions: ['push'] }],
    };
    const unsigned = `${base64url.encode(JSON.stringify({ alg: 'none', typ: 'JWT' }))}.${base64url.encode(JSON.stringify(claims))}.`;
    expect(await codeOf(verifyToken(unsigned, { key, service, issuer }))).toBe('TOKEN_ALGORITHM_INVALID');

    const secret = new TextEncoder().encode(JSON.stringify(key.publicJwk));
    const hmac = await new SignJWT(claims).setProtectedHeader({ alg: 'HS256' }).sign(secret);
    expect(await codeOf(verifyToken(hmac, { key, service, issuer }))).toBe('TOKEN_ALGORITHM_INVALID');
  });

  it('refuses garbage and malformed access claims', async () => {
    expect(await codeOf(verifyToken('not-a-jwt', { key, service, issuer }))).toBe('TOKEN_INVALID');
    expect(await codeOf(verifyToken('a'.repeat(20_000), { key, service, issuer }))).toBe('TOKEN_INVALID');
    const bad = await new SignJWT({ access: 'everything' })
      .setProtectedHeader({ alg: 'ES256' })
      .setIssuer(issuer)
      .setSubject('a')
      .setAudience(service)
      .setIssuedAt()
      .setNotBefore('0s')
      .setExpirationTime('5m')
      .setJti('j')
      .sign(key.privateKey);
    expect(await codeOf(verifyToken(bad, { key, service, issuer }))).toBe('TOKEN_INVALID');
  });
});
