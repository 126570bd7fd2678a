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
 * manifest over the bound, or one file the user cannot read, says nothing about the others.
 */
export async function scanConfigPath(path: string, kind: ConfigKind): Promise<ConfigScan> {
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
    for (const p of await collect(path, kind, warnings)) {
      try {
        files.push({ path: p, text: await read(p, kind) });
      } catch (err) {
        if (!(err instanceof MisconfigError)) throw err;
        warnings.push(err.message);
      }
    }
  } else {
    files.push({ path, text: await read(path, kind) });
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

/** The matching files under `dir`; a folder below it that cannot be listed is a warning. */
async function collect(dir: string, kind: ConfigKind, warnings: string[], top = true): Promise<string[]> {
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
    const p = join(dir, e.name);
    if (e.isDirectory()) {
      if (!SKIP_DIRS.has(e.name)) out.push(...(await collect(p, kind, warnings, false)));
    } else if (e.isFile() && isConfigFile(basename(p), kind)) {
      out.push(p);
    }
  }
  return out;
}

async function read(path: string, kind: ConfigKind): Promise<string> {
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
  return Buffer.concat(chunks, size).toString('utf8');
}
