import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteRegistryMetadata } from '../../src/store/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

/**
 * Several processes on one data folder (a second server, `portcullis gc`, the user CLI): SQLite
 * serialises their writes, so each must wait for the others' locks, never fail with "database is
 * locked" or trip over a migration another process is running.
 */
const BIN = join(REPO_ROOT, 'bin', 'portcullis.js');
const BUILT = existsSync(join(REPO_ROOT, 'dist', 'bundle', 'cli.cjs')) || existsSync(join(REPO_ROOT, 'dist', 'cli', 'index.js'));

interface Exit {
  code: number | null;
  stdout: string;
  stderr: string;
}

function run(args: string[]): Promise<Exit> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, args, { cwd: REPO_ROOT, stdio: ['pipe', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d.toString()));
    child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    child.on('exit', (code) => resolve({ code, stdout, stderr }));
    child.stdin.end();
  });
}

const dirs: string[] = [];
async function freshDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'portcullis-multi-'));
  dirs.push(d);
  return d;
}
afterEach(async () => {
  await Promise.all(dirs.splice(0).map((d) => rm(d, { recursive: true, force: true })));
});

describe('several processes on one data folder', () => {
  it.skipIf(!BUILT)(`processes that open a new data folder at once all migrate it, and none fails${BUILT ? '' : ' [SKIPPED: run npm run build first]'}`, { timeout: 20_000 }, async () => {
    // `user list` opens (and so migrates) the metadata and writes nothing: the race is all there is.
    for (let round = 0; round < 2; round++) {
      const data = await freshDir();
      const runs = await Promise.all([1, 2, 3, 4].map(() => run([BIN, 'user', 'list', '--data', data])));
      for (const r of runs) expect(r, r.stderr).toMatchObject({ code: 0, stderr: '' });
      const meta = await SqliteRegistryMetadata.open(data);
      expect(await meta.listUsers()).toEqual([]);
      await meta.close();
    }
  });

  it('a write transaction that reads first waits for another process writing, instead of failing with "database is locked"', { timeout: 10_000 }, async () => {
    const data = await freshDir();
    const meta = await SqliteRegistryMetadata.open(data);
    try {
      // Another process takes the write lock, holds it briefly and commits a change.
      const holder = spawn(
        process.execPath,
        [
          '-e',
          `const db = require('better-sqlite3')(process.argv[1]);
           db.pragma('busy_timeout = 5000');
           db.exec("begin immediate; insert into gc_activity (digest, touched_at) values ('sha256:other', '2026-01-01T00:00:00.000Z')");
           process.stdout.write('locked\\n');
           setTimeout(() => { db.exec('commit'); db.close(); }, 300);`,
          join(data, 'registry', 'meta.sqlite'),
        ],
        { cwd: REPO_ROOT, stdio: ['ignore', 'pipe', 'inherit'] },
      );
      const exited = new Promise((resolve) => holder.on('exit', resolve));
      await new Promise<void>((resolve) => holder.stdout.once('data', () => resolve()));
      // putVerdicts reads the previous status before it writes: begun DEFERRED, its snapshot was
      // stale once the other process committed, and SQLite refused it without waiting.
      const previous = await meta.artifacts.putVerdicts([{ repository: 'p/r', digest: 'sha256:aa', status: 'pass', verdict: '{}', evaluatedAt: new Date().toISOString() }]);
      expect(previous).toEqual([null]);
      await exited;
      expect((await meta.artifacts.getVerdict('p/r', 'sha256:aa'))?.status).toBe('pass');
      expect(await meta.touchedSince('2000-01-01T00:00:00.000Z')).toContain('sha256:other');
    } finally {
      await meta.close();
    }
  });
});
