import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { writeOciLayout } from '../helpers/image-builder.js';

// Names whose order differs between locales: Estonian sorts "z" between "s" and "t", Danish
// sorts "aa" after "z", and case and punctuation weigh differently than in code-unit order.
const NAMES = ['tar', 'zlib', 'sed', 'aa-utils', 'Zeta', 'lib-a', 'lib.b', 'lib+c', 'abc'];
const LOCALES = ['C.UTF-8', 'et_EE.UTF-8', 'da_DK.UTF-8'];

const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-locale-'));
const image = join(tmp, 'img');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  const db = NAMES.map((n) => `P:${n}\nV:1.0-r0\nA:x86_64\nL:MIT\n`).join('\n');
  await writeOciLayout(image, [
    [
      { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' },
      { name: 'lib/apk/db/installed', content: db },
    ],
  ]);
});

async function sbomNames(format: 'cyclonedx' | 'spdx', locale: string): Promise<string[]> {
  const { stdout } = await promisify(execFile)(
    process.execPath,
    [CLI, 'sbom', `oci:${image}`, '--format', format, '--no-cache', '--data', join(tmp, 'data')],
    { env: { ...process.env, LC_ALL: locale, LANG: locale, PORTCULLIS_CODE_CACHE: '0' } },
  );
  const doc = JSON.parse(stdout) as { components?: { name: string }[]; packages?: { name: string }[] };
  const names = (doc.components ?? doc.packages ?? []).map((c) => c.name);
  return names.filter((n) => NAMES.includes(n));
}

describe('SBOM order does not depend on the locale', () => {
  for (const format of ['cyclonedx', 'spdx'] as const) {
    it(`${format}: the same package order under ${LOCALES.join(', ')}, by code units`, async () => {
      // The locale really is in effect in a child process that is given it.
      const { stdout } = await promisify(execFile)(
        process.execPath,
        ['-e', 'process.stdout.write(["tar","zlib","sed"].sort((a,b)=>a.localeCompare(b)).join())'],
        { env: { ...process.env, LC_ALL: 'et_EE.UTF-8', LANG: 'et_EE.UTF-8' } },
      );
      expect(stdout).toBe('sed,zlib,tar');

      const byLocale = await Promise.all(LOCALES.map((l) => sbomNames(format, l)));
      const codeUnitOrder = [...NAMES].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
      for (const [i, names] of byLocale.entries()) expect(names, LOCALES[i]).toEqual(codeUnitOrder);
    }, 60_000);
  }
});
