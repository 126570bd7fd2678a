import { createReadStream, createWriteStream, rmSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Transform, type TransformCallback } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { OciError } from '../../errors.js';
import { createDecompressor, detectCompression } from '../decompress.js';
import { readFileRange } from '../tar-index.js';

/** The tar to index for an archive file, and what to remove once the image is read. */
export interface ArchiveTar {
  path: string;
  compression: 'gzip' | 'zstd' | 'none';
  cleanup?: () => Promise<void>;
}

/**
 * An archive as a tar that can be read at any offset. `docker save | gzip > image.tar.gz` (or
 * zstd) is how images are often kept and passed around; a compressed stream has no offsets to
 * seek to, so such an archive is decompressed once into a private temporary folder, capped at
 * `maxBytes` (a decompression bomb stops there), and removed by `cleanup`. A plain tar is used
 * where it lies.
 */
export async function archiveTar(
  file: string,
  display: string,
  opts: { scratchRoot: string; maxBytes: number },
): Promise<ArchiveTar> {
  const compression = detectCompression(readHead(file, display));
  const decompressor = createDecompressor(compression);
  if (!decompressor) return { path: file, compression };
  // The scratch root (the cache's scratch folder, for the CLI) may not exist yet.
  await mkdir(opts.scratchRoot, { recursive: true, mode: 0o700 });
  await removeStaleCopies(opts.scratchRoot);
  const dir = await mkdtemp(join(opts.scratchRoot, PREFIX));
  liveCopies.add(dir);
  removeOnSignal();
  const cleanup = async () => {
    liveCopies.delete(dir);
    await rm(dir, { recursive: true, force: true });
  };
  const tar = join(dir, 'archive.tar');
  try {
    await pipeline(
      createReadStream(file),
      decompressor,
      new ByteCap(opts.maxBytes, display),
      createWriteStream(tar, { mode: 0o600 }),
    );
  } catch (err) {
    await cleanup();
    if (err instanceof OciError) throw err;
    const code = (err as NodeJS.ErrnoException).code;
    // The decompressors' errors carry no errno code; the file system's do (ENOSPC, EACCES).
    if (typeof code === 'string' && /^E[A-Z]+$/.test(code)) {
      throw new OciError(
        'ARCHIVE_UNREADABLE',
        `${display}: cannot write its decompressed copy under ${opts.scratchRoot} (${code})`,
      );
    }
    throw new OciError(
      'ARCHIVE_CORRUPT',
      `${display}: corrupt ${compression} data (${(err as Error).message})`,
    );
  }
  return { path: tar, compression, cleanup };
}

const PREFIX = 'portcullis-archive-';
/** A copy untouched this long belongs to a scan that was killed (SIGKILL, a crash): nothing reads it. */
const STALE_MS = 24 * 3600 * 1000;
const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
const liveCopies = new Set<string>();
let signalsHandled = false;

/** Copies left by scans that were killed, found by their prefix and age. */
async function removeStaleCopies(scratchRoot: string): Promise<void> {
  const names = await readdir(scratchRoot).catch(() => [] as string[]);
  for (const name of names) {
    if (!name.startsWith(PREFIX)) continue;
    const dir = join(scratchRoot, name);
    const copy = await stat(join(dir, 'archive.tar')).catch(() => stat(dir).catch(() => undefined));
    if (copy && Date.now() - copy.mtimeMs > STALE_MS) await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Ctrl-C or a SIGTERM during a scan must not leave a copy as large as the image behind: the copies
 * are removed, then the signal is raised again with these handlers gone, so the process ends as it
 * would have. `exit` covers process.exit() on the way out.
 */
function removeOnSignal(): void {
  if (signalsHandled) return;
  signalsHandled = true;
  const removeAll = () => {
    for (const dir of liveCopies) rmSync(dir, { recursive: true, force: true });
    liveCopies.clear();
  };
  process.once('exit', removeAll);
  const handlers = new Map<NodeJS.Signals, () => void>();
  for (const signal of SIGNALS) {
    handlers.set(signal, () => {
      removeAll();
      for (const [s, h] of handlers) process.removeListener(s, h);
      process.kill(process.pid, signal);
    });
    process.once(signal, handlers.get(signal)!);
  }
}

function readHead(file: string, display: string): Buffer {
  try {
    return readFileRange(file, 0, 4);
  } catch (err) {
    throw new OciError(
      'ARCHIVE_UNREADABLE',
      `${display}: cannot open ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`,
    );
  }
}

/** Fails the stream once more than `max` bytes have passed. */
class ByteCap extends Transform {
  private seen = 0;
  constructor(
    private readonly max: number,
    private readonly display: string,
  ) {
    super();
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.seen += chunk.length;
    if (this.seen > this.max) {
      cb(
        new OciError(
          'LIMIT_EXCEEDED',
          `${this.display}: decompresses to more than ${this.max} bytes (raise --max-total-bytes if this is genuine)`,
        ),
      );
      return;
    }
    cb(null, chunk);
  }
}
