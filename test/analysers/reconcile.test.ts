import { describe, expect, it } from 'vitest';
import { npmAnalyser } from '../../src/analyse/analysers/npm.js';
import { reconcilePackages } from '../../src/analyse/reconcile.js';
import type { Package, PackageRecord } from '../../src/sbom/model.js';

const layer = { index: 0, digest: 'sha256:0000000000000000000000000000000000000000000000000000000000000000' };

function pkg(r: PackageRecord): Package {
  return {
    ...r,
    purl: `pkg:${r.type}/${r.namespace ? `${encodeURIComponent(r.namespace)}/` : ''}${r.name}@${r.version}`,
    paths: r.paths ?? [],
    licenses: r.licenses ?? [],
    layer,
    foundBy: 'npm',
  };
}

async function analyse(path: string, doc: object): Promise<Package[]> {
  const buf = Buffer.from(JSON.stringify(doc), 'utf8');
  const facts = await npmAnalyser.analyse(
    { path, size: buf.length, mode: 0o644, content: buf },
    { scratchDir: '/tmp' },
  );
  return (facts.packages ?? []).map(pkg);
}

describe('reconcilePackages', () => {
  it('lets the installed package.json win over the lockfile entry at the same install path', async () => {
    const lock = await analyse('app/package-lock.json', {
      lockfileVersion: 3,
      packages: {
        '': { name: 'app', version: '1.0.0' },
        'node_modules/express': { version: '4.18.2' },
        'node_modules/express/node_modules/depd': { version: '1.1.1', dev: true },
        'node_modules/left-pad': { version: '1.3.0' },
      },
    });
    const installed = await analyse('app/node_modules/express/node_modules/depd/package.json', {
      name: 'depd',
      version: '1.1.2',
      license: 'MIT',
    });
    const input = [...lock, ...installed];
    const snapshot = structuredClone(input);

    const out = reconcilePackages(input);

    expect(out.map((p) => [p.name, p.version])).toEqual([
      ['express', '4.18.2'],
      ['left-pad', '1.3.0'],
      ['depd', '1.1.2'],
    ]);
    const depd = out.find((p) => p.name === 'depd');
    expect(depd).toMatchObject({
      version: '1.1.2',
      dev: true,
      licenses: ['MIT'],
      paths: ['app/node_modules/express/node_modules/depd/package.json', 'app/package-lock.json'],
      properties: { installPath: 'app/node_modules/express/node_modules/depd' },
    });
    expect(input).toEqual(snapshot);
  });

  it('drops exact duplicates but keeps the same package declared in different files', () => {
    const a = pkg({ type: 'pypi', name: 'six', version: '1.16.0', paths: ['a/requirements.txt'] });
    const b = pkg({ type: 'pypi', name: 'six', version: '1.16.0', paths: ['a/requirements.txt'] });
    const c = pkg({ type: 'pypi', name: 'six', version: '1.16.0', paths: ['b/requirements.txt'] });
    const d = pkg({
      type: 'npm',
      namespace: '@x',
      name: 'six',
      version: '1.16.0',
      paths: ['a/requirements.txt'],
    });
    expect(reconcilePackages([a, b, c, d])).toEqual([a, c, d]);
  });

  it('leaves lockfile entries without an installed counterpart alone', () => {
    const lockOnly = pkg({
      type: 'npm',
      name: 'ms',
      version: '2.1.3',
      paths: ['app/package-lock.json'],
      properties: { installPath: 'app/node_modules/ms' },
    });
    const elsewhere = pkg({
      type: 'npm',
      name: 'ms',
      version: '2.1.3',
      paths: ['other/node_modules/ms/package.json'],
      properties: { installPath: 'other/node_modules/ms' },
    });
    expect(reconcilePackages([lockOnly, elsewhere])).toEqual([lockOnly, elsewhere]);
  });
});
