import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync } from 'node:fs';
import { chmod, chown, link, lstat, mkdtemp, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { checkOutputPath, writeOutputFile } from '../../src/cli/output-file.js';

/** A report written with --output replaces what was there whole, or not at all. */
let dir = '';
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-output-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('writeOutputFile', () => {
  it('replaces an existing report, keeps its permissions and leaves nothing beside it', async () => {
    const file = join(dir, 'report.json');
    await writeFile(file, 'old report');
    await chmod(file, 0o600);
    await writeOutputFile(file, 'new report\n');
    expect(await readFile(file, 'utf8')).toBe('new report\n');
    expect((await stat(file)).mode & 0o777).toBe(0o600);
    expect((await readdir(dir)).filter((n) => n.includes('report'))).toEqual(['report.json']);
  });

  it('writes a file with hard links in place, so every name shows the new report', async () => {
    const file = join(dir, 'linked.json');
    const other = join(dir, 'linked-too.json');
    await writeFile(file, 'old report');
    await link(file, other);
    await writeOutputFile(file, 'new report\n');
    expect([await readFile(file, 'utf8'), await readFile(other, 'utf8')]).toEqual(['new report\n', 'new report\n']);
    expect((await stat(file)).ino).toBe((await stat(other)).ino);
  });

  it.skipIf(process.getuid?.() !== 0)(`keeps the owner of the report it replaces${process.getuid?.() !== 0 ? ' [SKIPPED: needs root to give a file to another user]' : ''}`, async () => {
    const file = join(dir, 'owned.json');
    await writeFile(file, 'old report');
    await chown(file, 65534, 65534);
    await chmod(file, 0o640);
    await writeOutputFile(file, 'new report\n');
    const st = await stat(file);
    expect([st.uid, st.gid, st.mode & 0o777]).toEqual([65534, 65534, 0o640]);
    expect(await readFile(file, 'utf8')).toBe('new report\n');
  });

  it('writes through a symbolic link, which stays a link', async () => {
    const target = join(dir, 'target.json');
    const link = join(dir, 'link.json');
    await symlink(target, link);
    await writeOutputFile(link, 'first');
    await writeOutputFile(link, 'second');
    expect((await lstat(link)).isSymbolicLink()).toBe(true);
    expect(await readFile(target, 'utf8')).toBe('second');
  });

  it('writes into a FIFO where it is named', async () => {
    const fifo = join(dir, 'pipe');
    execFileSync('mkfifo', [fifo]);
    const reader = spawn('cat', [fifo]);
    let read = '';
    reader.stdout.on('data', (c: Buffer) => (read += c.toString()));
    const closed = new Promise((done) => reader.on('close', done));
    checkOutputPath(fifo);
    await writeOutputFile(fifo, 'through the pipe');
    await closed;
    expect(read).toBe('through the pipe');
  });

  it('never writes through a link planted where its temporary file used to be named', async () => {
    const shared = join(dir, 'shared');
    await rm(shared, { recursive: true, force: true });
    execFileSync('mkdir', [shared]);
    const victim = join(dir, 'victim');
    await writeFile(victim, 'not yours');
    // The old name was predictable: `.<name>.<pid>.partial`.
    await symlink(victim, join(shared, `.report.json.${process.pid}.partial`));
    await writeOutputFile(join(shared, 'report.json'), 'the report');
    expect(await readFile(victim, 'utf8')).toBe('not yours');
    expect((await lstat(join(shared, 'report.json'))).isFile()).toBe(true);
    expect(await readFile(join(shared, 'report.json'), 'utf8')).toBe('the report');
  });

  const BUILT = fileURLToPath(new URL('../../dist/cli/output-file.js', import.meta.url));
  it.skipIf(!existsSync(BUILT) || !existsSync('/dev/stdout'))('writes to /dev/stdout after what the file it is redirected to holds', async () => {
    const log = join(dir, 'log.txt');
    await writeFile(log, 'before\n');
    const script = `import { writeOutputFile } from ${JSON.stringify(BUILT)};
process.stdout.write('earlier\\n');
await writeOutputFile('/dev/stdout', 'REPORT\\n');
process.stdout.write('later\\n');`;
    const fd = openSync(log, 'a');
    try {
      const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { stdio: ['ignore', fd, 'pipe'] });
      expect(run.stderr.toString()).toBe('');
    } finally {
      closeSync(fd);
    }
    // Replaced by a rename, the file held the report alone, and `later` went to a deleted file.
    expect(await readFile(log, 'utf8')).toBe('before\nearlier\nREPORT\nlater\n');
  });

  it.skipIf(!existsSync(BUILT) || process.getuid?.() !== 0)(
    `writes in place a report whose group the user cannot give a new file${process.getuid?.() !== 0 ? ' [SKIPPED: needs root to run as another user]' : ''}`,
    async () => {
      // A user's report that root made readable to a group the user is not in (auditors): a new
      // file could not take that group, and the old mode would apply to the user's own group.
      const top = await mkdtemp(join(tmpdir(), 'portcullis-output-group-'));
      try {
        await chmod(top, 0o755);
        const folder = join(top, 'reports');
        execFileSync('mkdir', [folder]);
        await chown(folder, 4501, 4501);
        const file = join(folder, 'report.json');
        await writeFile(file, 'old report');
        await chown(file, 4501, 4700);
        await chmod(file, 0o640);
        const before = await stat(file);
        const script = `import { writeOutputFile } from ${JSON.stringify(BUILT)};
await writeOutputFile(${JSON.stringify(file)}, 'new report\\n');`;
        const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 4501, gid: 4501, cwd: top });
        expect(run.stderr.toString()).toBe('');
        const after = await stat(file);
        expect([after.uid, after.gid, after.mode & 0o777, after.ino]).toEqual([4501, 4700, 0o640, before.ino]);
        expect(await readFile(file, 'utf8')).toBe('new report\n');
      } finally {
        await rm(top, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!existsSync(BUILT) || process.getuid?.() !== 0)(
    `replaces a read-only report with hard links, as before links were kept${process.getuid?.() !== 0 ? ' [SKIPPED: needs root to run as another user]' : ''}`,
    async () => {
      // Root may write any file, so the user is another one; the folder is theirs.
      const top = await mkdtemp(join(tmpdir(), 'portcullis-output-linked-'));
      try {
        await chmod(top, 0o755);
        const folder = join(top, 'reports');
        execFileSync('mkdir', [folder]);
        const file = join(folder, 'report.json');
        await writeFile(file, 'old report');
        await link(file, join(folder, 'snapshot.json'));
        await chmod(file, 0o444);
        for (const p of [folder, file]) await chown(p, 4501, 4501);
        const script = `import { checkOutputPath, writeOutputFile } from ${JSON.stringify(BUILT)};
checkOutputPath(${JSON.stringify(file)});
await writeOutputFile(${JSON.stringify(file)}, 'new report\\n');`;
        const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 4501, gid: 4501, cwd: top });
        expect(run.stderr.toString()).toBe('');
        expect(await readFile(file, 'utf8')).toBe('new report\n');
        expect((await stat(file)).mode & 0o777).toBe(0o444);
      } finally {
        await rm(top, { recursive: true, force: true });
      }
    },
  );

  it.skipIf(!existsSync('/dev/full'))('names a full disk in words when a device refuses the bytes', async () => {
    checkOutputPath('/dev/full');
    await expect(writeOutputFile('/dev/full', 'x'.repeat(10_000))).rejects.toThrow('cannot write --output /dev/full: the disk is full');
  });
});

/** The case that truncated reports before: a file system with too little room for the new one. */
describe('writeOutputFile on a full file system', () => {
  let mount = '';
  let skipReason: string | undefined;
  beforeAll(async () => {
    mount = await mkdtemp(join(tmpdir(), 'portcullis-output-full-'));
    if (process.getuid?.() !== 0) skipReason = 'not root: mounting a small tmpfs needs root';
    else {
      try {
        execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=64k', 'tmpfs', mount], { stdio: 'pipe' });
      } catch (err) {
        skipReason = `cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`;
      }
    }
    if (skipReason) console.warn(`full-disk --output tests skipped: ${skipReason}`);
  });
  afterAll(async () => {
    if (!skipReason) execFileSync('umount', [mount]);
    await rm(mount, { recursive: true, force: true });
  });

  it('keeps the previous report and leaves no partial file', async (ctx) => {
    if (skipReason) return ctx.skip();
    const file = join(mount, 'report.json');
    await writeFile(file, 'previous report');
    await expect(writeOutputFile(file, 'y'.repeat(200_000))).rejects.toThrow(
      `cannot write --output ${file}: the disk is full; the file is left as it was`,
    );
    expect(await readFile(file, 'utf8')).toBe('previous report');
    expect(await readdir(mount)).toEqual(['report.json']);
  });

  it('creates nothing when a new report does not fit', async (ctx) => {
    if (skipReason) return ctx.skip();
    const file = join(mount, 'new.json');
    await expect(writeOutputFile(file, 'z'.repeat(200_000))).rejects.toThrow('the disk is full; nothing was written');
    expect(existsSync(file)).toBe(false);
    expect((await readdir(mount)).filter((n) => n.includes('new'))).toEqual([]);
  });
});
