import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { BUILTIN_RULES, isProbablyBinary, redact, scanText } from '../../src/secrets/index.js';
import { opensshKey, randomPassword } from './corpus.js';
import { B32, B62, Rng } from './gen.js';

const ids = (text: string, path = 'etc/app.conf') => scanText(text, { path }).map((f) => f.ruleId);

describe('scanText', () => {
  it('reports the AWS documentation example pair (it appears in real leaked configs)', () => {
    const creds =
      '[default]\naws_access_key_id = AKIAIOSFODNN7EXAMPLE\naws_secret_access_key = wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY\n';
    expect(scanText(creds, { path: 'root/.aws/credentials' })).toEqual([
      {
        ruleId: 'aws-access-key-id',
        title: 'AWS access key ID',
        severity: 'high',
        line: 2,
        redacted: 'AKIA…(20 chars)',
      },
      {
        ruleId: 'aws-secret-access-key',
        title: 'AWS secret access key',
        severity: 'critical',
        line: 3,
        redacted: 'wJal…(40 chars)',
      },
    ]);
  });

  it('reports a specific rule once when the generic rule matches the same value', () => {
    expect(ids('GITHUB_TOKEN="ghp_R8f2kQ9zLmX4vB7nT1cY6hW3pJ5sD0gA2eKq"')).toEqual(['github-pat']);
    expect(ids('STRIPE_SECRET_KEY=sk_live_4f8Gh2Kq9ZxT7bN1mVw3Lp6Rs')).toEqual(['stripe-live-key']);
  });

  it('gives 1-based lines and keeps several findings in order', () => {
    const text = `a\nb\nnpm_${'Ab3dEf6hIj9kLm2oPq5sTu8wXy1zAb4dEf7h'}\n\npassword: "${'Qz8#vL2!pX7@mR4$kT9w'}"\n`;
    expect(scanText(text, { path: 'x' }).map((f) => [f.ruleId, f.line])).toEqual([
      ['npm-access-token', 3],
      ['generic-secret', 5],
    ]);
  });

  it('does not report a bare OpenSSH header inside binary-ish text', () => {
    const rng = new Rng(7);
    const bin = Buffer.concat([
      rng.bytes(4000),
      Buffer.from('\0-----BEGIN OPENSSH PRIVATE KEY-----\0openssh-key-v1\0'),
      rng.bytes(4000),
    ]);
    expect(isProbablyBinary(bin)).toBe(true);
    expect(scanText(bin.toString('latin1'), { path: 'usr/bin/ssh-keygen' })).toEqual([]);
  });

  it('reports a real-shaped OpenSSH private key file', () => {
    const key = opensshKey(new Rng(11));
    expect(isProbablyBinary(Buffer.from(key))).toBe(false);
    expect(scanText(key, { path: 'root/.ssh/id_ed25519' })).toEqual([
      {
        ruleId: 'private-key',
        title: 'Private key',
        severity: 'critical',
        line: 1,
        redacted: '----…(' + key.trimEnd().length + ' chars)',
      },
    ]);
  });

  it('skips allowlisted paths and documentation values', () => {
    const token = 'ghp_R8f2kQ9zLmX4vB7nT1cY6hW3pJ5sD0gA2eKq';
    expect(ids(token, 'usr/share/doc/git/README')).toEqual([]);
    expect(ids(token, '/app/node_modules/foo/test/fixture.js')).toEqual([]);
    expect(ids(token, 'app/node_modules/foo/lib/index.js')).toEqual(['github-pat']);
    expect(ids(token, 'usr/lib/python3/site-packages/requests/tests/test_auth.py')).toEqual([]);
    expect(ids(token, 'usr/local/go/src/crypto/tls/testdata/x')).toEqual([]);
    expect(
      ids(
        'AccountKey=Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
      ),
    ).toEqual([]);
  });

  it('accepts a bare rule list and runs only those rules', () => {
    const only = BUILTIN_RULES.filter((r) => r.id === 'jwt');
    expect(scanText('ghp_R8f2kQ9zLmX4vB7nT1cY6hW3pJ5sD0gA2eKq', { path: 'x' }, only)).toEqual([]);
  });
});

describe('redaction', () => {
  it('shows at most 4 characters and a third of short secrets', () => {
    expect(redact('ghp_R8f2kQ9zLmX4vB7nT1cY6hW3pJ5sD0gA2eKq')).toBe('ghp_…(40 chars)');
    expect(redact('abcdefgh')).toBe('ab…(8 chars)');
  });

  // Secrets of each shape, embedded in arbitrary text: the serialised findings never contain the
  // secret or any 8-character piece of it.
  const alnum = (n: number) => fc.string({ unit: fc.constantFrom(...B62), minLength: n, maxLength: n });
  const secretArb = fc.oneof(
    alnum(36).map((s) => `ghp_${s}`),
    alnum(36).map((s) => `npm_${s}`),
    alnum(20).map((s) => `glpat-${s}`),
    alnum(32).map((s) => `sk_live_${s}`),
    fc.string({ unit: fc.constantFrom(...B32), minLength: 16, maxLength: 16 }).map((s) => `AKIA${s}`),
    fc.integer({ min: 1, max: 2 ** 31 - 1 }).map((seed) => randomPassword(new Rng(seed))),
  );
  const wrapperArb = fc.constantFrom(
    '{}',
    'password={}',
    'x "{}" y',
    'token: {}',
    'aws_secret_access_key={}',
    '"auth": "{}"',
  );

  it('never leaks the secret or an 8-character substring (property)', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 200 }),
        secretArb,
        wrapperArb,
        fc.string({ maxLength: 200 }),
        (before, secret, wrapper, after) => {
          const text = `${before}\n${wrapper.replace('{}', secret)}\n${after}`;
          const out = JSON.stringify(scanText(text, { path: 'app/.env' }));
          if (out.includes(secret)) return false;
          for (let i = 0; i + 8 <= secret.length; i++) if (out.includes(secret.slice(i, i + 8))) return false;
          return true;
        },
      ),
      { numRuns: 2000, seed: 42 },
    );
  });
});

describe('isProbablyBinary', () => {
  it('classifies text and binary heads', () => {
    expect(isProbablyBinary(Buffer.from('hello\nworld\t\r\n'))).toBe(false);
    expect(isProbablyBinary(Buffer.from('héllo wörld ✓'))).toBe(false);
    expect(isProbablyBinary(Buffer.alloc(0))).toBe(false);
    expect(isProbablyBinary(Buffer.from([0x7f, 0x45, 0x4c, 0x46, 0x02, 0x01, 0x01, 0x00]))).toBe(true);
    expect(isProbablyBinary(Buffer.from('ab\x01\x02\x03\x04cd'))).toBe(true);
  });

  /** The byte-at-a-time definition the word-at-a-time version must agree with. */
  function reference(head: Buffer): boolean {
    const n = Math.min(head.length, 8192);
    if (n === 0) return false;
    let control = 0;
    for (let i = 0; i < n; i++) {
      const b = head[i]!;
      if (b === 0) return true;
      if ((b < 0x20 && b !== 0x09 && b !== 0x0a && b !== 0x0d && b !== 0x0c && b !== 0x1b) || b === 0x7f) control++;
    }
    return control / n > 0.1;
  }

  it('agrees with the byte-at-a-time definition at every offset and length', () => {
    // Mostly printable bytes with control bytes, 0x7f, high bytes and the odd NUL mixed in, around
    // the 10 % line; sliced at any offset so the word loop sees every alignment.
    const byte = fc.oneof(
      { weight: 12, arbitrary: fc.integer({ min: 0x20, max: 0x7e }) },
      { weight: 1, arbitrary: fc.integer({ min: 1, max: 0x1f }) },
      { weight: 1, arbitrary: fc.constantFrom(0x7f, 0x80, 0x9f, 0xa0, 0xff, 0x09, 0x0a, 0x1b) },
      { weight: 1, arbitrary: fc.constant(0) },
    );
    fc.assert(
      fc.property(fc.array(byte, { maxLength: 300 }), fc.nat({ max: 7 }), fc.boolean(), (bytes, offset, noNul) => {
        const body = bytes.map((b) => (noNul && b === 0 ? 1 : b));
        const backing = Buffer.alloc(offset + body.length);
        Buffer.from(body).copy(backing, offset);
        const head = backing.subarray(offset);
        expect(isProbablyBinary(head)).toBe(reference(head));
      }),
      { numRuns: 5000 },
    );
    const long = Buffer.alloc(9000, 0x61);
    for (let i = 0; i < 9000; i += 11) long[i] = 0x01; // 9.1 % control bytes
    for (const end of [8192, 9000, 4097, 3]) expect(isProbablyBinary(long.subarray(1, end))).toBe(reference(long.subarray(1, end)));
    long[8500] = 0; // past the 8192 bytes looked at
    expect(isProbablyBinary(long)).toBe(reference(long));
  });
});

describe('adversarial input (guard against catastrophic backtracking)', () => {
  const MB = 1 << 20;
  const fill = (unit: string) => unit.repeat(Math.ceil(MB / unit.length)).slice(0, MB);
  const inputs: [string, string][] = [
    ['one letter', fill('a')],
    ['password= runs', fill('password=')],
    ['password: runs', fill('password:')],
    ['token: with quotes', fill('token: "')],
    ['assignment with 300-char values', fill(`api_key: ${'Zx9'.repeat(100)} `)],
    ['PEM header then endless base64', `-----BEGIN RSA PRIVATE KEY-----\n${fill('A')}`],
    ['PEM lines without END', fill('-----BEGIN RSA PRIVATE KEY-----\nQUFB\nQUFB\n')],
    ['PEM escaped lines without END', fill('-----BEGIN PRIVATE KEY-----\\nQUFBQUFB\\n')],
    ['eyJ runs', fill('eyJ')],
    ['JWT-like dotted runs', fill('eyJhbGciOiJIUzI1NiJ9.')],
    ['slack digit groups', fill('xoxb-1-')],
    ['auths/auth', `"auths" ${fill('"auth": "QUFB')}`],
    ['AccountKey base64', `AccountKey=${fill('A')}`],
    [
      'service account private_key',
      `"type": "service_account" ${fill('"private_key": "-----BEGIN PRIVATE KEY-----AAAA\\n')}`,
    ],
    ['npmrc tokens', fill(':_authToken=abcdefghijklmnopqrstuvwxyz0123456789')],
    ['aws secret key names', fill('aws_secret_access_key=')],
    ['connection strings', fill('DefaultEndpointsProtocol=https;AccountName=a;')],
    ['slashes', fill('/')],
    ['ghp_ runs', fill('ghp_')],
    ['random text', new Rng(3).str(`${B62} =:"'\n-_./+`, MB)],
  ];
  it.each(inputs)('%s: 1 MB scanned in under 200 ms', (_name, text) => {
    scanText(text.slice(0, 10_000), { path: 'warm' });
    const t0 = performance.now();
    scanText(text, { path: 'bench' });
    const ms = performance.now() - t0;
    expect(ms).toBeLessThan(200);
  });
});
