import { constants } from 'node:fs';
import { lstat, open, readdir, readlink, type FileHandle } from 'node:fs/promises';
import { join } from 'node:path';
import { AnalyseError } from '../errors.js';
import { FileDispatcher, emptyLayerFacts, type LayerFacts } from './dispatch.js';
import type { LimitTracker } from './limits.js';
import { symlinkEscapes } from './paths.js';
import type { Analyser, AnalyserContext } from './types.js';

/**
 * Analyses an unpacked root filesystem (`dir:PATH`) as if it were a single layer. Symlinks are
 * never followed, so a link to /etc on the host cannot pull host files into the result.
 */
export async function walkDirectory(
  root: string,
  opts: { analysers: readonly Analyser[]; ctx: AnalyserContext; limits: LimitTracker; subject: string },
): Promise<LayerFacts> {
  const facts = emptyLayerFacts();
  const dispatcher = new FileDispatcher(opts.analysers, opts.ctx, facts);
  const { limits, subject } = opts;
  try {
    const top = await lstat(root);
    if (!top.isDirectory()) throw new AnalyseError('NOT_A_DIRECTORY', `${subject}: ${root} is not a folder`);
  } catch (err) {
    if (err instanceof AnalyseError) throw err;
    throw new AnalyseError('NOT_A_DIRECTORY', `${subject}: cannot read ${root} (${(err as NodeJS.ErrnoException).code})`);
  }
  const stack: string[] = [''];
  while (stack.length > 0) {
    const rel = stack.pop()!;
    let names: string[];
    try {
      names = await readdir(join(root, rel));
    } catch (err) {
      facts.warnings.push(`${subject}: cannot list ${rel || '/'} (${(err as NodeJS.ErrnoException).code}); skipped`);
      continue;
    }
    names.sort();
    for (const name of names) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      let st;
      try {
        st = await lstat(abs);
      } catch {
        continue;
      }
      facts.entries++;
      if (!st.isFile()) {
        // A file is counted by addEntry below; counting it here as well made a folder of a million
        // files fail the two-million entry limit.
        limits.entries++;
        if (limits.entries > limits.limits.maxEntries) {
          throw new AnalyseError('LIMIT_EXCEEDED', `${subject}: more than ${limits.limits.maxEntries} files (raise --max-entries if this is genuine)`);
        }
      }
      if (st.isDirectory()) {
        stack.push(path);
        continue;
      }
      if (st.isSymbolicLink()) {
        const target = await readlink(abs).catch(() => '');
        if (target && symlinkEscapes(path, target)) {
          facts.warnings.push(`${subject}: symlink ${path} -> ${target} points outside the root; not followed`);
        }
        continue;
      }
      if (!st.isFile()) continue;
      facts.bytes += st.size;
      if (st.size > facts.largestFile) facts.largestFile = st.size;
      limits.addEntry(st.size, path, subject);
      const info = { size: st.size, mode: st.mode & 0o7777 };
      dispatcher.observe(path, info);
      const wanted = dispatcher.interested(path, info);
      if (wanted.length === 0) continue;
      const file = await openRegularFile(abs);
      if (typeof file === 'string') {
        facts.warnings.push(`${subject}: cannot read ${path} (${file}); not analysed`);
        continue;
      }
      const content = file.createReadStream({ highWaterMark: 1 << 20 });
      try {
        await dispatcher.dispatch(path, info, wanted, content);
      } finally {
        // Reading to the end closes the file; an analyser that fails before reading must not
        // leave it open until garbage collection.
        content.destroy();
      }
    }
  }
  return facts;
}

/**
 * Opens a file the walk found, or says why not. One file the user may not read (a root-only key
 * in a folder scanned as a normal user) is a warning, not the end of the scan, as a folder that
 * cannot be listed is. The file may have been swapped since it was looked at: without following a
 * link, and without waiting on a FIFO's writer, it must still be a regular file.
 */
async function openRegularFile(abs: string): Promise<FileHandle | string> {
  let handle: FileHandle;
  try {
    handle = await open(abs, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code ?? String(err);
  }
  const isFile = await handle.stat().then((st) => st.isFile(), () => false);
  if (isFile) return handle;
  await handle.close();
  return 'no longer a regular file';
}
