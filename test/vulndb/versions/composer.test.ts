import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { VersionError } from '../../../src/vulndb/versions/errors.js';
import {
  compareComposerVersions,
  isValidComposerVersion,
  normaliseComposerVersion,
} from '../../../src/vulndb/versions/composer.js';
import { type Case, flip, expected, chainCases } from './ordering-table.js';

const pairs: Case[] = [
  ['1.0.0', '=', '1.0.0.0'],
  ['1.0', '=', '1.0.0'],
  ['1', '=', '1.0.0.0'],
  ['v1.0.0', '=', '1.0.0'],
  ['V1.0.0', '=', '1.0.0'],
  ['1.0.0.1', '>', '1.0.0'],
  ['1.9.0', '<', '1.10.0'],
  ['1.0.0-dev', '<', '1.0.0-alpha'],
  ['1.0.0-dev', '<', '1.0.0-alpha1'],
  ['1.0.0-alpha', '<', '1.0.0-beta'],
  ['1.0.0-beta', '<', '1.0.0-RC'],
  ['1.0.0-RC', '<', '1.0.0'],
  ['1.0.0', '<', '1.0.0-patch1'],
  ['1.0.0-a1', '=', '1.0.0-alpha1'],
  ['1.0.0-b2', '=', '1.0.0-beta2'],
  ['1.0.0-rc1', '=', '1.0.0-RC1'],
  ['1.0.0-p1', '=', '1.0.0-patch1'],
  ['1.0.0-pl1', '=', '1.0.0-patch1'],
  ['1.0.0-pl1', '=', '1.0.0-p1'],
  ['1.0.0-stable', '=', '1.0.0'],
  ['1.0.0RC1', '=', '1.0.0-RC1'],
  ['1.0.0.RC1', '=', '1.0.0-RC1'],
  ['1.0.0_RC1', '=', '1.0.0-RC1'],
  ['1.0.0-rc.1', '=', '1.0.0-RC1'],
  ['1.0.0-beta.2', '=', '1.0.0-beta2'],
  ['1.0.0-BETA2', '=', '1.0.0-beta2'],
  ['1.0.0-beta2', '<', '1.0.0-beta10'],
  ['1.0.0-beta', '<', '1.0.0-beta1'],
  ['1.0.0-beta1-dev', '<', '1.0.0-beta1'],
  ['1.0.0-beta1-dev', '>', '1.0.0-beta0'],
  ['1.0.0-alpha1.2', '>', '1.0.0-alpha1.1'],
  ['1.0.0-RC2', '>', '1.0.0-RC1'],
  ['1.0.0-RC10', '>', '1.0.0-RC9'],
  ['1.0.0-patch2', '>', '1.0.0-patch1'],
  ['1.0.0-patch1', '<', '1.0.1-dev'],
  ['1.0-dev', '=', '1.0.0.0-dev'],
  ['1.0.x-dev', '>', '1.0.99999'],
  ['1.x-dev', '=', '1.9999999.9999999.9999999-dev'],
  ['1.x-dev', '<', '2.0.0-dev'],
  ['2.0.0-dev', '<', '2.0.0'],
  ['1.0.0+build', '=', '1.0.0'],
  ['1.0.0-beta+exp.sha', '=', '1.0.0-beta'],
  [' 1.0.0 ', '=', '1.0.0'],
  // Composer quirk: the dotted form matches the classical pattern and gains a fourth part.
  ['2010-01-02', '<', '2010.01.02'],
  ['2010-01-02', '>', '2010.01.01'],
  ['20100102', '<', '20100103'],
  ['2010-01-02-beta', '<', '2010-01-02'],
  ['99999', '>', '9999.9'],
  ['5.4.0', '>', '5.3.99'],
  ['6.4.0-BETA1', '<', '6.4.0'],
  ['7.4.33', '<', '8.0.0-alpha1'],
  ['10.0.0', '>', '9.9.9.9'],
];

const chain = [
  '0.1.0',
  '0.9.0',
  '1.0.0-dev',
  ['1.0.0-alpha-dev', '1.0.0-a-dev'],
  ['1.0.0-alpha', '1.0.0-a', '1.0.0alpha', '1.0.0.0-ALPHA'],
  '1.0.0-alpha1',
  '1.0.0-alpha2',
  ['1.0.0-beta', '1.0.0-b'],
  '1.0.0-beta1',
  '1.0.0-RC1-dev',
  ['1.0.0-RC1', '1.0.0-rc1', '1.0.0RC1'],
  '1.0.0-RC2',
  ['1.0.0', '1.0', 'v1.0.0', '1.0.0.0', '1.0.0-stable', '1.0.0+meta'],
  ['1.0.0-patch1', '1.0.0-p1', '1.0.0-pl1'],
  '1.0.0.1',
  '1.0.1',
  '1.1.0',
  '1.x-dev',
  '2.0.0',
];

const cases = [...pairs, ...chainCases(chain)];

describe('compareComposerVersions', () => {
  it('has a large table', () => {
    expect(cases.length).toBeGreaterThanOrEqual(150);
  });

  it.each(cases)('%s %s %s (both ways)', (a, op, b) => {
    expect(compareComposerVersions(a, b)).toBe(expected[op]);
    expect(compareComposerVersions(b, a)).toBe(expected[flip[op]]);
  });

  it.each([
    '',
    '   ',
    'dev-master',
    'dev-main',
    'master',
    'trunk',
    'default',
    'foo',
    '1.0.0-foo',
    '1.0.0.0.0',
    '12345.6.7.8.9',
    '1.0.0-beta-gamma',
    '^1.0',
    '~1.0',
    '>=1.0',
    '1.0.*',
    '1.0.0@dev',
    'vv1.0',
  ])('rejects %j', (v) => {
    expect(isValidComposerVersion(v)).toBe(false);
    expect(() => compareComposerVersions(v, '1.0.0')).toThrow(VersionError);
    expect(() => compareComposerVersions('1.0.0', v)).toThrow(VersionError);
  });
});

const versionArb = fc
  .tuple(
    fc.array(fc.nat({ max: 3 }), { minLength: 1, maxLength: 4 }),
    fc.option(
      fc.tuple(
        fc.constantFrom('alpha', 'a', 'beta', 'b', 'RC', 'rc', 'patch', 'pl', 'p', 'stable'),
        fc.option(fc.nat({ max: 3 })),
      ),
      { nil: undefined },
    ),
    fc.boolean(),
  )
  .map(
    ([nums, stab, dev]) =>
      `${nums.join('.')}${stab !== undefined ? `-${stab[0]}${stab[1] ?? ''}` : ''}${dev ? '-dev' : ''}`,
  );

describe('compareComposerVersions properties', () => {
  it('is antisymmetric and reflexive', () => {
    fc.assert(
      fc.property(versionArb, versionArb, (a, b) => {
        expect(compareComposerVersions(a, a)).toBe(0);
        expect(compareComposerVersions(a, b)).toBe(-compareComposerVersions(b, a) || 0);
      }),
      { numRuns: 3000 },
    );
  });

  it('is transitive', () => {
    fc.assert(
      fc.property(versionArb, versionArb, versionArb, (a, b, c) => {
        const [x, y, z] = [a, b, c].sort(compareComposerVersions);
        expect(compareComposerVersions(x!, y!)).toBeLessThanOrEqual(0);
        expect(compareComposerVersions(y!, z!)).toBeLessThanOrEqual(0);
        expect(compareComposerVersions(x!, z!)).toBeLessThanOrEqual(0);
      }),
      { numRuns: 3000 },
    );
  });

  it('normalises the way Composer does', () => {
    expect(normaliseComposerVersion('1.0')).toBe('1.0.0.0');
    expect(normaliseComposerVersion('v2.3.4-beta.2')).toBe('2.3.4.0-beta2');
    expect(normaliseComposerVersion('1.0.0-rc1-dev')).toBe('1.0.0.0-RC1-dev');
    expect(normaliseComposerVersion('1.0.0-pl3')).toBe('1.0.0.0-patch3');
    expect(normaliseComposerVersion('1.0.0-stable')).toBe('1.0.0.0');
    expect(normaliseComposerVersion('2.x-dev')).toBe('2.9999999.9999999.9999999-dev');
    expect(normaliseComposerVersion('2010-01-02')).toBe('2010.01.02');
    expect(normaliseComposerVersion('dev-main')).toBeNull();
  });
});
