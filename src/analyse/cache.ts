import { createHash, randomBytes } from 'node:crypto';
import { mkdir, readFile, rename, writeFile, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { LayerFacts } from './dispatch.js';
import type { Analyser } from './types.js';

/**
 * Bump when the cached JSON shape, or what a layer records, changes. 4: layers record their folders
 * and their other unrecorded entries (`dirs`, `others`), and what a later entry of the same layer
 * replaced is gone from `files` (its secrets kept in `overwritten`). 5: an OS package's installed
 * files (OwnedFiles.files) are one string of lines, not an array.
 */
const CACHE_FORMAT = 5;

/** One key for the set of analysers: any analyser added, removed or upgraded invalidates entries. */
export function analysersKey(analysers: readonly Analyser[]): string {
  const parts = analysers.map((a) => `${a.name}@${a.version}:${a.maxFileSize}`).sort();
  return createHash('sha256').update(`${CACHE_FORMAT}|${parts.join(',')}`).digest('hex').slice(0, 16);
}

/**
 * Per-layer extraction results, keyed by the layer blob digest and the analysers' key. Only facts
 * about what a layer contains are stored (never vulnerability matches), so a database update never
 * needs the layers again. Entries are written to a temporary file and renamed, so a crash never
 * leaves a half-written entry that a later scan would trust.
 */
export class LayerCache {
  /**
   * Why the first entry that could not be written was not (a full disk, a folder the user may not
   * write): the cache only saves time, so a scan goes on without it and says so once.
   */
  writeFailure: string | undefined;

  constructor(
    private readonly dir: string,
    private readonly key: string,
  ) {}

  private file(digest: string): string {
    const [alg, hex] = digest.split(':');
    return join(this.dir, 'layers', alg!, `${hex}-${this.key}.json`);
  }

  async get(digest: string): Promise<LayerFacts | undefined> {
    try {
      const parsed = JSON.parse(await readFile(this.file(digest), 'utf8')) as { format: number; facts: LayerFacts };
      return parsed.format === CACHE_FORMAT ? parsed.facts : undefined;
    } catch {
      return undefined; // missing or unreadable: analyse again
    }
  }

  async put(digest: string, facts: LayerFacts): Promise<void> {
    const target = this.file(digest);
    try {
      await mkdir(join(target, '..'), { recursive: true });
    } catch (err) {
      this.noteFailure(err);
      return;
    }
    const tmp = `${target}.${randomBytes(6).toString('hex')}.tmp`;
    let text: string;
    try {
      text = JSON.stringify({ format: CACHE_FORMAT, facts });
    } catch (err) {
      // Facts too large for one string (V8's limit is about 512 MiB): the cache only saves time,
      // so this layer is simply analysed again next time.
      if (err instanceof RangeError) return;
      throw err;
    }
    try {
      await writeFile(tmp, text);
      await rename(tmp, target);
    } catch (err) {
      await unlink(tmp).catch(() => undefined);
      this.noteFailure(err);
    }
  }

  private noteFailure(err: unknown): void {
    const code = (err as NodeJS.ErrnoException).code;
    // No folder in the text: the registry's gate keeps results (and shows them to anyone who may
    // pull), and its cache folder is the server's business.
    this.writeFailure ??= `layer cache not written (${code ?? (err as Error).message}): the next scan analyses these layers again`;
  }
}
