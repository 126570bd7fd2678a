export type RegistryAction = 'pull' | 'push' | 'delete';

/** A further repository and the actions a request needs on it, for a challenge. */
export interface ChallengeScope {
  repo: string;
  actions: RegistryAction[];
}

/**
 * Who is calling, once authenticated. The shape matches `auth/types.ts` structurally (Bearer
 * tokens, robot accounts), so either scheme plugs in without importing the other.
 */
export interface Principal {
  name: string;
  kind?: 'user' | 'robot' | 'anonymous';
  admin?: boolean;
  /** Which credential was proved, for checking tokens against it later (auth/types.ts says more). */
  credential?: string;
}

/** What authentication reads from a request; a Fastify request fits. */
export interface AuthRequest {
  headers: Record<string, string | string[] | undefined>;
  ip?: string;
}

/**
 * The registry's only dependency on authentication. Basic auth (`basic-auth.ts`) and Bearer tokens
 * (`auth/`) both implement it, so the routes never know which scheme is in use.
 */
export interface RegistryAuth {
  /**
   * Null when the request carries no usable credentials. Never throws for bad credentials; throws a
   * TOOMANYREQUESTS RegistryError (with Retry-After) while failed logins lock the account out.
   */
  authenticate(req: AuthRequest): Promise<Principal | null>;
  /**
   * May `principal` do all of `actions` on `repo`? Only called with a principal. An allowed push
   * may act on the answer: Portcullis's access control creates the project it names.
   */
  authorize(principal: Principal, repo: string, actions: RegistryAction[]): boolean;
  /**
   * Optional: the answer `authorize` gives, with none of its side effects. The text of a refusal
   * asks it once per action to name the ones missing; without it, that text names every action
   * asked for.
   */
  permits?(principal: Principal, repo: string, actions: RegistryAction[]): boolean;
  /**
   * The `WWW-Authenticate` value sent with a 401 for this access. `also` names further repositories
   * the request reads (the source of a cross-repository mount), so one token can cover them all.
   */
  challenge(repo: string | undefined, actions: RegistryAction[], extra?: { also?: readonly ChallengeScope[]; error?: 'insufficient_scope' }): string;
  /**
   * Optional. For a principal that came with a token: whether its account may do `actions` on
   * `repo` although the token's scope does not say so. The registry then answers 401 with an
   * `insufficient_scope` challenge (the client fetches a token with the wider scope, as the token
   * flow intends) instead of a final 403.
   */
  mayWiden?(principal: Principal, repo: string, actions: RegistryAction[]): boolean;
  /**
   * Whether the catalog lists `repo` to `principal`. Optional: without it the catalog asks
   * `authorize` for pull, which for a token principal only knows the token's own scopes.
   */
  canList?(principal: Principal, repo: string): boolean;
  /**
   * Optional: the projects whose repositories `principal` may see listed, or 'all'. With it the
   * catalog reads only those names; without it, it examines every name and filters by canList.
   */
  listableProjects?(principal: Principal): 'all' | readonly string[];
}

/** A manifest operation, reported to the audit hook after it succeeded or was refused. */
export interface RegistryAuditEvent {
  action: 'push' | 'pull' | 'delete';
  /** The principal's name, or `anonymous`. */
  principal: string;
  repository: string;
  /** The tag or digest the client named. */
  reference: string;
  digest: string | null;
  clientIp: string | null;
  /** `blocked-override`: served to an administrator although the pull gate blocks the image. */
  outcome: 'success' | 'denied' | 'blocked-override';
  detail?: string;
}

/** Called on the request path, so it must not block: implementations queue and write later. */
export type RegistryAuditHook = (event: RegistryAuditEvent) => void;

/** Unauthenticated callers (none, or the anonymous principal) get a challenge; others get DENIED. */
export function isAnonymous(principal: Principal | null): boolean {
  return principal === null || principal.kind === 'anonymous';
}
