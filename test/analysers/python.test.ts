import { describe, expect, it } from 'vitest';
import { pythonAnalyser } from '../../src/analyse/analysers/python.js';
import type { FileFacts } from '../../src/analyse/types.js';

async function run(path: string, content: string): Promise<FileFacts> {
  const buf = Buffer.from(content, 'utf8');
  return pythonAnalyser.analyse(
    { path, size: buf.length, mode: 0o644, content: buf },
    { scratchDir: '/tmp' },
  );
}

const info = { size: 100, mode: 0o644 };

describe('pythonAnalyser.wants', () => {
  it.each([
    ['usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA', true],
    ['usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO', true],
    ['usr/lib/python3/dist-packages/python_apt-2.4.0.egg-info', true],
    ['app/poetry.lock', true],
    ['app/Pipfile.lock', true],
    ['app/requirements.txt', true],
    ['app/requirements-dev.txt', true],
    ['requirements.txt', true],
    ['usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/RECORD', false],
    ['app/METADATA', false],
    ['app/PKG-INFO', false],
    ['app/Cargo.lock', false],
    ['app/notes.txt', false],
    ['app/dev-requirements.txt', false],
  ])('%s -> %s', (path, expected) => {
    expect(pythonAnalyser.wants(path, info)).toBe(expected);
  });
});

describe('METADATA and PKG-INFO', () => {
  it('reads a dist-info METADATA with a License-Expression and normalises the name', async () => {
    const meta = `Metadata-Version: 2.4
Name: Typing_Extensions
Version: 4.12.2
Summary: Backported and Experimental Type Hints for Python 3.8+
License-Expression: PSF-2.0
Classifier: License :: OSI Approved :: Python Software Foundation License
Requires-Python: >=3.8

# Typing Extensions
License: this line is in the body and must be ignored
`;
    const path = 'usr/lib/python3.12/site-packages/typing_extensions-4.12.2.dist-info/METADATA';
    expect(await run(path, meta)).toEqual({
      packages: [
        {
          type: 'pypi',
          name: 'typing-extensions',
          version: '4.12.2',
          licenses: ['PSF-2.0'],
          paths: [path],
          properties: { originalName: 'Typing_Extensions' },
        },
      ],
    });
  });

  it('uses a short License field and keeps an already-normal name as is', async () => {
    const facts = await run(
      'site-packages/six-1.16.0.egg-info/PKG-INFO',
      'Metadata-Version: 1.2\nName: six\nVersion: 1.16.0\nLicense: MIT\nClassifier: License :: OSI Approved :: MIT License\n',
    );
    expect(facts).toEqual({
      packages: [
        {
          type: 'pypi',
          name: 'six',
          version: '1.16.0',
          licenses: ['MIT'],
          paths: ['site-packages/six-1.16.0.egg-info/PKG-INFO'],
        },
      ],
    });
  });

  it('falls back to classifiers when License holds the whole licence text or UNKNOWN', async () => {
    const fullText = `Metadata-Version: 2.1
Name: zope.interface
Version: 6.1
License: Zope Public License (ZPL) Version 2.1
        
        A copyright notice accompanies this license document that identifies the
        copyright holders.
Classifier: License :: OSI Approved :: Zope Public License
Classifier: Programming Language :: Python
Classifier: License :: Public Domain
`;
    const a = await run('x/zope.interface-6.1.dist-info/METADATA', fullText);
    expect(a.packages?.[0]).toMatchObject({
      name: 'zope-interface',
      licenses: ['Zope Public License', 'Public Domain'],
      properties: { originalName: 'zope.interface' },
    });

    const b = await run(
      'usr/lib/python3/dist-packages/python_apt-2.4.0.egg-info',
      'Metadata-Version: 1.1\nName: python-apt\nVersion: 2.4.0+ubuntu1\nLicense: UNKNOWN\nPlatform: UNKNOWN\n',
    );
    expect(b).toEqual({
      packages: [
        {
          type: 'pypi',
          name: 'python-apt',
          version: '2.4.0+ubuntu1',
          paths: ['usr/lib/python3/dist-packages/python_apt-2.4.0.egg-info'],
        },
      ],
    });
  });

  it('warns when Name or Version is missing', async () => {
    expect(await run('a/b.dist-info/METADATA', 'Metadata-Version: 2.1\nName: broken\n')).toEqual({
      warnings: ['a/b.dist-info/METADATA: missing Name or Version'],
    });
  });
});

describe('poetry.lock', () => {
  it('refuses a lockfile with more keys and tables than any real one, with a warning', async () => {
    const hostile = Array.from({ length: 20_000 }, (_, i) => `a${i}.b.c.d.e.f.g = 1\n`).join('');
    expect(await run('srv/poetry.lock', hostile)).toEqual({
      warnings: ['srv/poetry.lock: more than 100000 TOML keys and tables, more than any real lockfile; skipped'],
    });
  });

  it('still reads a large real-shaped lockfile (450 packages with 30 wheels each, 2.4 MB)', async () => {
    const wheel = (i: number, w: number) =>
      `    {file = "pkg_${i}-1.${i}.0-cp3${w % 10}-cp3${w % 10}-manylinux_2_17_x86_64.manylinux2014_x86_64.whl", hash = "sha256:${'0f'.repeat(32)}"},\n`;
    const pkg = (i: number) =>
      `[[package]]\nname = "pkg-${i}"\nversion = "1.${i}.0"\ndescription = "Package number ${i}, with a description."\noptional = false\npython-versions = ">=3.8"\ngroups = ["main"]\nfiles = [\n${Array.from({ length: 30 }, (_, w) => wheel(i, w)).join('')}]\n\n[package.dependencies]\nother = ">=1.0"\ncolorama = {version = "*", markers = "platform_system == \\"Windows\\""}\n\n[package.extras]\ntest = ["pytest (>=7.0)", "coverage[toml] (>=6.0)"]\n\n`;
    const lock = `${Array.from({ length: 450 }, (_, i) => pkg(i)).join('')}[metadata]\nlock-version = "2.0"\npython-versions = "^3.11"\ncontent-hash = "${'ab'.repeat(32)}"\n`;
    expect(lock.length).toBeGreaterThan(2_400_000);
    const facts = await run('srv/poetry.lock', lock);
    expect(facts.warnings).toBeUndefined();
    expect(facts.packages).toHaveLength(450);
    expect(facts.packages?.[449]).toMatchObject({ name: 'pkg-449', version: '1.449.0' });
  });

  it('reads packages with old category and new groups', async () => {
    const lock = `# This file is automatically @generated by Poetry and should not be changed by hand.

[[package]]
name = "Flask"
version = "3.0.0"
description = "A simple framework for building complex web applications."
optional = false
python-versions = ">=3.8"
category = "main"

[[package]]
name = "pytest"
version = "7.4.3"
description = "pytest: simple powerful testing with Python"
optional = false
python-versions = ">=3.7"
category = "dev"

[[package]]
name = "ruff"
version = "0.1.6"
description = "An extremely fast Python linter"
optional = false
python-versions = ">=3.7"
groups = ["dev"]

[[package]]
name = "click"
version = "8.1.7"
description = "Composable command line interface toolkit"
optional = false
python-versions = ">=3.7"
groups = ["main", "dev"]

[metadata]
lock-version = "2.0"
python-versions = "^3.11"
content-hash = "0000000000000000000000000000000000000000000000000000000000000000"
`;
    const facts = await run('srv/poetry.lock', lock);
    expect(facts).toEqual({
      packages: [
        {
          type: 'pypi',
          name: 'flask',
          version: '3.0.0',
          paths: ['srv/poetry.lock'],
          properties: { originalName: 'Flask' },
        },
        { type: 'pypi', name: 'pytest', version: '7.4.3', dev: true, paths: ['srv/poetry.lock'] },
        { type: 'pypi', name: 'ruff', version: '0.1.6', dev: true, paths: ['srv/poetry.lock'] },
        { type: 'pypi', name: 'click', version: '8.1.7', paths: ['srv/poetry.lock'] },
      ],
    });
  });

  it('warns on malformed TOML with a single line', async () => {
    const facts = await run('srv/poetry.lock', '[[package]]\nname = "x\nversion = 1\n');
    expect(facts.packages).toBeUndefined();
    expect(facts.warnings).toHaveLength(1);
    expect(facts.warnings?.[0]).toMatch(/^srv\/poetry\.lock: invalid TOML: /);
    expect(facts.warnings?.[0]).not.toContain('\n');
  });
});

describe('Pipfile.lock', () => {
  it('reads default and develop sections', async () => {
    const lock = JSON.stringify({
      _meta: {
        hash: { sha256: 'abc' },
        'pipfile-spec': 6,
        requires: { python_version: '3.11' },
        sources: [],
      },
      default: {
        requests: { hashes: ['sha256:aaa'], index: 'pypi', version: '==2.31.0' },
        'charset-normalizer': { version: '==3.3.2' },
        mylib: { editable: true, path: '.' },
      },
      develop: { Black: { version: '==23.11.0' } },
    });
    expect(await run('app/Pipfile.lock', lock)).toEqual({
      packages: [
        { type: 'pypi', name: 'requests', version: '2.31.0', paths: ['app/Pipfile.lock'] },
        { type: 'pypi', name: 'charset-normalizer', version: '3.3.2', paths: ['app/Pipfile.lock'] },
        {
          type: 'pypi',
          name: 'black',
          version: '23.11.0',
          dev: true,
          paths: ['app/Pipfile.lock'],
          properties: { originalName: 'Black' },
        },
      ],
    });
  });

  it('warns on malformed JSON', async () => {
    expect((await run('app/Pipfile.lock', '{"default": ')).warnings?.[0]).toMatch(
      /^app\/Pipfile\.lock: invalid JSON: /,
    );
  });
});

describe('requirements*.txt', () => {
  it('keeps only exact pins', async () => {
    const req = `# production requirements
--index-url https://pypi.example.invalid/simple
-r base.txt
-e git+https://example.invalid/repo.git#egg=thing
Django==4.2.7  # LTS
requests[socks]==2.31.0
urllib3==2.1.0 ; python_version >= "3.8"
gunicorn>=21.0
celery~=5.3
numpy==1.26.*
PyYAML == 6.0.1
cryptography==41.0.7 \\
    --hash=sha256:0000000000000000000000000000000000000000000000000000000000000000 \\
    --hash=sha256:1111111111111111111111111111111111111111111111111111111111111111
zope.interface===6.1
https://example.invalid/pkgs/thing-1.0.tar.gz
`;
    const facts = await run('app/requirements.txt', req);
    expect(facts.packages?.map((p) => [p.name, p.version, p.properties?.['originalName']])).toEqual([
      ['django', '4.2.7', 'Django'],
      ['requests', '2.31.0', undefined],
      ['urllib3', '2.1.0', undefined],
      ['pyyaml', '6.0.1', 'PyYAML'],
      ['cryptography', '41.0.7', undefined],
      ['zope-interface', '6.1', 'zope.interface'],
    ]);
    expect(facts.packages?.every((p) => p.type === 'pypi' && p.paths?.[0] === 'app/requirements.txt')).toBe(
      true,
    );
    expect(facts.warnings).toBeUndefined();
  });
});

describe('python JSON bounds', () => {
  const doc = (extra: string) => `{"default":{"requests":{"version":"==2.31.0","extra":${extra}}}}`;
  it('refuses JSON nested deeper than any lockfile, with a warning', async () => {
    const deep = `${'['.repeat(5000)}${']'.repeat(5000)}`;
    expect(await run('app/Pipfile.lock', doc(deep))).toEqual({ warnings: ['app/Pipfile.lock: JSON nested deeper than 1000 levels; skipped'] });
  });

  it('still reads a file nested a few hundred levels deep', async () => {
    const facts = await run('app/Pipfile.lock', doc(`${'['.repeat(500)}${']'.repeat(500)}`));
    expect(facts.packages).toEqual([expect.objectContaining({ name: 'requests', version: '2.31.0' })]);
  });
});
