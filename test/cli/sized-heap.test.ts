import { spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, ftruncateSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ALLOCATOR_TUNABLES, ANALYSIS_PROCESS_FLAGS } from '../../src/analyse/heap.js';
import { SIZED_HEAP_ENV, SIZED_HEAP_MIN_BYTES, sizedHeapEnv, sizedHeapNodeArgs } from '../../src/cli/sized-heap.js';

const CLI = fileURLToPath(new URL('../../bin/portcullis.js', import.meta.url));
const BUILT = existsSync(fileURLToPath(new URL('../../dist/cli/sized-heap.js', import.meta.url)));

let dir: string;
let big: string;
let small: string;

/** A sparse file: as large as a big archive on paper, no disk space in fact. */
function sparseFile(path: string, size: number): void {
  const fd = openSync(path, 'w');
  ftruncateSync(fd, size);
  closeSync(fd);
}

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-heap-'));
  big = join(dir, 'big.tar');
  small = join(dir, 'small.tar');
  sparseFile(big, SIZED_HEAP_MIN_BYTES + 1024);
  writeFileSync(small, Buffer.alloc(4096));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('when the CLI re-runs itself with the analysis heap', () => {
  it('does for scan and sbom of a large local archive, with the heap flags before its own', () => {
    expect(sizedHeapNodeArgs(['scan', `oci-archive:${big}`], {}, [])).toEqual([...ANALYSIS_PROCESS_FLAGS]);
    expect(sizedHeapNodeArgs(['--data', '/d', 'sbom', '--format', 'json', `docker-archive:${big}`], {}, ['--enable-source-maps'])).toEqual([
      ...ANALYSIS_PROCESS_FLAGS,
      '--enable-source-maps',
    ]);
    // oci-archive:FILE:TAG names the file without its tag.
    expect(sizedHeapNodeArgs(['scan', `oci-archive:${big}:v1`], {}, [])).toEqual([...ANALYSIS_PROCESS_FLAGS]);
  });

  it('does not for small archives, registries, folders, other commands, or a process that already has it', () => {
    expect(sizedHeapNodeArgs(['scan', `oci-archive:${small}`], {}, [])).toBeUndefined();
    expect(sizedHeapNodeArgs(['scan', 'registry.example:5000/team/app:1'], {}, [])).toBeUndefined();
    expect(sizedHeapNodeArgs(['scan', `oci:${dir}`], {}, [])).toBeUndefined();
    expect(sizedHeapNodeArgs(['scan', `dir:${dir}`], {}, [])).toBeUndefined();
    expect(sizedHeapNodeArgs(['scan', `oci-archive:${join(dir, 'missing.tar')}`], {}, [])).toBeUndefined();
    expect(sizedHeapNodeArgs(['db', 'import', big], {}, [])).toBeUndefined();
    expect(sizedHeapNodeArgs(['serve'], {}, [])).toBeUndefined();
    expect(sizedHeapNodeArgs(['scan', `oci-archive:${big}`], { [SIZED_HEAP_ENV]: '1' }, [])).toBeUndefined();
    expect(sizedHeapNodeArgs(['scan', `oci-archive:${big}`], {}, ['--initial-old-space-size=256'])).toBeUndefined();
  });
});

describe('the second process environment', () => {
  it('is marked so that it starts no third, and carries the allocator settings', () => {
    const env = sizedHeapEnv({ PATH: '/usr/bin' });
    expect(env.PATH).toBe('/usr/bin');
    expect(env[SIZED_HEAP_ENV]).toBe('1');
    for (const [name, value] of Object.entries(ALLOCATOR_TUNABLES)) expect(env.GLIBC_TUNABLES?.split(':')).toContain(`${name}=${value}`);
  });
});

describe.skipIf(!BUILT)(`the launcher's second process${BUILT ? '' : ' (skipped: dist/ is missing; run npm run build)'}`, () => {
  it('runs the scan with the heap flags and passes on its error and exit code', () => {
    // Each Node process the launcher starts appends its own flags to the log.
    const log = join(dir, 'processes.log');
    const hook = join(dir, 'record.cjs');
    writeFileSync(hook, `require('node:fs').appendFileSync(${JSON.stringify(log)}, JSON.stringify([...process.execArgv, 'GLIBC_TUNABLES=' + (process.env.GLIBC_TUNABLES ?? '')]) + '\\n');\n`);
    const run = spawnSync(process.execPath, [CLI, 'scan', `oci-archive:${big}`, '--no-vulns', '--cache-dir', join(dir, 'cache')], {
      encoding: 'utf8',
      env: { ...process.env, NODE_OPTIONS: `--require ${hook}`, [SIZED_HEAP_ENV]: '', GLIBC_TUNABLES: '' },
    });
    // A sparse file holds only zero blocks, which is no image: the second process's clear error and
    // exit code reach the caller once.
    expect(run.status).toBe(2);
    expect(run.stderr).toMatch(/big\.tar/);
    expect(run.stderr.match(/portcullis:/g)?.length ?? 0).toBeLessThanOrEqual(1);
    const processes = readFileSync(log, 'utf8').trim().split('\n').map((l) => JSON.parse(l) as string[]);
    expect(processes).toHaveLength(2);
    expect(processes[0]).not.toContain(ANALYSIS_PROCESS_FLAGS[0]);
    expect(processes[1]).toEqual(expect.arrayContaining([...ANALYSIS_PROCESS_FLAGS]));
    // The first process runs with whatever the caller gave; the second with the allocator settings.
    const tunables = processes[1]!.find((a) => a.startsWith('GLIBC_TUNABLES='))!.slice('GLIBC_TUNABLES='.length).split(':');
    for (const [name, value] of Object.entries(ALLOCATOR_TUNABLES)) expect(tunables).toContain(`${name}=${value}`);
  });
});
