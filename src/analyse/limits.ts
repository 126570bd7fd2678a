/** Guards against decompression bombs and hostile layers. All configurable from the CLI/config. */
export interface WalkLimits {
  /** Total uncompressed bytes across all layers of one image. */
  maxTotalBytes: number;
  /** Tar entries across all layers of one image. */
  maxEntries: number;
  /** Size of any single file in a layer. */
  maxFileBytes: number;
}

export const DEFAULT_LIMITS: WalkLimits = {
  maxTotalBytes: 32 * 1024 ** 3,
  maxEntries: 2_000_000,
  maxFileBytes: 8 * 1024 ** 3,
};

/** Shared across the layers of one image, so the limits hold for the whole image. */
export class LimitTracker {
  bytes = 0;
  entries = 0;
  constructor(readonly limits: WalkLimits) {}
}
