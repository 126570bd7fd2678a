import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CvssError } from '../../../src/vulndb/cvss/index.js';
import { MACROVECTOR_SCORES } from '../../../src/vulndb/cvss/v4-macrovectors.js';
import { cvss4BaseScore, cvss4MacroVector, parseCvss4 } from '../../../src/vulndb/cvss/v4.js';

/**
 * Vectors from FIRST's "CVSS v4.0: Examples" document (https://www.first.org/cvss/v4-0/examples)
 * that carry base metrics only (supplemental metrics, which never affect a score, are kept), with
 * the CVSS-B score the document gives or its linked FIRST calculator computes for them.
 */
const FIRST_V40_EXAMPLES: [vector: string, score: number][] = [
  ['CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 7.7], // CVE-2020-3549 Cisco FMC sftunnel
  ['CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:L/VA:L/SC:N/SI:N/SA:N', 8.3],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:L', 8.7],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N', 8.3],
  ['CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/S:P', 8.6],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N/V:C', 8.7],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:N/VI:N/VA:N/SC:H/SI:L/SA:H', 6.4],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H', 10.0],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 8.5],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:N', 7.1],
  ['CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 7.3], // CVE-2022-41741 NGINX mp4
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:A/VC:L/VI:N/VA:N/SC:N/SI:N/SA:N', 4.6],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:A/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N', 5.1],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N', 6.9],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:N/VI:N/VA:N/SC:H/SI:N/SA:N', 5.9],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H', 9.4],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:H/VA:N/SC:H/SI:H/SA:H', 9.3],
  ['CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:H/SA:N/S:P/V:D', 8.3],
  ['CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:H/SI:N/SA:H', 6.4],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/R:I', 8.4],
  ['CVSS:4.0/AV:L/AC:L/AT:P/PR:H/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/R:I', 7.1],
  ['CVSS:4.0/AV:P/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 7.0],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N', 7.1],
  ['CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N', 8.2],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:A/VC:L/VI:L/VA:N/SC:L/SI:L/SA:N', 5.1],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:P/VC:N/VI:N/VA:N/SC:L/SI:L/SA:N', 5.1],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:A/VC:H/VI:H/VA:H/SC:L/SI:L/SA:N', 8.5],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:A/VC:N/VI:L/VA:N/SC:N/SI:N/SA:N', 5.1],
  ['CVSS:4.0/AV:N/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 7.7],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 8.5],
  ['CVSS:4.0/AV:P/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 5.4],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N', 8.7],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:H/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N', 6.9],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', 9.3],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:L/SA:N', 6.9],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:L/SI:N/SA:H', 7.8],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:L/VA:N/SC:L/SI:L/SA:L', 6.9],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/S:P', 8.5],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/S:P/AU:Y/V:C/RE:L', 9.4],
  ['CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N', 5.3],
];

/**
 * Examples from the same document that also carry threat/environmental metrics. The document
 * prints their CVSS-BT/BE/BTE score; CVSS-B ignores those metrics, so the base score here must be
 * that of the base part alone, and differs from the printed one where E or M* lower it.
 */
const WITH_THREAT_OR_ENVIRONMENT: [vector: string, printed: number, base: number][] = [
  ['CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:P/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U', 5.2, 7.7],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:L/E:U', 6.6, 8.7],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:H/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/E:U', 5.6, 8.3],
  ['CVSS:4.0/AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N/MSI:S/S:P', 9.7, 8.6],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:L/UI:N/VC:N/VI:N/VA:N/SC:H/SI:L/SA:H/E:U/MAV:A/R:U/V:C', 2.4, 6.4],
  ['CVSS:4.0/AV:L/AC:L/AT:N/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A/MVC:N/MVI:N/MVA:N', 0.0, 8.5],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H/E:A', 10.0, 10.0],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:N/VA:N/SC:N/SI:N/SA:N/E:A', 8.7, 8.7],
  ['CVSS:4.0/AV:N/AC:L/AT:P/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:A', 9.2, 9.2],
  ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:L/SA:N/E:U/CR:L/IR:L/AR:L', 2.7, 6.9],
];

describe('CVSS v4.0 base score (CVSS-B)', () => {
  it.each(FIRST_V40_EXAMPLES)('FIRST example %s = %d', (vector, score) => {
    expect(cvss4BaseScore(vector)).toBe(score);
  });

  it('has at least 40 published v4.0 examples', () => {
    expect(FIRST_V40_EXAMPLES.length).toBeGreaterThanOrEqual(40);
  });

  it.each(WITH_THREAT_OR_ENVIRONMENT)('%s (printed %d) has CVSS-B %d', (vector, _printed, base) => {
    expect(cvss4BaseScore(vector)).toBe(base);
    const baseOnly = vector.split('/').slice(0, 12).join('/');
    expect(cvss4BaseScore(vector)).toBe(cvss4BaseScore(baseOnly));
  });

  it('scores 0 when no system is impacted', () => {
    expect(cvss4BaseScore('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N')).toBe(0);
    expect(cvss4BaseScore('CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:N/VI:N/VA:N/SC:N/SI:N/SA:N')).toBe(0);
  });

  it('gives the MacroVector score itself to a vector that is its MacroVector highest', () => {
    // AV:N/PR:N/UI:N, AC:L/AT:N, VC:H/VI:H/VA:H, SC:H/SI:H/SA:H is MacroVector 000100 (10.0).
    const top = parseCvss4('CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:H/SI:H/SA:H');
    expect(cvss4MacroVector(top)).toBe('000100');
    expect(MACROVECTOR_SCORES['000100']).toBe(10);
  });

  it('computes the equivalence classes of the specification', () => {
    const mv = (v: string) => cvss4MacroVector(parseCvss4(`CVSS:4.0/${v}`));
    expect(mv('AV:N/AC:L/AT:N/PR:N/UI:N/VC:L/VI:L/VA:L/SC:N/SI:N/SA:N')).toBe('002201');
    expect(mv('AV:A/AC:L/AT:N/PR:N/UI:N/VC:H/VI:L/VA:N/SC:H/SI:N/SA:N')).toBe('101100');
    expect(mv('AV:P/AC:H/AT:N/PR:N/UI:N/VC:N/VI:N/VA:H/SC:N/SI:N/SA:L')).toBe('211200');
    expect(mv('AV:L/AC:L/AT:P/PR:L/UI:P/VC:H/VI:H/VA:N/SC:N/SI:N/SA:N')).toBe('210200');
  });

  it('lowest-severity corner still scores above 0 when something is impacted', () => {
    expect(cvss4BaseScore('CVSS:4.0/AV:P/AC:H/AT:P/PR:H/UI:A/VC:N/VI:N/VA:N/SC:N/SI:N/SA:L')).toBeGreaterThan(
      0,
    );
  });

  it('transcribes 270 MacroVectors, none with EQ3=2 and EQ6=0', () => {
    const keys = Object.keys(MACROVECTOR_SCORES);
    expect(keys).toHaveLength(270);
    expect(keys.every((k) => /^[0-2][01][0-2][0-2][0-2][01]$/.test(k) && !/^..2..0$/.test(k))).toBe(true);
    expect(Object.values(MACROVECTOR_SCORES).every((s) => s > 0 && s <= 10)).toBe(true);
  });
});

describe('malformed v4 vectors', () => {
  const BASE = 'AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N';
  it.each([
    ['', /empty/],
    [BASE, /must start with "CVSS:4\.0\/"/],
    [`CVSS:4.1/${BASE}`, /version 4\.1 is not supported/],
    [`CVSS:3.1/${BASE}`, /version 3\.1 is not supported/],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SI:N/SA:N', /missing required base metric\(s\) SC/],
    ['CVSS:4.0/AV:N/AC:L/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', /missing required base metric\(s\) AT/],
    // A v3 body under a v4 prefix: "S" exists in v4 too (Safety), but not with v3's values.
    ['CVSS:4.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /"S" has value "U"/],
    ['CVSS:4.0/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H', /unknown metric "C"/],
    [`CVSS:4.0/${BASE}/AV:N`, /"AV" appears more than once/],
    [`CVSS:4.0/${BASE}/E:A/E:P`, /"E" appears more than once/],
    [`CVSS:4.0/${BASE}/RL:O`, /unknown metric "RL"/],
    [`CVSS:4.0/${BASE.replace('SC:N', 'SC:S')}`, /"SC" has value "S"/],
    [`CVSS:4.0/${BASE.replace('UI:N', 'UI:R')}`, /"UI" has value "R"; allowed: N, P, A/],
    [`CVSS:4.0/${BASE.replace('AV:N', 'AV:X')}`, /"AV" has value "X"/],
    [`CVSS:4.0/${BASE}/MSC:S`, /"MSC" has value "S"/],
    [`CVSS:4.0/${BASE}/U:Purple`, /"U" has value "Purple"/],
    [`CVSS:4.0/${BASE}/`, /empty component/],
    [`CVSS:4.0/${BASE}/E`, /"E" is not of the form METRIC:VALUE/],
  ])('rejects %j', (vector, message) => {
    expect(() => parseCvss4(vector)).toThrow(CvssError);
    expect(() => parseCvss4(vector)).toThrow(message);
  });

  it('accepts every threat, environmental and supplemental metric', () => {
    const full = `CVSS:4.0/${BASE}/E:P/CR:H/IR:M/AR:L/MAV:A/MAC:H/MAT:P/MPR:L/MUI:A/MVC:L/MVI:N/MVA:H/MSC:H/MSI:S/MSA:S/S:P/AU:Y/R:I/V:C/RE:H/U:Amber`;
    const parsed = parseCvss4(full);
    expect(parsed.metrics.size).toBe(32);
    expect(parsed.metrics.get('U')).toBe('Amber');
    expect(cvss4BaseScore(full)).toBe(9.3);
  });
});

const V4_VALUES = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  AT: ['N', 'P'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'P', 'A'],
  VC: ['H', 'L', 'N'],
  VI: ['H', 'L', 'N'],
  VA: ['H', 'L', 'N'],
  SC: ['H', 'L', 'N'],
  SI: ['H', 'L', 'N'],
  SA: ['H', 'L', 'N'],
} as const;
type V4Key = keyof typeof V4_VALUES;
const V4_KEYS = Object.keys(V4_VALUES) as V4Key[];
const V4_OPTIONAL: Record<string, readonly string[]> = {
  E: ['X', 'A', 'P', 'U'],
  CR: ['X', 'H', 'M', 'L'],
  MAV: ['X', 'N', 'A', 'L', 'P'],
  MVC: ['X', 'H', 'L', 'N'],
  MSI: ['X', 'S', 'H', 'L', 'N'],
  S: ['X', 'N', 'P'],
  U: ['X', 'Clear', 'Green', 'Amber', 'Red'],
};

const v4Base = fc.record(
  Object.fromEntries(V4_KEYS.map((k) => [k, fc.constantFrom(...V4_VALUES[k])])) as {
    [K in V4Key]: fc.Arbitrary<(typeof V4_VALUES)[K][number]>;
  },
);
const v4Extras = fc
  .subarray(Object.keys(V4_OPTIONAL))
  .chain((keys) =>
    fc.tuple(...keys.map((k) => fc.constantFrom(...(V4_OPTIONAL[k] ?? [])).map((v) => `${k}:${v}`))),
  );
const v4String = (base: Record<string, string>, extras: string[] = []) =>
  ['CVSS:4.0', ...V4_KEYS.map((k) => `${k}:${base[k]}`), ...extras].join('/');

describe('v4 properties', () => {
  it('every valid vector scores within [0, 10] with one decimal, unaffected by non-base metrics', () => {
    fc.assert(
      fc.property(v4Base, v4Extras, (base, extras) => {
        const score = cvss4BaseScore(v4String(base, extras));
        expect(score).toBeGreaterThanOrEqual(0);
        expect(score).toBeLessThanOrEqual(10);
        expect(Math.round(score * 10) / 10).toBe(score);
        expect(score).toBe(cvss4BaseScore(v4String(base)));
      }),
      { numRuns: 3000 },
    );
  });

  it('scores all 104,976 base vectors without error, within [0, 10], and 0 only without impact', () => {
    const walk = (i: number, acc: string[]): void => {
      const key = V4_KEYS[i];
      if (key === undefined) {
        const vector = `CVSS:4.0/${acc.join('/')}`;
        const score = cvss4BaseScore(vector);
        if (!(score >= 0 && score <= 10) || Math.round(score * 10) / 10 !== score) {
          throw new Error(`${vector} scored ${score}`);
        }
        const impacted = acc.slice(5).some((p) => !p.endsWith(':N'));
        if (impacted !== score > 0) throw new Error(`${vector} scored ${score}`);
        return;
      }
      for (const v of V4_VALUES[key]) walk(i + 1, [...acc, `${key}:${v}`]);
    };
    expect(() => walk(0, [])).not.toThrow();
  });
});
