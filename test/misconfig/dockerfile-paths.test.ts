import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { spawnSync } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PortcullisError } from '../../src/errors.js';
import { MAX_CONFIG_FILE_BYTES, scanConfigPath } from '../../src/misconfig/config-files.js';

let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pc-df-'));
  const bad = 'FROM debian:12.5\n';
  for (const rel of [
    'Dockerfile',
    'b/Dockerfile.prod',
    'a/api.dockerfile',
    'node_modules/x/Dockerfile',
    '.git/Dockerfile',
    'a/README.md',
  ]) {
    await mkdir(join(dir, rel, '..'), { recursive: true });
    await writeFile(join(dir, rel), bad);
  }
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('scanConfigPath(dockerfile)', () => {
  it('scans matching files under a folder in sorted order, skipping node_modules and .git', async () => {
    const { misconfigurations: found, warnings } = await scanConfigPath(dir, 'dockerfile');
    expect(warnings).toEqual([]);
    const targets = [...new Set(found.map((m) => m.target.slice(dir.length + 1)))];
    expect(targets).toEqual(['Dockerfile', 'a/api.dockerfile', 'b/Dockerfile.prod']);
    expect(found.filter((m) => m.target === join(dir, 'Dockerfile')).map((m) => m.id)).toEqual([
      'PC-DF-001',
      'PC-IMG-001',
      'PC-IMG-005',
    ]);
  });

  it('checks a folder only up to a bound on its files and their bytes in all, naming what it left', async () => {
    const targets = (found: Awaited<ReturnType<typeof scanConfigPath>>) => [...new Set(found.misconfigurations.map((m) => m.target.slice(dir.length + 1)))];
    const byCount = await scanConfigPath(dir, 'dockerfile', { files: 2, bytes: 1 << 20 });
    expect(targets(byCount)).toEqual(['Dockerfile', 'a/api.dockerfile']);
    expect(byCount.warnings).toEqual([`${dir}: more than 2 Dockerfiles; not checked: those past the first 2`]);
    // Each file is 17 bytes: the third would take the folder past 40.
    const byBytes = await scanConfigPath(dir, 'dockerfile', { files: 10, bytes: 40 });
    expect(targets(byBytes)).toEqual(['Dockerfile', 'a/api.dockerfile']);
    expect(byBytes.warnings).toEqual([`${dir}: over 40 bytes of Dockerfiles in all; not checked: ${join(dir, 'b/Dockerfile.prod')}`]);
    const both = await scanConfigPath(dir, 'dockerfile', { files: 2, bytes: 20 });
    expect(targets(both)).toEqual(['Dockerfile']);
    expect(both.warnings).toEqual([`${dir}: over 20 bytes of Dockerfiles in all; not checked: ${join(dir, 'a/api.dockerfile')}, those past the first 2`]);
  });

  it('scans a single file whatever its name', async () => {
    const { misconfigurations: found } = await scanConfigPath(join(dir, 'a/README.md'), 'dockerfile');
    expect(found.map((m) => m.id)).toContain('PC-DF-001');
  });

  it('reports a missing path as a PortcullisError', async () => {
    await expect(scanConfigPath(join(dir, 'nope'), 'dockerfile')).rejects.toBeInstanceOf(PortcullisError);
  });

  it('refuses a Dockerfile over the size bound after reading one byte past it, whatever kind of file it is', async () => {
    const big = join(dir, 'big', 'Dockerfile');
    await mkdir(join(dir, 'big'), { recursive: true });
    await writeFile(big, `FROM alpine:3.20\nRUN ${'['.repeat(MAX_CONFIG_FILE_BYTES.dockerfile)}\n`);
    await expect(scanConfigPath(big, 'dockerfile')).rejects.toMatchObject({ code: 'CONFIG_TOO_LARGE', message: expect.stringMatching(/over 262144 bytes/) as unknown });
    if (process.platform === 'linux') {
      // A device reports no size and never ends; the read stops at the bound.
      await expect(scanConfigPath('/dev/zero', 'dockerfile')).rejects.toMatchObject({ code: 'CONFIG_TOO_LARGE' });
    }
  });

  it('under a folder, warns about a Dockerfile over the bound, naming it and the bound, and checks the others', async () => {
    const { misconfigurations, warnings } = await scanConfigPath(dir, 'dockerfile');
    expect(warnings).toEqual([`${join(dir, 'big', 'Dockerfile')}: over 262144 bytes; a Dockerfile this large is not checked`]);
    expect([...new Set(misconfigurations.map((m) => m.target.slice(dir.length + 1)))]).toEqual(['Dockerfile', 'a/api.dockerfile', 'b/Dockerfile.prod']);
    await rm(join(dir, 'big'), { recursive: true });
  });

  it.skipIf(process.platform === 'win32')('under a folder, warns about a file or folder it cannot read and checks the others', async (ctx) => {
    const unable = cannotRunAsNobody();
    if (unable) {
      console.warn(`skipped: ${unable}`);
      ctx.skip();
    }
    await mkdir(join(dir, 'locked', 'inner'), { recursive: true });
    await writeFile(join(dir, 'locked', 'Dockerfile'), 'FROM alpine:3.20\n', { mode: 0o000 });
    await chmod(join(dir, 'locked', 'inner'), 0o000);
    try {
      const { misconfigurations, warnings } = await scanAsUnprivileged(dir);
      // Folders are listed before files are read, so a folder's warning comes first.
      expect(warnings).toEqual([`${join(dir, 'locked', 'inner')}: cannot read: EACCES`, `${join(dir, 'locked', 'Dockerfile')}: cannot read: EACCES`]);
      expect(misconfigurations.some((m) => m.target === join(dir, 'Dockerfile'))).toBe(true);
    } finally {
      await chmod(join(dir, 'locked', 'inner'), 0o700);
      await rm(join(dir, 'locked'), { recursive: true });
    }
  });
});

const DIST_MODULE = resolve('dist/misconfig/config-files.js');

/** Why the unprivileged run below cannot happen here (root, but `nobody` cannot read the build). */
function cannotRunAsNobody(): string | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const probe = spawnSync(process.execPath, ['-e', `require('node:fs').accessSync(${JSON.stringify(DIST_MODULE)}, 4)`], { uid: 65534, gid: 65534, cwd: tmpdir() });
  return probe.status === 0 ? undefined : `running as root, and the user nobody cannot read ${DIST_MODULE} to run the check without root's rights`;
}

/**
 * scanConfigPath(dir, 'dockerfile'), by a user whom modes 000 stop. Root reads anything, so under
 * root (as in CI) it runs in a child process as `nobody`, on the build in dist/ (which `npm test`
 * makes first); the folder is opened to others for it.
 */
async function scanAsUnprivileged(root: string): Promise<{ misconfigurations: { target: string }[]; warnings: string[] }> {
  if (process.getuid?.() !== 0) return scanConfigPath(root, 'dockerfile');
  await chmod(root, 0o755);
  const module = pathToFileURL(DIST_MODULE).href;
  const script = `const { scanConfigPath } = await import(${JSON.stringify(module)}); process.stdout.write(JSON.stringify(await scanConfigPath(${JSON.stringify(root)}, 'dockerfile')));`;
  const run = spawnSync(process.execPath, ['--input-type=module', '-e', script], { uid: 65534, gid: 65534, encoding: 'utf8', cwd: tmpdir() });
  if (run.status !== 0) throw new Error(`the scan as nobody failed: ${run.stderr}`);
  return JSON.parse(run.stdout) as { misconfigurations: { target: string }[]; warnings: string[] };
}
