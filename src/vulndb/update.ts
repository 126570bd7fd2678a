import { createWriteStream } from 'node:fs';
import { mkdir, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { Readable, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import type { Logger } from './index-db.js';
import { importOsv, openZip, type ImportProgress, type ImportSummary } from './import.js';
import { VulnDbError, vulnDbDir } from './location.js';
import { isStorageFull } from '../store/errors.js';

import { DEFAULT_OSV_BASE_URL } from './update-defaults.js';

export { DEFAULT_OSV_BASE_URL };

export type UpdateProgress =
  | { phase: 'download'; ecosystem: string; url: string; bytes: number; totalBytes?: number }
  | ({ phase: 'import' } & ImportProgress);

export interface UpdateOptions {
  /** OSV bucket ecosystem names: `Alpine`, `Debian`, `npm`, `Red Hat`, ... */
  ecosystems: string[];
  baseUrl?: string;
  onProgress?: (p: UpdateProgress) => void;
  log?: Logger;
  /**
   * Abort a download that delivers no bytes for this long, or fewer than MIN_DOWNLOAD_BYTES_PER_SECOND
   * on average over a stretch this long (default 60 s).
   */
  idleTimeoutMs?: number;
}

export interface UpdateSummary extends ImportSummary {
  downloads: Array<{ ecosystem: string; url: string; bytes: number }>;
}

/** `<base>/<Ecosystem>/all.zip`, with the ecosystem as one encoded path segment (`Red Hat` → `Red%20Hat`). */
export function osvZipUrl(baseUrl: string, ecosystem: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(ecosystem)}/all.zip`;
}

/**
 * Downloads every ecosystem's all.zip, then imports them together as one atomic replacement.
 * Any failed or unreadable download aborts before the import, so the live database is untouched.
 */
export async function updateOsv(dataDir: string, opts: UpdateOptions): Promise<UpdateSummary> {
  const ecosystems = [...new Set(opts.ecosystems)];
  if (ecosystems.length === 0) {
    throw new VulnDbError('UPDATE_NOTHING', 'no ecosystems to update');
  }
  const baseUrl = opts.baseUrl ?? DEFAULT_OSV_BASE_URL;
  const tmpDir = join(vulnDbDir(dataDir), 'tmp');
  await mkdir(tmpDir, { recursive: true });
  const files: string[] = [];
  const sources = new Map<string, string>();
  const downloads: UpdateSummary['downloads'] = [];
  try {
    for (const ecosystem of ecosystems) {
      const url = osvZipUrl(baseUrl, ecosystem);
      const file = join(
        tmpDir,
        `${ecosystem.replace(/[^A-Za-z0-9._-]/g, '_')}-${randomBytes(4).toString('hex')}.zip`,
      );
      files.push(file);
      const bytes = await download(url, file, ecosystem, opts);
      try {
        const zip = await openZip(file);
        zip.close();
      } catch (err) {
        throw new VulnDbError(
          'DOWNLOAD_CORRUPT',
          `${url} did not return a readable zip: ${(err as Error).message}`,
          {
            subject: url,
            cause: err,
          },
        );
      }
      sources.set(file, url);
      downloads.push({ ecosystem, url, bytes });
    }
    const summary = await importOsv(dataDir, files, {
      sources,
      ...(opts.log ? { log: opts.log } : {}),
      ...(opts.onProgress
        ? { onProgress: (p: ImportProgress) => opts.onProgress?.({ phase: 'import', ...p }) }
        : {}),
    });
    return { ...summary, downloads };
  } finally {
    await Promise.all(files.map((f) => rm(f, { force: true })));
  }
}

/**
 * The slowest a download may be, on average over each idle-timeout stretch. A mirror or proxy that
 * sends a byte now and then never trips the idle timeout; it held `db update`, and with it every
 * later scheduled update of `serve`, for as long as it went on. The real archives are tens of
 * megabytes from a CDN, so 1 KiB/s only stops what would never finish.
 */
export const MIN_DOWNLOAD_BYTES_PER_SECOND = 1024;

async function download(url: string, file: string, ecosystem: string, opts: UpdateOptions): Promise<number> {
  const idleMs = opts.idleTimeoutMs ?? 60_000;
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const arm = (): void => {
    clearTimeout(timer);
    timer = setTimeout(() => controller.abort(new Error(`no data for ${idleMs} ms`)), idleMs);
  };
  const floor = Math.ceil((MIN_DOWNLOAD_BYTES_PER_SECOND * idleMs) / 1000);
  // Set again when the answer arrives: the wait for it (name lookup, handshake, a proxy that fills
  // its cache before it answers) is the idle timeout's to judge, not the body's pace.
  let stretchStart = Date.now();
  let stretchBytes = 0;
  const paced = (chunkBytes: number): void => {
    stretchBytes += chunkBytes;
    if (Date.now() - stretchStart < idleMs) return;
    if (stretchBytes < floor) {
      controller.abort(new Error(`under ${MIN_DOWNLOAD_BYTES_PER_SECOND} bytes/s over ${idleMs} ms`));
    }
    stretchStart = Date.now();
    stretchBytes = 0;
  };
  const failed = (what: string, cause?: unknown): VulnDbError =>
    new VulnDbError(
      'DOWNLOAD_FAILED',
      `downloading ${url} failed: ${what}; the existing database was left unchanged`,
      {
        subject: url,
        cause,
      },
    );
  arm();
  try {
    let res: Response;
    try {
      res = await fetch(url, { signal: controller.signal });
    } catch (err) {
      throw failed(describeFetchError(err), err);
    }
    if (!res.ok || res.body === null) {
      await res.body?.cancel().catch(() => undefined);
      throw failed(`HTTP ${res.status} ${res.statusText}`.trim());
    }
    stretchStart = Date.now();
    const lengthHeader = res.headers.get('content-length');
    const totalBytes = lengthHeader === null ? undefined : Number(lengthHeader);
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _enc, cb) {
        bytes += chunk.length;
        arm();
        paced(chunk.length);
        opts.onProgress?.({
          phase: 'download',
          ecosystem,
          url,
          bytes,
          ...(totalBytes !== undefined ? { totalBytes } : {}),
        });
        cb(null, chunk);
      },
    });
    try {
      await pipeline(
        Readable.fromWeb(res.body as WebReadableStream<Uint8Array>),
        meter,
        createWriteStream(file),
      );
    } catch (err) {
      if (isStorageFull(err)) throw failed(`the disk holding ${file} is full after ${bytes} bytes`, err);
      const why = controller.signal.aborted ? describeFetchError(controller.signal.reason) : describeFetchError(err);
      throw failed(`connection lost after ${bytes} bytes (${why})`, err);
    }
    if (totalBytes !== undefined && Number.isFinite(totalBytes) && bytes !== totalBytes) {
      throw failed(`received ${bytes} of ${totalBytes} bytes`);
    }
    return bytes;
  } finally {
    clearTimeout(timer);
  }
}

function describeFetchError(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  // undici wraps the socket error ("ECONNREFUSED", "other side closed") in `cause`.
  const cause = err.cause instanceof Error ? `: ${err.cause.message}` : '';
  return `${err.message}${cause}`;
}
