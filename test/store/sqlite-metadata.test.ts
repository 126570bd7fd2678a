import { existsSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import Database from 'better-sqlite3';
import { describe, expect, it } from 'vitest';
import { SqliteRegistryMetadata } from '../../src/store/index.js';
import { WAL_SIZE_LIMIT } from '../../src/store/metadata.js';
import { metadataSuite } from './metadata-suite.js';

metadataSuite('SQLite', async () => {
  const dir = await mkdtemp(join(tmpdir(), 'portcullis-meta-'));
  return { open: () => SqliteRegistryMetadata.open(dir) };
});

describe('SqliteRegistryMetadata migrations', () => {
  it('creates registry/meta.sqlite in WAL mode and applies migrations once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-meta-'));
    const first = await SqliteRegistryMetadata.open(dir);
    // Other features add their own migrations; what matters is the core one and no re-run.
    const applied = await first.appliedMigrations();
    expect(applied[0]).toBe('0001_registry_core');
    expect(applied).toContain('002_gc_activity');
    await first.close();
    const second = await SqliteRegistryMetadata.open(dir);
    expect(await second.appliedMigrations()).toEqual(applied);
    await second.close();
    const file = join(dir, 'registry', 'meta.sqlite');
    expect(existsSync(file)).toBe(true);
    const raw = new Database(file);
    expect(raw.pragma('journal_mode', { simple: true })).toBe('wal');
    const tables = raw.prepare("select name from sqlite_master where type = 'table' order by name").all() as { name: string }[];
    expect(tables.map((t) => t.name)).toEqual(
      expect.arrayContaining(['manifest_refs', 'manifests', 'repositories', 'repository_blobs', 'tags', 'uploads', 'users']),
    );
    raw.close();
  });
});

describe('SqliteRegistryMetadata on a damaged file', () => {
  it('names the file and what to do, instead of a bare "file is not a database"', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-meta-'));
    await mkdir(join(dir, 'registry'));
    const file = join(dir, 'registry', 'meta.sqlite');
    await writeFile(file, Buffer.alloc(8192, 7));
    await expect(SqliteRegistryMetadata.open(dir)).rejects.toMatchObject({
      code: 'METADATA_UNREADABLE',
      message: expect.stringContaining(`${file}: not a readable SQLite database`),
    });
  });

  it('refuses to make a new database next to stored blobs, and makes one in a folder without blobs', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-meta-'));
    const meta = await SqliteRegistryMetadata.open(dir);
    await meta.close();
    const file = join(dir, 'registry', 'meta.sqlite');
    // A new database is never empty: switching it to WAL wrote its first page.
    expect(statSync(file).size).toBeGreaterThan(0);
    await mkdir(join(dir, 'registry', 'blobs', 'sha256', 'ab'), { recursive: true });
    await writeFile(file, '');
    // Folders a gc emptied are no blobs.
    await (await SqliteRegistryMetadata.open(dir)).close();
    await writeFile(join(dir, 'registry', 'blobs', 'sha256', 'ab', 'ab'.repeat(32)), 'x');
    await writeFile(file, '');
    await expect(SqliteRegistryMetadata.open(dir)).rejects.toMatchObject({ code: 'METADATA_MISSING', message: expect.stringContaining(`${file} is empty`) });
    await rm(file, { force: true });
    await rm(`${file}-wal`, { force: true });
    await expect(SqliteRegistryMetadata.open(dir)).rejects.toMatchObject({ code: 'METADATA_MISSING', message: expect.stringContaining(`${file} is missing`) });
    expect(existsSync(file)).toBe(false);
  });

  it('gives back the space the write-ahead log took while another process held a read snapshot', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-meta-'));
    const meta = await SqliteRegistryMetadata.open(dir);
    const file = join(dir, 'registry', 'meta.sqlite');
    try {
      // A backup or an sqlite3 shell reading: no checkpoint can pass its snapshot, so the log grows.
      const reader = new Database(file, { readonly: true });
      reader.exec('begin');
      reader.prepare('select count(*) from repositories').get();
      for (let round = 0; statSync(`${file}-wal`).size < WAL_SIZE_LIMIT * 1.5; round++) {
        await meta.touchDigests(Array.from({ length: 2000 }, (_, i) => `sha256:${String(round).padStart(8, '0')}${String(i).padStart(56, '0')}`));
      }
      reader.exec('commit');
      reader.close();
      // Two more writes: the first checkpoints everything, the next starts the log over and cuts it.
      for (let i = 0; i < 2; i++) await meta.touchDigests([`sha256:${'f'.repeat(63)}${i}`]);
      expect(statSync(`${file}-wal`).size).toBeLessThanOrEqual(WAL_SIZE_LIMIT);
    } finally {
      await meta.close();
    }
  });
});

