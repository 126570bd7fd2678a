import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../helpers/fixtures.js';

// dist/cli/one-shot.js decides, from the command line alone, whether zod compiles its parsers.
const oneShot = pathToFileURL(join(REPO_ROOT, 'dist', 'cli', 'one-shot.js')).href;
const zod = pathToFileURL(join(REPO_ROOT, 'node_modules', 'zod', 'index.js')).href;

async function jitlessFor(args: string[]): Promise<unknown> {
  const script = `await import(${JSON.stringify(oneShot)}); const { z } = await import(${JSON.stringify(zod)}); process.stdout.write(JSON.stringify(z.config().jitless ?? null));`;
  const { stdout } = await promisify(execFile)(process.execPath, [
    '--input-type=module',
    '-e',
    script,
    '--',
    // With -e, process.argv[1] is the first of these; the CLI's own argv[1] is its script.
    'portcullis.js',
    ...args,
  ]);
  return JSON.parse(stdout);
}

describe('zod parser compilation in one-shot commands', () => {
  it('is off for scan, sbom and the other one-shot commands', async () => {
    expect(await jitlessFor(['scan', 'oci-archive:x.tar'])).toBe(true);
    expect(await jitlessFor(['sbom', 'oci:dir'])).toBe(true);
    expect(await jitlessFor(['db', 'import', 'x'])).toBe(true);
  });

  it('stays on for serve, which parses requests all day', async () => {
    expect(await jitlessFor(['serve', '--listen', '127.0.0.1:5000'])).toBe(null);
  });
});
