import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { afterAll, describe, expect, it } from 'vitest';
import { analyseInput, type Analyser } from '../../src/analyse/index.js';
import { rpmAnalyser } from '../../src/analyse/analysers/rpm.js';
import { parseImageInput } from '../../src/oci/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-scratch-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function rootfs(name: string, files: Record<string, Buffer | string>): string {
  const dir = join(tmp, name);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(join(dir, path, '..'), { recursive: true });
    writeFileSync(join(dir, path), content);
  }
  return dir;
}

let n = 0;

/** An rpm-style sqlite database whose one row is not a valid header: read, then reported. */
function rpmSqlite(): Buffer {
  const file = join(tmp, `build-${n++}.sqlite`);
  const db = new Database(file);
  db.exec('CREATE TABLE Packages (hnum INTEGER PRIMARY KEY AUTOINCREMENT, blob BLOB NOT NULL)');
  db.prepare('INSERT INTO Packages (blob) VALUES (?)').run(Buffer.from('not an rpm header'));
  db.close();
  return readFileSync(file);
}

const RPM_DB = 'var/lib/rpm/rpmdb.sqlite';

/** Runs after the rpm analyser on the same file and lists scratchRoot, without asking for the folder. */
function probe(scratchRoot: string, seen: Array<{ name: string; mode: number }>): Analyser {
  return {
    name: 'scratch-probe',
    version: 1,
    maxFileSize: 1 << 30,
    wants: (p) => p === RPM_DB,
    analyse() {
      for (const name of readdirSync(scratchRoot)) seen.push({ name, mode: statSync(join(scratchRoot, name)).mode & 0o777 });
      return {};
    },
  };
}

describe('the per-scan scratch folder', () => {
  it('is not created when no analyser asks for it', async () => {
    const dir = rootfs('plain', {
      'etc/os-release': 'ID=alpine\nVERSION_ID=3.20.3\n',
      'lib/apk/db/installed': 'P:musl\nV:1.2.5-r0\nA:x86_64\n',
      'app/config.env': 'HELLO=world\n',
    });
    const scratchRoot = join(tmp, 'root-plain');
    const [r] = await analyseInput(parseImageInput(`dir:${dir}`), { cacheDir: null, scratchRoot, secrets: true });
    expect(r!.packages.map((p) => p.name)).toEqual(['musl']);
    expect(existsSync(scratchRoot)).toBe(false);
  });

  it('is created with mode 0700 under scratchRoot when the rpm sqlite reader needs it, and removed after', async () => {
    const dir = rootfs('rpm', { [RPM_DB]: rpmSqlite() });
    const scratchRoot = join(tmp, 'root-rpm');
    const seen: Array<{ name: string; mode: number }> = [];
    const [r] = await analyseInput(parseImageInput(`dir:${dir}`), { cacheDir: null, scratchRoot, analysers: [rpmAnalyser, probe(scratchRoot, seen)] });
    expect(r!.warnings.join('\n')).toContain('skipped damaged rpm database entries');
    expect(seen).toHaveLength(1);
    expect(seen[0]!.name).toMatch(/^portcullis-scratch-/);
    expect(seen[0]!.mode).toBe(0o700);
    expect(readdirSync(scratchRoot)).toEqual([]);
  });

  it('is removed after a scan that fails once it was made', async () => {
    const db = rpmSqlite();
    // Walked after the database (same folder, later name): over the file limit, so the scan fails.
    const dir = rootfs('rpm-fail', { [RPM_DB]: db, 'var/lib/rpm/zz-big': Buffer.alloc(db.length + 1) });
    const scratchRoot = join(tmp, 'root-fail');
    const seen: Array<{ name: string; mode: number }> = [];
    await expect(
      analyseInput(parseImageInput(`dir:${dir}`), {
        cacheDir: null,
        scratchRoot,
        analysers: [rpmAnalyser, probe(scratchRoot, seen)],
        limits: { maxFileBytes: db.length },
      }),
    ).rejects.toThrow(/over the .*file limit/);
    expect(seen).toHaveLength(1);
    expect(readdirSync(scratchRoot)).toEqual([]);
  });
});
