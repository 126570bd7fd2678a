/**
 * The hook shape the registry server plugs authentication in through. It is structural on purpose:
 * the server declares the same interfaces on its side, and TypeScript matches them by shape, so
 * neither module has to import the other.
 */

export type RegistryAction = 'pull' | 'push' | 'delete';

/** The actions a repository scope can grant, in the order tokens and headers list them. */
export const REGISTRY_ACTIONS: readonly RegistryAction[] = ['pull', 'push', 'delete'];

export interface Principal {
  name: string;
  kind: 'user' | 'robot' | 'anonymous';
  admin?: boolean;
  /**
   * Which credential the principal proved (a fingerprint of the stored hash of a robot's secret or
   * a user's password), carried into tokens so that a token outlives neither a new secret or
   * password nor an account deleted and re-created under the same name.
   */
  credential?: string;
}

/** One entry of a token's `access` claim, as in the Docker token specification. */
export interface AccessEntry {
  /** `repository` for image repositories; `registry` for `registry:catalog:*`. */
  type: string;
  name: string;
  actions: string[];
}

/** A principal that came from a bearer token: it may do exactly what the token grants. */
export interface TokenPrincipal extends Principal {
  grants: AccessEntry[];
}

/** What `authenticate` reads. A Fastify request fits; `ip` is used for rate limiting when present. */
export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  ip?: string;
}

export interface AuthProvider {
  /** The caller, or null when the request carries no usable credentials (the server then challenges). */
  authenticate(req: AuthRequest): Promise<Principal | null>;
  authorize(principal: Principal, repo: string, actions: RegistryAction[]): boolean;
  /** `authorize`'s answer without its side effects (registry/auth-hook.ts's RegistryAuth says more). */
  permits?(principal: Principal, repo: string, actions: RegistryAction[]): boolean;
  /**
   * A `WWW-Authenticate` header value telling the client where to get a token for this access;
   * `also` adds the scopes of further repositories the request reads (a mount's source).
   */
  challenge(
    repo: string | undefined,
    actions: string[],
    extra?: { also?: readonly { repo: string; actions: string[] }[]; error?: 'insufficient_scope' },
  ): string;
}

/** The principal of requests without credentials. Its token has an empty `sub`, as the spec asks. */
export const ANONYMOUS: Readonly<Principal> = Object.freeze({ name: 'anonymous', kind: 'anonymous' });
