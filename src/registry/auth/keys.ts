import { randomBytes } from 'node:crypto';
import { chmod, link, mkdir, readFile, stat, unlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  calculateJwkThumbprint,
  exportJWK,
  generateKeyPair,
  importJWK,
  type CryptoKey,
  type JWK,
} from 'jose';
import { z } from 'zod';
import { AuthError } from './errors.js';

export const TOKEN_KEY_ALG = 'ES256';

/** The registry's token signing key: the private half signs, the public half verifies. */
export interface SigningKey {
  alg: typeof TOKEN_KEY_ALG;
  /** RFC 7638 thumbprint of the public key; tokens carry it in their `kid` header. */
  kid: string;
  privateKey: CryptoKey;
  publicKey: CryptoKey;
  /** The public key as a JWK (with `kid`, `alg`, `use`), fit for a JWKS document. */
  publicJwk: JWK;
}

const KEY_FILE_VERSION = 1;

// What we write: the private JWK holds the public coordinates too, so one key is enough. The
// version leaves room for rotation (several keys) without guessing at the file's shape later.
const KeyFileSchema = z.object({
  version: z.literal(KEY_FILE_VERSION),
  alg: z.literal(TOKEN_KEY_ALG),
  privateJwk: z.object({
    kty: z.literal('EC'),
    crv: z.literal('P-256'),
    x: z.string().min(1),
    y: z.string().min(1),
    d: z.string().min(1),
  }),
});

/** `<dataDir>/registry/token-key.json`. */
export function signingKeyPath(dataDir: string): string {
  return join(dataDir, 'registry', 'token-key.json');
}

/**
 * Loads the token signing key from `<dataDir>/registry/token-key.json`, generating and saving it on
 * first use. The key must survive restarts: tokens handed out before a restart stay valid, and so
 * does any verifier that pinned the public key. Refuses a key file that others can read, the way
 * ssh does, rather than silently using a key that may have leaked.
 */
export async function loadOrCreateSigningKey(dataDir: string): Promise<SigningKey> {
  const path = signingKeyPath(dataDir);
  const existing = await readKeyFile(path);
  if (existing) return existing;
  await mkdir(join(dataDir, 'registry'), { recursive: true, mode: 0o700 });
  const { privateKey } = await generateKeyPair(TOKEN_KEY_ALG, { extractable: true });
  const { kty, crv, x, y, d } = await exportJWK(privateKey);
  const body = { version: KEY_FILE_VERSION, alg: TOKEN_KEY_ALG, privateJwk: { kty, crv, x, y, d } };
  // Write under a private temporary name, then link it into place: link fails if the file exists,
  // so when two processes start at once exactly one key wins and both end up using it. The file is
  // born with mode 0600 (a umask can only narrow that), so the private key is never readable by
  // others, not even briefly; the chmod restores owner read should an odd umask have removed it.
  const tmp = `${path}.${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
  try {
    await writeFile(tmp, `${JSON.stringify(body, null, 2)}\n`, { mode: 0o600, flag: 'wx' });
    await chmod(tmp, 0o600);
    await link(tmp, path);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') {
      throw new AuthError('SIGNING_KEY_INVALID', `Cannot save the token signing key to ${path}.`, {
        subject: path,
        cause: err,
      });
    }
  } finally {
    await unlink(tmp).catch(() => undefined);
  }
  const saved = await readKeyFile(path);
  if (!saved)
    throw new AuthError('SIGNING_KEY_INVALID', `The token signing key ${path} vanished after saving.`);
  return saved;
}

async function readKeyFile(path: string): Promise<SigningKey | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw new AuthError('SIGNING_KEY_INVALID', `Cannot read the token signing key ${path}.`, {
      subject: path,
      cause: err,
    });
  }
  // Windows has no POSIX modes to check; everywhere else a group- or world-readable key is refused.
  if (process.platform !== 'win32') {
    const { mode } = await stat(path);
    if ((mode & 0o077) !== 0) {
      throw new AuthError(
        'SIGNING_KEY_INVALID',
        `The token signing key ${path} is readable by others (mode ${(mode & 0o777).toString(8)}); ` +
          `run chmod 600 on it, or delete it to have a new key generated (outstanding tokens then stop working).`,
        { subject: path },
      );
    }
  }
  let parsed: z.infer<typeof KeyFileSchema>;
  try {
    parsed = KeyFileSchema.parse(JSON.parse(text));
  } catch {
    // No cause: the parse error could quote parts of the private key.
    throw new AuthError(
      'SIGNING_KEY_INVALID',
      `The token signing key ${path} is not a P-256 private key in the expected format; ` +
        `delete it to have a new one generated (outstanding tokens then stop working).`,
      { subject: path },
    );
  }
  return signingKeyFromJwk(parsed.privateJwk);
}

/** Builds a SigningKey from a private EC P-256 JWK (used by the loader and by tests). */
export async function signingKeyFromJwk(privateJwk: JWK): Promise<SigningKey> {
  const { kty, crv, x, y } = privateJwk;
  const publicOnly: JWK = { kty, crv, x, y };
  let privateKey: CryptoKey;
  let publicKey: CryptoKey;
  try {
    privateKey = (await importJWK({ ...privateJwk, ext: false }, TOKEN_KEY_ALG)) as CryptoKey;
    publicKey = (await importJWK(publicOnly, TOKEN_KEY_ALG)) as CryptoKey;
  } catch {
    throw new AuthError('SIGNING_KEY_INVALID', 'The token signing key is not a usable P-256 key.');
  }
  const kid = await calculateJwkThumbprint(publicOnly, 'sha256');
  return {
    alg: TOKEN_KEY_ALG,
    kid,
    privateKey,
    publicKey,
    publicJwk: { ...publicOnly, kid, alg: TOKEN_KEY_ALG, use: 'sig' },
  };
}

/** A JWKS document with the public key, for anything outside this process that verifies tokens. */
export function publicJwks(key: SigningKey): { keys: JWK[] } {
  return { keys: [key.publicJwk] };
}
