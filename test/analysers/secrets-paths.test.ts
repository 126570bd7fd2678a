import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { analyseInput } from '../../src/analyse/index.js';
import { createSecretAnalyser } from '../../src/analyse/analysers/secrets.js';
import { parseImageInput } from '../../src/oci/index.js';
import { buildRuleSet } from '../../src/secrets/index.js';
import { writeOciLayout } from '../helpers/image-builder.js';

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-secret-paths-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const TOKEN = 'GITHUB_TOKEN="ghp_R8f2kQ9zLmX4vB7nT1cY6hW3pJ5sD0gA2eKq"\n';
const file = { size: TOKEN.length, mode: 0o644 };

describe('the secret analyser and allowed paths', () => {
  it('refuses allowed paths before their content is read, user globs included', () => {
    const builtIn = createSecretAnalyser();
    expect(builtIn.wants('app/node_modules/x/README.md', file)).toBe(false);
    expect(builtIn.wants('app/node_modules/x/test/fixture.js', file)).toBe(false);
    expect(builtIn.wants('app/node_modules/x/index.js', file)).toBe(true);
    expect(builtIn.wants('app/fixtures/creds.env', file)).toBe(true);
    const custom = createSecretAnalyser(
      buildRuleSet({
        source: 'test',
        rules: [],
        allowValues: [],
        disabledRules: [],
        allowPaths: ['app/fixtures/**'],
      }),
    );
    expect(custom.wants('app/fixtures/creds.env', file)).toBe(false);
    expect(custom.wants('app/node_modules/x/README.md', file)).toBe(false);
    expect(custom.wants('app/config.env', file)).toBe(true);
  });

  it('reports a token in a wanted file and none in allowed ones, end to end', async () => {
    const dir = join(tmp, 'img');
    await writeOciLayout(dir, [
      [
        { name: 'app/node_modules/x/README.md', content: TOKEN },
        { name: 'app/node_modules/x/test/fixture.js', content: TOKEN },
        { name: 'app/node_modules/x/index.js', content: TOKEN },
        { name: 'usr/share/doc/x/README', content: TOKEN },
      ],
    ]);
    const [r] = await analyseInput(parseImageInput(`oci:${dir}`), { cacheDir: null, secrets: true });
    expect(r!.secrets!.map((s) => s.target)).toEqual(['app/node_modules/x/index.js']);
  });
});
