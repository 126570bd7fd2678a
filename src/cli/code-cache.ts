import { createHash } from 'node:crypto';
import {
  closeSync,
  constants,
  fstatSync,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  renameSync,
  statSync,
  unlinkSync,
  writeFileSync,
} from 'node:fs';
import { createRequire } from 'node:module';
import { homedir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import vm from 'node:vm';

/**
 * Loads the CLI bundle (one CommonJS file, see scripts/bundle.mjs) with a V8 code cache, so that a
 * command does not parse and compile the same 2 MB of JavaScript on every start.
 *
 * Why by hand. Node 20 caches compiled code for no module system (module.enableCompileCache came
 * in Node 22); vm.Script accepts and produces V8's cached data, which is what the CommonJS bundle
 * is loaded through here. A cache made after a scan also holds the functions that scan compiled.
 * Measured: alpine-3.20 0.34-0.35 s against 0.38-0.40 s with the ESM bundle, debian-12-minbase
 * 0.91-0.98 against 1.06-1.10 s (BENCHMARKS.md, "The CLI's start").
 *
 * Safety. Cached data is code: whoever can write it can make the CLI run anything. It lives only in
 * a folder of the user's own (`$XDG_CACHE_HOME/portcullis/code-cache`, else
 * `~/.cache/portcullis/code-cache`), created 0700, and is read only when that folder and the file
 * belong to this user and nobody else can write to them; otherwise the bundle is compiled as
 * usual. V8 itself rejects data made by another V8 version or with other flags, and the file name
 * carries the bundle's content hash (written by the build next to it), Node's version and this
 * process's Node flags, since V8's own check of the source is only its length.
 * PORTCULLIS_CODE_CACHE=0 turns it off.
 */

/** Which cache a command reads and makes: a scan's compiles the analysers too. */
export type CacheKind = 'scan' | 'other';

const STALE_AFTER_MS = 7 * 24 * 3600 * 1000;

export interface CodeCacheOptions {
  /** The folder to keep caches in; by default the user's cache folder (see above). */
  dir?: string;
}

/** The default cache folder, or undefined when there is no home to put it in. */
export function defaultCodeCacheDir(env: NodeJS.ProcessEnv = process.env): string | undefined {
  const xdg = env.XDG_CACHE_HOME;
  if (xdg && xdg.startsWith('/')) return join(xdg, 'portcullis', 'code-cache');
  let home: string;
  try {
    home = env.HOME || homedir();
  } catch {
    return undefined;
  }
  return home ? join(home, '.cache', 'portcullis', 'code-cache') : undefined;
}

/** Owned by this user and writable by nobody else (always true where there are no uids). */
function isPrivate(st: { uid: number; mode: number }): boolean {
  const uid = process.getuid?.();
  return uid === undefined || (st.uid === uid && (st.mode & 0o022) === 0);
}

/** The folder, created if need be, when it is safe to read code from; otherwise undefined. */
export function privateCacheDir(dir: string): string | undefined {
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const st = lstatSync(dir);
    return st.isDirectory() && isPrivate(st) ? dir : undefined;
  } catch {
    return undefined;
  }
}

/**
 * The file name for a bundle with this content hash at this path, under this Node and these flags
 * (V8 refuses data made with other flags, and NODE_OPTIONS can hold flags too: without them in the
 * name, runs with different flags would keep replacing each other's file). The path is in the key
 * because V8 keeps the file name of the script the data was made from: two checkouts of one build
 * sharing a file gave each other's paths in stack traces (PORTCULLIS_DEBUG=1).
 */
export function cacheFileName(
  bundleHash: string,
  kind: CacheKind,
  execArgv: readonly string[] = process.execArgv,
  nodeOptions: string = process.env.NODE_OPTIONS ?? '',
  bundleFile = '',
): string {
  const key = createHash('sha256')
    .update(JSON.stringify([bundleHash, process.version, process.arch, execArgv, nodeOptions, bundleFile]))
    .digest('hex')
    .slice(0, 32);
  return `cli-${key}-${kind}.v8`;
}

/** The file's bytes, if it is a regular file of this user's that nobody else can write. */
function readPrivateFile(path: string): Buffer | undefined {
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | constants.O_NOFOLLOW);
  } catch {
    return undefined;
  }
  try {
    const st = fstatSync(fd);
    return st.isFile() && isPrivate(st) ? readFileSync(fd) : undefined;
  } catch {
    return undefined;
  } finally {
    closeSync(fd);
  }
}

/** Written whole or not at all: a reader never sees half a file. */
function writePrivateFile(path: string, data: Buffer): void {
  const temp = `${path}.${process.pid}.tmp`;
  try {
    writeFileSync(temp, data, { mode: 0o600, flag: 'wx' });
    renameSync(temp, path);
  } catch {
    try {
      unlinkSync(temp);
    } catch {
      // nothing was written
    }
  }
}

/**
 * Caches of older builds are never read again: drop files not written for a week. One still in use
 * (another kind, other flags) is simply made again by its next run.
 */
function pruneStale(dir: string, keep: string): void {
  try {
    const now = Date.now();
    for (const name of readdirSync(dir)) {
      if (name === keep || !/^cli-[0-9a-f]+-(scan|other)\.v8$/.test(name)) continue;
      const path = join(dir, name);
      if (now - statSync(path).mtimeMs > STALE_AFTER_MS) unlinkSync(path);
    }
  } catch {
    // a cache folder we cannot tidy costs disk, not correctness
  }
}

export interface LoadedBundle<T> {
  exports: T;
  /** Whether compiled code came from the cache (false: compiled now). */
  fromCache: boolean;
}

/**
 * Compiles and runs a CommonJS bundle, with cached data when there is good data for it, and
 * arranges for fresh data to be written when the process exits if there was none (or V8 refused
 * it). Other commands read a scan's cache when they have none of their own; a scan makes its own.
 */
export function loadBundle<T>(
  bundleFile: string,
  kind: CacheKind,
  opts: CodeCacheOptions = {},
): LoadedBundle<T> {
  const source = readFileSync(bundleFile, 'utf8');
  const wrapper = `(function (exports, require, module, __filename, __dirname) {${source}\n})`;
  let bundleHash: string | undefined;
  try {
    bundleHash = readFileSync(`${bundleFile}.sha256`, 'utf8').trim();
  } catch {
    bundleHash = undefined;
  }
  const dir =
    process.env.PORTCULLIS_CODE_CACHE === '0' || !bundleHash
      ? undefined
      : privateCacheDir(opts.dir ?? defaultCodeCacheDir() ?? '');
  const fileFor = (k: CacheKind) => join(dir!, cacheFileName(bundleHash!, k, undefined, undefined, resolve(bundleFile)));
  const ownFile = dir ? fileFor(kind) : undefined;
  let cachedData = ownFile ? readPrivateFile(ownFile) : undefined;
  // Any cache is better than none: the other kind compiles the same start-up code.
  if (!cachedData && dir && kind === 'other') cachedData = readPrivateFile(fileFor('scan'));

  const script = new vm.Script(wrapper, {
    filename: bundleFile,
    cachedData,
  });
  const fromCache = cachedData !== undefined && !script.cachedDataRejected;
  if (ownFile && (!cachedData || script.cachedDataRejected)) {
    // Made at exit, so the data holds what this command compiled, not only the top level.
    process.once('exit', () => {
      writePrivateFile(ownFile, script.createCachedData());
      pruneStale(dir!, basename(ownFile));
    });
  }
  const module = { exports: {} as T };
  const run = script.runInThisContext() as (
    e: unknown,
    r: NodeJS.Require,
    m: unknown,
    f: string,
    d: string,
  ) => void;
  run(module.exports, createRequire(bundleFile), module, bundleFile, dirname(bundleFile));
  return { exports: module.exports, fromCache };
}
