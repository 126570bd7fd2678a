import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { extract } from 'tar-stream';
import { afterAll, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS, LimitTracker } from '../../src/analyse/limits.js';
import { readTar, TarFormatError, type TarBodySink, type TarHeader } from '../../src/analyse/tar-reader.js';
import { walkTarLayer } from '../../src/analyse/tar-walker.js';
import { tarOf } from '../helpers/image-builder.js';
import { fixChecksum, padToBlock, paxRecords, ustarHeader } from '../helpers/tar-blocks.js';

interface Seen {
  name: string;
  type: string;
  size: number;
  mode: number;
  linkname: string;
  body?: string;
}

/** Feeds `bytes` to readTar in chunks of the given sizes (cycled) and records every entry. */
async function read(
  bytes: Buffer,
  chunkSizes: number[] = [bytes.length || 1],
  want = (h: TarHeader) => h.type === 'file',
): Promise<Seen[]> {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < bytes.length; i++) {
    const n = Math.max(1, chunkSizes[i % chunkSizes.length]!);
    chunks.push(bytes.subarray(at, at + n));
    at += n;
  }
  const seen: Seen[] = [];
  await readTar(Readable.from(chunks), {
    entry(h) {
      const s: Seen = { name: h.name, type: h.type, size: h.size, mode: h.mode, linkname: h.linkname };
      seen.push(s);
      if (!want(h)) return null;
      const parts: Buffer[] = [];
      return {
        write: (c) => parts.push(Buffer.from(c)),
        end: () => {
          s.body = Buffer.concat(parts).toString('latin1');
        },
      };
    },
  });
  return seen;
}

/** What tar-stream, the library this reader replaced, makes of the same bytes. */
async function readWithTarStream(bytes: Buffer): Promise<Seen[]> {
  const ex = extract();
  Readable.from([bytes]).pipe(ex);
  const seen: Seen[] = [];
  for await (const e of ex) {
    const parts: Buffer[] = [];
    for await (const c of e) parts.push(c as Buffer);
    const h = e.header;
    const s: Seen = {
      name: h.name,
      type: h.type ?? 'file',
      size: h.size ?? 0,
      mode: (h.mode ?? 0) & 0o7777,
      linkname: h.linkname ?? '',
    };
    if (s.type === 'file') s.body = Buffer.concat(parts).toString('latin1');
    else s.size = 0; // header-only types carry no body
    seen.push(s);
  }
  return seen;
}

const scratch = mkdtempSync(join(tmpdir(), 'portcullis-tar-reader-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Walks a layer with no analysers under a 4 MiB limit on the image's uncompressed bytes. */
function walkUnder4MiB(layer: Buffer, subject: string) {
  const limits = new LimitTracker({ ...DEFAULT_LIMITS, maxTotalBytes: 4 << 20 });
  return walkTarLayer(Readable.from([layer]), {
    analysers: [],
    ctx: { scratchDir: scratch },
    limits,
    subject,
  });
}

const longDir = `very/${'deep-folder-name/'.repeat(8)}`;
const SAMPLE = [
  { name: 'etc/', type: 'directory' as const },
  { name: 'etc/os-release', content: 'ID=alpine\n', mode: 0o4755 },
  { name: 'empty', content: '' },
  { name: 'exact-block', content: 'x'.repeat(512) },
  { name: `${longDir}file-with-a-long-name.txt`, content: 'long\n' },
  { name: 'bin/sh', type: 'symlink' as const, linkname: `/${longDir}busybox` },
  { name: 'bin/hard', type: 'link' as const, linkname: 'etc/os-release' },
  { name: 'big', content: Buffer.alloc(70_000, 0x61) },
];

describe('readTar', () => {
  it('reads what tar-stream reads, however the stream is chunked', async () => {
    const tar = await tarOf(SAMPLE);
    const reference = await readWithTarStream(tar);
    expect(reference.map((e) => e.name)).toContain(`${longDir}file-with-a-long-name.txt`);
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.integer({ min: 1, max: 1500 }), { minLength: 1, maxLength: 8 }),
        async (sizes) => {
          expect(await read(tar, sizes)).toEqual(reference);
        },
      ),
      { numRuns: 200 },
    );
    expect(await read(tar, [1])).toEqual(reference);
  });

  it('reads GNU, POSIX (pax) and ustar archives written by GNU tar', async (ctx) => {
    if (spawnSync('tar', ['--version']).status !== 0) ctx.skip();
    const root = join(scratch, 'tree');
    mkdirSync(join(root, longDir), { recursive: true });
    const longFile = `${longDir}${'n'.repeat(120)}`;
    writeFileSync(join(root, longFile), 'deep\n');
    writeFileSync(join(root, 'ünïcode.txt'), 'u\n');
    symlinkSync(`../${longFile}`, join(root, `${longDir}link-to-long`));
    for (const format of ['gnu', 'posix', 'ustar']) {
      const out = join(scratch, `${format}.tar`);
      const r = spawnSync('tar', ['--format', format, '-C', root, '-cf', out, '.'], { encoding: 'utf8' });
      if (format === 'ustar') {
        // ustar cannot store a 120-character file name; GNU tar leaves that file out.
        expect(r.stderr).toMatch(/file name is too long/);
      } else expect(r.status).toBe(0);
      const seen = await read(readFileSync(out), [700, 300]);
      expect(seen).toEqual(await readWithTarStream(readFileSync(out)));
      const byName = new Map(seen.map((e) => [e.name.replace(/^\.\//, ''), e]));
      expect(byName.get('ünïcode.txt')?.body).toBe('u\n');
      if (format !== 'ustar') {
        expect(byName.get(longFile)?.body).toBe('deep\n');
        expect(byName.get(`${longDir}link-to-long`)).toMatchObject({
          type: 'symlink',
          linkname: `../${longFile}`,
        });
      }
    }
  });

  it('skips unwanted bodies without reading them into any sink', async () => {
    const tar = await tarOf(SAMPLE);
    const seen = await read(tar, [100], (h) => h.name === 'big');
    expect(seen.map((e) => e.name)).toEqual(SAMPLE.map((e) => e.name));
    expect(seen.filter((e) => e.body !== undefined).map((e) => e.name)).toEqual(['big']);
  });

  it('waits for each sink to finish before reading on', async () => {
    const tar = await tarOf([
      { name: 'a', content: 'aaa' },
      { name: 'b', content: '' },
      { name: 'c', content: 'ccc' },
    ]);
    const log: string[] = [];
    await readTar(Readable.from([tar]), {
      entry(h): TarBodySink {
        log.push(`open ${h.name}`);
        return {
          write: () => undefined,
          end: async () => {
            await new Promise((r) => setTimeout(r, 5));
            log.push(`done ${h.name}`);
          },
        };
      },
    });
    expect(log).toEqual(['open a', 'done a', 'open b', 'done b', 'open c', 'done c']);
  });

  it('lets the event loop turn while analysers run, even when every chunk is already there', async () => {
    // Another layer's gunzip needs the main thread between its output chunks; a reader that ran a
    // whole buffered layer in microtasks would starve it.
    const tar = await tarOf(Array.from({ length: 10 }, (_, i) => ({ name: `f${i}`, content: 'x' })));
    let turns = 0;
    let ticking = true;
    const tick = () => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    await readTar(Readable.from([tar]), {
      entry: () => ({
        write: () => undefined,
        end: () => {
          const until = performance.now() + 2;
          while (performance.now() < until); // an analyser busy for 2 ms
        },
      }),
    });
    ticking = false;
    expect(turns).toBeGreaterThanOrEqual(5);
  });

  it('applies pax size and path, and ignores global pax headers', async () => {
    // Built by hand: a global header, then an entry header whose pax record names the path and
    // size, with a ustar size field that says 0.
    const pax = paxRecords;
    const header = ustarHeader;
    const pad = padToBlock;
    const globalRecords = pax(['comment=made by hand', 'path=should/not/apply']);
    const entryRecords = pax(['path=from/pax/ünï.txt', 'size=5']);
    const tar = Buffer.concat([
      header('pax_global_header', 'g', globalRecords.length),
      pad(globalRecords),
      header('PaxHeader/x', 'x', entryRecords.length),
      pad(entryRecords),
      header('short-name', '0', 0),
      pad(Buffer.from('hello')),
      header('after', '0', 2),
      pad(Buffer.from('ok')),
      Buffer.alloc(1024),
    ]);
    const seen = await read(tar, [37]);
    expect(seen.map((e) => [e.name, e.size, e.body])).toEqual([
      ['from/pax/ünï.txt', 5, 'hello'],
      ['after', 2, 'ok'],
    ]);

    const broken = Buffer.from(tar);
    broken.write('9', 1536, 'latin1'); // the entry record's length no longer matches its text
    await expect(read(broken)).rejects.toThrow(/malformed PAX record/);
  });

  it('gives links and folders no body, whatever their size field says, as runtimes do', async () => {
    // A symlink claiming 512 bytes of body, followed by a real file: a reader that skipped the
    // "body" would miss the file that a container runtime extracts.
    const tar = await tarOf([
      { name: 'link', type: 'symlink', linkname: 'target' },
      { name: 'hidden', content: 'secret' },
    ]);
    tar.write('00000001000\0', 124, 'latin1');
    fixChecksum(tar, 0);
    const seen = await read(tar);
    expect(seen.map((e) => [e.name, e.size, e.body])).toEqual([
      ['link', 0, undefined],
      ['hidden', 6, 'secret'],
    ]);
  });

  it('accepts checksums summed over signed bytes, as some old writers made them', async () => {
    const tar = await tarOf([{ name: 'cafe', content: 'x' }]);
    tar[3] = 0xe9; // a Latin-1 name byte above 127, where signed and unsigned sums differ
    tar.fill(0x20, 148, 156);
    let signed = 0;
    for (let i = 0; i < 512; i++) signed += tar[i]! > 127 ? tar[i]! - 256 : tar[i]!;
    tar.write(`${signed.toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    expect((await read(tar))[0]).toMatchObject({ size: 1, body: 'x' });
    tar.write(`${(signed + 1).toString(8).padStart(6, '0')}\0 `, 148, 'latin1');
    await expect(read(tar)).rejects.toThrow(/bad checksum/);
  });

  it('reads base-256 sizes', async () => {
    const tar = await tarOf([{ name: 'f', content: 'abc' }]);
    tar.fill(0, 124, 136);
    tar[124] = 0x80;
    tar[135] = 3;
    fixChecksum(tar, 0);
    expect((await read(tar))[0]).toMatchObject({ name: 'f', size: 3, body: 'abc' });
  });

  it('ends where runtimes end, and refuses an entry hidden behind one zero block', async () => {
    const one = await tarOf([{ name: 'a', content: 'a' }]);
    const body = one.subarray(0, 1024); // header and padded body, no end marker
    const file = await tarOf([{ name: 'b', content: 'b' }]);
    // Two zero blocks end the archive: what follows is ignored.
    expect((await read(Buffer.concat([body, Buffer.alloc(1024), file]))).map((e) => e.name)).toEqual(['a']);
    // One zero block at the very end is an end too.
    expect((await read(Buffer.concat([body, Buffer.alloc(512)]))).map((e) => e.name)).toEqual(['a']);
    // No end marker at all, stopping between entries, is accepted as tar-stream did.
    expect((await read(body)).map((e) => e.name)).toEqual(['a']);
    await expect(read(Buffer.concat([body, Buffer.alloc(512), file]))).rejects.toThrow(
      /follows an end-of-archive block/,
    );
  });

  it('counts what follows the end of the archive, and the walker holds it to the byte limit', async () => {
    const one = await tarOf([{ name: 'a', content: 'a' }]);
    const tar = Buffer.concat([one.subarray(0, 1024), Buffer.alloc(1024), Buffer.alloc(5000, 7)]);
    let trailing = 0;
    const seen: string[] = [];
    await readTar(Readable.from([tar.subarray(0, 1500), tar.subarray(1500)]), {
      entry: (h) => (seen.push(h.name), null),
      overhead: (n) => (trailing += n),
    });
    expect(seen).toEqual(['a']);
    expect(trailing).toBe(5000);

    // A small layer followed by 8 MiB of zeros after its end marker: a decompression bomb.
    const bomb = gzipSync(Buffer.concat([one.subarray(0, 1024), Buffer.alloc(8 << 20)]));
    await expect(walkUnder4MiB(bomb, 'bomb')).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringMatching(
        /^bomb: more than 4194304 uncompressed bytes .*data after the end of the archive/,
      ),
    });
  });

  it('counts extended headers toward the byte limit too', async () => {
    // Ten PAX headers of 600 KiB each before one small file: 6 MiB that no entry size shows.
    const record = paxRecords([`comment=${'x'.repeat(600 << 10)}`]);
    const padded = padToBlock(record);
    const one = await tarOf([{ name: 'a', content: 'a' }]);
    const parts: Buffer[] = [];
    for (let i = 0; i < 10; i++) parts.push(ustarHeader(`PaxHeader/${i}`, 'x', record.length), padded);
    const tar = Buffer.concat([...parts, one]);
    let overhead = 0;
    await readTar(Readable.from([tar]), { entry: () => null, overhead: (b) => (overhead += b) });
    expect(overhead).toBe(10 * record.length);
    await expect(walkUnder4MiB(gzipSync(tar), 'pax')).rejects.toMatchObject({
      code: 'LIMIT_EXCEEDED',
      message: expect.stringMatching(/tar metadata/),
    });
  });

  it('reports truncation and corruption as TarFormatError', async () => {
    const tar = await tarOf([{ name: 'f', content: 'x'.repeat(2000) }]);
    for (const cut of [100, 512, 1000, 2000]) {
      await expect(read(tar.subarray(0, cut))).rejects.toThrow(TarFormatError);
    }
    await expect(read(tar.subarray(0, 100))).rejects.toThrow(/Unexpected end of data/);
    const corrupt = Buffer.from(tar);
    corrupt[10] = corrupt[10]! ^ 0x01;
    await expect(read(corrupt)).rejects.toThrow(/Invalid tar header: bad checksum/);
    const notOctal = Buffer.from(tar);
    notOctal.write('0000009', 124, 'latin1');
    fixChecksum(notOctal, 0);
    await expect(read(notOctal)).rejects.toThrow(/size is not an octal number/);
  });

  it('bounds extended headers, which are held in memory', async () => {
    const tar = await tarOf([{ name: `${'d/'.repeat(200)}f`, content: 'x' }]);
    expect((await read(tar))[0]!.name).toBe(`${'d/'.repeat(200)}f`);
    await expect(readTar(Readable.from([tar]), { entry: () => null }, 64)).rejects.toThrow(
      /extended header is over the 64-byte limit/,
    );
  });
});
