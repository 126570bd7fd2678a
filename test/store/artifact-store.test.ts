import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { SqliteRegistryMetadata, type IndexedPackage } from '../../src/store/index.js';

const D = (n: number) => `sha256:${String(n).repeat(64).slice(0, 64)}`;
const deb = (name: string, sourceName: string | null): IndexedPackage => ({ type: 'deb', name, version: '1.0-1', purl: `pkg:deb/debian/${name}@1.0-1`, sourceName });

let dir: string | undefined;
let meta: SqliteRegistryMetadata | undefined;
afterEach(async () => {
  await meta?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
  meta = undefined;
  dir = undefined;
});

async function open(): Promise<SqliteRegistryMetadata> {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-artifacts-'));
  meta = await SqliteRegistryMetadata.open(dir);
  return meta;
}

describe('the artifact store', () => {
  it('finds digests by package name or by source package, each digest once and in order', async () => {
    const { artifacts } = await open();
    await artifacts.putFacts(D(3), Buffer.from('x'), [deb('libssl3', 'openssl'), deb('openssl', 'openssl')]);
    await artifacts.putFacts(D(1), Buffer.from('x'), [deb('openssl', null)]);
    await artifacts.putFacts(D(2), Buffer.from('x'), [deb('libcrypto3', 'openssl'), deb('zlib1g', 'zlib')]);
    await artifacts.putFacts(D(4), Buffer.from('x'), [{ ...deb('openssl', null), type: 'apk', purl: 'pkg:apk/alpine/openssl@1' }]);
    expect(await artifacts.digestsWithPackage('deb', 'openssl')).toEqual([D(1), D(2), D(3)]);
    expect(await artifacts.digestsWithPackage('deb', 'zlib')).toEqual([D(2)]);
    expect(await artifacts.digestsWithPackage('deb', 'zlib1g')).toEqual([D(2)]);
    expect(await artifacts.digestsWithPackage('apk', 'openssl')).toEqual([D(4)]);
    expect(await artifacts.digestsWithPackage('deb', 'absent')).toEqual([]);
  });

  it('writes many verdicts at once and returns the status each replaced, in order', async () => {
    const { artifacts } = await open();
    const v = (repository: string, digest: string, status: 'pass' | 'fail') => ({ repository, digest, status, verdict: `{"status":"${status}"}`, evaluatedAt: '2026-01-01T00:00:00Z' });
    expect(await artifacts.putVerdict(v('a/b', D(1), 'pass'))).toBeNull();
    expect(await artifacts.putVerdicts([])).toEqual([]);
    expect(await artifacts.putVerdicts([v('a/b', D(1), 'fail'), v('a/b', D(2), 'pass'), v('a/c', D(1), 'fail')])).toEqual(['pass', null, null]);
    expect((await artifacts.listVerdicts()).map((r) => `${r.repository}@${r.digest}=${r.status}`)).toEqual([`a/b@${D(1)}=fail`, `a/b@${D(2)}=pass`, `a/c@${D(1)}=fail`]);
  });
});
