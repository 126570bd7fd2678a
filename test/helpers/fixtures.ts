import { existsSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
export const FIXTURES = resolve(REPO_ROOT, '..', 'shared', 'fixtures');
export const IMAGES = join(FIXTURES, 'images');
export const HAVE_FIXTURES = existsSync(join(IMAGES, 'MANIFEST.md'));

/** Tests that need ../shared/fixtures call this in their describe block name so the skip is visible. */
export const FIXTURE_SKIP_REASON = HAVE_FIXTURES ? '' : ' [SKIPPED: ../shared/fixtures is absent]';

export function fixtureImage(name: string): string {
  return join(IMAGES, name);
}
