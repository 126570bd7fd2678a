import { open, readdir, stat, type FileHandle } from 'node:fs/promises';
import { basename, join } from 'node:path';
import type { Misconfiguration } from '../sbom/finding.js';
import { scanDockerfile } from './dockerfile.js';
import { MisconfigError } from './errors.js';
import { scanKubernetesFiles, type ConfigFile } from './k8s.js';
import { byCodeUnits } from '../text-order.js';

export type ConfigKind = 'dockerfile' | 'k8s';

const SKIP_DIRS = new Set(['node_modules', '.git']);

/**
 * The largest file of each kind that is checked. dockerfile-ast needs about 250 bytes of memory
 * per byte of a long instruction (a 2 MiB line: 2.6 s and 500 MB; 8 MiB: 14 s and 1.4 GB; a
 * 576 KiB RUN of 64,000 pipes still 1.2 s and 343 MB), and no Dockerfile people write comes near
 * 256 KiB: the largest are tens of KiB. Kubernetes manifests can be long (rendered charts,
 * CRDs), and their YAML parse is linear, so theirs is larger.
 */
export const MAX_CONFIG_FILE_BYTES: Readonly<Record<ConfigKind, number>> = { dockerfile: 256 << 10, k8s: 32 << 20 };

/**
 * What the scan of a folder checks in all: the first files in sorted path order, up to `files` of
 * them and `bytes` of their text; the rest are named in one warning. Without a bound a folder of
 * generated files, or a checkout with thousands of YAML files, made a scan as long and as large
 * as it held: every text is held until all are checked (Kubernetes files are checked together),
 * each is parsed, and each workload makes a dozen findings. On two busy cores, 3.7 MiB of
 * Deployments (300 files, 48,000 findings) took 4.9 s and 200 MB, 7.4 MiB 7.2 s and 306 MB,
 * 16 MiB 16-26 s and 592-672 MB; 500 Dockerfiles of 1.9 KB (0.9 MiB) took 3.5 s and 94 MB. A
 * monorepo has tens of Dockerfiles and a GitOps repository some hundreds to a thousand or two
 * small manifests, but CustomResourceDefinitions are large (an operator's bundle is megabytes)
 * and make no findings: 25 MiB of them took 7.9 s and 318 MB. So YAML is bounded at 16 MiB, not
 * lower: a bound that real repositories reach leaves files unchecked and fails a CI gate that
 * uses --exit-code, which costs more than a few hundred MB for a dense folder of workloads.
 */
export const MAX_CONFIG_FOLDER: Readonly<Record<ConfigKind, { files: number; bytes: number }>> = {
  dockerfile: { files: 1_000, bytes: 2 << 20 },
  k8s: { files: 5_000, bytes: 16 << 20 },
};

/** Whether a file name is one the scan of a folder picks up for the given kind. */
export function isConfigFile(name: string, kind: ConfigKind): boolean {
  if (kind === 'dockerfile') return /^Dockerfile/i.test(name) || /\.dockerfile$/i.test(name);
  return /\.ya?ml$/i.test(name);
}

/**
 * Scans a Dockerfile or Kubernetes manifest, or every matching file under a folder (recursively,
 * skipping node_modules and .git, not following symlinked folders). A file given directly is
 * scanned whatever its name. Files are read in sorted path order so the output is deterministic.
 * Kubernetes files are checked together so a NetworkPolicy in one file covers workloads in another.
 *
 * A file given directly that is too large or cannot be read fails the scan (MisconfigError). Under
 * a folder, such a file is a warning naming it and the rest are still checked: one generated
 * manifest over the bound, or one file the user cannot read, says nothing about the others. A
 * folder is checked up to `folderLimits` (MAX_CONFIG_FOLDER), with one warning naming the files
 * left unchecked.
 */
export async function scanConfigPath(
  path: string,
  kind: ConfigKind,
  folderLimits: { files: number; bytes: number } = MAX_CONFIG_FOLDER[kind],
): Promise<ConfigScan> {
  let info;
  try {
    info = await stat(path);
  } catch (err) {
    throw new MisconfigError(
      'CONFIG_NOT_FOUND',
      `${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        subject: path,
        cause: err,
      },
    );
  }
  const files: ConfigFile[] = [];
  const warnings: string[] = [];
  if (info.isDirectory()) {
    // One file past the bound is enough to know that there are more.
    const found = await collect(path, kind, warnings, { left: folderLimits.files + 1 });
    const skipped: string[] = [];
    let bytes = 0;
    for (const p of found.slice(0, folderLimits.files)) {
      if (skipped.length > 0) {
        skipped.push(p);
        continue;
      }
      try {
        const file = await read(p, kind);
        if (bytes + file.bytes > folderLimits.bytes) {
          skipped.push(p);
          continue;
        }
        bytes += file.bytes;
        files.push({ path: p, text: file.text });
      } catch (err) {
        if (!(err instanceof MisconfigError)) throw err;
        warnings.push(err.message);
      }
    }
    const tooMany = found.length > folderLimits.files;
    if (skipped.length > 0 || tooMany) warnings.push(folderBoundWarning(path, kind, folderLimits, skipped, tooMany));
  } else {
    files.push({ path, text: (await read(path, kind)).text });
  }
  // Under a folder, a file that is not valid YAML (a Helm template not yet rendered, say) is a
  // warning like an unreadable one; named alone, it is the error.
  const invalid = info.isDirectory() ? (err: MisconfigError) => warnings.push(err.message) : undefined;
  const misconfigurations = kind === 'dockerfile' ? files.flatMap((f) => scanDockerfile(f.text, f.path)) : scanKubernetesFiles(files, invalid);
  return { misconfigurations, warnings };
}

/** What scanConfigPath found, and the files of a folder it could not check. */
export interface ConfigScan {
  misconfigurations: Misconfiguration[];
  warnings: string[];
}

/** The warning naming the files of a folder left unchecked by MAX_CONFIG_FOLDER. */
function folderBoundWarning(path: string, kind: ConfigKind, limits: { files: number; bytes: number }, skipped: string[], tooMany: boolean): string {
  const noun = kind === 'dockerfile' ? 'Dockerfiles' : 'YAML files';
  const why = skipped.length > 0 ? `over ${limits.bytes} bytes of ${noun} in all` : `more than ${limits.files} ${noun}`;
  const named = skipped.slice(0, 3);
  const rest = skipped.length - named.length;
  const more = tooMany ? `${named.length > 0 ? ', ' : ''}${rest > 0 ? `${rest} more and ` : ''}those past the first ${limits.files}` : rest > 0 ? ` and ${rest} more` : '';
  return `${path}: ${why}; not checked: ${named.join(', ')}${more}`;
}

/**
 * The matching files under `dir`, at most `budget.left` of them; a folder below it that cannot be
 * listed is a warning.
 */
async function collect(dir: string, kind: ConfigKind, warnings: string[], budget: { left: number }, top = true): Promise<string[]> {
  const out: string[] = [];
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch (err) {
    const message = `${dir}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`;
    if (top) throw new MisconfigError('CONFIG_READ', message, { subject: dir, cause: err });
    warnings.push(message);
    return out;
  }
  entries.sort((a, b) => byCodeUnits(a.name, b.name));
  for (const e of entries) {
    if (budget.left <= 0) break;
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) for (const f of await collect(p, kind, warnings, budget, false)) out.push(f);
    } else if (e.isFile() && isConfigFile(basename(p), kind)) {
      out.push(p);
      budget.left--;
    }
  }
  return out;
}

async function read(path: string, kind: ConfigKind): Promise<{ text: string; bytes: number }> {
  const limit = MAX_CONFIG_FILE_BYTES[kind];
  const chunks: Buffer[] = [];
  let size = 0;
  let fh: FileHandle | undefined;
  try {
    // Read up to one byte past the bound rather than trust a size: a pipe, /dev/stdin or a device
    // reports none, and /dev/zero never ends.
    fh = await open(path, 'r');
    for (;;) {
      const chunk = Buffer.allocUnsafe(Math.min(64 * 1024, limit + 1 - size));
      const { bytesRead } = await fh.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      size += bytesRead;
      if (size > limit) {
        throw new MisconfigError('CONFIG_TOO_LARGE', `${path}: over ${limit} bytes; a ${kind === 'dockerfile' ? 'Dockerfile' : 'Kubernetes manifest'} this large is not checked`, {
          subject: path,
        });
      }
    }
  } catch (err) {
    if (err instanceof MisconfigError) throw err;
    throw new MisconfigError(
      'CONFIG_READ',
      `${path}: cannot read: ${(err as NodeJS.ErrnoException).code ?? String(err)}`,
      {
        subject: path,
        cause: err,
      },
    );
  } finally {
    await fh?.close();
  }
  return { text: Buffer.concat(chunks, size).toString('utf8'), bytes: size };
}
