import { AnalyseError } from '../errors.js';

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

/**
 * Shared across the layers of one image, so the limits hold for the whole image. A layer taken
 * from the cache is charged what it cost when it was read, so the same limits give the same
 * answer whether or not the cache had the layer.
 */
export class LimitTracker {
  bytes = 0;
  entries = 0;
  constructor(readonly limits: WalkLimits) {}

  /** One tar entry (or file) of `size` bytes, named `name` in messages. */
  addEntry(size: number, name: string, subject: string): void {
    this.entries++;
    this.bytes += size;
    this.checkTotals(subject, '');
    this.checkFile(size, name, subject);
  }

  /** Bytes decompressed that are no entry's content: tar headers, data after the end of the archive. */
  addOverhead(bytes: number, subject: string): void {
    this.bytes += bytes;
    this.checkTotals(subject, ', counting tar metadata and data after the end of the archive');
  }

  /** A whole layer analysed before: its entries, uncompressed bytes and largest file. */
  addCachedLayer(layer: { entries: number; bytes: number; largestFile: number }, subject: string): void {
    this.entries += layer.entries;
    this.bytes += layer.bytes;
    this.checkTotals(subject, '');
    this.checkFile(layer.largestFile, 'a file', subject);
  }

  private checkTotals(subject: string, counting: string): void {
    if (this.entries > this.limits.maxEntries) {
      throw new AnalyseError(
        'LIMIT_EXCEEDED',
        `${subject}: more than ${this.limits.maxEntries} entries in the image (raise --max-entries if this is genuine)`,
      );
    }
    if (this.bytes > this.limits.maxTotalBytes) {
      throw new AnalyseError(
        'LIMIT_EXCEEDED',
        `${subject}: more than ${this.limits.maxTotalBytes} uncompressed bytes in the image${counting} (raise --max-total-bytes if this is genuine)`,
      );
    }
  }

  private checkFile(size: number, name: string, subject: string): void {
    if (size > this.limits.maxFileBytes) {
      throw new AnalyseError(
        'LIMIT_EXCEEDED',
        `${subject}: ${name} is ${size} bytes, over the ${this.limits.maxFileBytes}-byte file limit`,
      );
    }
  }
}
