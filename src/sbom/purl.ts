/**
 * Package URLs (purl) for packages and images, built with packageurl-js so that encoding,
 * qualifier ordering and per-type normalisation follow the purl specification.
 *
 * Per-type choices:
 * - deb:  `pkg:deb/<distro id>/<name>@<version>?arch=<arch>&distro=<id>-<version>`. The Debian
 *         version string is used as it is, epoch ("1:") included.
 * - apk:  `pkg:apk/alpine/<name>@<version>?arch=<arch>&distro=<alpine version>`.
 * - rpm:  `pkg:rpm/<distro id>/<name>@<version-release>?arch=<arch>&epoch=<n>&distro=<id>-<version>`;
 *         the epoch qualifier only when the epoch is known and not zero.
 * - npm:  scope (with its `@`) as namespace; the purl type lower-cases both.
 * - pypi: the PEP 503 normalised name (lower case, runs of `-`, `_`, `.` become one `-`).
 * - maven: groupId as namespace, artifactId as name.
 * - golang: the module path split at its last `/` into namespace and name; case is kept.
 * - composer: vendor as namespace. gem, cargo, nuget: no namespace.
 */
import { PackageURL } from 'packageurl-js';

import type { OsInfo, PackageRecord } from './model.js';
import type { ImageDescription } from './result.js';

type Qualifiers = Record<string, string>;

/** Default namespace (vendor) for OS package types when the image's OS is unknown. */
const DEFAULT_OS_NAMESPACE: Partial<Record<PackageRecord['type'], string>> = {
  deb: 'debian',
  apk: 'alpine',
};

function qualifiers(entries: [string, string | undefined][]): Qualifiers | undefined {
  const out: Qualifiers = {};
  for (const [key, value] of entries) {
    if (value !== undefined && value !== '') out[key] = value;
  }
  return Object.keys(out).length > 0 ? out : undefined;
}

function distroQualifier(os: OsInfo | null): string | undefined {
  if (!os || os.family === '' || os.version === '') return undefined;
  return `${os.family}-${os.version}`;
}

/** PEP 503 name normalisation, as the pypi analyser applies it. */
export function normalisePypiName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** Splits `a/b/c` into `['a/b', 'c']`; a name without `/` has no namespace. */
function splitLast(path: string, sep: string): [string | undefined, string] {
  const at = path.lastIndexOf(sep);
  if (at <= 0 || at === path.length - 1) return [undefined, path];
  return [path.slice(0, at), path.slice(at + 1)];
}

function coordinates(record: PackageRecord): [string | undefined, string] {
  const { type, namespace, name } = record;
  switch (type) {
    case 'npm': {
      if (namespace) return [namespace.startsWith('@') ? namespace : `@${namespace}`, name];
      if (name.startsWith('@')) return splitLast(name, '/');
      return [undefined, name];
    }
    case 'pypi':
      return [undefined, normalisePypiName(name)];
    case 'maven':
      if (namespace) return [namespace, name];
      return splitLast(name, ':');
    case 'golang':
    case 'composer':
      if (namespace) return [namespace, name];
      return splitLast(name, '/');
    case 'gem':
    case 'cargo':
    case 'nuget':
      return [undefined, name];
    default:
      return [namespace, name];
  }
}

/** The purl of one package found in an image whose OS is `os` (null when not identified). */
export function buildPurl(record: PackageRecord, os: OsInfo | null): string {
  const { type, version } = record;
  switch (type) {
    case 'deb':
    case 'rpm': {
      const vendor = os?.family || DEFAULT_OS_NAMESPACE[type];
      const q =
        type === 'deb'
          ? qualifiers([
              ['arch', record.arch],
              ['distro', distroQualifier(os)],
            ])
          : qualifiers([
              ['arch', record.arch],
              ['epoch', record.epoch ? String(record.epoch) : undefined],
              ['distro', distroQualifier(os)],
            ]);
      return new PackageURL(type, vendor, record.name, version, q).toString();
    }
    case 'apk': {
      const q = qualifiers([
        ['arch', record.arch],
        ['distro', os && os.version !== '' ? os.version : undefined],
      ]);
      return new PackageURL('apk', 'alpine', record.name, version, q).toString();
    }
    default: {
      const [namespace, name] = coordinates(record);
      return new PackageURL(type, namespace, name, version).toString();
    }
  }
}

/** Registry, repository path and tag of a `registry/repo:tag@digest` style reference. */
export interface ParsedImageReference {
  registry: string;
  repository: string;
  tag?: string;
}

const DOCKER_HUB = 'docker.io';
/** A registry host: `localhost` or a dotted host name, optionally with a port; or `name:port`. */
const REGISTRY_HOST_RE = /^(?:localhost|[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+|[A-Za-z0-9-]+(?=:))(?::\d+)?$/;

/**
 * Reads a registry reference loosely, the way `docker pull` completes it (`alpine` is
 * `docker.io/library/alpine`). Returns undefined for things that are not registry references,
 * such as archive paths (`docker-archive:/tmp/x.tar`, `./image.tar`).
 */
export function parseImageReference(reference: string): ParsedImageReference | undefined {
  let rest = reference.trim();
  const at = rest.indexOf('@');
  if (at >= 0) rest = rest.slice(0, at);
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (rest === '' || (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag))) return undefined;
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!REGISTRY_HOST_RE.test(first)) return undefined;
    registry = first;
    parts.shift();
  }
  if (parts.length === 0 || !parts.every((p) => /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/.test(p)))
    return undefined;
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  const out: ParsedImageReference = { registry, repository: parts.join('/') };
  if (tag !== undefined) out.tag = tag;
  return out;
}

/**
 * `pkg:oci/<name>@<manifest digest>?arch=..&repository_url=..&tag=..` for the scanned image. The
 * name is the last segment of the repository; for references that are not registry references
 * (an archive file) the purl carries the name `image` and no repository_url.
 */
export function imagePurl(image: ImageDescription): string {
  const parsed = parseImageReference(image.reference);
  const name = parsed ? (parsed.repository.split('/').pop() ?? 'image') : 'image';
  const q = qualifiers([
    ['arch', image.platform?.architecture],
    ['repository_url', parsed ? `${parsed.registry}/${parsed.repository}` : undefined],
    ['tag', parsed?.tag],
  ]);
  return new PackageURL('oci', undefined, name, image.manifestDigest || undefined, q).toString();
}

/**
 * How a package's name reads to people: `@scope/name` for npm, `groupId:artifactId` for Maven,
 * the full module path for Go, `vendor/name` for Composer, the plain name otherwise.
 */
export function packageDisplayName(record: Pick<PackageRecord, 'type' | 'namespace' | 'name'>): string {
  const { type, namespace, name } = record;
  if (!namespace) return name;
  switch (type) {
    case 'maven':
      return `${namespace}:${name}`;
    case 'npm':
      return `${namespace.startsWith('@') ? namespace : `@${namespace}`}/${name}`;
    case 'golang':
    case 'composer':
      return `${namespace}/${name}`;
    default:
      return name;
  }
}
