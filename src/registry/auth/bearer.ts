import { RegistryError } from '../errors.js';
import { parseAuthorization } from './credentials.js';
import type { SigningKey } from './keys.js';
import { LoginBusyError, type LoginRateLimiter } from './rate-limit.js';
import { buildBearerChallenge, normaliseActions, type Scope } from './scope.js';
import { verifyToken } from './tokens.js';
import {
  ANONYMOUS,
  type AccessEntry,
  type AuthProvider,
  type AuthRequest,
  type Principal,
  type RegistryAction,
  type TokenPrincipal,
} from './types.js';

export type ChallengeError = 'insufficient_scope' | 'invalid_token';

type Claims = Awaited<ReturnType<typeof verifyToken>>;

/** Verified tokens by their exact text, bounded, each dropped once its `exp` has passed. */
class VerifiedTokenCache {
  private readonly entries = new Map<string, Claims>();
  constructor(private readonly max = 2_000) {}

  async get(token: string, verify: () => Promise<Claims>): Promise<Claims> {
    const hit = this.entries.get(token);
    const now = Math.floor(Date.now() / 1000);
    if (hit && (hit.exp === undefined || hit.exp > now)) return hit;
    if (hit) this.entries.delete(token);
    const claims = await verify();
    if (this.entries.size >= this.max) this.entries.delete(this.entries.keys().next().value as string);
    this.entries.set(token, claims);
    return claims;
  }
}

export interface BearerAuthOptions {
  key: SigningKey;
  service: string;
  issuer: string;
  /** The full URL of the token endpoint, e.g. `https://registry.example.com/token`. */
  realm: string;
  clockToleranceSec?: number;
  /**
   * Accept `Authorization: Basic` on registry requests too, for clients that do not do the token
   * dance. Without it Basic credentials are ignored (the request is treated as anonymous).
   */
  basicFallback?: (username: string, password: string, clientIp: string | null) => Promise<Principal | null>;
  /** Decides for principals without a token (Basic or anonymous). Without it they may do nothing. */
  authorizeBasic?: (principal: Principal, repo: string, actions: RegistryAction[]) => boolean;
  /**
   * `authorizeBasic`'s answer without its side effects (it may create a project for a push), for
   * the text of a refusal. Without it, `permits` answers no for principals without a token.
   */
  permitsBasic?: (principal: Principal, repo: string, actions: RegistryAction[]) => boolean;
  /**
   * Failed-login limiting for basicFallback, keyed on `req.ip`. Share the token endpoint's limiter,
   * or Basic on the registry API becomes a way around it.
   */
  rateLimiter?: LoginRateLimiter;
}

/** The hook, with an optional RFC 6750 error on the challenge (an extra argument, so still a hook). */
export interface BearerAuthProvider extends AuthProvider {
  challenge(repo: string | undefined, actions: string[], extra?: ChallengeExtra): string;
}

/** Options of a challenge: an RFC 6750 error, and scopes of further repositories the request reads. */
export interface ChallengeExtra {
  error?: ChallengeError;
  also?: readonly { repo: string; actions: string[] }[];
}

/**
 * The registry's auth provider for Docker token authentication. `authenticate` answers null for a
 * missing, malformed, expired or forged credential alike (the server then challenges, and the
 * client fetches a fresh token); it never throws for bad input. A bearer principal may do exactly
 * what its token grants; `admin` is never taken from a token, so admin-only routes need Basic
 * (or another mechanism) rather than a stolen token.
 */
export function bearerAuth(options: BearerAuthOptions): BearerAuthProvider {
  // A client sends the same token on every request of a push or pull; an ES256 verification per
  // request was a fifth of a manifest GET's CPU. Verified claims are kept until the token expires.
  const verified = new VerifiedTokenCache();
  return {
    async authenticate(req: AuthRequest): Promise<Principal | null> {
      const auth = parseAuthorization(req.headers.authorization);
      if (auth.scheme === 'bearer') {
        try {
          const claims = await verified.get(auth.token, () =>
            verifyToken(auth.token, {
              key: options.key,
              service: options.service,
              issuer: options.issuer,
              clockToleranceSec: options.clockToleranceSec,
            }),
          );
          const principal: TokenPrincipal =
            claims.sub === ''
              ? { ...ANONYMOUS, grants: claims.access }
              : {
                  name: claims.sub,
                  kind: claims.kind === 'robot' ? 'robot' : 'user',
                  grants: claims.access,
                  ...(claims.cred !== undefined ? { credential: claims.cred } : {}),
                };
          return principal;
        } catch {
          return null;
        }
      }
      if (auth.scheme === 'basic' && options.basicFallback) {
        const limiter = options.rateLimiter;
        const ip = req.ip ?? '';
        const decision = limiter?.check(ip, auth.username);
        if (decision && !decision.allowed) {
          // Said as such, as /token says it: a 401 would tell a client with the right password
          // that its password is wrong, and it would not know when to try again.
          throw new RegistryError(
            'TOOMANYREQUESTS',
            `too many failed logins for this user from this address; retry in ${decision.retryAfterSeconds} seconds`,
            { headers: { 'retry-after': String(decision.retryAfterSeconds) } },
          );
        }
        let principal: Principal | null;
        try {
          principal = await options.basicFallback(auth.username, auth.password, req.ip ?? null);
        } catch (err) {
          if (err instanceof LoginBusyError) {
            throw new RegistryError('TOOMANYREQUESTS', err.message, { headers: { 'retry-after': String(err.retryAfterSeconds) } });
          }
          return null;
        }
        if (principal === null) {
          limiter?.recordFailure(ip, auth.username);
          return null;
        }
        limiter?.recordSuccess(ip, auth.username);
        // A Basic principal has no token; drop any `grants` so authorize cannot mistake it for one.
        const { grants: _grants, ...plain } = principal as Principal & { grants?: unknown };
        return plain;
      }
      return null;
    },

    authorize(principal: Principal, repo: string, actions: RegistryAction[]): boolean {
      // Nothing asked is refused rather than vacuously allowed: a caller that forgot to say what
      // it needs must not get through.
      if (actions.length === 0) return false;
      const grants = (principal as Partial<TokenPrincipal>).grants;
      if (Array.isArray(grants)) return grantAllows(grants, 'repository', repo, actions);
      return options.authorizeBasic ? options.authorizeBasic(principal, repo, actions) : false;
    },

    permits(principal: Principal, repo: string, actions: RegistryAction[]): boolean {
      if (actions.length === 0) return false;
      const grants = (principal as Partial<TokenPrincipal>).grants;
      // A token's grants are read, never changed: the same answer as authorize.
      if (Array.isArray(grants)) return grantAllows(grants, 'repository', repo, actions);
      return options.permitsBasic ? options.permitsBasic(principal, repo, actions) : false;
    },

    /**
     * The optional `error` is RFC 6750's: send `insufficient_scope` when a token principal lacks
     * the access (clients then fetch a token with the wider scope instead of giving up on a 403).
     */
    challenge(repo: string | undefined, actions: string[], extra?: ChallengeExtra): string {
      const scopes: Scope[] = [];
      const addScope = (name: string, asked: string[]) => {
        const wanted = normaliseActions(asked.filter((a) => /^(?:[a-z]+|\*)$/.test(a)));
        if (wanted.length > 0) scopes.push({ type: 'repository', name, actions: wanted });
      };
      if (repo !== undefined) addScope(repo, actions);
      // Only with the main scope: a challenge naming just a mount's source would be a wrong hint.
      if (scopes.length > 0) for (const more of extra?.also ?? []) if (more.repo !== repo) addScope(more.repo, more.actions);
      const base = { realm: options.realm, service: options.service, error: extra?.error };
      try {
        return buildBearerChallenge({ ...base, scopes });
      } catch {
        // A repository name with control characters cannot go in a header; challenge without it.
        return buildBearerChallenge(base);
      }
    },
  };
}

/**
 * Whether a token's access list allows every one of `actions` on the resource. `*` in a grant
 * stands for every action, as in the distribution registry.
 */
export function grantAllows(
  grants: readonly AccessEntry[],
  type: string,
  name: string,
  actions: readonly string[],
): boolean {
  const held = new Set<string>();
  for (const g of grants) if (g.type === type && g.name === name) for (const a of g.actions) held.add(a);
  return actions.length > 0 && (held.has('*') || actions.every((a) => held.has(a)));
}
