import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import { PortcullisError } from '../../src/errors.js';
import {
  buildRuleSet,
  BUILTIN_ALLOW_PATHS,
  globToRegExp,
  loadSecretConfig,
  PathMatcher,
  parseSecretConfig,
  scanText,
  shouldScanPath,
} from '../../src/secrets/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-secrets-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

async function configFile(name: string, text: string): Promise<string> {
  const path = join(dir, name);
  await writeFile(path, text);
  return path;
}

const ACME = 'acme_live_9fQ2xL7vR4kT8mW1zP6sJ3hN5bD0cG2y';

describe('secrets.yaml', () => {
  it('adds user rules and applies user allowlists', async () => {
    const path = await configFile(
      'secrets.yaml',
      [
        'rules:',
        '  - id: acme-api-key',
        '    title: ACME API key',
        '    severity: high',
        "    regex: 'acme_live_(?<secret>[A-Za-z0-9]{32})'",
        '    keywords: [ACME_LIVE_]',
        'allow:',
        "  paths: ['opt/app/fixtures/**', '*.sample']",
        "  values: ['^ghp_0{4}']",
        '  rules: [generic-secret]',
      ].join('\n'),
    );
    const set = buildRuleSet(await loadSecretConfig(path));
    expect(scanText(`KEY=${ACME}`, { path: 'etc/acme.env' })).toEqual([]); // built-ins alone miss it
    expect(scanText(`KEY=${ACME}`, { path: 'etc/acme.env' }, set)).toEqual([
      {
        ruleId: 'acme-api-key',
        title: 'ACME API key',
        severity: 'high',
        line: 1,
        redacted: '9fQ2…(32 chars)',
      },
    ]);
    expect(scanText(`KEY=${ACME}`, { path: '/opt/app/fixtures/keys.env' }, set)).toEqual([]);
    expect(scanText(`KEY=${ACME}`, { path: 'srv/conf/app.sample' }, set)).toEqual([]);
    expect(scanText('ghp_0000R8f2kQ9zLmX4vB7nT1cY6hW3pJ5sD0gA', { path: 'x' }, set)).toEqual([]);
    expect(scanText('password: "Qz8#vL2!pX7@mR4$kT9w"', { path: 'x' }, set)).toEqual([]);
    expect(
      scanText('password: "Qz8#vL2!pX7@mR4$kT9w"', { path: 'x' }, buildRuleSet()).map((f) => f.ruleId),
    ).toEqual(['generic-secret']);
  });

  it('rejects a bad regex with a message naming the file and the rule', async () => {
    const path = await configFile(
      'bad-regex.yaml',
      "rules:\n  - {id: broken, title: Broken, severity: low, regex: 'foo(bar', keywords: [foo]}\n",
    );
    const err = await loadSecretConfig(path).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortcullisError);
    expect((err as PortcullisError).code).toBe('SECRETS_CONFIG_INVALID');
    expect((err as Error).message).toContain(path);
    expect((err as Error).message).toMatch(/rules\[0\] \(broken\): invalid regex "foo\(bar"/);
  });

  it('rejects bad fields, unknown keys, unknown rule ids and empty-matching regexes', () => {
    const bad = (text: string) => () => parseSecretConfig(text, 'conf/secrets.yaml');
    expect(bad('rules:\n  - {id: x, title: X, severity: urgent, regex: x, keywords: [x]}')).toThrow(
      /conf\/secrets\.yaml: rules\[0\]\.severity/,
    );
    expect(bad('rules:\n  - {id: x, title: X, severity: low, regex: x, keywords: []}')).toThrow(
      /rules\[0\]\.keywords: needs at least one keyword/,
    );
    expect(bad('allow:\n  path: [x]')).toThrow(/conf\/secrets\.yaml: allow/);
    expect(bad('allow:\n  rules: [no-such-rule]')).toThrow(
      /allow\.rules\[0\]: no rule has id "no-such-rule"/,
    );
    expect(bad('rules:\n  - {id: x, title: X, severity: low, regex: "a*", keywords: [a]}')).toThrow(
      /matches the empty string/,
    );
    expect(bad('rules:\n  - {id: jwt, title: X, severity: low, regex: "abc", keywords: [abc]}')).toThrow(
      /built-in rule/,
    );
    expect(bad("allow:\n  values: ['[a-']")).toThrow(/allow\.values\[0\]: invalid regex/);
    expect(bad('rules: [')).toThrow(/not valid YAML/);
  });

  it('names a missing file', async () => {
    await expect(loadSecretConfig(join(dir, 'missing.yaml'))).rejects.toThrow(
      /missing\.yaml: file not found/,
    );
  });
});

describe('paths', () => {
  it('compiles globs', () => {
    const re = globToRegExp('**/node_modules/**/{test,docs}/**');
    expect(re.test('app/node_modules/a/b/test/x.js')).toBe(true);
    expect(re.test('node_modules/a/docs/readme.txt')).toBe(true);
    expect(re.test('app/node_modules/a/lib/x.js')).toBe(false);
    expect(globToRegExp('usr/share/doc/**').test('usr/share/doc')).toBe(true);
    expect(globToRegExp('*.pem').test('etc/ssl/a.pem')).toBe(true);
    expect(globToRegExp('etc/*.conf').test('etc/sub/a.conf')).toBe(false);
  });

  it('matches globs as a segment-by-segment reference matcher does', () => {
    // The reference: `**` as a whole segment spans zero or more folders, other wildcards stay in
    // one segment, `dir/**` also matches `dir`, and a glob without a slash matches a base name.
    const segmentRe = (seg: string) =>
      new RegExp(
        `^${seg
          .replace(/[.+^$()|[\]\\]/g, '\\$&')
          .replace(/\*/g, '[^/]*')
          .replace(/\?/g, '[^/]')
          .replace(/\{([^}]*)\}/g, (_m, alts: string) => `(?:${alts.split(',').join('|')})`)}$`,
      );
    const matchSegments = (glob: string[], path: string[]): boolean => {
      if (glob.length === 0) return path.length === 0;
      const [head, ...rest] = glob;
      if (head === '**')
        return path.some((_, i) => matchSegments(rest, path.slice(i))) || matchSegments(rest, []);
      return path.length > 0 && segmentRe(head!).test(path[0]!) && matchSegments(rest, path.slice(1));
    };
    const reference = (glob: string, path: string) => {
      if (!glob.includes('/')) return segmentRe(glob).test(path.split('/').pop()!);
      const g = glob.split('/');
      const p = path.split('/');
      return matchSegments(g, p) || (g[g.length - 1] === '**' && matchSegments(g.slice(0, -1), p));
    };
    const globs = [
      ...BUILTIN_ALLOW_PATHS,
      'app/*.env',
      '**/secrets/**',
      'etc/**/ssl/*.pem',
      '*.key',
      'a/?b/**',
    ];
    const segment = fc.constantFrom(
      'app',
      'node_modules',
      'test',
      'tests',
      'docs',
      'usr',
      'share',
      'doc',
      'x.md',
      'a.js',
      'testdata',
      'vendor',
      'go',
      'src',
      'site-packages',
      'secrets',
      'etc',
      'ssl',
      'k.pem',
      'id.key',
      'a',
      'cb',
      '.env',
      'node_modules.md',
      'xnode_modules',
      'xsecrets',
      'xusr',
    );
    const path = fc.array(segment, { minLength: 1, maxLength: 7 }).map((s) => s.join('/'));
    fc.assert(
      fc.property(fc.constantFrom(...globs), path, (glob, p) => {
        expect(globToRegExp(glob).test(p)).toBe(reference(glob, p));
        expect(new PathMatcher([glob]).matches(p)).toBe(reference(glob, p));
      }),
      { numRuns: 5000 },
    );
  });

  it('skips non-text paths before they are buffered', () => {
    for (const p of [
      'usr/share/icons/a.png',
      'app/font.woff',
      'usr/lib/libc.so.6',
      'usr/lib/x.so',
      'app/x.pyc',
      'app/lib.jar',
      'x.tar.gz',
      'var/cache/a.deb',
      'usr/share/locale/de/LC_MESSAGES/x.mo',
      'usr/share/zoneinfo/Europe/Paris',
      'usr/share/i18n/charmaps/UTF-8.gz',
      'usr/share/terminfo/x/xterm',
      '/proc/self/environ',
      'sys/kernel/x',
      'dev/null',
      'usr/lib/locale/locale-archive',
      'x.zst',
      'a.apk',
    ])
      expect(shouldScanPath(p), p).toBe(false);
    for (const p of [
      'etc/passwd',
      'root/.ssh/id_rsa',
      'app/.env',
      'app/config.json',
      '/home/u/.npmrc',
      'Dockerfile',
      'usr/share/doc/x/README',
    ]) {
      expect(shouldScanPath(p), p).toBe(true);
    }
  });
});
