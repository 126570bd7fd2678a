import { mkdtemp, readFile, rm, stat, chmod, writeFile, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { calculateJwkThumbprint } from 'jose';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AuthError } from '../../src/registry/auth/errors.js';
import { loadOrCreateSigningKey, publicJwks, signingKeyPath } from '../../src/registry/auth/keys.js';
import { issueToken, verifyToken } from '../../src/registry/auth/tokens.js';

describe('token signing key', () => {
  let dataDir: string;
  beforeEach(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'portcullis-auth-keys-'));
  });
  afterEach(async () => {
    await rm(dataDir, { recursive: true, force: true });
  });

  it('is generated on first use, saved with mode 0600, and reloads with the same kid', async () => {
    const first = await loadOrCreateSigningKey(dataDir);
    const path = signingKeyPath(dataDir);
    expect(path).toBe(join(dataDir, 'registry', 'token-key.json'));
    if (process.platform !== 'win32') expect((await stat(path)).mode & 0o777).toBe(0o600);

    const saved = JSON.parse(await readFile(path, 'utf8')) as { privateJwk: Record<string, string> };
    expect(saved.privateJwk).toMatchObject({ kty: 'EC', crv: 'P-256' });
    // The kid is the RFC 7638 thumbprint of the public key alone.
    const { kty, crv, x, y } = saved.privateJwk;
    expect(first.kid).toBe(await calculateJwkThumbprint({ kty, crv, x, y }, 'sha256'));

    const second = await loadOrCreateSigningKey(dataDir);
    expect(second.kid).toBe(first.kid);
    // A token signed before the "restart" verifies with the reloaded key.
    const opts = { service: 'reg', issuer: 'iss' };
    const token = await issueToken({ ...opts, subject: 'alice', access: [], key: first });
    await expect(verifyToken(token, { ...opts, key: second })).resolves.toMatchObject({ sub: 'alice' });
  });

  it('publishes only the public half', async () => {
    const key = await loadOrCreateSigningKey(dataDir);
    const jwks = publicJwks(key);
    expect(jwks.keys).toHaveLength(1);
    expect(jwks.keys[0]).toMatchObject({ kty: 'EC', crv: 'P-256', kid: key.kid, alg: 'ES256', use: 'sig' });
    expect(jwks.keys[0]).not.toHaveProperty('d');
  });

  it('gives one key to concurrent first uses', async () => {
    const keys = await Promise.all([1, 2, 3, 4].map(() => loadOrCreateSigningKey(dataDir)));
    expect(new Set(keys.map((k) => k.kid)).size).toBe(1);
  });

  it.skipIf(process.platform === 'win32')('refuses a key file others can read', async () => {
    await loadOrCreateSigningKey(dataDir);
    await chmod(signingKeyPath(dataDir), 0o644);
    await expect(loadOrCreateSigningKey(dataDir)).rejects.toThrow(/readable by others.*chmod 600/);
  });

  it('refuses a corrupt key file without quoting it', async () => {
    await mkdir(join(dataDir, 'registry'), { recursive: true });
    await writeFile(
      signingKeyPath(dataDir),
      '{"version":1,"alg":"ES256","privateJwk":{"kty":"RSA","d":"SECRETBITS"}}',
      {
        mode: 0o600,
      },
    );
    const err = await loadOrCreateSigningKey(dataDir).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AuthError);
    expect((err as AuthError).code).toBe('SIGNING_KEY_INVALID');
    expect((err as AuthError).message).not.toContain('SECRETBITS');
    expect((err as AuthError).cause).toBeUndefined();
  });
});
