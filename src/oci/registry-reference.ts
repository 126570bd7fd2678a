import { OciError } from '../errors.js';
import { isDigest } from './digest.js';

/** A registry image reference split into the parts the Distribution API needs. */
export interface RegistryReference {
  /** Host and optional port, as used in URLs (`registry-1.docker.io`, `127.0.0.1:5000`, `[::1]:5000`). */
  registry: string;
  /** Repository path, lowercase, e.g. `library/alpine`. */
  repository: string;
  /** Tag; `latest` when the reference names neither a tag nor a digest. */
  tag?: string;
  /** Digest; when present it wins over the tag for fetching and is verified. */
  digest?: string;
}

/** Docker Hub's API host; `docker.io` and `index.docker.io` are names users write for it. */
export const DOCKER_HUB_REGISTRY = 'registry-1.docker.io';
const DOCKER_HUB_ALIASES = new Set(['docker.io', 'index.docker.io', 'registry-1.docker.io']);

// The distribution spec's repository grammar: lowercase components joined by `/`, each made of
// alphanumeric runs separated by `.`, `_`, `__` or runs of `-`.
const COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^${COMPONENT}(?:/${COMPONENT})*$`);
const TAG_RE = /^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$/;
// A DNS name or IPv4 address, or a bracketed IPv6 address, with an optional port.
const HOST_RE =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
// Docker's own limit on the full name; registries reject longer ones anyway.
const MAX_NAME_LENGTH = 255;

function invalid(input: string, why: string): OciError {
  return new OciError('REFERENCE_INVALID', `invalid image reference "${input}": ${why}`, { subject: input });
}

/**
 * Parses `[HOST[:PORT]/]REPO[:TAG][@DIGEST]` the way docker does: the first path segment is a
 * registry host only if it contains `.` or `:` or is `localhost`, otherwise the image is on
 * Docker Hub, where single-segment names live under `library/`.
 */
export function parseRegistryReference(input: string): RegistryReference {
  const s = input.trim();
  if (s === '') throw invalid(input, 'it is empty');
  if (/\s/.test(s)) throw invalid(input, 'it contains whitespace');
  if (/^[a-z][a-z0-9+.-]*:\/\//i.test(s)) {
    throw invalid(input, 'write it without a URL scheme, as HOST[:PORT]/REPOSITORY[:TAG|@DIGEST]');
  }

  let rest = s;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) {
      throw invalid(input, `"${digest}" is not a digest (expected sha256:<64 hex> or sha512:<128 hex>)`);
    }
  }

  // A `:` after the last `/` starts the tag; one before it belongs to a host's port.
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG_RE.test(tag)) {
      throw invalid(
        input,
        `"${tag}" is not a valid tag (letters, digits, "_", "." and "-", at most 128, not starting with "." or "-")`,
      );
    }
  }

  let registry: string | undefined;
  let repository = rest;
  const slash = rest.indexOf('/');
  if (slash !== -1) {
    const first = rest.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost' || first.startsWith('[')) {
      registry = first;
      repository = rest.slice(slash + 1);
    }
  }
  if (registry !== undefined && !HOST_RE.test(registry)) {
    throw invalid(input, `"${registry}" is not a valid registry host[:port]`);
  }
  const port = registry === undefined ? undefined : /:(\d+)$/.exec(registry)?.[1];
  if (port !== undefined && (Number(port) < 1 || Number(port) > 65535)) {
    throw invalid(input, `port ${port} is out of range`);
  }

  if (registry === undefined || DOCKER_HUB_ALIASES.has(registry.toLowerCase())) {
    registry = DOCKER_HUB_REGISTRY;
    if (repository !== '' && !repository.includes('/')) repository = `library/${repository}`;
  }

  if (repository === '') throw invalid(input, 'it names no repository');
  if (!REPOSITORY_RE.test(repository)) {
    const hint = repository !== repository.toLowerCase() ? ' (repository names must be lowercase)' : '';
    throw invalid(input, `"${repository}" is not a valid repository name${hint}`);
  }
  if (registry.length + 1 + repository.length > MAX_NAME_LENGTH) {
    throw invalid(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }

  if (tag === undefined && digest === undefined) tag = 'latest';
  return {
    registry,
    repository,
    ...(tag !== undefined ? { tag } : {}),
    ...(digest !== undefined ? { digest } : {}),
  };
}

/** Formats a reference back into canonical `host/repo[:tag][@digest]` form, for messages. */
export function formatRegistryReference(ref: RegistryReference): string {
  return `${ref.registry}/${ref.repository}${ref.tag !== undefined ? `:${ref.tag}` : ''}${ref.digest !== undefined ? `@${ref.digest}` : ''}`;
}
