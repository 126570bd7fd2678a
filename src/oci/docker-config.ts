import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { OciError } from '../errors.js';
import { DOCKER_HUB_REGISTRY } from './registry-reference.js';

export interface RegistryCredentials {
  username: string;
  password: string;
  /**
   * An OAuth2 refresh token (`identitytoken` in the docker config), which `docker login` stores
   * in place of a password for some registries (Azure's); traded for an access token by POST.
   */
  identityToken?: string;
}

export interface DockerCredentialLookup {
  /** The config file consulted. */
  path: string;
  /** Credentials stored inline in `auths`, when there are any for the host. */
  credentials?: RegistryCredentials;
  /**
   * Set when the config delegates this host to a credential helper (`credHelpers` or
   * `credsStore`) that we do not run, so a caller can explain why no credentials were found.
   */
  helper?: string;
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`, as the docker CLI resolves it. */
export function defaultDockerConfigPath(env: NodeJS.ProcessEnv = process.env): string {
  const dir = env.DOCKER_CONFIG;
  return join(dir !== undefined && dir !== '' ? dir : join(homedir(), '.docker'), 'config.json');
}

// Docker Hub credentials are stored under the legacy index URL, whichever name was used to log in.
const DOCKER_HUB_KEYS = new Set(['index.docker.io', 'docker.io', 'registry-1.docker.io']);

/**
 * Reduces an `auths` key to a lowercase host[:port]. Keys are written as bare hosts or as URLs
 * (`https://index.docker.io/v1/`, `http://host:5000`), depending on the client that logged in.
 */
export function normaliseAuthKey(key: string): string {
  let host = key.trim().replace(/^[a-z][a-z0-9+.-]*:\/\//i, '');
  const slash = host.indexOf('/');
  if (slash !== -1) host = host.slice(0, slash);
  host = host.toLowerCase();
  return DOCKER_HUB_KEYS.has(host) ? DOCKER_HUB_REGISTRY : host;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function decodeAuth(auth: string): RegistryCredentials | undefined {
  const decoded = Buffer.from(auth, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/**
 * Finds credentials for `registry` (host[:port]) in a docker config file. A missing file means no
 * credentials; an unreadable or malformed one is an error, naming the file but never its content.
 * Credential helpers are not executed: running arbitrary `docker-credential-*` binaries from a
 * scanner is a step we keep explicit (use --username/--password-stdin instead).
 */
export async function lookupDockerCredentials(
  registry: string,
  configPath: string = defaultDockerConfigPath(),
): Promise<DockerCredentialLookup> {
  let text: string;
  try {
    text = await readFile(configPath, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { path: configPath };
    throw new OciError(
      'DOCKER_CONFIG_INVALID',
      `cannot read docker config ${configPath}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
      {
        subject: configPath,
      },
    );
  }
  let config: unknown;
  try {
    config = JSON.parse(text);
  } catch {
    // The parser's message can quote the file's content, which may hold credentials.
    throw new OciError('DOCKER_CONFIG_INVALID', `docker config ${configPath} is not valid JSON`, {
      subject: configPath,
    });
  }
  if (!isRecord(config)) {
    throw new OciError('DOCKER_CONFIG_INVALID', `docker config ${configPath} is not a JSON object`, {
      subject: configPath,
    });
  }

  const wanted = normaliseAuthKey(registry);
  const result: DockerCredentialLookup = { path: configPath };

  if (isRecord(config.auths)) {
    for (const [key, entry] of Object.entries(config.auths)) {
      if (normaliseAuthKey(key) !== wanted || !isRecord(entry)) continue;
      if (typeof entry.identitytoken === 'string' && entry.identitytoken !== '') {
        const user = typeof entry.auth === 'string' ? decodeAuth(entry.auth) : undefined;
        result.credentials = { username: user?.username ?? '', password: '', identityToken: entry.identitytoken };
        break;
      }
      if (typeof entry.auth === 'string' && entry.auth !== '') {
        const creds = decodeAuth(entry.auth);
        if (creds) {
          result.credentials = creds;
          break;
        }
      }
      if (typeof entry.username === 'string' && entry.username !== '' && typeof entry.password === 'string') {
        result.credentials = { username: entry.username, password: entry.password };
        break;
      }
    }
  }

  if (!result.credentials) {
    if (isRecord(config.credHelpers)) {
      for (const [key, helper] of Object.entries(config.credHelpers)) {
        if (normaliseAuthKey(key) === wanted && typeof helper === 'string')
          result.helper = `docker-credential-${helper}`;
      }
    }
    if (result.helper === undefined && typeof config.credsStore === 'string' && config.credsStore !== '') {
      result.helper = `docker-credential-${config.credsStore}`;
    }
  }
  return result;
}
