import { byCodeUnits } from '../../text-order.js';
import type { ProjectRole, RobotRecord } from '../../store/index.js';
import type { Principal, RegistryAction } from '../auth-hook.js';

/** What each project role may do to the project's repositories; each role includes the next. */
export const ROLE_ACTIONS: Readonly<Record<ProjectRole, readonly RegistryAction[]>> = {
  admin: ['pull', 'push', 'delete'],
  maintainer: ['pull', 'push', 'delete'],
  developer: ['pull', 'push'],
  reader: ['pull'],
};

/**
 * The access data one decision needs, held in memory so `decide` stays synchronous (the registry's
 * authorize hook is called per request, and for every repository of a catalog page).
 */
export interface AccessSnapshot {
  version: number;
  /** `credential`: a fingerprint of the stored password hash (control.ts's credentialFingerprint), never the hash. */
  users: Map<string, { admin: boolean; canCreateProjects: boolean; credential?: string }>;
  projects: Map<string, { public: boolean }>;
  /** project → user → role */
  members: Map<string, Map<string, ProjectRole>>;
  /** `credential`: the fingerprint of the robot's stored secret hash, made once per load, not per request. */
  robots: Map<string, RobotRecord & { credential?: string }>;
}

export function emptySnapshot(): AccessSnapshot {
  return { version: -1, users: new Map(), projects: new Map(), members: new Map(), robots: new Map() };
}

export interface Decision {
  allowed: boolean;
  /** Set when the answer relies on creating the (missing) project with `principal` as its admin. */
  createProject?: string;
}

/** A repository's project is its first path segment (`team/app/api` → `team`). */
export function projectOf(repo: string): string {
  const slash = repo.indexOf('/');
  return slash < 0 ? repo : repo.slice(0, slash);
}

export function robotUsable(robot: RobotRecord | undefined, now: number): boolean {
  if (!robot || robot.revoked) return false;
  return robot.expiresAt === null || Date.parse(robot.expiresAt) > now;
}

/**
 * The authorization rule. System admins may do everything; users get their project role's actions
 * (plus pull on public projects); robots get their own actions on their own project while neither
 * expired nor revoked (plus pull on public projects); anonymous callers may only pull from public projects. A push to a project
 * that does not exist is allowed to system admins and to users flagged `can_create_projects`, and
 * the answer then asks the caller to create the project (private, pusher as its admin).
 */
export function decide(
  snapshot: AccessSnapshot,
  principal: Principal | null,
  repo: string,
  actions: readonly RegistryAction[],
  now: number = Date.now(),
): Decision {
  // Nothing asked is refused rather than vacuously allowed.
  if (actions.length === 0 || repo === '') return { allowed: false };
  const projectName = projectOf(repo);
  const project = snapshot.projects.get(projectName);
  if (principal === null || principal.kind === 'anonymous') {
    return { allowed: project?.public === true && actions.every((a) => a === 'pull') };
  }
  if (principal.kind === 'robot') {
    const robot = snapshot.robots.get(principal.name);
    if (!robot || !robotUsable(robot, now) || project === undefined) return { allowed: false };
    // Its own actions on its own project; on a public one, pull, as anyone may (a CI job that
    // builds FROM a public base image pulls it with the same robot it pushes with).
    const held = new Set<string>(robot.project === projectName ? robot.actions : []);
    if (project.public) held.add('pull');
    return { allowed: actions.every((a) => held.has(a)) };
  }
  // The snapshot, not the principal, says who is admin: a flag on a stale or forged principal
  // object must not outlive the account's demotion or removal.
  const user = snapshot.users.get(principal.name);
  if (!user) return { allowed: false };
  if (project === undefined) {
    const mayCreate = user.admin || user.canCreateProjects;
    if (mayCreate && actions.includes('push')) return { allowed: true, createProject: projectName };
    return { allowed: user.admin };
  }
  if (user.admin) return { allowed: true };
  const role = snapshot.members.get(projectName)?.get(principal.name);
  const held = new Set<RegistryAction>(role ? ROLE_ACTIONS[role] : []);
  if (project.public) held.add('pull');
  return { allowed: actions.every((a) => held.has(a)) };
}

/**
 * The projects whose repositories `principal` may pull (and so see listed), sorted, or 'all' for
 * an administrator, who may also see repositories outside any project. The same rules as
 * decide() for pull: a listing can then read only these names and never examine another.
 */
export function listableProjects(snapshot: AccessSnapshot, principal: Principal | null, now: number = Date.now()): 'all' | string[] {
  const out = new Set<string>();
  for (const [name, project] of snapshot.projects) if (project.public) out.add(name);
  if (principal !== null && principal.kind === 'robot') {
    const robot = snapshot.robots.get(principal.name);
    if (!robot || !robotUsable(robot, now)) return [];
    if (robot.actions.includes('pull') && snapshot.projects.has(robot.project)) out.add(robot.project);
  } else if (principal !== null && principal.kind !== 'anonymous') {
    const user = snapshot.users.get(principal.name);
    if (!user) return [];
    if (user.admin) return 'all';
    for (const [project, members] of snapshot.members) {
      const role = members.get(principal.name);
      if (role && ROLE_ACTIONS[role].includes('pull') && snapshot.projects.has(project)) out.add(project);
    }
  }
  return [...out].sort(byCodeUnits);
}
