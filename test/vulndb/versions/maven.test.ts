import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { VersionError } from '../../../src/vulndb/versions/errors.js';
import { compareMavenVersions, isValidMavenVersion } from '../../../src/vulndb/versions/maven.js';
import { type Case, flip, expected, chainCases } from './ordering-table.js';

const pairs: Case[] = [
  ['1-SNAPSHOT', '<', '1'],
  ['1.0-rc1', '<', '1.0'],
  ['1.0.0', '=', '1'],
  ['1-sp1', '>', '1'],
  ['1.0', '=', '1.0.0.0'],
  ['1.0', '<', '1.0.1'],
  ['1.9', '<', '1.10'],
  ['1.01', '=', '1.1'],
  ['001', '=', '1'],
  ['1.', '=', '1'],
  ['1-', '=', '1'],
  ['1..1', '=', '1.0.1'],
  ['1-0', '=', '1'],
  ['1.0-0', '=', '1'],
  ['1.0.0-0.0.0', '=', '1'],
  ['1.ga', '=', '1'],
  ['1-ga', '=', '1'],
  ['1.final', '=', '1'],
  ['1-FINAL', '=', '1'],
  ['1.RELEASE', '=', '1'],
  ['1GA', '=', '1'],
  ['1-cr1', '=', '1-rc1'],
  ['1CR', '=', '1rc'],
  ['1a1', '=', '1-alpha-1'],
  ['1b2', '=', '1-beta-2'],
  ['1m3', '=', '1-milestone-3'],
  ['1.0a1', '=', '1-alpha1'],
  ['1-a', '=', '1a'],
  ['1-a', '>', '1-alpha'],
  ['1-b', '>', '1-alpha'],
  ['1-alpha', '<', '1-beta'],
  ['1-beta', '<', '1-milestone'],
  ['1-milestone', '<', '1-rc'],
  ['1-rc', '<', '1-snapshot'],
  ['1-snapshot', '<', '1'],
  ['1', '<', '1-sp'],
  ['1-sp', '<', '1-foo'],
  ['1-foo', '<', '1-zzz'],
  ['1-foo2', '<', '1-foo10'],
  ['1-ALPHA', '=', '1-alpha'],
  ['1-Snapshot', '=', '1-SNAPSHOT'],
  ['1.foo', '=', '1-foo'],
  ['1-foo', '<', '1-1'],
  ['1-1', '<', '1.1'],
  ['1-sp', '>', '1-ga'],
  ['1-sp.1', '>', '1-ga.1'],
  ['1.0-alpha-1-SNAPSHOT', '<', '1.0-alpha-1'],
  ['1.0-beta-1', '<', '1.0-SNAPSHOT'],
  ['1.0', '<', '1.0-1'],
  ['1.0.0', '<', '1.0-1'],
  ['2.0-1', '<', '2.0.1'],
  ['2.0.1', '<', '2.0.1-xyz'],
  ['2.0.1-xyz', '<', '2.0.1-123'],
  ['2.0.1-klm', '<', '2.0.1-lmn'],
  ['1-foo', '=', '1.0.0-foo.0.0'],
  ['1a', '=', '1.0.0-a'],
  ['1.0.0x', '=', '1-x'],
  ['6.1.0rc3', '<', '6.1.0'],
  ['6.1.0', '<', '6.1H.5-beta'],
  ['20190126.230843', '<', '1234567890.12345'],
  ['123456789012345.1H.5-beta', '<', '12345678901234567890.1H.5-beta'],
  ['99999999999999999999999', '<', '100000000000000000000000'],
  ['0', '=', '0.0.0'],
  ['0-final-ga', '=', '0'],
  ['0.0.0-2021-05-17T01-01-51-5ec03a8b', '<', '20.0.0'],
  ['5.3.0.RELEASE', '<', '5.3.1.RELEASE'],
  ['5.3.0.RELEASE', '=', '5.3.0'],
  ['5.3.0.M1', '<', '5.3.0.RC1'],
  ['5.3.0.RC1', '<', '5.3.0.RELEASE'],
  ['2.12.7.1', '>', '2.12.7'],
  ['31.1-jre', '>', '31.1-android'],
  ['31.1-jre', '<', '32.0.0-android'],
  ['9.4.51.v20230217', '<', '9.4.52.v20230823'],
  ['9.4.51.v20230217', '>', '9.4.51'],
  ['1.2.3.Final', '=', '1.2.3'],
  ['1.2.3.Final', '<', '1.2.3.SP1'],
  ['1.2.3.CR2', '<', '1.2.3.Final'],
  ['3.0.0-M5', '<', '3.0.0'],
  ['3.0.0-M5', '>', '3.0.0-beta-1'],
  ['1.0-20230101.123456-1', '>', '1.0'],
];

const chain = [
  '1-alpha2snapshot',
  '1-alpha2',
  '1-alpha-123',
  '1-beta-2',
  '1-beta123',
  '1-m2',
  '1-m11',
  '1-rc',
  ['1-cr2', '1-rc2', '1-RC-2'],
  '1-rc123',
  '1-SNAPSHOT',
  ['1', '1.0', '1.0.0', '1-ga', '1.final'],
  '1-sp',
  '1-sp2',
  '1-sp123',
  '1-abc',
  '1-def',
  '1-pom-1',
  '1-1-snapshot',
  '1-1',
  '1-2',
  '1-123',
  '1.0.1',
  '1.1',
];

const cases = [...pairs, ...chainCases(chain)];

describe('compareMavenVersions', () => {
  it('has a large table', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it.each(cases)('%s %s %s (both ways)', (a, op, b) => {
    expect(compareMavenVersions(a, b)).toBe(expected[op]);
    expect(compareMavenVersions(b, a)).toBe(expected[flip[op]]);
  });

  it.each(['', ' ', '1.0 ', ' 1.0', '1.0\n', '1\t0', '1.0\u0000'])('rejects %j', (v) => {
    expect(isValidMavenVersion(v)).toBe(false);
    expect(() => compareMavenVersions(v, '1.0')).toThrow(VersionError);
    expect(() => compareMavenVersions('1.0', v)).toThrow(VersionError);
  });
});

/**
 * Null tokens (0, ga, final, release) are left out: Maven's normalisation drops a null that sits
 * before a sub-list (`3-0.alpha` becomes `3-alpha`), and with such inputs ComparableVersion itself
 * is not transitive (`3-0.alpha < 3 < 3.foo < 3-0.alpha`). We mirror Maven rather than invent an
 * order, so the property is checked on the null-free fragment; the table covers nulls.
 */
const token = fc.oneof(
  fc.integer({ min: 1, max: 12 }).map(String),
  fc.constantFrom('alpha', 'a', 'beta', 'b', 'm', 'milestone', 'rc', 'cr', 'SNAPSHOT'),
  fc.constantFrom('sp', 'foo', 'jre', 'Alpha', 'SP'),
);
const mavenArb = fc
  .tuple(
    fc.integer({ min: 1, max: 5 }),
    fc.array(fc.tuple(fc.constantFrom('.', '-', ''), token), { maxLength: 5 }),
  )
  .map(([head, rest]) => `${head}${rest.map(([sep, t]) => sep + t).join('')}`)
  .filter((s) => s.length > 0);

describe('compareMavenVersions properties', () => {
  it('is antisymmetric and reflexive', () => {
    fc.assert(
      fc.property(mavenArb, mavenArb, (a, b) => {
        expect(compareMavenVersions(a, a)).toBe(0);
        expect(compareMavenVersions(a, b)).toBe(-compareMavenVersions(b, a) || 0);
      }),
      { numRuns: 5000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(mavenArb, mavenArb, mavenArb, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(compareMavenVersions);
        expect(compareMavenVersions(x!, y!)).toBeLessThanOrEqual(0);
        expect(compareMavenVersions(y!, z!)).toBeLessThanOrEqual(0);
        expect(compareMavenVersions(x!, z!)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 5000 },
    );
  });
});
