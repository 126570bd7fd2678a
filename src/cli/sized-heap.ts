import { statSync } from 'node:fs';
import { ANALYSIS_PROCESS_FLAGS, withAllocatorTunables } from '../analyse/heap.js';
import { splitArchivePath } from '../oci/archive-path.js';

/**
 * Whether `portcullis scan|sbom` should run in a second Node process started with the analysis
 * heap flags and allocator settings (analyse/heap.ts), and if so with which Node arguments. The
 * launcher asks before it loads anything else, so the price is one more Node start (about 0.1 s),
 * against about 1.2 s per GiB that V8's default heap costs a large layer, and as much again in
 * page faults where those are dear. A local archive of at least
 * SIZED_HEAP_MIN_BYTES qualifies; registries, folders and small archives do not, since their
 * scans are shorter than the extra start. Getting this wrong costs time, never a different result.
 *
 * It imports only node:fs, analyse/heap.ts and oci/archive-path.ts: bin/portcullis.js loads it unbundled, before the CLI.
 */
export const SIZED_HEAP_MIN_BYTES = 128 * 1024 * 1024;

/** Set in the second process, so that it never starts a third. */
export const SIZED_HEAP_ENV = 'PORTCULLIS_SIZED_HEAP';

const ARCHIVE = /^(oci-archive|docker-archive):(.+)$/;

function fileSize(path: string): number | undefined {
  try {
    const s = statSync(path);
    return s.isFile() ? s.size : undefined;
  } catch {
    return undefined;
  }
}

/** The size of the archive file an image argument names (`oci-archive:FILE[:TAG]`, `docker-archive:FILE[:NAME:TAG|:@N]`). */
function archiveSize(arg: string): number | undefined {
  const m = ARCHIVE.exec(arg);
  return m ? fileSize(splitArchivePath(m[2]!).path) : undefined;
}

/**
 * The Node arguments (before the script) for the second process, or undefined to go on in this
 * one. `args` are the command-line arguments after the script; `execArgv` this process's Node
 * arguments.
 */
export function sizedHeapNodeArgs(
  args: readonly string[],
  env: NodeJS.ProcessEnv = process.env,
  execArgv: readonly string[] = process.execArgv,
  minBytes: number = SIZED_HEAP_MIN_BYTES,
): string[] | undefined {
  if (env[SIZED_HEAP_ENV]) return undefined;
  if (execArgv.some((a) => a.startsWith('--initial-old-space-size') || a.startsWith('--initial-heap-size'))) return undefined;
  const command = args.findIndex((a) => a === 'scan' || a === 'sbom');
  if (command < 0) return undefined;
  for (const arg of args.slice(command + 1)) {
    const size = archiveSize(arg);
    if (size === undefined) continue;
    return size >= minBytes ? [...ANALYSIS_PROCESS_FLAGS, ...execArgv] : undefined;
  }
  return undefined;
}

/** The second process's environment: marked so it starts no third, with the analysis allocator settings. */
export function sizedHeapEnv(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return withAllocatorTunables({ ...env, [SIZED_HEAP_ENV]: '1' });
}
