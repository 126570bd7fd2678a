import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciError } from '../../src/errors.js';
import {
  defaultDockerConfigPath,
  lookupDockerCredentials,
  normaliseAuthKey,
} from '../../src/oci/docker-config.js';

const b64 = (s: string): string => Buffer.from(s, 'utf8').toString('base64');

describe('docker config credentials', () => {
  let dir: string;
  let config: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-dockercfg-'));
    config = join(dir, 'config.json');
    await writeFile(
      config,
      JSON.stringify({
        auths: {
          'ghcr.io': { auth: b64('octo:p:a:ss') },
          'https://index.docker.io/v1/': { auth: b64('hubuser:hubpass') },
          'http://localhost:5000': { username: 'local', password: 'secret' },
          'https://registry.example.com/v1/': { auth: b64('ex:pw') },
          'empty.example.com': {},
        },
        credHelpers: { 'gcr.io': 'gcloud' },
        credsStore: 'desktop',
      }),
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('decodes a base64 auth entry, keeping colons in the password', async () => {
    expect((await lookupDockerCredentials('ghcr.io', config)).credentials).toEqual({
      username: 'octo',
      password: 'p:a:ss',
    });
  });

  it('finds Docker Hub credentials stored under the legacy index URL', async () => {
    expect((await lookupDockerCredentials('registry-1.docker.io', config)).credentials).toEqual({
      username: 'hubuser',
      password: 'hubpass',
    });
  });

  it('matches keys written as URLs, with ports, case-insensitively', async () => {
    expect((await lookupDockerCredentials('localhost:5000', config)).credentials).toEqual({
      username: 'local',
      password: 'secret',
    });
    expect((await lookupDockerCredentials('Registry.Example.com', config)).credentials).toEqual({
      username: 'ex',
      password: 'pw',
    });
    expect((await lookupDockerCredentials('localhost:5001', config)).credentials).toBeUndefined();
  });

  it('notes credential helpers it does not run, without failing', async () => {
    expect(await lookupDockerCredentials('gcr.io', config)).toEqual({
      path: config,
      helper: 'docker-credential-gcloud',
    });
    expect(await lookupDockerCredentials('empty.example.com', config)).toEqual({
      path: config,
      helper: 'docker-credential-desktop',
    });
  });

  it('returns nothing for a missing file', async () => {
    expect(await lookupDockerCredentials('ghcr.io', join(dir, 'nope.json'))).toEqual({
      path: join(dir, 'nope.json'),
    });
  });

  it('refuses malformed JSON without quoting it', async () => {
    const bad = join(dir, 'bad.json');
    await writeFile(bad, '{"auths": {"x": {"auth": "c2VjcmV0"}');
    const err = await lookupDockerCredentials('x', bad).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciError);
    expect((err as OciError).code).toBe('DOCKER_CONFIG_INVALID');
    expect((err as OciError).message).not.toContain('c2VjcmV0');
  });

  it('resolves the default path from DOCKER_CONFIG', () => {
    expect(defaultDockerConfigPath({ DOCKER_CONFIG: '/etc/dock' })).toBe(join('/etc/dock', 'config.json'));
    expect(defaultDockerConfigPath({})).toMatch(/\.docker[/\\]config\.json$/);
  });

  it('normalises auth keys', () => {
    expect(normaliseAuthKey('https://index.docker.io/v1/')).toBe('registry-1.docker.io');
    expect(normaliseAuthKey('docker.io')).toBe('registry-1.docker.io');
    expect(normaliseAuthKey('http://LocalHost:5000/')).toBe('localhost:5000');
  });
});
