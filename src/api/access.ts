import type { FastifyRequest } from 'fastify';
import { isAnonymous, type Principal, type RegistryAuth } from '../registry/index.js';
import type { RegistryMetadata } from '../store/index.js';
import { ApiError } from './http.js';

/**
 * The registry's own authorisation, applied to the API:
 *
 * - No credentials (or bad ones) where some are needed: 401 with the registry's challenge.
 * - Reading one repository or project needs the pull right, decided exactly as for a manifest GET
 *   (`authorize`): anonymous callers on public projects too; a Bearer token must grant pull on it,
 *   and a token narrower than its account gets 401 `insufficient_scope`.
 * - The right is checked before anything is looked up, so a caller without it gets 403 whether
 *   the project exists or not: a private project's existence never leaks. 404 is only said to
 *   callers who would be allowed to read the thing.
 * - Listings (projects, repositories, search hits, events) show what the account may pull, as the
 *   registry's catalog does (`canList`), whether the caller used Basic or a token.
 */
export class ApiAccess {
  constructor(
    private readonly auth: RegistryAuth,
    private readonly metadata: RegistryMetadata,
  ) {}

  /** An authenticated user or robot; 401 with the challenge otherwise. */
  async user(req: FastifyRequest): Promise<Principal> {
    const principal = await this.auth.authenticate(req);
    if (!principal || isAnonymous(principal)) {
      throw new ApiError(
        401,
        'UNAUTHORIZED',
        'authentication required: HTTP Basic (user or robot) or a Bearer token from /token',
        {
          headers: { 'www-authenticate': this.auth.challenge(undefined, []) },
        },
      );
    }
    return principal;
  }

  /** The caller, who must hold pull on `repo` (a repository, or a project's name for project reads). */
  async pull(req: FastifyRequest, repo: string): Promise<Principal | null> {
    const principal = await this.auth.authenticate(req);
    if (principal && this.auth.authorize(principal, repo, ['pull'])) return principal;
    if (!principal || isAnonymous(principal)) {
      throw new ApiError(401, 'UNAUTHORIZED', 'authentication required', {
        headers: { 'www-authenticate': this.auth.challenge(repo, ['pull']) },
      });
    }
    if (this.auth.mayWiden?.(principal, repo, ['pull'])) {
      throw new ApiError(
        401,
        'UNAUTHORIZED',
        `the token does not grant pull on ${repo}; request a token with the challenged scope`,
        {
          headers: {
            'www-authenticate': this.auth.challenge(repo, ['pull'], { error: 'insufficient_scope' }),
          },
        },
      );
    }
    throw new ApiError(403, 'DENIED', `${principal.name} may not read ${repo}`);
  }

  /**
   * The caller, who must be able to see project `name`: pull on its repositories by the account's
   * roles (member, public project, its own robot, admin), the catalog's rule, so any token works.
   */
  async project(req: FastifyRequest, name: string): Promise<Principal> {
    const principal = await this.auth.authenticate(req);
    if (principal && this.listable(principal)(name)) return principal;
    if (!principal || isAnonymous(principal)) {
      throw new ApiError(401, 'UNAUTHORIZED', 'authentication required', {
        headers: { 'www-authenticate': this.auth.challenge(name, ['pull']) },
      });
    }
    throw new ApiError(403, 'DENIED', `${principal.name} may not read project ${name}`);
  }

  /** What listings use: the account's pull right (the catalog's rule). */
  listable(principal: Principal | null): (repo: string) => boolean {
    if (!principal) return () => false;
    const { canList } = this.auth;
    return canList
      ? (repo) => canList(principal, repo)
      : (repo) => this.auth.authorize(principal, repo, ['pull']);
  }

  /**
   * A system administrator, by the account as stored now (a demoted admin loses it at once). Bearer
   * tokens never carry the flag, so for a token the account is looked up; robots never are admins.
   */
  async isAdmin(principal: Principal | null): Promise<boolean> {
    if (!principal || principal.kind === 'robot' || principal.kind === 'anonymous') return false;
    return (await this.metadata.getUser(principal.name))?.admin === true;
  }

  async admin(req: FastifyRequest): Promise<Principal> {
    const principal = await this.user(req);
    if (!(await this.isAdmin(principal)))
      throw new ApiError(403, 'DENIED', `${principal.name} is not a system administrator`);
    return principal;
  }
}
