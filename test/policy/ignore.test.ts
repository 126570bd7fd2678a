import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  PolicyError,
  applySuppressions,
  detectFormat,
  loadIgnoreFile,
  parseIgnoreText,
} from '../../src/policy/index.js';
import { finding } from './helpers.js';

const NOW = new Date('2024-06-15T12:00:00Z');

function tmpFile(name: string, text: string): string {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-ignore-'));
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

describe('parseIgnoreText: YAML format', () => {
  it('reads entries with all fields and records their lines', () => {
    const rules = parseIgnoreText(
      [
        '# accepted risks',
        'ignore:',
        '  - id: CVE-2024-0001',
        '    reason: not reachable',
        '    expires: 2024-12-31',
        '    packages: [pkg:deb/debian/libssl3, zlib]',
        '  - id: GHSA-aaaa-bbbb-cccc',
        '    reason: dev only',
      ].join('\n'),
      'ign.yaml',
    );
    expect(rules).toEqual([
      {
        id: 'CVE-2024-0001',
        reason: 'not reachable',
        expires: '2024-12-31',
        packages: ['pkg:deb/debian/libssl3', 'zlib'],
        source: 'ign.yaml',
        line: 3,
      },
      { id: 'GHSA-aaaa-bbbb-cccc', reason: 'dev only', source: 'ign.yaml', line: 7 },
    ]);
  });

  it('treats an empty file or empty list as no rules', () => {
    expect(parseIgnoreText('', 'x')).toEqual([]);
    expect(parseIgnoreText('ignore:\n', 'x')).toEqual([]);
    expect(parseIgnoreText('ignore: []\n', 'x')).toEqual([]);
  });

  it.each([
    ['missing reason', 'ignore:\n  - id: CVE-1\n', /x\.yaml:2: ignore entry 1: reason is required/],
    ['empty reason', 'ignore:\n  - id: CVE-1\n    reason: "  "\n', /x\.yaml:2: .*reason .*must not be empty/],
    [
      'bad date',
      'ignore:\n  - id: CVE-1\n    reason: r\n    expires: 2024-02-30\n',
      /x\.yaml:2: .*expires must be a real date/,
    ],
    ['typo key', 'ignore:\n  - id: CVE-1\n    reason: r\n    expire: 2024-01-01\n', /unknown key "expire"/],
    [
      'second entry',
      'ignore:\n  - id: CVE-1\n    reason: r\n  - reason: r\n',
      /x\.yaml:4: ignore entry 2: id is required/,
    ],
    ['not a list', 'ignore:\n  id: CVE-1\n', /x\.yaml:2: "ignore:" must be a list/],
    ['other top key', 'ignores:\n  - id: CVE-1\n', /x\.yaml:1: unknown top-level key "ignores"/],
    ['scalar entry', 'ignore:\n  - CVE-1\n', /x\.yaml:2: ignore entry 1 must be a mapping/],
    ['broken yaml', 'ignore:\n  - id: [CVE-1\n', /x\.yaml:\d+:\d+: not valid YAML/],
  ])('rejects %s with a message naming the file and line', (_name, text, message) => {
    expect(() => parseIgnoreText(text, 'x.yaml')).toThrow(PolicyError);
    expect(() => parseIgnoreText(text, 'x.yaml')).toThrow(message);
  });
});

describe('parseIgnoreText: line format', () => {
  it('reads ids with inline reasons, expiry and purl scope', () => {
    const rules = parseIgnoreText(
      [
        'CVE-2024-0001  # not reachable',
        '',
        'GHSA-aaaa-bbbb-cccc exp:2024-07-01 pkg:npm/lodash # dev only',
      ].join('\n'),
      '.portcullisignore',
    );
    expect(rules).toEqual([
      { id: 'CVE-2024-0001', reason: 'not reachable', source: '.portcullisignore', line: 1 },
      {
        id: 'GHSA-aaaa-bbbb-cccc',
        reason: 'dev only',
        expires: '2024-07-01',
        packages: ['pkg:npm/lodash'],
        source: '.portcullisignore',
        line: 3,
      },
    ]);
  });

  it('takes the reason from the comment block directly above, as .trivyignore files do', () => {
    const rules = parseIgnoreText('# upstream disputes it\n# see the tracker\nCVE-2024-0002\n', 'f');
    expect(rules[0]?.reason).toBe('upstream disputes it see the tracker');
  });

  it('does not carry a comment across a blank line', () => {
    expect(() => parseIgnoreText('# old note\n\nCVE-2024-0002\n', 'f')).toThrow(
      /f:3: CVE-2024-0002 has no reason/,
    );
  });

  it.each([
    ['bad expiry', 'CVE-1 exp:2024-13-01 # r', /f:1: "exp:2024-13-01" must be exp:YYYY-MM-DD/],
    ['stray token', 'CVE-1 foo # r', /f:1: unexpected "foo" after CVE-1/],
    ['bad id', '!!! # r', /f:1: "!!!" is not an advisory id/],
  ])('rejects %s', (_n, text, message) => {
    expect(() => parseIgnoreText(text, 'f')).toThrow(message);
  });

  it('detects the format by content', () => {
    expect(detectFormat('# c\nignore:\n')).toBe('yaml');
    expect(detectFormat('---\nignore: []')).toBe('yaml');
    expect(detectFormat('# c\nCVE-1 # r\n')).toBe('lines');
    expect(detectFormat('CVE-1 exp:2024-01-01 # r\n')).toBe('lines');
  });
});

describe('loadIgnoreFile', () => {
  it('reads a file and names it in rules', () => {
    const path = tmpFile('.portcullisignore', 'CVE-2024-0001 # ok\n');
    expect(loadIgnoreFile(path)).toEqual([{ id: 'CVE-2024-0001', reason: 'ok', source: path, line: 1 }]);
  });

  it('names the file when it is malformed or missing', () => {
    const path = tmpFile('bad.yaml', 'ignore:\n  - id: CVE-1\n');
    expect(() => loadIgnoreFile(path)).toThrow(`${path}:2: ignore entry 1: reason is required`);
    expect(() => loadIgnoreFile(join(path, '..', 'nope'))).toThrow(
      /cannot read ignore file .*nope: it does not exist/,
    );
  });
});

describe('ignore rules in applySuppressions', () => {
  const f = finding({ id: 'DSA-5000-1', aliases: ['CVE-2024-0001'] });

  it('suppresses by id or alias, case-insensitively, and reports the reason and source', () => {
    const rules = parseIgnoreText('cve-2024-0001 # not reachable\n', 'ign');
    const r = applySuppressions([f, finding({ id: 'CVE-2024-9999' })], { ignore: rules, now: NOW });
    expect(r.kept.map((k) => k.id)).toEqual(['CVE-2024-9999']);
    expect(r.suppressed).toEqual([{ finding: f, reason: 'ignored: not reachable', source: 'ign:1' }]);
    expect(r.expiredIgnores).toEqual([]);
  });

  it('stops suppressing an entry that expired yesterday and reports it; one expiring tomorrow still applies', () => {
    const yesterday = parseIgnoreText('CVE-2024-0001 exp:2024-06-14 # old\n', 'ign');
    const r1 = applySuppressions([f], { ignore: yesterday, now: NOW });
    expect(r1.kept).toEqual([f]);
    expect(r1.expiredIgnores).toEqual(yesterday);

    const tomorrow = parseIgnoreText(
      'ignore:\n  - id: CVE-2024-0001\n    reason: temp\n    expires: 2024-06-16\n',
      'ign',
    );
    const r2 = applySuppressions([f], { ignore: tomorrow, now: NOW });
    expect(r2.kept).toEqual([]);
    expect(r2.suppressed[0]?.reason).toBe('ignored: temp (until 2024-06-16)');
    expect(r2.expiredIgnores).toEqual([]);
  });

  it('scopes rules to packages by purl prefix or name', () => {
    const other = finding({
      id: 'CVE-2024-0001',
      package: {
        type: 'npm',
        namespace: undefined,
        name: 'lodash-es',
        purl: 'pkg:npm/lodash-es@4.17.21',
        sourceName: undefined,
      },
      matchedName: 'lodash-es',
    });
    const scoped = (pkgs: string) =>
      applySuppressions([f, other], {
        ignore: parseIgnoreText(
          `ignore:\n  - id: CVE-2024-0001\n    reason: r\n    packages: ${pkgs}\n`,
          'i',
        ),
        now: NOW,
      }).kept;
    expect(scoped('[pkg:deb/debian/libssl3]')).toEqual([other]);
    expect(scoped('[pkg:deb/debian]')).toEqual([other]);
    expect(scoped('[pkg:npm/lodash]')).toEqual([f, other]); // not a prefix at a component boundary
    expect(scoped('[pkg:npm/lodash-es@4.17.21]')).toEqual([f]);
    expect(scoped('[openssl]')).toEqual([other]); // Debian source package name
    expect(scoped('[libssl3, lodash-es]')).toEqual([]);
    expect(scoped('[zlib]')).toEqual([f, other]);
  });

  it('matches scoped npm purls written with a literal @scope', () => {
    const scopedPkg = finding({
      package: { type: 'npm', namespace: '@babel', name: 'core', purl: 'pkg:npm/%40babel/core@7.0.0' },
    });
    const rules = parseIgnoreText('CVE-2024-0001 pkg:npm/@babel/core # r\n', 'i');
    expect(applySuppressions([scopedPkg], { ignore: rules, now: NOW }).kept).toEqual([]);
  });
});
