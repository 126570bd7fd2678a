import { spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createGzip } from 'node:zlib';
import { createWriteStream } from 'node:fs';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { archiveTar } from '../../src/oci/sources/compressed-archive.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

// The decompressed copy of a compressed archive is as large as the image: it must not outlive
// the scan, not even one that is interrupted or killed.
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-gz-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A gzip of `mib` MiB of zeros: small on disk, slow enough to decompress to catch in the act. */
async function zerosGz(file: string, mib: number): Promise<void> {
  const chunk = Buffer.alloc(1 << 20);
  await pipeline(
    Readable.from(
      (function* () {
        for (let i = 0; i < mib; i++) yield chunk;
      })(),
    ),
    createGzip({ level: 1 }),
    createWriteStream(file),
  );
}

describe('the decompressed copy of an archive', () => {
  it('a copy left by a killed scan is removed by the next one once it is a day old; a fresh one is kept', async () => {
    const scratchRoot = join(tmp, 'scratch-stale');
    const stale = join(scratchRoot, 'portcullis-archive-old');
    const fresh = join(scratchRoot, 'portcullis-archive-new');
    const other = join(scratchRoot, 'someone-else');
    for (const d of [stale, fresh, other]) mkdirSync(d, { recursive: true });
    writeFileSync(join(stale, 'archive.tar'), 'x');
    writeFileSync(join(fresh, 'archive.tar'), 'x');
    const twoDaysAgo = new Date(Date.now() - 48 * 3600 * 1000);
    utimesSync(join(stale, 'archive.tar'), twoDaysAgo, twoDaysAgo);
    utimesSync(other, twoDaysAgo, twoDaysAgo);
    const gz = join(tmp, 'small.gz');
    await zerosGz(gz, 1);
    const copy = await archiveTar(gz, 'small.gz', { scratchRoot, maxBytes: 1 << 30 });
    await copy.cleanup?.();
    expect(readdirSync(scratchRoot).sort()).toEqual(['portcullis-archive-new', 'someone-else']);
  });

  it('SIGTERM during the decompression removes the copy, and the process still ends by the signal', async () => {
    const gz = join(tmp, 'big.tar.gz');
    await zerosGz(gz, 1536);
    const data = join(tmp, 'data');
    const scratch = join(data, 'cache', 'scratch');
    const child = spawn(
      process.execPath,
      [join(REPO_ROOT, 'bin', 'portcullis.js'), 'sbom', `docker-archive:${gz}`, '--data', data, '-f', 'json'],
      {
        stdio: 'ignore',
        env: { ...process.env, PORTCULLIS_SIZED_HEAP: '1' },
      },
    );
    const ended = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      child.on('exit', (code, signal) => resolve({ code, signal })),
    );
    const deadline = Date.now() + 20_000;
    while (
      !(existsSync(scratch) && readdirSync(scratch).some((n) => n.startsWith('portcullis-archive-'))) &&
      Date.now() < deadline
    ) {
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(readdirSync(scratch).some((n) => n.startsWith('portcullis-archive-'))).toBe(true);
    child.kill('SIGTERM');
    const { signal } = await ended;
    expect(signal).toBe('SIGTERM');
    expect(readdirSync(scratch).filter((n) => n.startsWith('portcullis-archive-'))).toEqual([]);
  }, 60_000);
});
