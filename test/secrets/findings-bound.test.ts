import { describe, expect, it } from 'vitest';
import { MAX_SECRETS_PER_FILE, createSecretAnalyser } from '../../src/analyse/analysers/secrets.js';
import type { AnalyserContext, FileFacts } from '../../src/analyse/types.js';
import { scanContent, scanText, type FindingBound } from '../../src/secrets/engine.js';
import { FAMILIES } from './corpus.js';
import { Rng } from './gen.js';

const CTX = { scratchDir: '/tmp' } as AnalyserContext;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `count` distinct, random-looking AWS access key ids, one a line. */
function keyIds(count: number): string {
  let x = 12345;
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    let id = 'AKIA';
    for (let k = 0; k < 16; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      id += BASE32[(x >>> 16) % 32];
    }
    lines.push(`${id}\n`);
  }
  return lines.join('');
}

async function scan(path: string, text: string): Promise<FileFacts> {
  const content = Buffer.from(text);
  return createSecretAnalyser().analyse({ path, size: content.length, mode: 0o644, content }, CTX);
}

describe('findings per file', () => {
  it('reports every finding of a file with fewer than the bound', async () => {
    const facts = await scan('app/keys.txt', keyIds(20));
    expect(facts.secrets).toHaveLength(20);
    expect(facts.warnings).toBeUndefined();
  });

  it('keeps the first findings past the bound and says how many more there were', async () => {
    const count = MAX_SECRETS_PER_FILE + 234;
    const facts = await scan('app/keys.txt', keyIds(count));
    expect(facts.secrets).toHaveLength(MAX_SECRETS_PER_FILE);
    expect(facts.secrets?.[0]).toMatchObject({ ruleId: 'aws-access-key-id', line: 1 });
    expect(facts.secrets?.at(-1)?.line).toBe(MAX_SECRETS_PER_FILE);
    expect(facts.warnings).toEqual([`app/keys.txt: 234 more secrets past the first ${MAX_SECRETS_PER_FILE} not reported`]);
  });
});

describe("the engine's bound on findings", () => {
  it('makes findings of the first ones only and counts the rest', () => {
    const content = Buffer.from(keyIds(1234));
    const bound: FindingBound = { max: 1000, total: -1 };
    const bounded = scanContent(content, { path: 'app/keys.txt' }, undefined, bound);
    expect(bounded).toHaveLength(1000);
    expect(bound.total).toBe(1234);
    expect(bounded).toEqual(scanContent(content, { path: 'app/keys.txt' }).slice(0, 1000));
  });

  it("gives the unbounded scan's first findings and its count, whatever the overlaps", () => {
    // Mixtures of the corpus' positives and negatives, glued so that neighbouring tokens touch:
    // specific and catch-all rules then compete for the same characters.
    const cases = FAMILIES.flatMap((f) => [...f.positives(new Rng(5)), ...f.negatives(new Rng(6))]);
    const rng = new Rng(42);
    let withOverlapsResolved = 0;
    for (let round = 0; round < 150; round++) {
      const parts: string[] = [];
      for (let i = rng.int(1, 30); i > 0; i--) parts.push(rng.pick(cases).text, rng.pick(['\n', ' ', '', '=', ':', '"']));
      const text = parts.join('');
      const full = scanText(text, { path: 'app/config.env' });
      if (full.length > 3) withOverlapsResolved++;
      for (const max of [0, 1, 3, full.length, full.length + 5]) {
        const bound: FindingBound = { max, total: -1 };
        expect(scanText(text, { path: 'app/config.env' }, undefined, bound)).toEqual(full.slice(0, max));
        expect(bound.total).toBe(full.length);
        const viaBytes: FindingBound = { max, total: -1 };
        expect(scanContent(Buffer.from(text), { path: 'app/config.env' }, undefined, viaBytes)).toEqual(full.slice(0, max));
        expect(viaBytes.total).toBe(full.length);
      }
    }
    expect(withOverlapsResolved).toBeGreaterThan(50);
  });
});
