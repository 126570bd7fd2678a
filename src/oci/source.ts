import type { Readable } from 'node:stream';

/** A blob as a descriptor names it: the digest always, the size when known. */
export interface BlobRef {
  digest: string;
  size?: number;
  mediaType?: string;
}

/** The top document of an image: an index or a manifest, with its digest. */
export interface RootDocument {
  bytes: Buffer;
  /** Digest of `bytes` (computed or checked against what the source claimed). */
  digest: string;
  /** Media type reported by the source (Content-Type, descriptor), when known. */
  mediaType?: string;
}

/**
 * Where image content comes from: an OCI layout, an archive, a registry. A source knows how to
 * find the root document for the requested tag or digest, and how to stream any blob by digest.
 * Every stream it returns is verified against the digest (and size) while it flows; a mismatch
 * fails the stream with an OciError.
 */
export interface ImageSource {
  /** The reference as the user wrote it, used in every message. */
  readonly display: string;
  root(): Promise<RootDocument>;
  /** Streams a blob, verified as it flows. */
  openBlob(ref: BlobRef): Promise<Readable>;
  /** Reads a small blob (manifest, config) fully, verified, refusing anything over `maxBytes`. */
  readBlob(ref: BlobRef, maxBytes: number): Promise<Buffer>;
  /**
   * Reads a manifest an index names, verified like a blob. Only sources whose manifests are not
   * blobs need it: a registry serves them under /manifests/, and most (distribution among them)
   * answer 404 for a manifest digest asked for under /blobs/. Without it, readBlob is used.
   */
  readManifest?(ref: BlobRef, maxBytes: number): Promise<Buffer>;
  close(): Promise<void>;
}

/** Largest manifest or config we accept (the distribution spec's manifest limit). */
export const MAX_DOCUMENT_BYTES = 4 * 1024 * 1024;
