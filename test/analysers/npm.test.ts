import { describe, expect, it } from 'vitest';
import { npmAnalyser } from '../../src/analyse/analysers/npm.js';
import { MAX_PACKAGES_PER_FILE } from '../../src/analyse/dispatch.js';
import type { AnalyserFile, FileFacts } from '../../src/analyse/types.js';

function file(path: string, content: string): AnalyserFile {
  const buf = Buffer.from(content, 'utf8');
  return { path, size: buf.length, mode: 0o644, content: buf };
}

async function run(path: string, content: string | object): Promise<FileFacts> {
  const body = typeof content === 'string' ? content : JSON.stringify(content, null, 2);
  return npmAnalyser.analyse(file(path, body), { scratchDir: '/tmp' });
}

const info = { size: 100, mode: 0o644 };

describe('npmAnalyser.wants', () => {
  it.each([
    ['app/package-lock.json', true],
    ['package-lock.json', true],
    ['app/npm-shrinkwrap.json', true],
    ['app/yarn.lock', true],
    ['srv/pnpm-lock.yaml', true],
    ['app/node_modules/express/package.json', true],
    ['app/node_modules/@babel/core/package.json', true],
    ['usr/lib/node_modules/npm/package.json', true],
    ['usr/lib/node_modules/npm/node_modules/semver/package.json', true],
    ['app/node_modules/.pnpm/express@4.18.2/node_modules/express/package.json', true],
    ['app/package.json', false],
    ['app/node_modules/@babel/package.json', false],
    ['package.json', false],
    ['app/node_modules/express/lib/package.json', false],
    ['app/node_modules/@babel/core/lib/package.json', false],
    ['app/node_modules/some-pkg/yarn.lock', false],
    ['app/node_modules/some-pkg/package-lock.json', false],
    ['app/node_modules/.package-lock.json', false],
    ['app/not-yarn.lock', false],
    ['app/mypackage.json', false],
  ])('%s -> %s', (path, expected) => {
    expect(npmAnalyser.wants(path, info)).toBe(expected);
  });
});

describe('package-lock.json', () => {
  it('reads the v2/v3 packages map, skipping the root and links', async () => {
    const facts = await run('app/package-lock.json', {
      name: 'shop',
      version: '1.0.0',
      lockfileVersion: 3,
      requires: true,
      packages: {
        '': { name: 'shop', version: '1.0.0', dependencies: { express: '^4.18.0' } },
        'node_modules/express': {
          version: '4.18.2',
          resolved: 'https://registry.npmjs.org/express/-/express-4.18.2.tgz',
          license: 'MIT',
        },
        'node_modules/express/node_modules/depd': { version: '1.1.1', license: 'MIT' },
        'node_modules/@types/node': { version: '20.11.5', dev: true, license: 'MIT' },
        'node_modules/str-alias': { name: 'string-width', version: '4.2.3' },
        'node_modules/local-lib': { resolved: 'libs/local-lib', link: true },
        'libs/local-lib': { name: 'local-lib', version: '0.1.0' },
      },
    });
    expect(facts).toEqual({
      packages: [
        {
          type: 'npm',
          name: 'express',
          version: '4.18.2',
          licenses: ['MIT'],
          paths: ['app/package-lock.json'],
          properties: { installPath: 'app/node_modules/express' },
        },
        {
          type: 'npm',
          name: 'depd',
          version: '1.1.1',
          licenses: ['MIT'],
          paths: ['app/package-lock.json'],
          properties: { installPath: 'app/node_modules/express/node_modules/depd' },
        },
        {
          type: 'npm',
          namespace: '@types',
          name: 'node',
          version: '20.11.5',
          dev: true,
          licenses: ['MIT'],
          paths: ['app/package-lock.json'],
          properties: { installPath: 'app/node_modules/@types/node' },
        },
        {
          type: 'npm',
          name: 'string-width',
          version: '4.2.3',
          paths: ['app/package-lock.json'],
          properties: { installPath: 'app/node_modules/str-alias' },
        },
        {
          type: 'npm',
          name: 'local-lib',
          version: '0.1.0',
          paths: ['app/package-lock.json'],
          properties: { installPath: 'app/libs/local-lib' },
        },
      ],
    });
  });

  it('walks the v1 dependencies tree', async () => {
    const facts = await run('package-lock.json', {
      name: 'legacy',
      version: '0.0.1',
      lockfileVersion: 1,
      dependencies: {
        express: {
          version: '4.16.0',
          requires: { depd: '~1.1.1' },
          dependencies: { depd: { version: '1.1.1' } },
        },
        '@babel/core': { version: '7.1.0', dev: true },
        'old-alias': { version: 'npm:lodash@4.17.21' },
      },
    });
    expect(
      facts.packages?.map((p) => [p.namespace, p.name, p.version, p.dev, p.properties?.['installPath']]),
    ).toEqual([
      [undefined, 'express', '4.16.0', undefined, 'node_modules/express'],
      [undefined, 'depd', '1.1.1', undefined, 'node_modules/express/node_modules/depd'],
      ['@babel', 'core', '7.1.0', true, 'node_modules/@babel/core'],
      [undefined, 'lodash', '4.17.21', undefined, 'node_modules/old-alias'],
    ]);
  });

  it('stops the v1 walk one package past the bound, as the packages map does', async () => {
    // Flat, and nested under one entry: the walk must stop inside a subtree as well.
    const many = (n: number, prefix: string): Record<string, unknown> =>
      Object.fromEntries(Array.from({ length: n }, (_, i) => [`${prefix}${i}`, { version: '1.0.0' }]));
    const flat = await run('app/package-lock.json', { lockfileVersion: 1, dependencies: many(MAX_PACKAGES_PER_FILE + 500, 'p') });
    expect(flat.packages).toHaveLength(MAX_PACKAGES_PER_FILE + 1);
    expect(flat.packages?.at(-1)?.name).toBe(`p${MAX_PACKAGES_PER_FILE}`);
    const nested = await run('app/package-lock.json', {
      lockfileVersion: 1,
      dependencies: { top: { version: '1.0.0', dependencies: many(MAX_PACKAGES_PER_FILE + 500, 'n') }, after: { version: '1.0.0' } },
    });
    expect(nested.packages).toHaveLength(MAX_PACKAGES_PER_FILE + 1);
    expect(nested.packages?.map((p) => p.name)).not.toContain('after');
  });

  it('warns on malformed JSON', async () => {
    const facts = await run('app/package-lock.json', '{"lockfileVersion": 3, "packages": {');
    expect(facts.packages).toBeUndefined();
    expect(facts.warnings).toHaveLength(1);
    expect(facts.warnings?.[0]).toMatch(/^app\/package-lock\.json: invalid JSON: /);
    expect(facts.warnings?.[0]).not.toContain('\n');
  });

  it('warns when the document has no dependency data', async () => {
    expect(await run('app/package-lock.json', '[1, 2]')).toEqual({
      warnings: ['app/package-lock.json: not a package-lock object'],
    });
    expect(await run('app/package-lock.json', '{"name": "x"}')).toEqual({
      warnings: ['app/package-lock.json: neither "packages" nor "dependencies" found'],
    });
  });
});

describe('yarn.lock', () => {
  it('reads classic v1 lockfiles', async () => {
    const lock = `# THIS IS AN AUTOGENERATED FILE. DO NOT EDIT THIS FILE DIRECTLY.
# yarn lockfile v1


"@babel/code-frame@^7.0.0", "@babel/code-frame@^7.22.13":
  version "7.22.13"
  resolved "https://registry.yarnpkg.com/@babel/code-frame/-/code-frame-7.22.13.tgz#e3c1c099402598483b7a8c46a721d1038803755e"
  integrity sha512-XktuhWlJ5g+3TJXc5upd9Ks1HutSArik6jf2eAjYFyIOf4ej3RN+184cZbzDvbPnuTJIUhPKKJE3cIsYTiAT3w==
  dependencies:
    "@babel/highlight" "^7.22.13"
    chalk "^2.4.2"

lodash@^4.17.20, lodash@^4.17.21:
  version "4.17.21"
  resolved "https://registry.yarnpkg.com/lodash/-/lodash-4.17.21.tgz#679591c564c3bffaae8454cf0b3df370c3d6911c"

"string-width-cjs@npm:string-width@^4.2.0":
  version "4.2.3"
  resolved "https://registry.yarnpkg.com/string-width/-/string-width-4.2.3.tgz"

"my-lib@file:./packages/my-lib":
  version "0.0.1"
`;
    const facts = await run('app/yarn.lock', lock);
    expect(facts).toEqual({
      packages: [
        {
          type: 'npm',
          namespace: '@babel',
          name: 'code-frame',
          version: '7.22.13',
          paths: ['app/yarn.lock'],
        },
        { type: 'npm', name: 'lodash', version: '4.17.21', paths: ['app/yarn.lock'] },
        { type: 'npm', name: 'string-width', version: '4.2.3', paths: ['app/yarn.lock'] },
      ],
    });
  });

  it('reads berry lockfiles, skipping workspaces and patches', async () => {
    const lock = `# This file is generated by running "yarn install" inside your project.
# Manual changes might be lost - proceed with caution!

__metadata:
  version: 8
  cacheKey: 10c0

"@types/node@npm:^20.0.0":
  version: 20.11.5
  resolution: "@types/node@npm:20.11.5"
  dependencies:
    undici-types: "npm:~5.26.4"
  checksum: 10c0/aa00c8aa7b4d6e2b8d0ab0f2d0b1e7e0f6b0b0d3f0c6b1f0f0e0a0b0c0d0e0f0a
  languageName: node
  linkType: hard

"resolve@npm:^1.22.1":
  version: 1.22.8
  resolution: "resolve@npm:1.22.8"
  languageName: node
  linkType: hard

"resolve@patch:resolve@npm%3A^1.22.1#optional!builtin<compat/resolve>":
  version: 1.22.8
  resolution: "resolve@patch:resolve@npm%3A1.22.8#optional!builtin<compat/resolve>::version=1.22.8&hash=c3c19d"
  languageName: node
  linkType: hard

"string-width-cjs@npm:string-width@^4.2.0, string-width@npm:^4.1.0":
  version: 4.2.3
  resolution: "string-width@npm:4.2.3"
  languageName: node
  linkType: hard

"web@workspace:.":
  version: 0.0.0-use.local
  resolution: "web@workspace:."
  languageName: unknown
  linkType: soft
`;
    const facts = await run('srv/web/yarn.lock', lock);
    expect(facts).toEqual({
      packages: [
        { type: 'npm', namespace: '@types', name: 'node', version: '20.11.5', paths: ['srv/web/yarn.lock'] },
        { type: 'npm', name: 'resolve', version: '1.22.8', paths: ['srv/web/yarn.lock'] },
        { type: 'npm', name: 'string-width', version: '4.2.3', paths: ['srv/web/yarn.lock'] },
      ],
    });
  });

  it('stops one entry past the bound, as the npm lockfile walk does', async () => {
    const n = MAX_PACKAGES_PER_FILE + 500;
    const classic = Array.from({ length: n }, (_, i) => `p${i}@^1.0.0:\n  version "1.0.${i}"\n`).join('\n');
    const facts = await run('app/yarn.lock', `# yarn lockfile v1\n\n${classic}`);
    expect(facts.packages).toHaveLength(MAX_PACKAGES_PER_FILE + 1);
    expect(facts.packages?.at(-1)?.name).toBe(`p${MAX_PACKAGES_PER_FILE}`);
    expect(facts.warnings).toBeUndefined();
  });

  it('warns on something that is not a yarn lockfile', async () => {
    expect(await run('app/yarn.lock', '<html>\n<body>oops</body>\n')).toEqual({
      warnings: ['app/yarn.lock: unexpected line "<html>"'],
    });
  });
});

describe('pnpm-lock.yaml', () => {
  it('reads v5 slash keys with peer suffixes', async () => {
    const lock = `lockfileVersion: 5.4

specifiers:
  react-dom: ^18.2.0
  typescript: ^5.0.0

dependencies:
  react-dom: 18.2.0_react@18.2.0

devDependencies:
  typescript: 5.0.4

packages:

  /react-dom/18.2.0_react@18.2.0:
    resolution: {integrity: sha512-6IMTriUmvsjHUjNtEDudZfuDQUoWXVxKHhlEGSk81n4YFS+r/Kl99wXiwlVXtPBtJenozv2P+hxDsw9eA7Xo6g==}
    peerDependencies:
      react: ^18.2.0
    dev: false

  /@babel/runtime/7.21.0:
    resolution: {integrity: sha512-xwII0//EObnq89Ji5AKYQaRYiW/nZ3llSv29d49IuxPhKbtJoLP+9QUUZ4nVragQVtaVGeZrpB+ZtG/Pdy/POw==}
    dev: false

  /typescript/5.0.4:
    resolution: {integrity: sha512-cW9T5W9xY37cc+jfEnaUvX91foxtHkza3Nw3wkoF4sSlKn0MONdkdEndig/qPBWXNkmplh3NzayQzCiHM4/hqw==}
    engines: {node: '>=12.20'}
    hasBin: true
    dev: true
`;
    const facts = await run('app/pnpm-lock.yaml', lock);
    expect(facts).toEqual({
      packages: [
        { type: 'npm', name: 'react-dom', version: '18.2.0', paths: ['app/pnpm-lock.yaml'] },
        {
          type: 'npm',
          namespace: '@babel',
          name: 'runtime',
          version: '7.21.0',
          paths: ['app/pnpm-lock.yaml'],
        },
        { type: 'npm', name: 'typescript', version: '5.0.4', dev: true, paths: ['app/pnpm-lock.yaml'] },
      ],
    });
  });

  it('reads v6 at-keys with parenthesised peers', async () => {
    const lock = `lockfileVersion: '6.0'

dependencies:
  '@tanstack/react-query':
    specifier: ^5.0.0
    version: 5.17.9(react@18.2.0)

packages:

  /@tanstack/react-query@5.17.9(react@18.2.0):
    resolution: {integrity: sha512-M5E5VWaDKzrmTasS2T4pDQyc5mXgDDt5GD0MoqkzrLEHzjL7ySEXfUbKNpegrRIF3xf1m7tfJhDCuQbdTRlkXQ==}
    dev: false

  /vitest@1.2.0:
    resolution: {integrity: sha512-Ixs5m7BjqvLHXcibkzKRQUvD/XLw0E3rvqaCMlrm/0LMsA0309ZqYvTlPzkhh81VlEyVZXFlwWnkhb6/UMtcaQ==}
    dev: true
`;
    const facts = await run('pnpm-lock.yaml', lock);
    expect(facts.packages?.map((p) => [p.namespace, p.name, p.version, p.dev])).toEqual([
      ['@tanstack', 'react-query', '5.17.9', undefined],
      [undefined, 'vitest', '1.2.0', true],
    ]);
  });

  it('reads v9 and derives dev-only packages from importers and snapshots', async () => {
    const lock = `lockfileVersion: '9.0'

settings:
  autoInstallPeers: true
  excludeLinksFromLockfile: false

importers:

  .:
    dependencies:
      debug:
        specifier: ^4.3.4
        version: 4.3.4(supports-color@8.1.1)
      str-alias:
        specifier: npm:string-width@^4.2.0
        version: string-width@4.2.3
    devDependencies:
      mocha:
        specifier: ^10.2.0
        version: 10.2.0

packages:

  debug@4.3.4:
    resolution: {integrity: sha512-PRWFHuSU3eDtQJPvnNY7Jcket1j0t5OuOsFzPPzsekD52Zl8qUfFIPEiswXqIvHWGVHOgX+7G/vCNNhehwxfkQ==}
    engines: {node: '>=6.0'}
    peerDependencies:
      supports-color: '*'
    peerDependenciesMeta:
      supports-color:
        optional: true

  mocha@10.2.0:
    resolution: {integrity: sha512-IDY7fl/BecMwFHzoqF2sg/SHHANeBoMMXFlS9r0OXKDssYE1M5O43wUY/9BVPeIvfH2zmEbBfseqN9gBQZzXkg==}
    hasBin: true

  ms@2.1.2:
    resolution: {integrity: sha512-sGkPx+VjMtmA6MX27oA4FBFELFCZZ4S4XqeGOXCv68tT+jb3vk/RyaKWP0PTKyWtmLSM0b+adUTEvbs1PEaH2w==}

  string-width@4.2.3:
    resolution: {integrity: sha512-wKyQRQpjJ0sIp62ErSZdGsjMJWsap5oRNihHhu6G7JVO/9jIB6UyevL+tXuOqrng8j/cxKTWyWUwvSTriiZz/g==}

  supports-color@8.1.1:
    resolution: {integrity: sha512-MpUEN2OodtUzxvKQl72cUF7RQ5EiHsGvSsVG0ia9c5RbWGL2CI4C7EpPS8UTBIplnlzZiNuV56w+FuNxy3ty2Q==}

snapshots:

  debug@4.3.4(supports-color@8.1.1):
    dependencies:
      ms: 2.1.2
    optionalDependencies:
      supports-color: 8.1.1

  mocha@10.2.0:
    dependencies:
      debug: 4.3.4(supports-color@8.1.1)
      supports-color: 8.1.1

  ms@2.1.2: {}

  string-width@4.2.3: {}

  supports-color@8.1.1: {}
`;
    const facts = await run('web/pnpm-lock.yaml', lock);
    expect(facts.packages?.map((p) => [p.name, p.version, p.dev ?? false])).toEqual([
      ['debug', '4.3.4', false],
      ['mocha', '10.2.0', true],
      ['ms', '2.1.2', false],
      ['string-width', '4.2.3', false],
      ['supports-color', '8.1.1', false],
    ]);
    expect(
      facts.packages?.every((p) => p.paths?.[0] === 'web/pnpm-lock.yaml' && p.properties === undefined),
    ).toBe(true);
  });

  it('uses the last document when pnpm writes an env lockfile first', async () => {
    const lock = `---
lockfileVersion: '9.0'

importers:

  .:
    configDependencies: {}
    packageManagerDependencies:
      pnpm:
        specifier: 9.15.0
        version: 9.15.0

packages:

  pnpm@9.15.0:
    resolution: {integrity: sha512-AAAA}

snapshots:

  pnpm@9.15.0: {}

---
lockfileVersion: '9.0'

importers:

  .:
    dependencies:
      ms:
        specifier: ^2.1.3
        version: 2.1.3

packages:

  ms@2.1.3:
    resolution: {integrity: sha512-BBBB}

snapshots:

  ms@2.1.3: {}
`;
    expect(await run('app/pnpm-lock.yaml', lock)).toEqual({
      packages: [{ type: 'npm', name: 'ms', version: '2.1.3', paths: ['app/pnpm-lock.yaml'] }],
    });
  });

  it('warns on malformed YAML and on a missing lockfileVersion', async () => {
    const bad = await run('app/pnpm-lock.yaml', 'lockfileVersion: 5.4\npackages:\n  /a/1.0.0: {\n');
    expect(bad.warnings).toHaveLength(1);
    expect(bad.warnings?.[0]).toMatch(/^app\/pnpm-lock\.yaml: invalid YAML: /);
    expect(bad.warnings?.[0]).not.toContain('\n');
    expect(await run('app/pnpm-lock.yaml', 'packages: {}\n')).toEqual({
      warnings: ['app/pnpm-lock.yaml: missing lockfileVersion'],
    });
  });
});

describe('pnpm-lock.yaml from a hostile image', () => {
  it('ignores entries keyed by a list or map, with a warning', async () => {
    const lock = "lockfileVersion: '6.0'\npackages:\n  ? [/evil@1.0.0]\n  : {dev: false}\n  /ok@1.0.0:\n    dev: false\n";
    expect(await run('app/pnpm-lock.yaml', lock)).toEqual({
      packages: [{ type: 'npm', name: 'ok', version: '1.0.0', paths: ['app/pnpm-lock.yaml'] }],
      warnings: ['app/pnpm-lock.yaml: 1 YAML entries with a list or map as key ignored'],
    });
  });

  it('stops one package past the bound and does not parse the sections past it', async () => {
    const n = MAX_PACKAGES_PER_FILE + 20_000;
    const entries = Array.from({ length: n }, (_, i) => `  p${i}@1.0.${i}:\n    resolution: {integrity: sha512-x}\n`).join('');
    // Past the bound, entries a whole parse would reject: read in pieces, they are never parsed.
    const lock = `lockfileVersion: '9.0'\n\npackages:\n${entries}  broken@1.0.0: {\n${'    x: 1\n'.repeat(10)}`;
    const facts = await run('app/pnpm-lock.yaml', lock);
    expect(facts.packages).toHaveLength(MAX_PACKAGES_PER_FILE + 1);
    expect(facts.packages?.at(-1)?.name).toBe(`p${MAX_PACKAGES_PER_FILE}`);
    expect(facts.warnings).toBeUndefined();
  });

  it('says a cut section was not read to its end when its entries made fewer packages than the bound', async () => {
    const n = MAX_PACKAGES_PER_FILE + 5_000;
    // Entries whose key names no package and with no name or version field make none.
    const entries = Array.from({ length: n }, (_, i) => (i % 2 ? `  p${i}@1.0.${i}:\n    dev: false\n` : `  junk${i}:\n    dev: false\n`)).join('');
    const facts = await run('app/pnpm-lock.yaml', `lockfileVersion: '6.0'\npackages:\n${entries}`);
    expect(facts.packages!.length).toBeLessThanOrEqual(MAX_PACKAGES_PER_FILE);
    expect(facts.warnings).toEqual([`app/pnpm-lock.yaml: more than ${MAX_PACKAGES_PER_FILE} entries in "packages"; the rest were not read`]);
  });

  it('parses YAML no pnpm writes with the yaml package only in a small file', async () => {
    const anchored = "lockfileVersion: '6.0'\npackages:\n  /a@1.0.0: &x\n    dev: true\n  /b@2.0.0: *x\n";
    expect((await run('app/pnpm-lock.yaml', anchored)).packages?.map((p) => [p.name, p.dev])).toEqual([
      ['a', true],
      ['b', true],
    ]);
    const big = `${anchored}${'  /c@1.0.0: {}\n'.repeat(200_000)}`;
    expect(await run('app/pnpm-lock.yaml', big)).toEqual({
      warnings: ['app/pnpm-lock.yaml: YAML no pnpm writes (a value starting with "&", line 3) in a file over 1048576 bytes; skipped'],
    });
  });
});

describe('installed package.json', () => {
  it('reads name, version and licence forms', async () => {
    expect(
      await run('app/node_modules/express/node_modules/depd/package.json', {
        name: 'depd',
        version: '1.1.2',
        license: 'MIT',
      }),
    ).toEqual({
      packages: [
        {
          type: 'npm',
          name: 'depd',
          version: '1.1.2',
          licenses: ['MIT'],
          paths: ['app/node_modules/express/node_modules/depd/package.json'],
          properties: { installPath: 'app/node_modules/express/node_modules/depd' },
        },
      ],
    });

    const scoped = await run('usr/lib/node_modules/@angular/cli/package.json', {
      name: '@angular/cli',
      version: '17.1.0',
      license: { type: 'MIT', url: 'https://example.invalid/LICENSE' },
    });
    expect(scoped.packages?.[0]).toMatchObject({ namespace: '@angular', name: 'cli', licenses: ['MIT'] });

    const legacy = await run('node_modules/old/package.json', {
      name: 'old',
      version: '0.2.0',
      licenses: [{ type: 'MIT' }, { type: 'Apache-2.0' }],
    });
    expect(legacy.packages?.[0]?.licenses).toEqual(['MIT', 'Apache-2.0']);
  });

  it('ignores manifests without identity and warns on bad JSON', async () => {
    expect(await run('node_modules/stub/package.json', { private: true })).toEqual({});
    expect(await run('node_modules/bad/package.json', '{"name": "bad",')).toMatchObject({
      warnings: [expect.stringMatching(/^node_modules\/bad\/package\.json: invalid JSON: /)],
    });
  });

  it('strips a UTF-8 byte order mark', async () => {
    const facts = await run('node_modules/bom/package.json', '\ufeff{"name":"bom","version":"1.0.0"}');
    expect(facts.packages?.[0]?.version).toBe('1.0.0');
  });
});

describe('npm JSON bounds', () => {
  const doc = (extra: string) => `{"lockfileVersion":3,"packages":{"node_modules/left-pad":{"version":"1.3.0","extra":${extra}}}}`;
  it('refuses JSON nested deeper than any lockfile, with a warning', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    expect(await run('app/package-lock.json', doc(deep))).toEqual({ warnings: ['app/package-lock.json: JSON nested deeper than 1000 levels; skipped'] });
  });

  it('still reads a file nested a few hundred levels deep', async () => {
    const facts = await run('app/package-lock.json', doc(`${'['.repeat(500)}${']'.repeat(500)}`));
    expect(facts.packages).toEqual([expect.objectContaining({ name: 'left-pad', version: '1.3.0' })]);
  });
});
