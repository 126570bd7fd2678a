import { createHash, randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setImmediate as tick } from 'node:timers/promises';
import { afterAll, describe, expect, it } from 'vitest';
import { analyseInput, type Analyser } from '../../src/analyse/index.js';
import { parseImageInput } from '../../src/oci/index.js';
import { writeOciLayout, type TestEntry } from '../helpers/image-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-content-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe('file content handed to analysers', () => {
  it('is each file\'s own bytes, also for multi-chunk files in layers read at once and analysers that await', async () => {
    // Sizes around the walker's chunking and its reused join buffers (8 MiB), in two layers that
    // the default concurrency of 2 reads at the same time.
    const sizes = [70_000, 300_000, 1_500_000, 3_000_000, 9_000_000];
    const layers: TestEntry[][] = [0, 1].map((l) => sizes.map((n, i) => ({ name: `data/l${l}-f${i}`, content: randomBytes(n) })));
    const want = new Map(layers.flat().map((e) => [e.name, sha(e.content as Buffer)]));
    const seen = new Map<string, string>();
    const recorder: Analyser = {
      name: 'content-recorder',
      version: 1,
      maxFileSize: 64 << 20,
      wants: (path) => path.startsWith('data/'),
      async analyse(file) {
        // Yield first, so the other layer's walker runs (and reuses buffers) in between.
        await tick();
        await tick();
        seen.set(file.path, `${file.content.length}:${sha(file.content)}`);
        return {};
      },
    };
    const dir = join(tmp, 'img');
    await writeOciLayout(dir, layers);
    await analyseInput(parseImageInput(`oci:${dir}`), { cacheDir: null, analysers: [recorder] });
    expect(seen.size).toBe(want.size);
    for (const e of layers.flat()) expect(seen.get(e.name), e.name).toBe(`${(e.content as Buffer).length}:${want.get(e.name)}`);
  });
});
