import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { PortcullisError } from '../../../src/errors.js';
import { CvssError, parseCvss3, ratingFor, scoreVector } from '../../../src/vulndb/cvss/index.js';

describe('scoreVector', () => {
  it.each([
    ['CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', '3.0', 7.5],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', '3.1', 9.8],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H/E:U/RL:O', '3.1', 10.0],
    ['CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N', '4.0', 9.3],
    ['CVSS:4.0/AV:L/AC:L/AT:P/PR:L/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/E:U', '4.0', 7.3],
  ])('scores %s', (vector, version, score) => {
    expect(scoreVector(vector)).toEqual({ version, score });
  });

  it.each([
    '',
    'garbage',
    '7.5',
    'AV:N/AC:L/Au:N/C:P/I:P/A:P', // CVSS v2 has no prefix and is not supported
    'CVSS:2.0/AV:N/AC:L/Au:N/C:P/I:P/A:P',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H',
    'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/A:H',
    'CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    'CVSS:4.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
    'CVSS:4.1/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N',
    'CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N/__proto__:X',
  ])('returns null for %j', (vector) => {
    expect(scoreVector(vector)).toBeNull();
  });

  it('returns null rather than throwing for non-string input from untyped JSON', () => {
    expect(scoreVector(undefined as unknown as string)).toBeNull();
    expect(scoreVector(9.8 as unknown as string)).toBeNull();
  });

  it('never throws, whatever the string', () => {
    const token = fc.constantFrom(
      'CVSS:3.1',
      'CVSS:3.0',
      'CVSS:4.0',
      'AV:N',
      'AC:L',
      'S:U',
      'C:H',
      'VC:H',
      'E:X',
      ':',
      '/',
      'X',
    );
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string(),
          fc.array(token).map((t) => t.join('/')),
        ),
        (s) => {
          const result = scoreVector(s);
          if (result !== null) expect(result.score).toBeGreaterThanOrEqual(0);
        },
      ),
      { numRuns: 2000 },
    );
  });
});

describe('ratingFor', () => {
  it.each([
    [0, 'none'],
    [0.1, 'low'],
    [3.9, 'low'],
    [4.0, 'medium'],
    [6.9, 'medium'],
    [7.0, 'high'],
    [8.9, 'high'],
    [9.0, 'critical'],
    [10, 'critical'],
  ] as const)('%d is %s', (score, rating) => {
    expect(ratingFor(score)).toBe(rating);
  });

  it('puts values between the published tenths into the band of the lower bound', () => {
    expect(ratingFor(3.95)).toBe('low');
    expect(ratingFor(6.95)).toBe('medium');
    expect(ratingFor(8.95)).toBe('high');
  });

  it.each([-0.1, 10.1, Number.NaN, Number.POSITIVE_INFINITY])('rejects %d', (score) => {
    expect(() => ratingFor(score)).toThrow(RangeError);
  });

  it('rates the published examples as the FIRST documents do', () => {
    expect(ratingFor(scoreVector('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N')?.score ?? -1)).toBe('high'); // Heartbleed
    expect(ratingFor(scoreVector('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H')?.score ?? -1)).toBe(
      'critical',
    ); // Shellshock
    expect(ratingFor(scoreVector('CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N')?.score ?? -1)).toBe('low'); // POODLE
  });
});

describe('CvssError', () => {
  it('is a PortcullisError with a stable code so the CLI reports it like any other domain error', () => {
    let caught: unknown;
    try {
      parseCvss3('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q');
    } catch (err) {
      caught = err;
    }
    expect(caught).toBeInstanceOf(CvssError);
    expect(caught).toBeInstanceOf(PortcullisError);
    expect((caught as CvssError).name).toBe('CvssError');
    expect((caught as CvssError).code).toBe('CVSS_INVALID_VECTOR');
    expect((caught as CvssError).message).toBe(
      'invalid CVSS v3 vector "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:Q": metric "A" has value "Q"; allowed: N, L, H',
    );
  });
});
