import { createHash, createHmac, randomBytes, scrypt, timingSafeEqual, type ScryptOptions } from 'node:crypto';
import { PortcullisError } from '../errors.js';
import type { RegistryMetadata } from '../store/index.js';
import type { AuthRequest, Principal, RegistryAction, RegistryAuth } from './auth-hook.js';

// scrypt cost: N=2^15 takes ~50-100 ms here, expensive for guessing and fine for a login.
const SCRYPT = { N: 1 << 15, r: 8, p: 1, keylen: 32, maxmem: 64 * 1024 * 1024 };

function scryptAsync(password: string, salt: Buffer, keylen: number, options: ScryptOptions): Promise<Buffer> {
  return new Promise((res, rej) => scrypt(password, salt, keylen, options, (err, key) => (err ? rej(err) : res(key))));
}

/** `scrypt$N$r$p$<salt b64>$<key b64>`: parameters travel with the hash so they can be raised later. */
export async function hashPassword(password: string): Promise<string> {
  const salt = randomBytes(16);
  const key = await scryptAsync(password, salt, SCRYPT.keylen, { N: SCRYPT.N, r: SCRYPT.r, p: SCRYPT.p, maxmem: SCRYPT.maxmem });
  return `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${salt.toString('base64')}$${key.toString('base64')}`;
}

export async function verifyPassword(password: string, stored: string): Promise<boolean> {
  const parts = stored.split('$');
  if (parts.length !== 6 || parts[0] !== 'scrypt') return false;
  const [N, r, p] = parts.slice(1, 4).map(Number) as [number, number, number];
  const salt = Buffer.from(parts[4]!, 'base64');
  const expected = Buffer.from(parts[5]!, 'base64');
  if (!Number.isSafeInteger(N) || !Number.isSafeInteger(r) || !Number.isSafeInteger(p) || expected.length === 0) return false;
  const actual = await scryptAsync(password, salt, expected.length, { N, r, p, maxmem: SCRYPT.maxmem });
  return timingSafeEqual(actual, expected);
}

/**
 * A robot secret is 32 random bytes made by the server, never chosen by a person, so nothing about
 * it can be guessed faster than by trying 2^256 values: a slow KDF would add no protection, only
 * ~0.1 s of CPU and 32 MiB to every CI job's first login. One SHA-256 suffices, as for API tokens.
 */
export function hashRobotSecret(secret: string): string {
  return `sha256$${createHash('sha256').update(secret).digest('base64')}`;
}

/** Checks a robot secret against `hashRobotSecret`'s form, or against scrypt for robots created before it. */
export async function verifyRobotSecret(secret: string, stored: string): Promise<boolean> {
  if (!stored.startsWith('sha256$')) return verifyPassword(secret, stored);
  const expected = Buffer.from(stored.slice('sha256$'.length), 'base64');
  const actual = createHash('sha256').update(secret).digest();
  return expected.length === actual.length && timingSafeEqual(actual, expected);
}

/**
 * NIST SP 800-63B's floor for passwords a person chooses: at least 8 characters, and not the
 * account's own name; no composition rules, which it advises against. Generated passwords are
 * longer than this anyway.
 */
export const MIN_PASSWORD_LENGTH = 8;

/** Why a chosen password is too weak, or undefined when it is acceptable. */
export function passwordWeakness(name: string, password: string): string | undefined {
  if ([...password].length < MIN_PASSWORD_LENGTH) return `a password needs at least ${MIN_PASSWORD_LENGTH} characters`;
  if (password.toLowerCase() === name.toLowerCase()) return 'a password must not be the user name';
  return undefined;
}

/**
 * Creates the `admin` user on first start. The password is PORTCULLIS_ADMIN_PASSWORD when set
 * (held to the same floor as `user passwd`: an administrator account is the last one to leave
 * guessable), otherwise random; a generated one is returned so the caller can show it once
 * (never log it). On a later start the variable changes nothing; `envPasswordIgnored` says when
 * it is set to something admin's password is not, so the caller can say so rather than leave the
 * user to find out from a failed login.
 */
export async function ensureAdminUser(
  metadata: RegistryMetadata,
  env: NodeJS.ProcessEnv = process.env,
): Promise<{ created: boolean; generatedPassword?: string; envPasswordIgnored?: boolean }> {
  if ((await metadata.countUsers()) > 0) {
    const fromEnv = env.PORTCULLIS_ADMIN_PASSWORD;
    if (!fromEnv) return { created: false };
    const admin = await metadata.getUser('admin');
    const same = admin !== null && (await verifyPassword(fromEnv, admin.passwordHash));
    return same ? { created: false } : { created: false, envPasswordIgnored: true };
  }
  const fromEnv = env.PORTCULLIS_ADMIN_PASSWORD;
  const weakness = fromEnv ? passwordWeakness('admin', fromEnv) : undefined;
  if (weakness) throw new PortcullisError('PASSWORD_WEAK', `PORTCULLIS_ADMIN_PASSWORD: ${weakness}; the admin account was not created`);
  const password = fromEnv && fromEnv.length > 0 ? fromEnv : randomBytes(18).toString('base64url');
  await metadata.putUser({ name: 'admin', passwordHash: await hashPassword(password), admin: true });
  return fromEnv ? { created: true } : { created: true, generatedPassword: password };
}

/** Parses `Authorization: Basic ...`; undefined for anything else. */
export function parseBasicAuthorization(header: string | undefined): { user: string; password: string } | undefined {
  if (!header) return undefined;
  const m = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

const CACHE_TTL_MS = 60_000;
const CACHE_MAX = 1000;

export interface BasicAuthOptions {
  realm?: string;
}

/**
 * HTTP Basic authentication against the registry's users. A push makes dozens of requests, each
 * with the same header, and scrypt is deliberately slow, so successful checks are remembered for a
 * minute under an HMAC of the header (with a per-process key: the cache never holds a password).
 */
export function basicAuth(metadata: RegistryMetadata, options: BasicAuthOptions = {}): RegistryAuth {
  const realm = options.realm ?? 'portcullis';
  // Pure: it changes nothing, so it is authorize and permits both.
  const allows = (principal: Principal, _repo: string, actions: RegistryAction[]): boolean => {
    if (principal.kind === 'anonymous') return false;
    if (principal.admin) return true;
    // Until roles exist, every user may pull and push but only admins delete.
    return actions.every((a) => a === 'pull' || a === 'push');
  };
  const cacheKey = randomBytes(32);
  const cache = new Map<string, { principal: Principal; expires: number }>();

  return {
    async authenticate(req: AuthRequest): Promise<Principal | null> {
      const raw = req.headers.authorization;
      const header = Array.isArray(raw) ? raw[0] : raw;
      const creds = parseBasicAuthorization(header);
      if (!creds || !header) return null;
      const key = createHmac('sha256', cacheKey).update(header).digest('hex');
      const hit = cache.get(key);
      if (hit && hit.expires > Date.now()) return hit.principal;
      const user = await metadata.getUser(creds.user);
      // Unknown users still pay for one scrypt so timing does not reveal which names exist.
      const ok = user
        ? await verifyPassword(creds.password, user.passwordHash)
        : (await verifyPassword(creds.password, DUMMY_HASH), false);
      if (!user || !ok) return null;
      const principal: Principal = { name: user.name, kind: 'user', admin: user.admin };
      if (cache.size >= CACHE_MAX) cache.clear();
      cache.set(key, { principal, expires: Date.now() + CACHE_TTL_MS });
      return principal;
    },
    authorize: allows,
    permits: allows,
    challenge(): string {
      return `Basic realm="${realm}"`;
    },
  };
}

// A valid hash of a random secret nobody knows, for the unknown-user path.
const DUMMY_HASH = `scrypt$${SCRYPT.N}$${SCRYPT.r}$${SCRYPT.p}$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;
