import { describe, expect, it } from 'vitest';
import { apkAnalyser } from '../../src/analyse/analysers/apk.js';
import { MAX_OWNED_FILES_PER_FILE } from '../../src/analyse/dispatch.js';
import { ownedPaths, type AnalyserContext, type FileFacts } from '../../src/analyse/types.js';

const CTX = { scratchDir: '/tmp' } as AnalyserContext;
const PATH = 'lib/apk/db/installed';

async function installed(text: string): Promise<FileFacts> {
  const content = Buffer.from(text);
  return apkAnalyser.analyse({ path: PATH, size: content.length, mode: 0o644, content }, CTX);
}

function record(i: number, files: number): string {
  const rs = Array.from({ length: files }, (_, f) => `R:a-longer-file-name-${f}.so\n`).join('');
  return `C:Q1abc=\nP:pkg${i}\nV:1.${i}-r0\nA:x86_64\nL:MIT\no:src${i}\nF:usr/lib/pkg${i}\n${rs}\n`;
}

describe('apk installed database', () => {
  it('reads every record and its files across decoding blocks', async () => {
    // Several MiB, so the line reader cuts it into blocks in the middle of records.
    const text = Array.from({ length: 6_000 }, (_, i) => record(i, (i % 10) + 10)).join('');
    expect(text.length).toBeGreaterThan(2 << 20);
    const facts = await installed(text);
    expect(facts.packages).toHaveLength(6_000);
    expect(facts.packages?.[4321]).toMatchObject({ name: 'pkg4321', version: '1.4321-r0', sourceName: 'src4321', arch: 'x86_64', licenses: ['MIT'] });
    const owned = new Map(facts.owned?.map((o) => [o.owner.name, [...ownedPaths(o.files)]]));
    expect(owned.get('pkg49')).toEqual(Array.from({ length: 19 }, (_, f) => `usr/lib/pkg49/a-longer-file-name-${f}.so`));
    expect(owned.get('pkg5999')?.at(-1)).toBe('usr/lib/pkg5999/a-longer-file-name-18.so');
    expect(facts.warnings).toEqual([]);
  });

  it('keeps a bounded number of installed files, with a warning, and still reads later packages', async () => {
    const many = MAX_OWNED_FILES_PER_FILE + 1_000;
    const facts = await installed(`${record(1, many)}${record(2, 3)}`);
    expect(facts.packages?.map((p) => p.name)).toEqual(['pkg1', 'pkg2']);
    const files = (facts.owned ?? []).reduce((n, o) => n + [...ownedPaths(o.files)].length, 0);
    expect(files).toBe(MAX_OWNED_FILES_PER_FILE);
    expect(facts.warnings).toEqual([
      `${PATH}: lists ${many + 3} installed files, more than any real database; kept the first ${MAX_OWNED_FILES_PER_FILE}`,
    ]);
  });

  it('reads the database as it arrives into what the whole file gives, whatever bytes the chunks end on', async () => {
    const content = Buffer.from(`${record(1, 3)}P:ü\nV:1\nF:usr/lib/ä\nR:ö.so\r\n\nP:no-version\nR:x\n\n${record(2, 2)}`);
    const whole = await installed(content.toString());
    expect(whole.owned?.map((o) => [o.owner.name, o.files])).toEqual([
      ['pkg1', 'usr/lib/pkg1/a-longer-file-name-0.so\nusr/lib/pkg1/a-longer-file-name-1.so\nusr/lib/pkg1/a-longer-file-name-2.so\n'],
      ['ü', 'usr/lib/ä/ö.so\r\n'],
      ['pkg2', 'usr/lib/pkg2/a-longer-file-name-0.so\nusr/lib/pkg2/a-longer-file-name-1.so\n'],
    ]);
    expect(whole.warnings).toEqual([`${PATH}: a package record without V: was skipped`]);
    for (const chunk of [1, 2, 3, 5, 7, 64]) {
      const reader = apkAnalyser.stream!(PATH, { size: content.length, mode: 0o644 })!;
      for (let at = 0; at < content.length; at += chunk) reader.write(Buffer.from(content.subarray(at, at + chunk)));
      expect(reader.end()).toEqual(whole);
    }
  });
});
