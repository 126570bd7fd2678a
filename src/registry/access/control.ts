import { createHash, createHmac, randomBytes } from 'node:crypto';
import type { ProjectRole, RegistryMetadata, RobotRecord, UserRecord } from '../../store/index.js';
import type { Principal, RegistryAction, RegistryAuth } from '../auth-hook.js';
import { hashRobotSecret, verifyPassword, verifyRobotSecret } from '../basic-auth.js';
import type { AuditLog } from './audit.js';
import { decide, listableProjects, emptySnapshot, projectOf, robotUsable, type AccessSnapshot } from './policy.js';
import { isValidRepositoryName } from '../routes.js';
import { isRobotName } from './robots.js';
import { LoginGate, type LoginGateOptions } from './login-gate.js';

/** A verified caller, in the shape both the token endpoint and Basic on /v2 expect. */
export interface AccountPrincipal {
  name: string;
  kind: 'user' | 'robot';
  admin?: boolean;
  credential?: string;
}

/**
 * Names an account's current secret (a robot's secret, a user's password) without revealing
 * anything of it: a digest of its stored hash.
 */
export function credentialFingerprint(secretHash: string): string {
  return createHash('sha256').update(secretHash).digest('hex').slice(0, 32);
}

export interface AccessControlOptions {
  audit?: AuditLog;
  /** Background failures (project creation); the request itself already got its answer. */
  onError?: (err: unknown, what: string) => void;
  now?: () => number;
  /** Bounds on password checks under way (login-gate.ts); the defaults suit a server. */
  loginGate?: LoginGateOptions;
}

// Successful logins are remembered this long: every skopeo, podman or docker process logs in
// again (often twice: push, then pull), a push sends the same Basic header with dozens of
// requests, and scrypt is deliberately slow (about 0.1 s of CPU and 32 MiB). An entry is used only
// while the account's stored hash is the one it was verified against, so a password change, a
// robot re-created under the same name, a removed user or a revoked robot ends it at once.
const LOGIN_CACHE_MS = 5 * 60_000;
const LOGIN_CACHE_MAX = 1000;
// Same parameters as real hashes so a miss costs the same time as a wrong password.
const DUMMY_HASH = `scrypt$${1 << 15}$8$1$${randomBytes(16).toString('base64')}$${randomBytes(32).toString('base64')}`;
const DUMMY_ROBOT_HASH = hashRobotSecret(randomBytes(32).toString('base64url'));

/**
 * Projects, roles and robots for the running server. Decisions come from an in-memory snapshot so
 * `authorize` can stay synchronous; every authentication first compares the database's access
 * version (one tiny query), so changes made by the CLI in another process apply to the very next
 * request.
 */
export class AccessControl {
  private snapshot: AccessSnapshot = emptySnapshot();
  private refreshing: Promise<void> | undefined;
  /** The metadata's change stamp when the access version was last found current (NaN: never). */
  private checkedStamp = Number.NaN;
  private readonly creating = new Map<string, Promise<void>>();
  /**
   * Keyed by an HMAC (per-process random key) of name and password, so neither is kept; `hash` is
   * the stored hash the password was checked against.
   */
  private readonly loginCache = new Map<string, { principal: AccountPrincipal; hash: string; expires: number }>();
  /** Checks of a name and password under way, by the same key as the login cache. */
  private readonly verifying = new Map<string, Promise<AccountPrincipal | null>>();
  private readonly loginGate: LoginGate;
  /** When a lockout was last written to the audit log, per address and user (auditLockedOut). */
  private readonly lockoutLogged = new Map<string, number>();
  private readonly cacheKey = randomBytes(32);
  private readonly now: () => number;

  constructor(
    readonly metadata: RegistryMetadata,
    private readonly options: AccessControlOptions = {},
  ) {
    this.now = options.now ?? Date.now;
    this.loginGate = new LoginGate(options.loginGate);
  }

  static async create(metadata: RegistryMetadata, options: AccessControlOptions = {}): Promise<AccessControl> {
    const access = new AccessControl(metadata, options);
    await access.refresh();
    return access;
  }

  get audit(): AuditLog | undefined {
    return this.options.audit;
  }

  /** Reloads the snapshot when the database's access version moved; concurrent callers share one load. */
  refresh(): Promise<void> {
    // Nothing at all changed in the database since the version was last checked: no query needed.
    const stamp = this.metadata.changeStamp?.() ?? Number.NaN;
    if (stamp === this.checkedStamp && this.refreshing === undefined && this.creating.size === 0) return Promise.resolve();
    this.refreshing ??= (async () => {
      try {
        if (this.creating.size > 0) await Promise.allSettled([...this.creating.values()]);
        const before = this.metadata.changeStamp?.() ?? Number.NaN;
        const version = await this.metadata.accessVersion();
        if (version !== this.snapshot.version) await this.load(version);
        this.checkedStamp = before;
      } finally {
        this.refreshing = undefined;
      }
    })();
    return this.refreshing;
  }

  private async load(version: number): Promise<void> {
    // The version is read before the tables, so the data is at least as new as the number says.
    const [users, hashes, projects, members, robots] = await Promise.all([
      this.metadata.listUsers(),
      this.metadata.listUserPasswordHashes(),
      this.metadata.listProjects(),
      this.metadata.listProjectMembers(),
      this.metadata.listRobots(),
    ]);
    const next: AccessSnapshot = emptySnapshot();
    next.version = version;
    const fingerprints = new Map(hashes.map((h) => [h.name, credentialFingerprint(h.passwordHash)]));
    for (const u of users) {
      const credential = fingerprints.get(u.name);
      next.users.set(u.name, { admin: u.admin, canCreateProjects: u.canCreateProjects, ...(credential ? { credential } : {}) });
    }
    for (const p of projects) next.projects.set(p.name, { public: p.public });
    for (const m of members) {
      let byUser = next.members.get(m.project);
      if (!byUser) next.members.set(m.project, (byUser = new Map<string, ProjectRole>()));
      byUser.set(m.user, m.role);
    }
    for (const r of robots) next.robots.set(r.name, { ...r, credential: credentialFingerprint(r.secretHash) });
    this.snapshot = next;
  }

  /**
   * `decide` against the current snapshot. When it allows a push that creates a project, the
   * project is added to the snapshot at once (so the rest of the push sees it) and written in the
   * background; the token endpoint awaits that write through `grantedActions`.
   */
  decide(principal: Principal | null, repo: string, actions: readonly RegistryAction[]): boolean {
    const d = decide(this.snapshot, principal, repo, actions, this.now());
    if (d.allowed && d.createProject !== undefined && principal) this.createProject(d.createProject, principal.name);
    return d.allowed;
  }

  /** What `decide` answers, without creating a project: for the text of a refusal. */
  permits(principal: Principal | null, repo: string, actions: readonly RegistryAction[]): boolean {
    return decide(this.snapshot, principal, repo, actions, this.now()).allowed;
  }

  private createProject(name: string, owner: string): void {
    if (this.creating.has(name)) return;
    this.snapshot.projects.set(name, { public: false });
    this.snapshot.members.set(name, new Map([[owner, 'admin']]));
    const write = this.metadata
      .createProject({ name, public: false, createdBy: owner }, owner)
      .then(
        () => undefined,
        (err: unknown) => this.options.onError?.(err, `creating project ${name}`),
      )
      .finally(() => {
        this.creating.delete(name);
        // Whatever happened (created, or someone else was first), reload from the database.
        this.snapshot.version = -1;
        this.checkedStamp = Number.NaN;
      });
    this.creating.set(name, write);
  }

  /** Whether a principal's account still exists and is usable (tokens outlive revocations otherwise). */
  accountUsable(principal: Principal): boolean {
    if (principal.kind === 'anonymous') return true;
    if (principal.kind === 'robot') {
      const robot = this.snapshot.robots.get(principal.name);
      // A token names the secret it was issued for: a refreshed secret, or a robot deleted and
      // made again under the same name, ends it at once rather than when it expires.
      if (principal.credential !== undefined && robot && robot.credential !== principal.credential) return false;
      return robotUsable(robot, this.now());
    }
    const user = this.snapshot.users.get(principal.name);
    // Likewise a user's: a changed password (say, after a leak) ends the tokens the old one got,
    // and so does removing the user and adding one of the same name.
    if (user && principal.credential !== undefined && user.credential !== undefined && user.credential !== principal.credential) return false;
    return user !== undefined;
  }

  /** The token endpoint's grantedActions: each action decided alone, and project creation awaited. */
  async grantedActions(principal: Principal, repo: string, requested: RegistryAction[], clientIp: string | null = null): Promise<RegistryAction[]> {
    await this.refresh();
    // The token grammar lets a scope name carry a registry host (`localhost:5000/app`); no /v2
    // route serves such a name, so it gets nothing, and above all does not create a project
    // named `localhost:5000`.
    let granted = isValidRepositoryName(repo) ? requested.filter((a) => this.decide(principal, repo, [a])) : [];
    const pending = granted.length > 0 ? this.creating.get(projectOf(repo)) : undefined;
    if (pending) {
      await pending;
      await this.refresh();
      // Pull on the new project only became possible once it existed.
      granted = requested.filter((a) => this.decide(principal, repo, [a]));
    }
    this.options.audit?.record({
      action: 'token',
      principal: principal.name,
      repository: repo,
      clientIp,
      outcome: granted.length > 0 ? 'success' : 'denied',
      detail: `requested=${requested.join(',')} granted=${granted.join(',')}`,
    });
    return granted;
  }

  /**
   * Checks a user's password or a robot's secret. `via` says where the login came from: every
   * token request is audited as a login, Basic on /v2 only when the credentials were actually
   * checked (not for each request of a push that reuses them). `ip` is the caller's address, for
   * the audit log. (Passed along, not kept in an AsyncLocalStorage: one of those switches on
   * promise hooks for the whole process, a few per cent of the server's CPU on every request.)
   */
  async verifyCredentials(username: string, password: string, via: 'token' | 'basic', ip: string | null = null): Promise<AccountPrincipal | null> {
    await this.refresh();
    const key = createHmac('sha256', this.cacheKey).update(username).update('\0').update(password).digest('hex');
    const robot = isRobotName(username) ? this.snapshot.robots.get(username) : undefined;
    const user = isRobotName(username) ? null : await this.metadata.getUser(username);
    const storedHash = robot?.secretHash ?? user?.passwordHash;
    const hit = this.loginCache.get(key);
    if (hit && (hit.expires <= this.now() || hit.hash !== storedHash)) this.loginCache.delete(key);
    else if (hit) {
      // The account as stored now: an admin flag taken away or a robot expired since counts.
      const principal: AccountPrincipal | null = robot
        ? robotUsable(robot, this.now())
          ? hit.principal
          : null
        : user
          ? { name: user.name, kind: 'user', admin: user.admin, credential: credentialFingerprint(user.passwordHash) }
          : null;
      if (principal) {
        if (via === 'token') this.auditLogin(principal.name, ip, true, via);
        return principal;
      }
    }
    // The same name and password already being checked (a client's parallel requests, or a burst
    // of them): share that check. Each would otherwise run its own scrypt until the first filled
    // the cache; 400 at once kept the threadpool, which file I/O needs too, busy for 20 s.
    const inflight = this.verifying.get(key);
    if (inflight) {
      const shared = await inflight;
      if (shared && via === 'token') this.auditLogin(shared.name, ip, true, via);
      return shared;
    }
    const check = this.loginGate.run(ip ?? '', username, () => this.checkSecret(username, password, via, ip, robot, user));
    this.verifying.set(key, check);
    try {
      const principal = await check;
      if (principal && storedHash !== undefined) {
        if (this.loginCache.size >= LOGIN_CACHE_MAX) this.loginCache.clear();
        this.loginCache.set(key, { principal, hash: storedHash, expires: this.now() + LOGIN_CACHE_MS });
      }
      return principal;
    } finally {
      this.verifying.delete(key);
    }
  }

  /** The slow part of a login: scrypt (or the robot hash), and its audit row. */
  private async checkSecret(
    username: string,
    password: string,
    via: 'token' | 'basic',
    ip: string | null,
    robot: RobotRecord | undefined,
    user: UserRecord | null,
  ): Promise<AccountPrincipal | null> {
    let principal: AccountPrincipal | null = null;
    let reason = 'bad credentials';
    if (isRobotName(username)) {
      const ok = await verifyRobotSecret(password, robot?.secretHash ?? DUMMY_ROBOT_HASH);
      if (ok && robot) {
        if (robotUsable(robot, this.now())) principal = { name: robot.name, kind: 'robot', credential: credentialFingerprint(robot.secretHash) };
        else reason = robot.revoked ? 'robot revoked' : 'robot expired';
      }
    } else {
      // Unknown users still pay for one scrypt so timing does not reveal which names exist.
      const ok = await verifyPassword(password, user?.passwordHash ?? DUMMY_HASH);
      if (ok && user) principal = { name: user.name, kind: 'user', admin: user.admin, credential: credentialFingerprint(user.passwordHash) };
    }
    this.auditLogin(username, ip, principal !== null, via, principal ? undefined : reason);
    return principal;
  }

  /**
   * A login refused unchecked because failed logins locked this user out from this address. One
   * row per user and address a minute: an attacker hammering a locked account must not be able to
   * grow the audit table at request rate.
   */
  auditLockedOut(name: string, ip: string | null): void {
    const key = `${ip ?? ''}\u0000${name}`;
    const now = this.now();
    const last = this.lockoutLogged.get(key);
    if (last !== undefined && now - last < 60_000) return;
    if (this.lockoutLogged.size >= 10_000) this.lockoutLogged.clear();
    this.lockoutLogged.set(key, now);
    this.options.audit?.record({
      action: 'login_failed',
      principal: name,
      clientIp: ip,
      outcome: 'failure',
      detail: 'locked out: too many failed logins (logged once a minute while it lasts)',
    });
  }

  private auditLogin(name: string, ip: string | null, ok: boolean, via: string, reason?: string): void {
    this.options.audit?.record({
      action: ok ? 'login' : 'login_failed',
      principal: name,
      clientIp: ip,
      outcome: ok ? 'success' : 'failure',
      detail: reason ? `via=${via} ${reason}` : `via=${via}`,
    });
  }

  /**
   * Wraps the registry's auth hook: refreshes the snapshot before each authentication, refuses
   * tokens whose account was removed or revoked since they were issued, and lets the catalog list
   * what the caller may pull.
   */
  wrap(inner: RegistryAuth): RegistryAuth {
    return {
      authenticate: async (req) => {
        await this.refresh();
        const principal = await inner.authenticate(req);
        // A token issued before a password change, a robot's refresh, revocation or removal, or a
        // user's removal, identifies no one any more: without this, such a token still reached
        // every route that asks only who the caller is (/v2/, the API's audit log and projects).
        if (principal && Array.isArray((principal as { grants?: unknown }).grants) && !this.accountUsable(principal)) return null;
        return principal;
      },
      authorize: (principal, repo, actions) => {
        const fromToken = Array.isArray((principal as { grants?: unknown }).grants);
        if (!inner.authorize(principal, repo, actions)) return false;
        if (!fromToken) return true;
        // A token's grants were decided when it was issued; the account's rights now are the
        // bound too, so a removed membership or a lowered role ends what the token allowed at
        // once rather than when it expires. (Pure decision: it never creates a project here.)
        return this.accountUsable(principal) && decide(this.snapshot, principal, repo, actions, this.now()).allowed;
      },
      // authorize's answer, the same way, from the inner hook's pure check and the pure decision.
      permits: (principal, repo, actions) => {
        if (!inner.permits?.(principal, repo, actions)) return false;
        if (!Array.isArray((principal as { grants?: unknown }).grants)) return true;
        return this.accountUsable(principal) && decide(this.snapshot, principal, repo, actions, this.now()).allowed;
      },
      challenge: (repo, actions, extra) => inner.challenge(repo, actions, extra),
      // A token narrower than its account's rights: worth a new token, so not a final refusal.
      mayWiden: (principal, repo, actions) =>
        Array.isArray((principal as { grants?: unknown }).grants) &&
        this.accountUsable(principal) &&
        decide(this.snapshot, principal, repo, actions, this.now()).allowed,
      // Identity-based, so a token principal sees the same catalog as with Basic. Pull never
      // creates a project, so the pure decision is enough here.
      canList: (principal, repo) => this.accountUsable(principal) && decide(this.snapshot, principal, repo, ['pull'], this.now()).allowed,
      listableProjects: (principal) => (this.accountUsable(principal) ? listableProjects(this.snapshot, principal, this.now()) : []),
    };
  }

  async close(): Promise<void> {
    await Promise.allSettled([...this.creating.values()]);
    await this.options.audit?.close();
  }
}
