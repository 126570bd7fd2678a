import picomatch from 'picomatch';
import type { ProjectRecord } from '../store/index.js';
import { RegistryError } from './errors.js';

/**
 * Per-project rules the registry enforces on writes: tag immutability and the storage quota. They
 * are read from the metadata on each write (never on pulls), so a change made with
 * `portcullis project set` applies to the next push without a restart.
 */

const TAG_GLOB_RE = /^[A-Za-z0-9_.*?[\]{},!-]{1,128}$/;
const REPO_GLOB_RE = /^[a-z0-9._\-/*?[\]{},!]{1,255}$/;

export interface ImmutableTagRule {
  /** The text as configured, shown in refusals so the user can find the rule. */
  text: string;
  matches(repositoryInProject: string, tag: string): boolean;
}

/**
 * Parses `TAG_GLOB` or `REPO_GLOB:TAG_GLOB` (a colon appears in neither names nor tags, so it
 * cannot be ambiguous). Globs are picomatch's: `*` stays within one path segment, `**` crosses
 * them, `{a,b}` and `[0-9]` work as in a shell.
 */
export function parseImmutableTagRule(text: string): ImmutableTagRule {
  const colon = text.indexOf(':');
  const repoGlob = colon < 0 ? '**' : text.slice(0, colon);
  const tagGlob = colon < 0 ? text : text.slice(colon + 1);
  if (!REPO_GLOB_RE.test(repoGlob) || !TAG_GLOB_RE.test(tagGlob)) {
    throw new RegistryError(
      'UNSUPPORTED',
      `immutable tag rule "${text}" is not TAG_GLOB or REPOSITORY_GLOB:TAG_GLOB (e.g. "v*", "release-*", "backend/**:v[0-9]*")`,
      { status: 400 },
    );
  }
  const repoMatch = picomatch(repoGlob, { dot: true });
  const tagMatch = picomatch(tagGlob, { dot: true });
  return { text, matches: (repo, tag) => repoMatch(repo) && tagMatch(tag) };
}

/** The first rule of the project that makes `tag` of `repository` immutable, if any. */
export function immutableRuleFor(project: ProjectRecord | null, repository: string, tag: string): string | undefined {
  if (!project || project.immutableTags.length === 0) return undefined;
  // Rules name repositories relative to the project: `backend/api` inside project `team`.
  const inProject = repository === project.name ? '' : repository.slice(project.name.length + 1);
  for (const text of project.immutableTags) {
    if (parseImmutableTagRule(text).matches(inProject, tag)) return text;
  }
  return undefined;
}

export function immutableTagError(repository: string, tag: string, rule: string, what: 'overwritten' | 'deleted'): RegistryError {
  return new RegistryError(
    'DENIED',
    `tag ${tag} of ${repository} is immutable (project rule "${rule}") and cannot be ${what}; push the new image under a new tag`,
    { detail: { repository, tag, rule } },
  );
}

const UNITS: Record<string, number> = { '': 1, b: 1, k: 1024, kb: 1024, kib: 1024, m: 1024 ** 2, mb: 1024 ** 2, mib: 1024 ** 2, g: 1024 ** 3, gb: 1024 ** 3, gib: 1024 ** 3, t: 1024 ** 4, tb: 1024 ** 4, tib: 1024 ** 4 };

/** `10GiB`, `500MB`, `1.5g`, `1048576`: binary units (a registry's gigabyte is 2^30 bytes, as in Harbor). */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = m ? UNITS[m[2]!.toLowerCase()] : undefined;
  if (!m || unit === undefined) throw new RegistryError('UNSUPPORTED', `size "${text}" is not a number with an optional unit (B, KiB, MiB, GiB, TiB)`, { status: 400 });
  return Math.floor(Number(m[1]) * unit);
}

export function formatSize(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let v = bytes;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return i === 0 ? `${bytes} B` : `${v.toFixed(v < 10 ? 2 : 1)} ${units[i]}`;
}

export function quotaError(project: string, used: number, quota: number, adding: number): RegistryError {
  return new RegistryError(
    'DENIED',
    `this push would exceed the storage quota of project ${project}: ${formatSize(used)} used of ${formatSize(quota)}, and it needs ${formatSize(adding)} more; ` +
      'delete images you no longer need (space returns after `portcullis gc`) or ask an administrator to raise it with `portcullis project set ' +
      `${project} --quota SIZE\``,
    { detail: { project, used, quota, adding } },
  );
}
