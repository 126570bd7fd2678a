import { randomBytes } from 'node:crypto';
import { accessSync, constants, fstatSync, lstatSync, realpathSync, statSync, writeFile as writeFd, type Stats } from 'node:fs';
import { open, rename, rm, writeFile } from 'node:fs/promises';
import { basename, dirname, join, resolve } from 'node:path';
import { promisify } from 'node:util';
import { UsageError } from '../errors.js';
import { isStorageFull } from '../store/errors.js';

/**
 * Where a report named by --output goes. A regular file (or a new one) in a writable folder is
 * replaced whole: the report is written beside it and renamed over it, so a full disk or a crash
 * leaves the previous report as it was instead of a truncated one; its owner and mode carry over.
 * Anything else (a FIFO, /dev/stdout, a writable file with hard links, a writable file whose owner
 * or group the new one could not have, a writable file in a folder the user may not write) is
 * written in place.
 */
interface OutputTarget {
  path: string;
  existing?: Stats;
  replaceWhole: boolean;
  /** The standard stream already open on the file, written through as its other output is. */
  fd?: number;
}

/** Whether this process may write the file, or make and remove names in the folder. */
function writable(path: string): boolean {
  try {
    accessSync(path, constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/** The standard output or error stream open on the file `stats` describes, if any. */
function stdioOn(stats: Stats): number | undefined {
  for (const fd of [1, 2]) {
    try {
      const s = fstatSync(fd);
      if (s.isFile() && s.dev === stats.dev && s.ino === stats.ino) return fd;
    } catch {
      // Not open.
    }
  }
  return undefined;
}

function locate(output: string): OutputTarget {
  const named = resolve(output);
  const existing = statSync(named, { throwIfNoEntry: false });
  // A FIFO or a device (/dev/stdout, whose link names a pipe, not a path) is written where named.
  if (existing && !existing.isFile()) return { path: named, existing, replaceWhole: false };
  // A symbolic link names where the report belongs; replacing the link itself would cut it. One
  // that points nowhere yet is written through, which creates its target.
  if (!existing && lstatSync(named, { throwIfNoEntry: false })?.isSymbolicLink()) return { path: named, replaceWhole: false };
  // /dev/stdout, /dev/fd/N or /proc/self/fd/N may name a regular file: the one our output already
  // goes to (`--output /dev/stdout >> log`). Replacing it would drop what it held and leave the
  // process writing to a file in no folder; opening it anew would truncate it. The report goes
  // through the stream, after what was written there, and other such paths are written in place.
  const fd = existing ? stdioOn(existing) : undefined;
  if (fd !== undefined) return { path: named, existing, replaceWhole: false, fd };
  if (existing && /^\/(?:dev|proc)\//.test(named)) return { path: named, existing, replaceWhole: false };
  const path = existing ? realpathSync(named) : named;
  // A file with other names (hard links) would keep the old report under them if a new file took
  // this name, so it is written in place, as any editor that keeps links does. One the user may not
  // write (a read-only report) is replaced as before: refusing it would be new, and a surprise.
  if (existing && existing.nlink > 1 && writable(path)) return { path, existing, replaceWhole: false };
  // A new file made by a user other than root has that user's owner, and a group only among the
  // user's own. Given the old mode, it would have let the user's group read a report that was
  // shared with another (or with nobody), so a file the user may write is written in place.
  if (existing && !ownerCarriesOver(existing) && writable(path)) return { path, existing, replaceWhole: false };
  return { path, existing, replaceWhole: writable(dirname(path)) };
}

/** Whether a new file this process makes can be given the owner and group `existing` has. */
function ownerCarriesOver(existing: Stats): boolean {
  const uid = process.geteuid?.();
  if (uid === undefined || uid === 0) return true;
  if (existing.uid !== uid) return false;
  return existing.gid === process.getegid?.() || (process.getgroups?.() ?? []).includes(existing.gid);
}

/**
 * Refuses an --output that cannot be written before the scan, which may take minutes, rather than
 * after it.
 */
export function checkOutputPath(output: string | undefined): void {
  if (!output) return;
  const folder = dirname(resolve(output));
  const target = locate(output);
  let reason: string | undefined;
  if (target.existing?.isDirectory()) reason = 'it is a folder';
  else if (target.existing === undefined && !statSync(dirname(target.path), { throwIfNoEntry: false })?.isDirectory()) {
    reason = `folder ${folder} does not exist`;
  } else if (!target.replaceWhole) {
    try {
      accessSync(target.existing ? target.path : dirname(target.path), constants.W_OK);
    } catch {
      reason = target.existing ? 'it is not writable' : `folder ${folder} is not writable`;
    }
  }
  if (reason) throw new UsageError('OUTPUT_UNWRITABLE', `cannot write --output ${output}: ${reason}`);
}

function failureReason(err: unknown): string {
  if (isStorageFull(err)) return 'the disk is full';
  const code = (err as { code?: unknown } | null)?.code;
  if (code === 'EACCES' || code === 'EPERM') return 'permission denied';
  return err instanceof Error ? err.message : String(err);
}

/** Writes a report to `output`, all or nothing where the file system allows it. */
export async function writeOutputFile(output: string, text: string): Promise<void> {
  const target = locate(output);
  if (!target.replaceWhole) {
    try {
      if (target.fd !== undefined) await promisify(writeFd)(target.fd, text);
      else await writeFile(target.path, text);
    } catch (err) {
      throw new UsageError('OUTPUT_UNWRITABLE', `cannot write --output ${output}: ${failureReason(err)}`, { cause: err });
    }
    return;
  }
  // A name no one can guess, created exclusively: in a folder others may write, a link planted
  // under a predictable name would have had the report (and the mode) written through it.
  const temporary = join(dirname(target.path), `.${basename(target.path)}.${process.pid}.${randomBytes(6).toString('hex')}.partial`);
  try {
    const handle = await open(temporary, 'wx', 0o666);
    try {
      await handle.writeFile(text);
      if (target.existing) {
        // The report keeps the owner the file had (root writing over a user's report must not
        // take it from them); a user who may not give files away keeps their own, as before.
        const { uid, gid, mode } = target.existing;
        if (uid !== process.getuid?.() || gid !== process.getgid?.()) await handle.chown(uid, gid).catch(() => undefined);
        await handle.chmod(mode & 0o7777);
      }
    } finally {
      await handle.close();
    }
    await rename(temporary, target.path);
  } catch (err) {
    await rm(temporary, { force: true }).catch(() => undefined);
    const kept = target.existing ? 'the file is left as it was' : 'nothing was written';
    throw new UsageError('OUTPUT_UNWRITABLE', `cannot write --output ${output}: ${failureReason(err)}; ${kept}`, { cause: err });
  }
}
