import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, readdirSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cacheFileName, defaultCodeCacheDir, privateCacheDir } from '../../src/cli/code-cache.js';

const BUILT_LOADER = fileURLToPath(new URL('../../dist/cli/code-cache.js', import.meta.url));
const CLI = fileURLToPath(new URL('../../bin/portcullis.js', import.meta.url));
const BUILT =
  existsSync(BUILT_LOADER) &&
  existsSync(fileURLToPath(new URL('../../dist/bundle/cli.cjs', import.meta.url)));
const SKIP_BUILT = BUILT ? '' : ' (skipped: dist/ is missing; run npm run build)';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-code-cache-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** A tiny CommonJS "bundle" with its content hash beside it, as the build writes them. */
function writeBundle(name: string, source: string): string {
  const file = join(dir, name);
  writeFileSync(file, source);
  writeFileSync(`${file}.sha256`, `${createHash('sha256').update(source).digest('hex')}\n`);
  return file;
}

/** Loads a bundle in a fresh Node process (the cache is written when that process exits). */
function loadInChild(
  bundle: string,
  cacheDir: string,
  env: NodeJS.ProcessEnv = {},
): { fromCache: boolean; value: unknown } {
  // The paths go in as arguments: the script is in process.execArgv, which is part of the cache's key.
  const script = `import(${JSON.stringify(BUILT_LOADER)}).then((m) => {
    const r = m.loadBundle(process.argv[1], 'scan', { dir: process.argv[2] });
    process.stdout.write(JSON.stringify({ fromCache: r.fromCache, value: r.exports.value }));
  });`;
  const run = spawnSync(process.execPath, ['-e', script, bundle, cacheDir], {
    encoding: 'utf8',
    env: { ...process.env, PORTCULLIS_CODE_CACHE: '', NODE_OPTIONS: '', ...env },
  });
  expect(run.status, run.stderr).toBe(0);
  return JSON.parse(run.stdout) as { fromCache: boolean; value: unknown };
}

describe('where compiled code is kept', () => {
  it('uses XDG_CACHE_HOME when it is an absolute path, else the home folder', () => {
    expect(defaultCodeCacheDir({ XDG_CACHE_HOME: '/x/cache', HOME: '/home/u' })).toBe(
      '/x/cache/portcullis/code-cache',
    );
    expect(defaultCodeCacheDir({ XDG_CACHE_HOME: 'relative', HOME: '/home/u' })).toBe(
      '/home/u/.cache/portcullis/code-cache',
    );
  });

  it.skipIf(process.getuid === undefined)(
    'creates its folder private, and refuses one that others can write or that is a link',
    () => {
      const made = join(dir, 'made', 'code-cache');
      expect(privateCacheDir(made)).toBe(made);
      expect(statSync(made).mode & 0o777).toBe(0o700);
      const open = join(dir, 'open');
      mkdirSync(open, { mode: 0o700 });
      chmodSync(open, 0o777);
      expect(privateCacheDir(open)).toBeUndefined();
      const link = join(dir, 'link');
      symlinkSync(made, link);
      expect(privateCacheDir(link)).toBeUndefined();
    },
  );

  it('names the file after the bundle, the command kind and the Node flags', () => {
    const a = cacheFileName('h1', 'scan', [], '');
    expect(a).toMatch(/^cli-[0-9a-f]{32}-scan\.v8$/);
    expect(cacheFileName('h2', 'scan', [], '')).not.toBe(a);
    expect(cacheFileName('h1', 'other', [], '')).not.toBe(a);
    expect(cacheFileName('h1', 'scan', ['--initial-old-space-size=64'], '')).not.toBe(a);
    expect(cacheFileName('h1', 'scan', [], '--max-old-space-size=512')).not.toBe(a);
    expect(cacheFileName('h1', 'scan', [], '', '/a/cli.cjs')).not.toBe(cacheFileName('h1', 'scan', [], '', '/b/cli.cjs'));
  });
});

describe.skipIf(!BUILT)(`loading a bundle with its compiled code${SKIP_BUILT}`, () => {
  it('compiles the first time, writes the cache at exit, and reads it the next time', () => {
    const cache = join(dir, 'c1');
    const bundle = writeBundle('one.cjs', 'module.exports.value = [1, 2, 3].map((n) => n * 2);\n');
    expect(loadInChild(bundle, cache)).toEqual({ fromCache: false, value: [2, 4, 6] });
    const files = readdirSync(cache);
    expect(files).toHaveLength(1);
    expect(statSync(join(cache, files[0]!)).mode & 0o777).toBe(0o600);
    expect(loadInChild(bundle, cache)).toEqual({ fromCache: true, value: [2, 4, 6] });
  });

  it('never runs code cached for other source of the same length', () => {
    // V8 checks only the source's length: the content hash in the file name is what tells these apart.
    const cache = join(dir, 'c2');
    const bundle = writeBundle('two.cjs', 'module.exports.value = "first";\n');
    loadInChild(bundle, cache);
    writeBundle('two.cjs', 'module.exports.value = "other";\n');
    expect(loadInChild(bundle, cache)).toEqual({ fromCache: false, value: 'other' });
  });

  it('names the bundle that runs in stack traces, not another copy of the same build', () => {
    // Two checkouts of one commit build the same bundle; V8 keeps the file name its data was made from.
    const cache = join(dir, 'c5');
    const source = 'function where() { return new Error("w").stack.split("\\n")[1]; }\nmodule.exports.value = where();\n';
    mkdirSync(join(dir, 'first'));
    mkdirSync(join(dir, 'second'));
    const first = writeBundle(join('first', 'same.cjs'), source);
    const second = writeBundle(join('second', 'same.cjs'), source);
    expect(loadInChild(first, cache).value).toContain(first);
    expect(loadInChild(second, cache).value).toContain(second);
    expect(loadInChild(second, cache)).toMatchObject({ fromCache: true });
  });

  it.skipIf(process.getuid === undefined)(
    'does not read a cache file that others can write, and replaces it',
    () => {
      const cache = join(dir, 'c3');
      const bundle = writeBundle('three.cjs', 'module.exports.value = 3;\n');
      loadInChild(bundle, cache);
      const file = join(cache, readdirSync(cache)[0]!);
      chmodSync(file, 0o666);
      expect(loadInChild(bundle, cache)).toEqual({ fromCache: false, value: 3 });
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(loadInChild(bundle, cache).fromCache).toBe(true);
    },
  );

  it('keeps nothing when PORTCULLIS_CODE_CACHE=0', () => {
    const cache = join(dir, 'c4');
    const bundle = writeBundle('four.cjs', 'module.exports.value = 4;\n');
    expect(loadInChild(bundle, cache, { PORTCULLIS_CODE_CACHE: '0' })).toEqual({
      fromCache: false,
      value: 4,
    });
    expect(existsSync(cache)).toBe(false);
  });

  it('gives the CLI the same output with and without the cache', () => {
    const env = { ...process.env, XDG_CACHE_HOME: join(dir, 'xdg'), NODE_OPTIONS: '' };
    const run = (extra: NodeJS.ProcessEnv) =>
      spawnSync(process.execPath, [CLI, '--help'], { encoding: 'utf8', env: { ...env, ...extra } });
    const plain = run({ PORTCULLIS_CODE_CACHE: '0' });
    expect(plain.status, plain.stderr).toBe(0);
    const first = run({});
    const second = run({});
    expect(readdirSync(join(dir, 'xdg', 'portcullis', 'code-cache'))).toHaveLength(1);
    expect([first.stdout, second.stdout]).toEqual([plain.stdout, plain.stdout]);
  });

  it('a scan that ends its process early still writes its cache and all of a large output to a pipe', () => {
    // One-shot scans end with process.exit once stdout is flushed (cli/one-shot.ts): the code cache
    // is written by an 'exit' listener, and no byte of the report may be cut off.
    const root = join(dir, 'rootfs');
    const packages: Record<string, unknown> = { '': { name: 'app', version: '1.0.0' } };
    for (let i = 0; i < 3000; i++) packages[`node_modules/pkg-${i}`] = { version: `1.0.${i}` };
    mkdirSync(join(root, 'app'), { recursive: true });
    writeFileSync(
      join(root, 'app', 'package-lock.json'),
      JSON.stringify({ name: 'app', version: '1.0.0', lockfileVersion: 3, packages }),
    );
    const env = { ...process.env, XDG_CACHE_HOME: join(dir, 'xdg-scan'), NODE_OPTIONS: '', PORTCULLIS_CODE_CACHE: '' };
    const run = () =>
      spawnSync(
        process.execPath,
        [CLI, 'sbom', `dir:${root}`, '--format', 'json', '--data', join(dir, 'data'), '--cache-dir', join(dir, 'layers')],
        { encoding: 'utf8', env, maxBuffer: 64 << 20 },
      );
    const first = run();
    expect(first.status, first.stderr).toBe(0);
    expect(first.stdout.length).toBeGreaterThan(1 << 20);
    const names = (JSON.parse(first.stdout) as { packages: { name: string }[] }).packages.map((p) => p.name);
    expect(names).toHaveLength(3000);
    expect(readdirSync(join(dir, 'xdg-scan', 'portcullis', 'code-cache')).filter((f) => f.endsWith('-scan.v8'))).toHaveLength(1);
    const second = run();
    expect(second.status, second.stderr).toBe(0);
    const withoutTime = (out: string) => out.replace(/"scannedAt": "[^"]*"/, '');
    expect(withoutTime(second.stdout)).toBe(withoutTime(first.stdout));
  });
});
