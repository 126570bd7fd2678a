import { describe, expect, it } from 'vitest';
import { phpAnalyser } from '../../src/analyse/analysers/php.js';
import type { FileFacts } from '../../src/analyse/types.js';

async function run(path: string, content: string | object): Promise<FileFacts> {
  const buf = Buffer.from(typeof content === 'string' ? content : JSON.stringify(content, null, 4), 'utf8');
  return phpAnalyser.analyse({ path, size: buf.length, mode: 0o644, content: buf }, { scratchDir: '/tmp' });
}

const info = { size: 100, mode: 0o644 };

describe('phpAnalyser.wants', () => {
  it.each([
    ['var/www/composer.lock', true],
    ['composer.lock', true],
    ['var/www/vendor/composer/installed.json', true],
    ['vendor/composer/installed.json', true],
    ['var/www/vendor/monolog/monolog/composer.lock', false],
    ['var/www/myvendor/composer/installed.json', false],
    ['var/www/vendor/composer/installed.php', false],
    ['var/www/mycomposer.lock', false],
  ])('%s -> %s', (path, expected) => {
    expect(phpAnalyser.wants(path, info)).toBe(expected);
  });
});

describe('composer.lock', () => {
  it('reads packages and packages-dev', async () => {
    const facts = await run('var/www/composer.lock', {
      _readme: ['This file locks the dependencies of your project to a known state'],
      'content-hash': 'd41d8cd98f00b204e9800998ecf8427e',
      packages: [
        { name: 'monolog/monolog', version: '3.5.0', type: 'library', license: ['MIT'] },
        { name: 'symfony/console', version: 'v6.4.1', license: ['MIT'] },
        { name: 'acme/internal', version: 'dev-main' },
      ],
      'packages-dev': [{ name: 'phpunit/phpunit', version: '10.5.3', license: ['BSD-3-Clause'] }],
    });
    expect(facts).toEqual({
      packages: [
        {
          type: 'composer',
          namespace: 'monolog',
          name: 'monolog',
          version: '3.5.0',
          licenses: ['MIT'],
          paths: ['var/www/composer.lock'],
        },
        {
          type: 'composer',
          namespace: 'symfony',
          name: 'console',
          version: '6.4.1',
          licenses: ['MIT'],
          paths: ['var/www/composer.lock'],
        },
        {
          type: 'composer',
          namespace: 'acme',
          name: 'internal',
          version: 'dev-main',
          paths: ['var/www/composer.lock'],
        },
        {
          type: 'composer',
          namespace: 'phpunit',
          name: 'phpunit',
          version: '10.5.3',
          dev: true,
          licenses: ['BSD-3-Clause'],
          paths: ['var/www/composer.lock'],
        },
      ],
    });
  });

  it('warns on malformed input', async () => {
    expect((await run('composer.lock', '{')).warnings?.[0]).toMatch(/^composer\.lock: invalid JSON: /);
    expect(await run('composer.lock', { hello: 1 })).toEqual({
      warnings: ['composer.lock: no "packages" array'],
    });
  });
});

describe('vendor/composer/installed.json', () => {
  it('reads the Composer 1 array form', async () => {
    const facts = await run('app/vendor/composer/installed.json', [
      { name: 'guzzlehttp/guzzle', version: '6.5.8', version_normalized: '6.5.8.0', license: ['MIT'] },
    ]);
    expect(facts).toEqual({
      packages: [
        {
          type: 'composer',
          namespace: 'guzzlehttp',
          name: 'guzzle',
          version: '6.5.8',
          licenses: ['MIT'],
          paths: ['app/vendor/composer/installed.json'],
        },
      ],
    });
  });

  it('reads the Composer 2 object form with dev-package-names', async () => {
    const facts = await run('app/vendor/composer/installed.json', {
      packages: [
        { name: 'psr/log', version: '3.0.0', license: ['MIT'], 'install-path': '../psr/log' },
        { name: 'mockery/mockery', version: '1.6.7', license: ['BSD-3-Clause'] },
      ],
      dev: true,
      'dev-package-names': ['mockery/mockery'],
    });
    expect(facts.packages?.map((p) => [p.namespace, p.name, p.version, p.dev])).toEqual([
      ['psr', 'log', '3.0.0', undefined],
      ['mockery', 'mockery', '1.6.7', true],
    ]);
  });

  it('warns on an unexpected shape', async () => {
    expect(await run('vendor/composer/installed.json', '"nope"')).toEqual({
      warnings: ['vendor/composer/installed.json: neither an array nor an object with "packages"'],
    });
  });
});

describe('php JSON bounds', () => {
  const doc = (extra: string) => `{"packages":[{"name":"monolog/monolog","version":"3.5.0","extra":${extra}}]}`;
  it('refuses JSON nested deeper than any lockfile, with a warning', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    expect(await run('app/vendor/composer/installed.json', doc(deep))).toEqual({ warnings: ['app/vendor/composer/installed.json: JSON nested deeper than 1000 levels; skipped'] });
  });

  it('still reads a file nested a few hundred levels deep', async () => {
    const facts = await run('app/vendor/composer/installed.json', doc(`${'['.repeat(500)}${']'.repeat(500)}`));
    expect(facts.packages).toEqual([expect.objectContaining({ name: 'monolog', version: '3.5.0' })]);
  });
});
