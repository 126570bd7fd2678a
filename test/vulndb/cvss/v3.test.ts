import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { CvssError } from '../../../src/vulndb/cvss/index.js';
import { cvss3BaseScore, parseCvss3, roundUp30, roundUp31 } from '../../../src/vulndb/cvss/v3.js';

/**
 * Worked examples from FIRST's "CVSS v3.1: Examples" document
 * (https://www.first.org/cvss/v3.1/examples): vector and base score as printed there.
 */
const FIRST_V31_EXAMPLES: [cve: string, vector: string, score: number][] = [
  ['CVE-2013-1937 phpMyAdmin reflected XSS', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
  ['CVE-2013-0375 MySQL stored SQL injection', 'CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:L/I:L/A:N', 6.4],
  ['CVE-2014-3566 SSLv3 POODLE', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:N/A:N', 3.1],
  ['CVE-2012-1516 VMware guest to host escape', 'CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:H', 9.9],
  ['CVE-2009-0783 Apache Tomcat XML parser', 'CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:L/I:L/A:L', 4.2],
  [
    'CVE-2012-0384 Cisco IOS command execution (v3.1 rescore)',
    'CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H',
    7.2,
  ],
  ['CVE-2015-1098 Apple iWork denial of service', 'CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', 7.8],
  ['CVE-2014-0160 OpenSSL Heartbleed', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', 7.5],
  ['CVE-2014-6271 GNU Bash Shellshock', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
  ['CVE-2008-1447 DNS Kaminsky bug', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:H/A:N', 6.8],
  ['CVE-2014-2005 Sophos login screen bypass', 'CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 6.8],
  ['CVE-2010-0467 Joomla directory traversal', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:L/I:N/A:N', 5.8],
  ['CVE-2012-1342 Cisco access control bypass', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:L/A:N', 5.8],
  ['CVE-2013-6014 Juniper proxy ARP denial of service', 'CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:C/C:H/I:N/A:H', 9.3],
  ['CVE-2014-9253 DokuWiki reflected XSS', 'CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N', 5.4],
  ['CVE-2009-0658 Adobe Acrobat buffer overflow', 'CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', 7.8],
  ['CVE-2011-1265 Microsoft Windows Bluetooth RCE', 'CVSS:3.1/AV:A/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 8.8],
  ['CVE-2014-2019 Apple iOS security control bypass', 'CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:U/C:N/I:H/A:N', 4.6],
  ['CVE-2015-0970 SearchBlox CSRF', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', 8.8],
  ['CVE-2014-0224 SSL/TLS MITM', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:N', 7.4],
  ['CVE-2012-5376 Google Chrome sandbox bypass', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H', 9.6],
  ['CVE-2016-0128 Badlock (SAMR/LSAD)', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:N', 6.8],
  ['CVE-2016-2118 Badlock (Samba)', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:H/I:H/A:H', 7.5],
  ['CVE-2019-7551 Cantemo Portal stored XSS', 'CVSS:3.1/AV:N/AC:L/PR:L/UI:R/S:C/C:H/I:H/A:H', 9.0],
  ['CVE-2017-5942 WordPress Mail plugin reflected XSS', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
  ['CVE-2016-5558 Oracle Outside In RCE', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:L/A:L', 8.6],
  ['CVE-2016-5729 Lenovo ThinkPwn', 'CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H', 8.2],
  ['CVE-2015-2890 failure to lock flash on resume', 'CVSS:3.1/AV:L/AC:L/PR:H/UI:N/S:U/C:N/I:H/A:H', 6.0],
  ['CVE-2018-3652 Intel DCI issue', 'CVSS:3.1/AV:P/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 7.6],
  ['CVE-2019-0884 scripting engine memory corruption', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:U/C:L/I:L/A:N', 4.2],
];

/** CVSS v3.1 base vectors and scores as published by NVD (https://nvd.nist.gov/vuln/detail/<CVE>). */
const NVD_V31: [cve: string, vector: string, score: number][] = [
  ['CVE-2021-44228 Log4Shell', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10.0],
  ['CVE-2021-45046 Log4j follow-up', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:C/C:H/I:H/A:H', 9.0],
  ['CVE-2022-22965 Spring4Shell', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
  ['CVE-2016-5195 Dirty COW', 'CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:U/C:H/I:H/A:H', 7.0],
  ['CVE-2022-0847 Dirty Pipe', 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', 7.8],
  ['CVE-2021-4034 PwnKit', 'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', 7.8],
  ['CVE-2024-3094 xz backdoor', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H', 10.0],
  ['CVE-2024-6387 regreSSHion', 'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:H/A:H', 8.1],
  ['CVE-2019-0708 BlueKeep', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
  ['CVE-2017-5753 Spectre v1', 'CVSS:3.1/AV:L/AC:H/PR:L/UI:N/S:C/C:H/I:N/A:N', 5.6],
  ['CVE-2022-30190 Follina', 'CVSS:3.1/AV:L/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', 7.8],
  ['CVE-2023-44487 HTTP/2 Rapid Reset', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', 7.5],
  ['CVE-2023-4863 libwebp heap overflow', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:U/C:H/I:H/A:H', 8.8],
  ['CVE-2021-41773 Apache httpd path traversal', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', 7.5],
  ['CVE-2022-3602 OpenSSL punycode overflow', 'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H', 7.5],
];

/** Examples from FIRST's "CVSS v3.0: Examples" document (https://www.first.org/cvss/v3.0/examples). */
const FIRST_V30_EXAMPLES: [cve: string, vector: string, score: number][] = [
  ['CVE-2013-1937 phpMyAdmin reflected XSS', 'CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N', 6.1],
  ['CVE-2014-9253 DokuWiki reflected XSS', 'CVSS:3.0/AV:N/AC:L/PR:L/UI:R/S:C/C:L/I:L/A:N', 5.4],
  ['CVE-2012-0384 Cisco IOS command execution', 'CVSS:3.0/AV:N/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H', 8.8],
  ['CVE-2014-0160 OpenSSL Heartbleed', 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N', 7.5],
  ['CVE-2014-6271 GNU Bash Shellshock', 'CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', 9.8],
  ['CVE-2008-1447 DNS Kaminsky bug', 'CVSS:3.0/AV:N/AC:H/PR:N/UI:N/S:C/C:N/I:H/A:N', 6.8],
  ['CVE-2012-5376 Google Chrome sandbox bypass', 'CVSS:3.0/AV:N/AC:L/PR:N/UI:R/S:C/C:H/I:H/A:H', 9.6],
];

describe('CVSS v3.1 base score', () => {
  it.each(FIRST_V31_EXAMPLES)('FIRST example %s', (_cve, vector, score) => {
    expect(cvss3BaseScore(vector)).toBe(score);
  });

  it.each(NVD_V31)('NVD %s', (_cve, vector, score) => {
    expect(cvss3BaseScore(vector)).toBe(score);
  });

  it('has at least 40 published v3.1 examples', () => {
    expect(FIRST_V31_EXAMPLES.length + NVD_V31.length).toBeGreaterThanOrEqual(40);
  });

  it('scores 0 when C, I and A are all None, whatever the exploitability or scope', () => {
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:N')).toBe(0);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:N/I:N/A:N')).toBe(0);
    expect(cvss3BaseScore('CVSS:3.0/AV:P/AC:H/PR:H/UI:R/S:U/C:N/I:N/A:N')).toBe(0);
  });

  it('caps a scope-changed score at 10 (1.08 x (6.05 + 3.89) would be 10.7)', () => {
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H')).toBe(10);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:L/UI:N/S:C/C:H/I:H/A:L')).toBe(9.9);
  });

  it('uses the scope-changed weights for PR:L (0.68) and PR:H (0.50)', () => {
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:U/C:H/I:H/A:H')).toBe(7.2);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:H/UI:N/S:C/C:H/I:H/A:H')).toBe(9.1);
  });

  it('accepts metrics in any order and ignores temporal/environmental metrics', () => {
    expect(cvss3BaseScore('CVSS:3.1/A:H/I:H/C:H/S:U/UI:N/PR:N/AC:L/AV:N')).toBe(9.8);
    expect(cvss3BaseScore('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:U/RL:O/RC:U')).toBe(9.8);
    expect(
      cvss3BaseScore(
        'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/CR:L/IR:L/AR:L/MAV:P/MAC:H/MPR:H/MUI:R/MS:U/MC:N/MI:N/MA:N',
      ),
    ).toBe(9.8);
    expect(cvss3BaseScore('CVSS:3.1/S:U/AV:N/AC:L/PR:H/UI:N/C:L/I:L/A:N/E:F/RL:X')).toBe(3.8);
  });

  it('keeps every metric the vector carried', () => {
    const parsed = parseCvss3('CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N/E:P');
    expect(parsed.version).toBe('3.1');
    expect(parsed.base).toEqual({ AV: 'N', AC: 'L', PR: 'N', UI: 'N', S: 'U', C: 'H', I: 'N', A: 'N' });
    expect(parsed.metrics.get('E')).toBe('P');
  });
});

describe('CVSS v3.0 base score', () => {
  it.each(FIRST_V30_EXAMPLES)('FIRST v3.0 example %s', (_cve, vector, score) => {
    expect(cvss3BaseScore(vector)).toBe(score);
  });

  it('parses the version', () => {
    expect(parseCvss3('CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:N/A:N').version).toBe('3.0');
  });
});

describe('v3.0 and v3.1 Roundup', () => {
  // The v3.1 specification (Appendix A) replaced v3.0's plain "round up" because binary floating
  // point turns exact tenths into values a hair above them, which a naive ceil pushes up by 0.1.
  it.each([
    [4.000000000000001, 4.1, 4.0],
    [0.1 + 0.2, 0.4, 0.3], // 0.30000000000000004
    [5.1000000000000005, 5.2, 5.1],
    [2.0000000000000004, 2.1, 2.0],
  ])('rounds %d to %d under v3.0 but %d under v3.1', (input, v30, v31) => {
    expect(roundUp30(input)).toBe(v30);
    expect(roundUp31(input)).toBe(v31);
  });

  it.each([
    [4.02, 4.1],
    [4.0, 4.0],
    [0, 0],
    [9.999, 10],
    [6.05, 6.1],
  ])('agree on ordinary inputs: %d -> %d', (input, expected) => {
    expect(roundUp30(input)).toBe(expected);
    expect(roundUp31(input)).toBe(expected);
  });

  it('gives the same base score for every base vector (the base equations never hit the noise)', () => {
    for (const base of allV3BaseVectors()) {
      expect(cvss3BaseScore(`CVSS:3.0/${base}`)).toBe(cvss3BaseScore(`CVSS:3.1/${base}`));
    }
  });
});

describe('malformed v3 vectors', () => {
  it.each([
    ['', /empty/],
    ['AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /must start with/],
    ['CVSS:3.2/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /version 3\.2 is not supported/],
    ['CVSS:2.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /version 2\.0/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H', /missing required base metric\(s\) A/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/C:H/I:H/A:H', /missing required base metric\(s\) S/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/AV:L', /"AV" appears more than once/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:X/E:U', /"E" appears more than once/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/XX:Y', /unknown metric "XX"/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/AT:N', /unknown metric "AT"/],
    ['CVSS:3.1/AV:X/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /"AV" has value "X"/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:P/S:U/C:H/I:H/A:H', /"UI" has value "P"; allowed: N, R/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/E:Z', /"E" has value "Z"/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H/', /empty component/],
    ['CVSS:3.1//AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /empty component/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A-H', /"A-H" is not of the form METRIC:VALUE/],
    ['CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H:H', /not of the form/],
    ['cvss:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /must start with/],
    [' CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /must start with/],
    ['CVSS:3.1/av:n/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /unknown metric "av"/],
    ['CVSS:3.1/constructor:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H', /unknown metric "constructor"/],
  ])('rejects %j', (vector, message) => {
    expect(() => parseCvss3(vector)).toThrow(CvssError);
    expect(() => parseCvss3(vector)).toThrow(message);
  });

  it('names the vector and carries a stable error code', () => {
    try {
      parseCvss3('CVSS:3.1/AV:N');
      expect.unreachable();
    } catch (err) {
      expect(err).toBeInstanceOf(CvssError);
      const e = err as CvssError;
      expect(e.code).toBe('CVSS_INVALID_VECTOR');
      expect(e.subject).toBe('CVSS:3.1/AV:N');
      expect(e.message).toContain('"CVSS:3.1/AV:N"');
      expect(e.message).toContain('AC, PR, UI, S, C, I, A');
    }
  });
});

const V3_VALUES = {
  AV: ['N', 'A', 'L', 'P'],
  AC: ['L', 'H'],
  PR: ['N', 'L', 'H'],
  UI: ['N', 'R'],
  S: ['U', 'C'],
  C: ['N', 'L', 'H'],
  I: ['N', 'L', 'H'],
  A: ['N', 'L', 'H'],
} as const;
type V3Key = keyof typeof V3_VALUES;
const V3_KEYS = Object.keys(V3_VALUES) as V3Key[];
const V3_OPTIONAL: Record<string, readonly string[]> = {
  E: ['X', 'U', 'P', 'F', 'H'],
  RL: ['X', 'O', 'T', 'W', 'U'],
  RC: ['X', 'U', 'R', 'C'],
  CR: ['X', 'L', 'M', 'H'],
  MAV: ['X', 'N', 'A', 'L', 'P'],
  MS: ['X', 'U', 'C'],
  MC: ['X', 'N', 'L', 'H'],
};

function* allV3BaseVectors(): Generator<string> {
  const walk = function* (i: number, acc: string[]): Generator<string> {
    const key = V3_KEYS[i];
    if (key === undefined) {
      yield acc.join('/');
      return;
    }
    for (const v of V3_VALUES[key]) yield* walk(i + 1, [...acc, `${key}:${v}`]);
  };
  yield* walk(0, []);
}

const v3Base = fc.record(
  Object.fromEntries(V3_KEYS.map((k) => [k, fc.constantFrom(...V3_VALUES[k])])) as {
    [K in V3Key]: fc.Arbitrary<(typeof V3_VALUES)[K][number]>;
  },
);
const v3Extras = fc
  .subarray(Object.keys(V3_OPTIONAL))
  .chain((keys) =>
    fc.tuple(...keys.map((k) => fc.constantFrom(...(V3_OPTIONAL[k] ?? [])).map((v) => `${k}:${v}`))),
  );

function v3String(version: string, base: Record<string, string>, extras: string[] = []): string {
  return [`CVSS:${version}`, ...V3_KEYS.map((k) => `${k}:${base[k]}`), ...extras].join('/');
}

describe('v3 properties', () => {
  it('every valid vector scores within [0, 10] with at most one decimal', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('3.0', '3.1'),
        v3Base,
        v3Extras,
        fc.boolean(),
        (version, base, extras, shuffle) => {
          const parts = v3String(version, base, extras).split('/');
          const body = parts.slice(1);
          if (shuffle) body.reverse();
          const score = cvss3BaseScore([parts[0], ...body].join('/'));
          expect(score).toBeGreaterThanOrEqual(0);
          expect(score).toBeLessThanOrEqual(10);
          expect(Math.round(score * 10) / 10).toBe(score);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('raising any one impact metric (N -> L -> H) never lowers the score', () => {
    const raise = { N: 'L', L: 'H' } as const;
    fc.assert(
      fc.property(
        fc.constantFrom('3.0', '3.1'),
        v3Base,
        fc.constantFrom('C', 'I', 'A'),
        (version, base, metric) => {
          const current = base[metric];
          if (current === 'H') return;
          const raised = { ...base, [metric]: raise[current] };
          expect(cvss3BaseScore(v3String(version, raised))).toBeGreaterThanOrEqual(
            cvss3BaseScore(v3String(version, base)),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('holds exhaustively: all 2592 base vectors, both versions, in range and monotone in C/I/A', () => {
    for (const version of ['3.0', '3.1']) {
      for (const base of allV3BaseVectors()) {
        const score = cvss3BaseScore(`CVSS:${version}/${base}`);
        expect(score).toBeGreaterThanOrEqual(0);
        expect(score).toBeLessThanOrEqual(10);
        for (const metric of ['C', 'I', 'A'] as const) {
          const value = new RegExp(`/${metric}:([NLH])`).exec(`/${base}`)?.[1];
          if (value === 'H') continue;
          const raised = `/${base}`
            .replace(`/${metric}:${value}`, `/${metric}:${value === 'N' ? 'L' : 'H'}`)
            .slice(1);
          expect(cvss3BaseScore(`CVSS:${version}/${raised}`)).toBeGreaterThanOrEqual(score);
        }
      }
    }
  });
});
