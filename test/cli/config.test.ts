import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/cli/config.js';

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-config-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe('paths in portcullis.yaml', () => {
  it('reads data and cacheDir relative to the file, as policy and serve.tls are, wherever the command starts', () => {
    const dir = join(tmp, 'etc');
    mkdirSync(dir);
    const file = join(dir, 'portcullis.yaml');
    writeFileSync(file, 'data: ./data\ncacheDir: cache\npolicy: ./policy.yaml\n');
    const config = loadConfig(file, {});
    expect(config.data).toBe(join(dir, 'data'));
    expect(config.cacheDir).toBe(join(dir, 'cache'));
    expect(config.policy).toBe(join(dir, 'policy.yaml'));
  });

  it('keeps the default data folder and the environment relative to the working folder', () => {
    const file = join(tmp, 'other.yaml');
    writeFileSync(file, 'limits: { maxEntries: 10 }\n');
    expect(loadConfig(file, {}).data).toBe(resolve('data'));
    const fromEnv = loadConfig(file, { PORTCULLIS_DATA: 'elsewhere', PORTCULLIS_CACHE_DIR: 'c' });
    expect(fromEnv.data).toBe(resolve('elsewhere'));
    expect(fromEnv.cacheDir).toBe('c');
  });
});
