import { readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { FsBlobStore, blobRoot, type BlobStore } from './blob-store.js';
import { SqliteRegistryMetadata, type ManifestRecord, type RegistryMetadata } from './metadata.js';

/** What GC and fsck work on: the stores a running registry uses, or a data folder. */
export interface StoreTarget {
  metadata: RegistryMetadata;
  blobs: BlobStore;
}

export interface GcOptions {
  /** Anything created, linked or touched by a push within this window is kept (default 1 h). */
  gracePeriodMs?: number;
  /** Report what would go, delete nothing. */
  dryRun?: boolean;
  /** Delete manifests no tag, index or kept subject needs (default true). */
  deleteUntagged?: boolean;
  /** Upload sessions idle and temp files untouched this long are abandoned (default 24 h). */
  staleUploadMs?: number;
  /** Clock, for tests. */
  now?: () => number;
  /**
   * Stops the run at the next step (the server is shutting down). Safe at any step: every
   * deletion is its own transaction and one left half done is finished by the next run.
   */
  signal?: AbortSignal;
}

export interface GcResult {
  dryRun: boolean;
  manifestsDeleted: { repository: string; digest: string }[];
  blobsDeleted: string[];
  bytesFreed: number;
  linksRemoved: number;
  /** Repositories that held nothing any more (no manifest, link or upload) and were forgotten. */
  repositoriesRemoved: number;
  blobsKept: number;
  uploadsRemoved: number;
  tempFilesRemoved: number;
  tempBytesFreed: number;
  /** Deletions a crashed earlier run left behind and this run finished. */
  interruptedFinished: number;
  /** Analyses (facts, package index) of images no repository holds any more. */
  analysesRemoved: number;
  /** The run was stopped (`signal`) before it finished; the counts say what it did until then. */
  stopped: boolean;
}

export const DEFAULT_GRACE_MS = 60 * 60_000;
export const DEFAULT_STALE_UPLOAD_MS = 24 * 60 * 60_000;

/** Opens the stores of a data folder (or wraps given ones) and closes only what it opened. */
export async function withStores<T>(target: string | StoreTarget, fn: (t: StoreTarget) => Promise<T>): Promise<T> {
  if (typeof target !== 'string') return fn(target);
  const metadata = await SqliteRegistryMetadata.open(target);
  try {
    return await fn({ metadata, blobs: new FsBlobStore(blobRoot(target)) });
  } finally {
    await metadata.close();
  }
}

export async function listAllRepositories(metadata: RegistryMetadata): Promise<string[]> {
  const all: string[] = [];
  let last: string | undefined;
  for (;;) {
    const page = await metadata.listRepositories({ n: 1000, ...(last !== undefined ? { last } : {}) });
    all.push(...page);
    if (page.length < 1000) return all;
    last = page[page.length - 1];
  }
}

/**
 * Which manifests of one repository survive: tagged ones, recent or recently touched ones, and,
 * to a fixed point, the children of kept indexes and the referrers of kept subjects.
 */
function keptManifests(
  manifests: ManifestRecord[],
  tagged: Set<string>,
  refs: { manifestDigest: string; digest: string; kind: string }[],
  touched: Set<string>,
  cutoff: string,
): Set<string> {
  const kept = new Set<string>();
  for (const m of manifests) if (tagged.has(m.digest) || m.createdAt >= cutoff || touched.has(m.digest)) kept.add(m.digest);
  const children = new Map<string, string[]>();
  for (const r of refs) {
    if (r.kind !== 'manifest') continue;
    children.set(r.manifestDigest, [...(children.get(r.manifestDigest) ?? []), r.digest]);
  }
  for (let changed = true; changed; ) {
    changed = false;
    for (const m of manifests) {
      if (kept.has(m.digest)) {
        for (const c of children.get(m.digest) ?? []) {
          if (kept.has(c)) continue;
          kept.add(c);
          changed = true;
        }
      } else if (m.subjectDigest && kept.has(m.subjectDigest)) {
        kept.add(m.digest);
        changed = true;
      }
    }
  }
  return kept;
}

/**
 * Mark-and-sweep garbage collection, safe to run next to a serving registry (same or another
 * process). No lock is held across the run: every deletion is one short transaction in the
 * metadata store that re-checks what a concurrent push could have changed (a new tag, a new
 * reference, a touch), and pushes record their manifests in transactions that check the blobs
 * are still linked and not being deleted. So a push either finishes with everything it
 * references kept, or fails with MANIFEST_BLOB_UNKNOWN and can be retried.
 */
/**
 * Forgets upload sessions idle since before `staleBefore` and deletes temp files untouched since
 * then (whatever no live session names). Part of every gc; `serve` also runs it on its own every
 * hour, so abandoned uploads do not fill the disk where no gc is scheduled.
 */
export async function purgeStaleUploads(
  { metadata, blobs }: StoreTarget,
  options: { staleBefore: number; dryRun?: boolean },
): Promise<{ uploadsRemoved: number; tempFilesRemoved: number; tempBytesFreed: number }> {
  const { staleBefore } = options;
  const dryRun = options.dryRun ?? false;
  const fs = blobs instanceof FsBlobStore ? blobs : null;
  const result = { uploadsRemoved: 0, tempFilesRemoved: 0, tempBytesFreed: 0 };
  const live = new Set<string>();
  for (const upload of await metadata.listUploads()) {
    if (Date.parse(upload.updatedAt) >= staleBefore) {
      live.add(upload.uuid);
      continue;
    }
    result.uploadsRemoved++;
    if (!dryRun) await metadata.deleteUpload(upload.uuid);
  }
  if (fs) {
    for (const name of await readdir(fs.tmpDir).catch(() => [] as string[])) {
      if (live.has(name)) continue;
      const path = join(fs.tmpDir, name);
      const s = await stat(path).catch(() => null);
      // An in-flight write keeps its mtime fresh; only files idle past the limit go.
      if (!s || s.mtimeMs >= staleBefore) continue;
      result.tempFilesRemoved++;
      result.tempBytesFreed += s.size;
      if (!dryRun) await rm(path, { force: true, recursive: true });
    }
  }
  return result;
}

export async function gc(target: string | StoreTarget, options: GcOptions = {}): Promise<GcResult> {
  return withStores(target, (t) => collect(t, options));
}

async function collect({ metadata, blobs }: StoreTarget, options: GcOptions): Promise<GcResult> {
  const clock = options.now ?? Date.now;
  const start = clock();
  const grace = Math.max(0, options.gracePeriodMs ?? DEFAULT_GRACE_MS);
  const cutoff = new Date(start - grace).toISOString();
  const dryRun = options.dryRun ?? false;
  const fs = blobs instanceof FsBlobStore ? blobs : null;
  const result: GcResult = {
    dryRun,
    manifestsDeleted: [],
    blobsDeleted: [],
    bytesFreed: 0,
    linksRemoved: 0,
    repositoriesRemoved: 0,
    blobsKept: 0,
    uploadsRemoved: 0,
    tempFilesRemoved: 0,
    tempBytesFreed: 0,
    interruptedFinished: 0,
    analysesRemoved: 0,
    stopped: false,
  };
  const halted = () => {
    if (options.signal?.aborted) result.stopped = true;
    return result.stopped;
  };

  // A run that died between deciding and deleting left rows here; nothing can link or reference
  // those digests while the row exists, so finishing the deletion is safe.
  if (!dryRun) {
    for (const digest of await metadata.pendingBlobDeletions()) {
      if (halted()) return result;
      await blobs.delete(digest);
      await metadata.endBlobDeletion(digest);
      result.interruptedFinished++;
    }
  }

  // Mark, repository by repository.
  const touched = await metadata.touchedSince(cutoff);
  const referenced = new Set<string>();
  for (const repo of await listAllRepositories(metadata)) {
    if (halted()) return result;
    const manifests = await metadata.listManifests(repo);
    const tagged = new Set((await metadata.listTagTargets(repo)).map((t) => t.digest));
    const refs = await metadata.listManifestRefs(repo);
    const kept = options.deleteUntagged === false ? new Set(manifests.map((m) => m.digest)) : keptManifests(manifests, tagged, refs, touched, cutoff);
    let candidates = manifests.filter((m) => !kept.has(m.digest)).map((m) => m.digest);
    if (dryRun) {
      for (const digest of candidates) result.manifestsDeleted.push({ repository: repo, digest });
    } else {
      // Parents before children and subjects before referrers: the transaction refuses a manifest
      // something still stored needs, so repeat until a pass deletes nothing.
      for (let progress = true; progress && candidates.length > 0; ) {
        progress = false;
        const left: string[] = [];
        for (const digest of candidates) {
          if (await metadata.deleteManifestIfUnused(repo, digest, cutoff)) {
            result.manifestsDeleted.push({ repository: repo, digest });
            kept.delete(digest);
            progress = true;
          } else left.push(digest);
        }
        candidates = left;
      }
      // Whatever could not go is kept (a push tagged it meanwhile).
      for (const digest of candidates) kept.add(digest);
    }
    const usedHere = new Set<string>();
    for (const m of manifests) {
      if (!kept.has(m.digest)) continue;
      referenced.add(m.digest);
      usedHere.add(m.digest);
    }
    for (const r of refs) {
      if (!kept.has(r.manifestDigest)) continue;
      referenced.add(r.digest);
      usedHere.add(r.digest);
    }
    // Links this repository no longer needs. A blob another repository still uses survives the
    // sweep below, but this repository's link to it would count against its project's quota
    // forever; the transaction re-checks against pushes that happened since.
    for (const link of await metadata.listBlobLinks(repo)) {
      if (usedHere.has(link.digest) || touched.has(link.digest) || link.createdAt >= cutoff) continue;
      if (dryRun || (await metadata.unlinkBlobIfUnreferenced(repo, link.digest, cutoff))) result.linksRemoved++;
    }
  }
  const recentLinks = new Set((await metadata.listBlobLinks()).filter((l) => l.createdAt >= cutoff).map((l) => l.digest));

  // Sweep blobs.
  for await (const blob of blobs.list()) {
    if (halted()) return result;
    if (referenced.has(blob.digest) || touched.has(blob.digest) || recentLinks.has(blob.digest)) {
      result.blobsKept++;
      continue;
    }
    if (fs) {
      // A blob just renamed into place but not yet linked has only its file time to protect it.
      const s = await stat(fs.blobPath(blob.digest)).catch(() => null);
      if (!s) continue;
      if (s.mtime.toISOString() >= cutoff) {
        result.blobsKept++;
        continue;
      }
    }
    if (dryRun) {
      result.blobsDeleted.push(blob.digest);
      result.bytesFreed += blob.size;
      continue;
    }
    const links = await metadata.beginBlobDeletion(blob.digest, cutoff);
    if (links === null) {
      result.blobsKept++;
      continue;
    }
    try {
      await blobs.delete(blob.digest);
    } finally {
      await metadata.endBlobDeletion(blob.digest);
    }
    result.linksRemoved += links;
    result.blobsDeleted.push(blob.digest);
    result.bytesFreed += blob.size;
  }

  // Abandoned upload sessions and temp files.
  if (halted()) return result;
  const swept = await purgeStaleUploads({ metadata, blobs }, { dryRun, staleBefore: start - (options.staleUploadMs ?? DEFAULT_STALE_UPLOAD_MS) });
  result.uploadsRemoved = swept.uploadsRemoved;
  result.tempFilesRemoved = swept.tempFilesRemoved;
  result.tempBytesFreed = swept.tempBytesFreed;

  // Repositories left with nothing (all deleted, or made by a push or mount that was refused):
  // the catalog lists only what holds something.
  if (!dryRun) {
    for (const repo of await listAllRepositories(metadata)) {
      if (halted()) return result;
      if (await metadata.deleteRepositoryIfEmpty(repo, cutoff)) result.repositoriesRemoved++;
    }
  }
  if (halted()) return result;
  if (!dryRun) result.analysesRemoved = await metadata.pruneAnalyses(cutoff);
  // Touches older than any sensible grace window protect nothing any more.
  if (!dryRun) await metadata.pruneTouches(new Date(start - Math.max(grace, DEFAULT_STALE_UPLOAD_MS)).toISOString());
  return result;
}
