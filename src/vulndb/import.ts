import { close, createReadStream, fstatSync, openSync, readSync } from 'node:fs';
import { open as openFile, readdir, stat } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { Readable } from 'node:stream';
import { crc32, createGunzip, inflateRawSync } from 'node:zlib';
import yauzl from 'yauzl';
import { IndexWriter, modifiedMs, type Logger } from './index-db.js';
import { ArrayElementScanner, looksLikeNvdFeed, parseNvdItem, type NvdSeverity } from './nvd.js';
import { parseOsvRecord } from './osv-schema.js';
import { VulnDbError } from './store.js';
import { byCodeUnits } from '../text-order.js';

/** A single OSV record is a few KiB; anything this large is not one and would only cost memory. */
export const MAX_ENTRY_BYTES = 16 * 1024 * 1024;
const MAX_REASONS = 20;
const HEAD_BYTES = 64 * 1024;

export interface ImportProgress {
  /** The input being read (path, or the label given for it). */
  file: string;
  /** Entries (zip) or records (JSON/NVD) read so far from this input. */
  done: number;
  /** Entries in the zip, when known. */
  total?: number;
}

export interface ImportOptions {
  onProgress?: (p: ImportProgress) => void;
  log?: Logger;
  /** Label stored as the `source` of records from a path (e.g. the URL a zip was downloaded from). */
  sources?: ReadonlyMap<string, string>;
}

export interface ImportSummary {
  /** Records written (new, or newer than the stored copy). */
  records: number;
  /** Valid records not written because the database already had the same id at least as new. */
  unchanged: number;
  /** Inputs or records that could not be used (schema failures, oversized or unreadable entries). */
  skipped: number;
  /** The first few reasons for `skipped`. */
  skippedReasons: string[];
  /** Records written per ecosystem, exactly as spelled in `affected[].package.ecosystem`. */
  ecosystems: Record<string, number>;
  /** CVE severities written (OSV CVE records and NVD feeds). */
  cves: number;
  durationMs: number;
}

type InputKind = 'zip' | 'json';

/** Where readers deliver what they decode; every database write for an input goes through it. */
interface Sink {
  osv(value: unknown, where: string): void;
  nvd(sev: NvdSeverity): void;
  skip(reason: string): void;
}

interface Input {
  path: string;
  kind: InputKind;
}

/**
 * Imports OSV data (zips in osv.dev bucket layout, folders, single JSON files, NVD 2.0 feeds,
 * optionally gzipped) into `<dataDir>/vulndb/osv.sqlite` as one atomic replacement of the file.
 */
export async function importOsv(
  dataDir: string,
  paths: string[],
  opts: ImportOptions = {},
): Promise<ImportSummary> {
  const started = Date.now();
  const inputs: Input[] = [];
  for (const p of paths) inputs.push(...(await expandInput(resolve(p))));
  if (inputs.length === 0) {
    throw new VulnDbError(
      'IMPORT_NO_INPUT',
      `nothing to import in ${paths.join(', ')}: no .zip or .json files found`,
    );
  }

  const summary: ImportSummary = {
    records: 0,
    unchanged: 0,
    skipped: 0,
    skippedReasons: [],
    ecosystems: {},
    cves: 0,
    durationMs: 0,
  };
  const skip = (reason: string): void => {
    summary.skipped++;
    if (summary.skippedReasons.length < MAX_REASONS) summary.skippedReasons.push(reason);
    if (summary.skipped <= MAX_REASONS) opts.log?.warn(`skipped ${reason}`);
  };

  const writer = IndexWriter.open(dataDir, opts.log);
  try {
    for (const input of inputs) {
      const source = opts.sources?.get(input.path) ?? input.path;
      const sink: Sink = {
        osv: (value, where) => handleValue(writer, value, where, source, summary, skip),
        nvd: (sev) => {
          if (writer.addCveSeverity(sev.cveId, sev.vectors, sev.score, source, sev.modifiedMs))
            summary.cves++;
        },
        skip,
      };
      if (input.kind === 'zip') await readZip(input.path, source, sink, opts.onProgress);
      else await readJson(input.path, source, sink, opts.onProgress);
    }
    writer.finish();
  } catch (err) {
    writer.abort();
    throw err;
  }
  summary.durationMs = Date.now() - started;
  return summary;
}

function handleValue(
  writer: IndexWriter,
  value: unknown,
  where: string,
  source: string,
  summary: ImportSummary,
  skip: (reason: string) => void,
): void {
  const parsed = parseOsvRecord(value);
  if (!parsed.ok) {
    skip(`${where}: ${parsed.reason}`);
    return;
  }
  const record = parsed.record;
  const written = writer.addOsv(record, source);
  if (written === undefined) summary.unchanged++;
  else {
    summary.records++;
    for (const eco of written) summary.ecosystems[eco] = (summary.ecosystems[eco] ?? 0) + 1;
  }
  // OSV-format CVE records (osv.dev's CVE list) carry NVD's vectors: the fallback severity for
  // distro advisories, which usually have none of their own.
  if (record.id.startsWith('CVE-') && record.severity !== undefined && record.severity.length > 0) {
    if (writer.addCveSeverity(record.id, record.severity, undefined, source, modifiedMs(record.modified)))
      summary.cves++;
  }
}

async function expandInput(path: string): Promise<Input[]> {
  let st;
  try {
    st = await stat(path);
  } catch (err) {
    throw new VulnDbError('IMPORT_INPUT', `cannot read ${path}: ${(err as Error).message}`, {
      subject: path,
      cause: err,
    });
  }
  if (st.isFile()) return [{ path, kind: (await isZip(path)) ? 'zip' : 'json' }];
  if (!st.isDirectory())
    throw new VulnDbError('IMPORT_INPUT', `${path} is neither a file nor a folder`, { subject: path });
  const out: Input[] = [];
  // Sorted so imports are reproducible; zips first so loose copies of the same records
  // (usually identical) are recognised as unchanged.
  const walk = async (dir: string): Promise<void> => {
    const entries = (await readdir(dir, { withFileTypes: true })).sort((a, b) => byCodeUnits(a.name, b.name));
    for (const e of entries) {
      const full = join(dir, e.name);
      if (e.isDirectory()) await walk(full);
      else if (e.isFile()) {
        const lower = e.name.toLowerCase();
        if (lower.endsWith('.zip')) out.push({ path: full, kind: 'zip' });
        else if (lower.endsWith('.json') || lower.endsWith('.json.gz'))
          out.push({ path: full, kind: 'json' });
      }
    }
  };
  await walk(path);
  return [...out.filter((i) => i.kind === 'zip'), ...out.filter((i) => i.kind === 'json')];
}

async function isZip(path: string): Promise<boolean> {
  if (path.toLowerCase().endsWith('.zip')) return true;
  const fh = await openFile(path, 'r');
  try {
    const buf = Buffer.alloc(4);
    const { bytesRead } = await fh.read(buf, 0, 4, 0);
    return bytesRead === 4 && buf.readUInt32LE(0) === 0x04034b50;
  } finally {
    await fh.close();
  }
}

function corruptZip(path: string, detail: string, cause?: unknown): VulnDbError {
  return new VulnDbError(
    'ZIP_CORRUPT',
    `${path} is not a readable zip archive (${detail}); nothing was imported`,
    {
      subject: path,
      cause,
    },
  );
}

const WINDOW_BYTES = 4 * 1024 * 1024;

/**
 * A yauzl reader that serves the many tiny reads of a zip of small JSON files (one central
 * directory record, one local header and one compressed body per entry) from two cached 4 MiB
 * windows, one following the central directory and one following the entry data. yauzl's own
 * reader issues two thread-pool reads per entry, which dominated import time; memory stays at
 * 8 MiB whatever the zip size. Larger ranges fall back to a plain file stream.
 */
class WindowedReader extends yauzl.RandomAccessReader {
  private readonly windows: Array<{ start: number; buf: Buffer }> = [];

  constructor(
    private readonly fd: number,
    private readonly size: number,
  ) {
    super();
  }

  override _readStreamForRange(start: number, end: number): Readable {
    if (end - start > WINDOW_BYTES) {
      return createReadStream('', { fd: this.fd, start, end: end - 1, autoClose: false });
    }
    let w = this.windows.find((x) => start >= x.start && end <= x.start + x.buf.length);
    if (w === undefined) {
      const length = Math.min(WINDOW_BYTES, this.size - start);
      const buf = Buffer.allocUnsafe(Math.max(length, 0));
      let got = 0;
      try {
        while (got < length) {
          const n = readSync(this.fd, buf, got, length - got, start + got);
          if (n === 0) break;
          got += n;
        }
      } catch (err) {
        return new Readable({
          read() {
            this.destroy(err as Error);
          },
        });
      }
      w = { start, buf: buf.subarray(0, got) };
      // Keep the most recently filled window and the one before it.
      this.windows.unshift(w);
      this.windows.length = Math.min(this.windows.length, 2);
    }
    const slice = w.buf.subarray(start - w.start, end - w.start);
    let sent = false;
    return new Readable({
      read() {
        if (!sent) {
          sent = true;
          this.push(slice);
        }
        this.push(null);
      },
    });
  }

  override close(callback: (err: Error | null) => void): void {
    this.windows.length = 0;
    close(this.fd, (err) => callback(err ?? null));
  }
}

/** Opens a zip for lazy entry reading; only the central directory is read up front. */
export async function openZip(path: string): Promise<yauzl.ZipFile> {
  let fd: number;
  let size: number;
  try {
    fd = openSync(path, 'r');
    size = fstatSync(fd).size;
  } catch (err) {
    throw corruptZip(path, (err as Error).message, err);
  }
  return new Promise((resolvePromise, reject) => {
    const reader = new WindowedReader(fd, size);
    yauzl.fromRandomAccessReader(
      reader,
      size,
      { lazyEntries: true, autoClose: true, validateEntrySizes: true },
      (err, zip) => {
        if (err) {
          reader.close(() => undefined);
          reject(corruptZip(path, err.message, err));
        } else resolvePromise(zip);
      },
    );
  });
}

/** Streams each `*.json` entry; one entry is in memory at a time. */
async function readZip(
  path: string,
  label: string,
  sink: Sink,
  onProgress?: (p: ImportProgress) => void,
): Promise<void> {
  const { skip } = sink;
  const zip = await openZip(path);
  const total = zip.entryCount;
  let done = 0;
  await new Promise<void>((resolvePromise, reject) => {
    let failed = false;
    const fail = (err: unknown): void => {
      if (failed) return;
      failed = true;
      zip.close();
      reject(err);
    };
    zip.on('error', (err: Error) => fail(corruptZip(path, err.message, err)));
    zip.on('end', () => {
      if (!failed) {
        onProgress?.({ file: label, done, total });
        resolvePromise();
      }
    });
    zip.on('entry', (entry: yauzl.Entry) => {
      const next = (): void => {
        done++;
        if (done % 500 === 0) onProgress?.({ file: label, done, total });
        if (!failed) zip.readEntry();
      };
      const where = `${path}!${entry.fileName}`;
      if (entry.fileName.endsWith('/') || !entry.fileName.toLowerCase().endsWith('.json')) return next();
      if (entry.uncompressedSize > MAX_ENTRY_BYTES) {
        skip(`${where}: entry of ${entry.uncompressedSize} bytes is larger than ${MAX_ENTRY_BYTES}`);
        return next();
      }
      // Entries are small: read the raw (compressed) bytes and inflate synchronously, which is
      // several times cheaper per entry than an async zlib stream; size and CRC are checked here
      // because yauzl only validates them when it decompresses.
      const compressed = entry.compressionMethod === 8;
      const options = compressed ? { decompress: false as const } : {};
      zip.openReadStream(entry, options, (err, stream) => {
        if (err) return fail(corruptZip(path, `${entry.fileName}: ${err.message}`, err));
        collect(stream, MAX_ENTRY_BYTES).then(
          (raw) => {
            try {
              if (raw === undefined) {
                skip(`${where}: larger than ${MAX_ENTRY_BYTES} bytes`);
                return next();
              }
              let data: Buffer;
              try {
                data = compressed ? inflateRawSync(raw, { maxOutputLength: MAX_ENTRY_BYTES + 1 }) : raw;
              } catch (inflateErr) {
                return fail(
                  corruptZip(path, `${entry.fileName}: ${(inflateErr as Error).message}`, inflateErr),
                );
              }
              if (data.length !== entry.uncompressedSize || crc32(data) !== entry.crc32) {
                return fail(corruptZip(path, `${entry.fileName}: size or CRC mismatch`));
              }
              let value: unknown;
              try {
                value = JSON.parse(data.toString('utf8'));
              } catch (parseErr) {
                skip(`${where}: not JSON (${(parseErr as Error).message})`);
                return next();
              }
              sink.osv(value, where);
              next();
            } catch (handleErr) {
              fail(handleErr);
            }
          },
          (readErr: unknown) =>
            fail(corruptZip(path, `${entry.fileName}: ${(readErr as Error).message}`, readErr)),
        );
      });
    });
    zip.readEntry();
  });
}

/** Reads a stream into one buffer, or undefined (after draining) when it exceeds `limit`. */
async function collect(stream: Readable, limit: number): Promise<Buffer | undefined> {
  const parts: Buffer[] = [];
  let size = 0;
  let over = false;
  for await (const chunk of stream as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) over = true;
    if (!over) parts.push(chunk);
  }
  return over ? undefined : Buffer.concat(parts);
}

/**
 * A JSON file (optionally gzipped): an NVD 2.0 feed, streamed element by element, or OSV data
 * (one record, an array of records, or an osv.dev API answer `{vulns: [...]}`).
 */
async function readJson(
  path: string,
  label: string,
  sink: Sink,
  onProgress?: (p: ImportProgress) => void,
): Promise<void> {
  const { skip } = sink;
  const gz = await isGzip(path);
  const file = createReadStream(path);
  const stream: Readable = gz ? file.pipe(createGunzip()) : file;
  if (gz) file.on('error', (err) => stream.destroy(err));

  // Widened on purpose: the closures below change it, which control-flow narrowing cannot see.
  let mode = 'sniff' as 'sniff' | 'nvd' | 'osv';
  let head: Buffer[] = [];
  let headBytes = 0;
  let osvParts: Buffer[] = [];
  let osvBytes = 0;
  let tooBig = false;
  let nvdDone = 0;
  const scanner = new ArrayElementScanner(
    (json) => {
      nvdDone++;
      let item: unknown;
      try {
        item = JSON.parse(json);
      } catch (err) {
        skip(`${path}: NVD entry is not JSON (${(err as Error).message})`);
        return;
      }
      const sev = parseNvdItem(item);
      if (sev !== undefined) sink.nvd(sev);
      if (nvdDone % 5000 === 0) onProgress?.({ file: label, done: nvdDone });
    },
    MAX_ENTRY_BYTES,
    (bytes) => skip(`${path}: NVD entry of ${bytes} bytes is larger than ${MAX_ENTRY_BYTES}`),
  );

  const feed = (chunk: Buffer): void => {
    if (mode === 'nvd') scanner.write(chunk);
    else if (mode === 'osv') {
      osvBytes += chunk.length;
      if (osvBytes > MAX_ENTRY_BYTES) {
        tooBig = true;
        osvParts = [];
      } else if (!tooBig) osvParts.push(chunk);
    }
  };
  const decide = (): void => {
    const text = Buffer.concat(head).toString('utf8');
    mode = looksLikeNvdFeed(text) ? 'nvd' : 'osv';
    const buffered = head;
    head = [];
    for (const b of buffered) feed(b);
  };

  try {
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      if (mode === 'sniff') {
        head.push(chunk);
        headBytes += chunk.length;
        if (headBytes >= HEAD_BYTES) decide();
      } else feed(chunk);
    }
    if (mode === 'sniff') decide();
  } catch (err) {
    // A truncated feed or broken gzip would import partially; fail the whole (atomic) import instead.
    throw new VulnDbError(
      'INPUT_CORRUPT',
      `cannot read ${path}: ${(err as Error).message}; nothing was imported`,
      {
        subject: path,
        cause: err,
      },
    );
  }

  if (mode === 'nvd') {
    onProgress?.({ file: label, done: nvdDone });
    return;
  }
  if (tooBig) {
    skip(`${path}: larger than ${MAX_ENTRY_BYTES} bytes and not an NVD feed`);
    return;
  }
  let value: unknown;
  try {
    value = JSON.parse(Buffer.concat(osvParts).toString('utf8'));
  } catch (err) {
    skip(`${path}: not JSON (${(err as Error).message})`);
    return;
  }
  const list = Array.isArray(value)
    ? value
    : value !== null && typeof value === 'object' && Array.isArray((value as { vulns?: unknown }).vulns)
      ? (value as { vulns: unknown[] }).vulns
      : [value];
  for (const v of list) sink.osv(v, path);
  onProgress?.({ file: label, done: list.length });
}

async function isGzip(path: string): Promise<boolean> {
  const fh = await openFile(path, 'r');
  try {
    const buf = Buffer.alloc(2);
    const { bytesRead } = await fh.read(buf, 0, 2, 0);
    return bytesRead === 2 && buf[0] === 0x1f && buf[1] === 0x8b;
  } finally {
    await fh.close();
  }
}
