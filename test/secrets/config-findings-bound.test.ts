import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyseInput } from '../../src/analyse/index.js';
import { MAX_SECRETS_PER_FILE, SECRET_MAX_FILE_BYTES } from '../../src/analyse/analysers/secrets.js';
import { parseImageInput } from '../../src/oci/index.js';
import { writeOciLayout } from '../helpers/image-builder.js';

// The image config is searched for secrets like a file is, and bounded like one: a config may be
// 4 MiB, and 135,000 Env entries of key ids gave as many findings (a 28 MB report, 435 MB).

const tmp = mkdtempSync(join(tmpdir(), 'pc-cfg-secrets-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
function keyId(i: number): string {
  let x = (i + 1) * 2654435761;
  let s = 'AKIA';
  for (let k = 0; k < 16; k++) {
    x = (x * 1103515245 + 12345) % 2147483648;
    s += B32[(x >>> 16) % 32];
  }
  return s;
}

async function scan(name: string, config: Record<string, unknown>, history?: Array<Record<string, unknown>>) {
  const dir = join(tmp, name);
  await writeOciLayout(dir, [[{ name: 'etc/hostname', content: 'x\n' }]], { config, history });
  const [r] = await analyseInput(parseImageInput(`oci:${dir}`), { cacheDir: null, secrets: true, misconfig: true });
  return r!;
}

describe('secrets in the image config', () => {
  it('reports every finding of a config with fewer than the bound, and no warning', async () => {
    const r = await scan('few', { Env: [`A=${keyId(1)}`, `B=${keyId(2)}`] }, [{ created_by: `RUN echo ${keyId(3)}` }]);
    expect(r.secrets!.map((s) => s.target)).toEqual(['Env[0]', 'Env[1]', 'history[0].created_by']);
    expect(r.warnings).toEqual([]);
  });

  it('keeps the first findings of a hostile config, in order, and counts the rest in a warning', async () => {
    const env = Array.from({ length: 3_000 }, (_, i) => `K${i}=${keyId(i)}`);
    const history = Array.from({ length: 2_000 }, (_, i) => ({ created_by: `RUN echo ${keyId(10_000 + i)}`, empty_layer: true }));
    const r = await scan('many', { Env: env }, history);
    const config = r.secrets!.filter((s) => s.location !== 'file');
    expect(config).toHaveLength(MAX_SECRETS_PER_FILE);
    expect(config.map((s) => s.target)).toEqual(Array.from({ length: MAX_SECRETS_PER_FILE }, (_, i) => `Env[${i}]`));
    expect(r.warnings).toContain(`image config: ${5_000 - MAX_SECRETS_PER_FILE} more secrets past the first ${MAX_SECRETS_PER_FILE} not reported`);
    // The misconfiguration check that lists the config's secrets sees the bounded list.
    expect(r.misconfigurations!.find((m) => m.id === 'PC-IMG-007')).toBeDefined();
  });

  it('searches at most as many characters as a file, and says how many entries were left', async () => {
    // One label that alone is over the bound is left; what fits after it is still searched.
    const big = `${keyId(1)} `.repeat(Math.ceil(SECRET_MAX_FILE_BYTES / 21) + 1);
    const r = await scan('long', { Env: [`A=${keyId(2)}`], Labels: { big } }, [{ created_by: `RUN echo ${keyId(3)}` }]);
    expect(r.secrets!.map((s) => s.target)).toEqual(['Env[0]', 'history[0].created_by']);
    expect(r.warnings).toEqual([
      `image config: searched for secrets up to ${SECRET_MAX_FILE_BYTES} characters; 1 of its strings (${big.length + 'big='.length} characters) were not searched`,
    ]);
  });
});
