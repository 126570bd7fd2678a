import { createReadStream } from 'node:fs';
import { readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { OciError } from '../../errors.js';
import { indexTarFile, readFileRange, type TarMember } from '../tar-index.js';

/** Read access to the files of an image layout, whether it is a folder or packed in a tar. */
export interface FileAccess {
  size(path: string): Promise<number | undefined>;
  open(path: string): Promise<Readable>;
  read(path: string, maxBytes: number): Promise<Buffer>;
  /** Releases what opening took (a decompressed copy of an archive); optional. */
  close?(): Promise<void>;
}

const STREAM_BUFFER = 1 << 20;

export class FolderAccess implements FileAccess {
  constructor(
    private readonly root: string,
    private readonly display: string,
  ) {}

  async size(path: string): Promise<number | undefined> {
    try {
      const s = await stat(join(this.root, path));
      return s.isFile() ? s.size : undefined;
    } catch {
      return undefined;
    }
  }

  async open(path: string): Promise<Readable> {
    if ((await this.size(path)) === undefined) throw await this.notReadable(path);
    return createReadStream(join(this.root, path), { highWaterMark: STREAM_BUFFER });
  }

  async read(path: string, maxBytes: number): Promise<Buffer> {
    const size = await this.size(path);
    if (size === undefined) throw await this.notReadable(path);
    if (size > maxBytes) {
      throw new OciError('DOCUMENT_TOO_LARGE', `${this.display}: ${path} is ${size} bytes, over the ${maxBytes}-byte limit`);
    }
    return readFile(join(this.root, path));
  }

  /** Why a file of the layout cannot be read: it is absent, or it is there but no regular file. */
  private async notReadable(path: string): Promise<OciError> {
    const there = await stat(join(this.root, path)).then(
      () => true,
      () => false,
    );
    return new OciError('BLOB_UNKNOWN', `${this.display}: ${path} ${there ? 'is not a regular file' : 'is missing'}`);
  }
}

export class TarAccess implements FileAccess {
  private constructor(
    private readonly file: string,
    private readonly display: string,
    private readonly members: Map<string, TarMember>,
    private readonly cleanup?: () => Promise<void>,
  ) {}

  /** `cleanup` runs on close (and if indexing fails): for a tar that is a temporary copy. */
  static async open(file: string, display: string, cleanup?: () => Promise<void>): Promise<TarAccess> {
    try {
      return new TarAccess(file, display, await indexTarFile(file, display), cleanup);
    } catch (err) {
      await cleanup?.();
      throw err;
    }
  }

  async close(): Promise<void> {
    await this.cleanup?.();
  }

  async size(path: string): Promise<number | undefined> {
    return this.members.get(path)?.size;
  }

  private member(path: string): TarMember {
    const m = this.members.get(path);
    if (!m) throw new OciError('BLOB_UNKNOWN', `${this.display}: ${path} is missing from the archive`);
    return m;
  }

  async open(path: string): Promise<Readable> {
    const m = this.member(path);
    if (m.size === 0) {
      const { Readable } = await import('node:stream');
      return Readable.from([]);
    }
    return createReadStream(this.file, { start: m.offset, end: m.offset + m.size - 1, highWaterMark: STREAM_BUFFER });
  }

  async read(path: string, maxBytes: number): Promise<Buffer> {
    const m = this.member(path);
    if (m.size > maxBytes) {
      throw new OciError('DOCUMENT_TOO_LARGE', `${this.display}: ${path} is ${m.size} bytes, over the ${maxBytes}-byte limit`);
    }
    // Documents (index.json, manifests, configs) are small and capped: one positioned read, on
    // this thread, costs less than the open, read and close round trips of a stream through
    // libuv's pool, which a scan otherwise waits for once per document before any layer starts.
    return readFileRange(this.file, m.offset, m.size);
  }
}
