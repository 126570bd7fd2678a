import type { ManifestRecord } from '../store/index.js';

/**
 * Tag, manifest and blob-link lookups kept in memory for the pull path (manifest GET and HEAD,
 * blob HEAD and GET), valid only while the metadata's change stamp stays the same.
 *
 * The stamp (`RegistryMetadata.changeStamp`) moves on every write this process makes and on every
 * commit by another process sharing the database (the CLI, a collection), so a tag that moved or
 * was deleted, a manifest deleted, or a blob unlinked is never answered from here: the first lookup
 * after any change empties the cache. A lookup costs one tiny statement instead of two or three
 * queries (and a `stat` for blobs). A value read from the database is stored only when the stamp
 * has not moved since the lookup began, so a write that lands in between cannot leave an old value
 * behind. Garbage collection commits a blob's unlinking before it deletes the file, so a cached
 * blob size never outlives the link it came from.
 */
export class RegistryReadCache {
  private stamp = Number.NaN;
  private readonly tags = new Map<string, string>();
  private readonly manifests = new Map<string, ManifestRecord>();
  private readonly blobSizes = new Map<string, number>();

  constructor(
    private readonly changeStamp: () => number,
    /** Entries per map; a full map is emptied rather than tracked for recency. */
    private readonly maxEntries = 20_000,
  ) {}

  /** Starts a lookup: empties the cache when the metadata changed; the result goes to the setters. */
  begin(): number {
    const now = this.changeStamp();
    if (now !== this.stamp) {
      this.tags.clear();
      this.manifests.clear();
      this.blobSizes.clear();
      this.stamp = now;
    }
    return now;
  }

  tag(repository: string, tag: string): string | undefined {
    return this.tags.get(`${repository}\n${tag}`);
  }

  manifest(repository: string, digest: string): ManifestRecord | undefined {
    return this.manifests.get(`${repository}\n${digest}`);
  }

  /** The size of a blob linked to `repository` and present in the store, when known. */
  blobSize(repository: string, digest: string): number | undefined {
    return this.blobSizes.get(`${repository}\n${digest}`);
  }

  setTag(begun: number, repository: string, tag: string, digest: string): void {
    if (this.unchangedSince(begun)) this.put(this.tags, `${repository}\n${tag}`, digest);
  }

  setManifest(begun: number, record: ManifestRecord): void {
    if (this.unchangedSince(begun)) this.put(this.manifests, `${record.repository}\n${record.digest}`, record);
  }

  setBlobSize(begun: number, repository: string, digest: string, size: number): void {
    if (this.unchangedSince(begun)) this.put(this.blobSizes, `${repository}\n${digest}`, size);
  }

  private unchangedSince(begun: number): boolean {
    return begun === this.stamp && this.changeStamp() === begun;
  }

  private put<V>(map: Map<string, V>, key: string, value: V): void {
    if (map.size >= this.maxEntries) map.clear();
    map.set(key, value);
  }
}
