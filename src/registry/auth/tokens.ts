import { randomUUID } from 'node:crypto';
import { SignJWT, errors as joseErrors, jwtVerify } from 'jose';
import { z } from 'zod';
import { AuthError } from './errors.js';
import { TOKEN_KEY_ALG, type SigningKey } from './keys.js';
import { normaliseActions } from './scope.js';
import type { AccessEntry, Principal } from './types.js';

export const DEFAULT_TOKEN_TTL_SECONDS = 300;
// A registry token is short-lived by design; a day is far beyond any sane configuration.
const MAX_TOKEN_TTL_SECONDS = 24 * 60 * 60;
// Real tokens are well under 2 KiB even with a few dozen scopes; refuse big ones before parsing.
const MAX_TOKEN_LENGTH = 16 * 1024;

export interface IssueTokenOptions {
  /** The principal's name; empty for anonymous callers, as the token spec asks. */
  subject: string;
  /** Kept in a private `kind` claim so a bearer principal says whether it is a user or a robot. */
  subjectKind?: Principal['kind'];
  access: AccessEntry[];
  /** The registry's service name; becomes the audience. */
  service: string;
  issuer: string;
  ttlSeconds?: number;
  key: SigningKey;
  /** The issue time; defaults to now. The token endpoint passes it to report `issued_at` exactly. */
  now?: Date;
  /** Kept in a private `cred` claim: see Principal.credential. */
  credential?: string;
}

export interface TokenClaims {
  iss: string;
  sub: string;
  aud: string;
  exp: number;
  nbf: number;
  iat: number;
  jti: string;
  access: AccessEntry[];
  kind?: Principal['kind'];
  cred?: string;
}

/** Signs a registry token: a compact JWS (ES256) with the Docker token spec's claims. */
export async function issueToken(options: IssueTokenOptions): Promise<string> {
  const ttl = options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;
  if (!Number.isInteger(ttl) || ttl <= 0 || ttl > MAX_TOKEN_TTL_SECONDS) {
    throw new AuthError(
      'TOKEN_TTL_INVALID',
      `Token lifetime must be 1 to ${MAX_TOKEN_TTL_SECONDS} seconds, got ${ttl}.`,
    );
  }
  const iat = Math.floor((options.now ?? new Date()).getTime() / 1000);
  const access = options.access.map((a) => ({
    type: a.type,
    name: a.name,
    actions: normaliseActions(a.actions),
  }));
  const payload: Record<string, unknown> = { access };
  if (options.subjectKind !== undefined) payload.kind = options.subjectKind;
  if (options.credential !== undefined) payload.cred = options.credential;
  return new SignJWT(payload)
    .setProtectedHeader({ alg: TOKEN_KEY_ALG, typ: 'JWT', kid: options.key.kid })
    .setIssuer(options.issuer)
    .setSubject(options.subject)
    .setAudience(options.service)
    .setIssuedAt(iat)
    .setNotBefore(iat)
    .setExpirationTime(iat + ttl)
    .setJti(randomUUID())
    .sign(options.key.privateKey);
}

export interface VerifyTokenOptions {
  key: SigningKey;
  service: string;
  issuer: string;
  /** Allowed clock skew for `exp`, `nbf` and `iat`; default 30 seconds. */
  clockToleranceSec?: number;
  /** The time to check against; defaults to now. */
  now?: Date;
}

const AccessSchema = z.array(
  z.object({ type: z.string(), name: z.string(), actions: z.array(z.string()) }).transform((a) => ({
    // Rebuilt so that unknown members of an entry never reach the authorisation code.
    type: a.type,
    name: a.name,
    actions: a.actions,
  })),
);
const ClaimsSchema = z.object({
  iss: z.string(),
  sub: z.string(),
  aud: z.union([z.string(), z.array(z.string())]),
  exp: z.number(),
  nbf: z.number(),
  iat: z.number(),
  jti: z.string(),
  access: AccessSchema,
  kind: z.enum(['user', 'robot', 'anonymous']).optional(),
  cred: z.string().max(64).optional(),
});

/**
 * Verifies a registry token and returns its claims. Only ES256 is accepted, so `alg: none` and
 * HMAC tokens made with the public key as a secret are refused before any signature check.
 * Throws AuthError with a `TOKEN_*` code; messages never quote the token.
 */
export async function verifyToken(token: string, options: VerifyTokenOptions): Promise<TokenClaims> {
  if (token.length > MAX_TOKEN_LENGTH) throw new AuthError('TOKEN_INVALID', 'The token is too long.');
  let payload: unknown;
  try {
    ({ payload } = await jwtVerify(token, options.key.publicKey, {
      algorithms: [TOKEN_KEY_ALG],
      audience: options.service,
      issuer: options.issuer,
      clockTolerance: options.clockToleranceSec ?? 30,
      requiredClaims: ['iss', 'sub', 'aud', 'exp', 'nbf', 'iat', 'jti'],
      currentDate: options.now,
    }));
  } catch (err) {
    throw describeJoseFailure(err, options);
  }
  const parsed = ClaimsSchema.safeParse(payload);
  if (!parsed.success) {
    throw new AuthError(
      'TOKEN_INVALID',
      'The token claims are malformed (the access list or a required claim).',
    );
  }
  const c = parsed.data;
  return {
    iss: c.iss,
    sub: c.sub,
    aud: options.service,
    exp: c.exp,
    nbf: c.nbf,
    iat: c.iat,
    jti: c.jti,
    access: c.access,
    ...(c.kind === undefined ? {} : { kind: c.kind }),
    ...(c.cred === undefined ? {} : { cred: c.cred }),
  };
}

function describeJoseFailure(err: unknown, options: VerifyTokenOptions): AuthError {
  // Causes are kept off these errors: some jose messages echo header or claim values.
  if (err instanceof joseErrors.JWTExpired) {
    return new AuthError(
      'TOKEN_EXPIRED',
      'The token has expired; request a new one from the token endpoint.',
    );
  }
  if (err instanceof joseErrors.JWTClaimValidationFailed) {
    switch (err.claim) {
      case 'aud':
        return new AuthError(
          'TOKEN_AUDIENCE_INVALID',
          `The token was not issued for service "${options.service}".`,
        );
      case 'iss':
        return new AuthError('TOKEN_ISSUER_INVALID', `The token was not issued by "${options.issuer}".`);
      case 'nbf':
      case 'iat':
        return new AuthError('TOKEN_NOT_YET_VALID', 'The token is not valid yet (check the clocks).');
      default:
        return new AuthError('TOKEN_INVALID', `The token's "${err.claim}" claim is missing or invalid.`);
    }
  }
  if (err instanceof joseErrors.JOSEAlgNotAllowed) {
    return new AuthError('TOKEN_ALGORITHM_INVALID', `The token is not signed with ${TOKEN_KEY_ALG}.`);
  }
  if (err instanceof joseErrors.JWSSignatureVerificationFailed) {
    return new AuthError(
      'TOKEN_SIGNATURE_INVALID',
      'The token signature does not verify against the registry key.',
    );
  }
  return new AuthError('TOKEN_INVALID', 'The token is not a well-formed signed JWT.');
}
