import { parseAllDocuments } from 'yaml';
import { describe, expect, it } from 'vitest';
import { EXACT_SCALAR, readYamlLines, SCALAR, type Spec } from '../../src/analyse/analysers/lock-yaml-lines.js';

const DEPS: Spec = { '*': { version: SCALAR } };
const SPEC: Spec = {
  lockfileVersion: EXACT_SCALAR,
  importers: { '*': { dependencies: DEPS, devDependencies: DEPS } },
  packages: { '*': { name: SCALAR, version: SCALAR, dev: SCALAR } },
  snapshots: { '*': { dependencies: DEPS } },
};

/** What the yaml package gives for the whole text, cut down to what `spec` names: the reference. */
function reference(text: string, spec: Spec): unknown {
  const docs = parseAllDocuments(text, { uniqueKeys: false });
  const all = Array.isArray(docs) ? docs : [docs];
  return reduce(all[all.length - 1]?.toJS(), spec);
}

function reduce(v: unknown, spec: Spec | number): unknown {
  if (Array.isArray(v)) return [];
  if (typeof v !== 'object' || v === null) return v;
  if (typeof spec === 'number') return {};
  const out: Record<string, unknown> = {};
  for (const [k, value] of Object.entries(v)) {
    const child = Object.hasOwn(spec, k) ? spec[k] : spec['*'];
    if (child !== undefined) Object.defineProperty(out, k, { value: reduce(value, child), enumerable: true, writable: true, configurable: true });
  }
  return out;
}

function read(text: string, spec: Spec = SPEC, maxEntries?: number) {
  return readYamlLines(Buffer.from(text), spec, { maxEntries });
}

const LOCK = `lockfileVersion: '9.0'

settings:
  autoInstallPeers: true # a comment

importers:

  .:
    dependencies:
      debug:
        specifier: ^4.3.4
        version: 4.3.4(supports-color@8.1.1)
      '@scope/a': {specifier: ^1.0.0, version: 1.0.0}
    devDependencies:
      mocha:
        specifier: ^10.2.0
        version: 10.2.0

packages:

  debug@4.3.4:
    resolution: {integrity: sha512-AAAA}
    engines: {node: '>=6.0'}
    deprecated: |-
      text: that looks like a key
        # and a comment

      over lines
    cpu:
    - x64
    peerDependenciesMeta:
      supports-color:
        optional: true

  '@scope/a@1.0.0':
    resolution: {tarball: 'https://x/a.tgz'}
    name: '@scope/a'
    version: "1.0.0"
    dev: false

  mocha@10.2.0: {resolution: {integrity: x}, dev: true}
  n@1.0: {}
  numbers@1.0.0:
    version: 1.0
    name: 0x1F
  __proto__@1.0.0:
    dev: true
  quoted@1.0.0:
    name: 'it''s'
    version: "a\\x41"

snapshots:

  debug@4.3.4(supports-color@8.1.1):
    dependencies:
      ms: 2.1.2 # comment
      '__proto__': ~
  mocha@10.2.0: {}
`;

describe('readYamlLines', () => {
  it('keeps what the yaml package gives at the places the spec names, and nothing else', () => {
    const got = read(LOCK);
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    expect(got.value).toEqual(reference(LOCK, SPEC));
    const packages = got.value['packages'] as Record<string, Record<string, unknown>>;
    expect(packages['numbers@1.0.0']).toEqual({ version: 1, name: 31 });
    expect(packages['quoted@1.0.0']).toEqual({ name: "it's", version: 'aA' });
    expect(packages['debug@4.3.4']).toEqual({});
    expect(Object.hasOwn(packages, '__proto__@1.0.0')).toBe(true);
    expect(Object.getPrototypeOf(got.value['snapshots'])).toBe(Object.prototype);
  });

  it('keeps the last document, with CRLF line ends and a byte order mark', () => {
    const text = `\uFEFF---\nlockfileVersion: '9.0'\npackages:\n  env@1.0.0: {}\n---\n${LOCK}`.replaceAll('\n', '\r\n');
    const got = read(text);
    expect(got.ok && got.value).toEqual(reference(LOCK, SPEC));
  });

  it('stops reading a section one entry past maxEntries and names it', () => {
    const entries = Array.from({ length: 50 }, (_, i) => `  p${i}@1.0.0:\n    dev: true\n`).join('');
    // Past the bound an entry the yaml package would refuse: never read.
    const got = read(`lockfileVersion: 5.4\npackages:\n${entries}  broken: {\n    x\nsnapshots:\n  a: {}\n`, SPEC, 10);
    expect(got.ok).toBe(true);
    if (!got.ok) return;
    expect(Object.keys(got.value['packages'] as object)).toHaveLength(11);
    expect(got.value['snapshots']).toEqual({ a: {} });
    expect(got.cutSections).toEqual(['packages']);
  });

  it.each([
    ['an anchor', 'packages:\n  a@1.0.0: &x\n    dev: true\n', 2],
    ['an alias', 'packages:\n  a@1.0.0:\n    dev: *x\n', 3],
    ['a tag', 'packages:\n  a@1.0.0:\n    version: !!str 1.0\n', 3],
    ['a block scalar read', 'packages:\n  a@1.0.0:\n    version: |\n      1.0.0\n', 3],
    ['a scalar on two lines', 'packages:\n  a@1.0.0:\n    version: 1.0.0\n      more\n', 4],
    ['an explicit key', 'packages:\n  ? [a]\n  : b\n', 2],
    ['a tab', 'packages:\n\ta@1.0.0: {}\n', 2],
    ['a flow collection over lines', 'packages:\n  a@1.0.0: {dev: true,\n    name: a}\n', 2],
    ['a mapping inside a scalar', 'packages:\n  a@1.0.0:\n    version: a: b\n', 3],
    ['a document end marker', 'packages: {}\n...\n', 2],
  ])('gives up on %s, with the line', (_what, body, line) => {
    const got = read(`lockfileVersion: 5.4\n${body}`);
    expect(got.ok).toBe(false);
    if (!got.ok) expect(got.line).toBe(line + 1);
  });

  it('passes over values it does not read whatever they hold', () => {
    const text = "lockfileVersion: 5.4\nsettings: &s\n  x: *y\n  ? [a]\n  : b\n  \tz: 1\nother: |\n  a: b\npackages:\n  a@1.0.0: {}\n";
    const got = read(text);
    expect(got.ok && got.value).toEqual({ lockfileVersion: 5.4, packages: { 'a@1.0.0': {} } });
  });
});
