import { parseRegistryReference } from '../oci/index.js';
import { RegistryError } from './errors.js';

/** What a `/v2/...` path asks for. Parsed by hand because repository names contain slashes. */
export type RegistryRoute =
  | { kind: 'base' }
  | { kind: 'catalog' }
  | { kind: 'manifest'; name: string; reference: string }
  | { kind: 'blob'; name: string; digest: string }
  | { kind: 'uploads'; name: string }
  | { kind: 'upload'; name: string; uuid: string }
  | { kind: 'tags'; name: string }
  | { kind: 'referrers'; name: string; digest: string };

// Anchored at the end and greedy at the front, so a repository named `x/blobs` still parses.
const PATTERNS: [RegExp, (m: RegExpExecArray) => RegistryRoute][] = [
  [/^(.+)\/manifests\/([^/]+)$/, (m) => ({ kind: 'manifest', name: m[1]!, reference: m[2]! })],
  [/^(.+)\/blobs\/uploads\/?$/, (m) => ({ kind: 'uploads', name: m[1]! })],
  [/^(.+)\/blobs\/uploads\/([^/]+)$/, (m) => ({ kind: 'upload', name: m[1]!, uuid: m[2]! })],
  [/^(.+)\/blobs\/([^/]+)$/, (m) => ({ kind: 'blob', name: m[1]!, digest: m[2]! })],
  [/^(.+)\/tags\/list$/, (m) => ({ kind: 'tags', name: m[1]! })],
  [/^(.+)\/referrers\/([^/]+)$/, (m) => ({ kind: 'referrers', name: m[1]!, digest: m[2]! })],
];

const MAX_NAME = 255;

/**
 * Checks a repository name against the distribution spec's grammar (shared with the client's
 * reference parser). `..`, empty segments, upper case and percent-escapes all fail here, so
 * nothing downstream ever sees a name that could be a path trick.
 */
export function validateRepositoryName(name: string): void {
  const bad = () =>
    new RegistryError('NAME_INVALID', `invalid repository name "${name}": use lowercase components [a-z0-9] joined by "/", with ".", "_", "__" or "-" inside a component`, {
      detail: { name },
    });
  if (name.length === 0 || name.length > MAX_NAME || !/^[a-z0-9._/-]+$/.test(name)) throw bad();
  let parsed: string;
  try {
    parsed = parseRegistryReference(`localhost/${name}`).repository;
  } catch {
    throw bad();
  }
  if (parsed !== name) throw bad();
}

/** `validateRepositoryName` as a test, for names that only go into hints (never into the store). */
export function isValidRepositoryName(name: string): boolean {
  try {
    validateRepositoryName(name);
    return true;
  } catch {
    return false;
  }
}

export const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;

/** Splits the path (without query) after `/v2/` into a route; null when no endpoint matches. */
export function parseRegistryPath(path: string): RegistryRoute | null {
  if (path === '/v2' || path === '/v2/') return { kind: 'base' };
  if (!path.startsWith('/v2/')) return null;
  const rest = path.slice('/v2/'.length);
  if (rest === '_catalog') return { kind: 'catalog' };
  for (const [re, build] of PATTERNS) {
    const m = re.exec(rest);
    if (m) return build(m);
  }
  return null;
}
