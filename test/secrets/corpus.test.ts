import { describe, expect, it } from 'vitest';

import { scanText } from '../../src/secrets/index.js';
import { FAMILIES, type Case } from './corpus.js';
import { Rng } from './gen.js';

function mismatches(cases: Case[]): { note: string; text: string; expected: string[]; got: string[] }[] {
  return cases
    .map((c) => ({ c, got: scanText(c.text, { path: 'app/config' }).map((f) => f.ruleId) }))
    .filter(({ c, got }) => JSON.stringify(got) !== JSON.stringify(c.expect))
    .map(({ c, got }) => ({ note: c.note, text: c.text.slice(0, 300), expected: c.expect, got }));
}

describe('labelled corpus', () => {
  FAMILIES.forEach((family, index) => {
    describe(family.name, () => {
      it('reports exactly the expected rule for at least 100 positives', () => {
        const cases = family.positives(new Rng(0x5ec2e7 + index));
        expect(cases.length).toBeGreaterThanOrEqual(100);
        expect(mismatches(cases)).toEqual([]);
      });

      it('reports nothing for at least 100 negatives', () => {
        const cases = family.negatives(new Rng(0xbad5eed + index));
        expect(cases.length).toBeGreaterThanOrEqual(100);
        expect(mismatches(cases)).toEqual([]);
      });
    });
  });
});
