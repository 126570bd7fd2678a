import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { analyseInput } from '../../src/analyse/index.js';
import { parseImageInput, parsePlatform } from '../../src/oci/index.js';
import { writeOciLayout } from '../helpers/image-builder.js';

// A single-platform image has no other platform to pick, so it is scanned whatever --platform says;
// these tests hold that a --platform it does not match is reported with the results.
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-platform-'));
const dir = join(tmp, 'img');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
beforeAll(async () => {
  // writeOciLayout's config says linux/amd64.
  await writeOciLayout(dir, [[{ name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' }]]);
});

async function scan(opts: { platform?: string; allPlatforms?: boolean }) {
  const results = await analyseInput(parseImageInput(`oci:${dir}`), {
    cacheDir: null,
    platform: opts.platform ? parsePlatform(opts.platform) : undefined,
    allPlatforms: opts.allPlatforms,
  });
  expect(results).toHaveLength(1);
  return results[0]!;
}

const mismatch = /single-platform image for linux\/amd64, not /;

describe('--platform on a single-platform image', () => {
  it('scans the image and says that it is for another platform', async () => {
    const r = await scan({ platform: 'linux/arm64' });
    expect(r.image.platform).toEqual({ os: 'linux', architecture: 'amd64', variant: undefined });
    expect(r.os?.family).toBe('alpine');
    expect(r.warnings.filter((w) => mismatch.test(w))).toEqual([
      `oci:${dir} is a single-platform image for linux/amd64, not linux/arm64; scanned it as it is`,
    ]);
  });

  it('says so for a variant the image does not have, too', async () => {
    const r = await scan({ platform: 'linux/amd64/v3' });
    expect(r.warnings.some((w) => mismatch.test(w))).toBe(true);
  });

  it('is silent when the platform matches, when none was asked for, and with --all-platforms', async () => {
    for (const opts of [{ platform: 'linux/amd64' }, {}, { platform: 'linux/arm64', allPlatforms: true }]) {
      const r = await scan(opts);
      expect(
        r.warnings.filter((w) => mismatch.test(w)),
        JSON.stringify(opts),
      ).toEqual([]);
    }
  });
});
