import { randomBytes } from 'node:crypto';
import { UsageError } from '../../errors.js';
import type { RegistryAction } from '../auth-hook.js';

export const ROBOT_PREFIX = 'robot$';
// One component of a repository name, as the distribution grammar allows it.
const COMPONENT = '[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*';
export const PROJECT_NAME_RE = new RegExp(`^${COMPONENT}$`);
const ROBOT_RE = new RegExp(`^robot\\$(${COMPONENT})\\+(${COMPONENT})$`);
const ACTIONS: readonly RegistryAction[] = ['pull', 'push', 'delete'];

export function isRobotName(name: string): boolean {
  return name.startsWith(ROBOT_PREFIX);
}

/** `robot$<project>+<name>` → its parts; undefined for anything else. */
export function parseRobotName(full: string): { project: string; name: string } | undefined {
  const m = ROBOT_RE.exec(full);
  return m ? { project: m[1]!, name: m[2]! } : undefined;
}

export function robotName(project: string, name: string): string {
  const full = `${ROBOT_PREFIX}${project}+${name}`;
  if (!parseRobotName(full)) {
    throw new UsageError('FLAG_INVALID', `robot name "${name}" for project "${project}" must be lowercase letters and digits, with ".", "_" or "-" inside`);
  }
  return full;
}

/** 32 random bytes: a robot secret is only ever typed by machines, so it can be long. */
export function generateSecret(): string {
  return randomBytes(32).toString('base64url');
}

export function parseActions(text: string): RegistryAction[] {
  const list = text.split(',').map((a) => a.trim()).filter((a) => a !== '');
  if (list.length === 0) throw new UsageError('FLAG_INVALID', '--actions needs at least one of pull, push, delete');
  for (const a of list) {
    if (!(ACTIONS as readonly string[]).includes(a)) throw new UsageError('FLAG_INVALID', `unknown action "${a}": use pull, push or delete`);
  }
  return ACTIONS.filter((a) => list.includes(a));
}

const UNIT_MS: Record<string, number> = { m: 60_000, h: 3_600_000, d: 86_400_000, w: 7 * 86_400_000 };

/** `30d`, `12h`, `90m`, `2w` from now, or an ISO date/time; returns an ISO time. */
export function parseExpiry(text: string, now: number = Date.now()): string {
  const rel = /^(\d+)([mhdw])$/.exec(text.trim());
  if (rel) return new Date(now + Number(rel[1]) * UNIT_MS[rel[2]!]!).toISOString();
  const at = Date.parse(text);
  if (Number.isNaN(at)) throw new UsageError('FLAG_INVALID', `"${text}" is neither a duration (30d, 12h) nor a date (2025-12-31)`);
  return new Date(at).toISOString();
}

/** `--since`: a duration back from now (`1h`, `7d`) or a date; returns an ISO time. */
export function parseSince(text: string, now: number = Date.now()): string {
  const rel = /^(\d+)([mhdw])$/.exec(text.trim());
  if (rel) return new Date(now - Number(rel[1]) * UNIT_MS[rel[2]!]!).toISOString();
  return parseExpiry(text, now);
}
