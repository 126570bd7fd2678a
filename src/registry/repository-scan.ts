import { byCodeUnits } from '../text-order.js';
import type { RegistryMetadata } from '../store/index.js';

/** Repository names read per query while a listing looks for the ones the caller may see. */
export const REPOSITORY_SCAN_BATCH = 500;
/** The most names asked for in one query: below the store's own page cap (10,000), so a short batch always means the end. */
export const REPOSITORY_SCAN_BATCH_MAX = 1_000;
/**
 * The most repository names one listing request examines (unless its page alone needs more). A
 * caller who can see few of many repositories gets a short page and a `Link` to continue, which
 * the distribution spec allows, instead of the server reading every repository for one request.
 */
export const REPOSITORY_SCAN_LIMIT = 5_000;

export interface RepositoryScan {
  /** The names `keep` accepted, in name order; may be more than `want`. */
  found: string[];
  /** Set when the scan stopped at its bound with names left: the last name it examined, where the next page starts. */
  stoppedAt?: string;
}

/**
 * Walks repository names after `after` in batches of 500 to 1,000, keeping
 * those `keep` accepts, until `want` are found, the names end (or leave `within`), or `limit`
 * names have been examined (by default max(REPOSITORY_SCAN_LIMIT, want)).
 */
export async function scanRepositories(
  metadata: Pick<RegistryMetadata, 'listRepositories'>,
  opts: {
    after?: string | undefined;
    want: number;
    keep: (repo: string) => boolean;
    within?: (repo: string) => boolean;
    limit?: number;
  },
): Promise<RepositoryScan> {
  const found: string[] = [];
  // A listing that answers callers who may not see every name passes `limit`: then the bound is
  // the same whatever `n` asks, so choosing `n` cannot move where a page stops (page-cursor.ts).
  const bound = opts.limit ?? Math.max(REPOSITORY_SCAN_LIMIT, opts.want);
  let cursor = opts.after;
  let examined = 0;
  while (found.length < opts.want) {
    const size = Math.min(Math.max(REPOSITORY_SCAN_BATCH, opts.want), REPOSITORY_SCAN_BATCH_MAX, bound - examined);
    const batch = await metadata.listRepositories({ n: size, ...(cursor !== undefined ? { last: cursor } : {}) });
    examined += batch.length;
    for (const repo of batch) {
      if (opts.within && !opts.within(repo)) return { found };
      if (opts.keep(repo)) found.push(repo);
    }
    if (batch.length < size) return { found };
    cursor = batch[batch.length - 1]!;
    if (examined >= bound && found.length < opts.want) return { found, stoppedAt: cursor };
  }
  return { found };
}

/**
 * The repository names after `after` that belong to `projects` (each project's own name and the
 * names under `PROJECT/`), in name order, until `want` are found. Only those ranges are read, so
 * a listing never examines, and cannot be made to reveal anything about, a repository the caller
 * may not see (helper-31's review recovered private names through the filtered scan's bound).
 */
export async function listProjectRepositories(
  metadata: Pick<RegistryMetadata, 'listRepositories'>,
  projects: readonly string[],
  opts: { after?: string | undefined; want: number },
): Promise<string[]> {
  // A project's names: itself, then [P/, P0) ('0' follows '/'). Ranges of different projects do
  // not overlap, and sorted by their start they are in name order ('a' < 'a-b/x' < 'a/x').
  const ranges = projects
    .flatMap((p) => [
      { from: p, before: `${p}\u0000` },
      { from: `${p}/`, before: `${p}0` },
    ])
    .sort((a, b) => byCodeUnits(a.from, b.from));
  const found: string[] = [];
  for (const range of ranges) {
    if (opts.after !== undefined && range.before <= opts.after) continue;
    let cursor = opts.after !== undefined && opts.after >= range.from ? opts.after : undefined;
    while (found.length < opts.want) {
      const size = Math.min(Math.max(REPOSITORY_SCAN_BATCH, opts.want - found.length), REPOSITORY_SCAN_BATCH_MAX);
      const batch = await metadata.listRepositories({ n: size, from: range.from, before: range.before, ...(cursor !== undefined ? { last: cursor } : {}) });
      found.push(...batch);
      if (batch.length < size) break;
      cursor = batch[batch.length - 1]!;
    }
    if (found.length >= opts.want) break;
  }
  return found;
}
