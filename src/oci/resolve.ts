import { OciError } from '../errors.js';
import { printable } from '../terminal-text.js';
import { digestOf } from './digest.js';
import { isIndexMediaType, isManifestMediaType, isSchema1 } from './media-types.js';
import {
  ImageConfigSchema,
  IndexSchema,
  ManifestSchema,
  parseJson,
  type ImageConfig,
  type Manifest,
  type Platform,
} from './schemas.js';
import { MAX_DOCUMENT_BYTES, type ImageSource } from './source.js';

export interface PlatformWanted {
  os: string;
  architecture: string;
  variant?: string;
}

export interface ResolvedImage {
  manifestDigest: string;
  manifest: Manifest;
  configDigest: string;
  config: ImageConfig;
  platform?: PlatformWanted;
  /** Said to the user with the results: e.g. that --platform could not be honoured. */
  warnings?: string[];
}

export function parsePlatform(text: string): PlatformWanted {
  const parts = text.split('/');
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => p === '')) {
    throw new OciError('PLATFORM_INVALID', `invalid platform "${text}": use os/arch[/variant], e.g. linux/arm64/v8`);
  }
  return { os: parts[0]!, architecture: parts[1]!, variant: parts[2] };
}

export function formatPlatform(p: { os: string; architecture: string; variant?: string }): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

function platformMatches(have: Platform | undefined, want: PlatformWanted): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  if (want.variant && have.variant && have.variant !== want.variant) return false;
  // arm64's variant v8 is implied when the index leaves it out.
  if (want.variant && !have.variant && !(want.architecture === 'arm64' && want.variant === 'v8')) return false;
  return true;
}

function sniffMediaType(doc: Record<string, unknown>): string | undefined {
  if (typeof doc.mediaType === 'string') return doc.mediaType;
  if (Array.isArray(doc.manifests)) return 'application/vnd.oci.image.index.v1+json';
  if (doc.config && Array.isArray(doc.layers)) return 'application/vnd.oci.image.manifest.v1+json';
  if (doc.schemaVersion === 1) return 'application/vnd.docker.distribution.manifest.v1+json';
  return undefined;
}

/** The platforms an index offers, for a message: each once, escaped, and only the first few. */
function availablePlatforms(children: ReadonlyArray<{ platform?: Platform }>): string {
  const names = [...new Set(children.map((m) => (m.platform ? printable(formatPlatform(m.platform).slice(0, 100)) : 'unspecified')))];
  if (names.length === 0) return 'none';
  const shown = names.slice(0, MAX_PLATFORMS_LISTED).join(', ');
  return names.length > MAX_PLATFORMS_LISTED ? `${shown} and ${names.length - MAX_PLATFORMS_LISTED} more` : shown;
}

const MAX_PLATFORMS_LISTED = 20;

/**
 * Far above any image a runtime can start (overlayfs mounts stop at about 128 layers), far below
 * the 25,000 a 4 MiB manifest can list, each of them a download and a walk.
 */
const MAX_LAYERS = 1000;

/** Far above any real multi-arch image (a dozen platforms, each with an attestation manifest). */
const MAX_DOCUMENTS = 512;

export interface ResolveOptions {
  platform?: PlatformWanted;
  allPlatforms?: boolean;
}

/**
 * Walks from the root document to the image manifest(s): an index is narrowed to the wanted
 * platform (or all of them), a manifest is taken as is. Every document is size-capped, checked
 * against its digest and validated before use.
 */
export async function resolveImages(source: ImageSource, options: ResolveOptions = {}): Promise<ResolvedImage[]> {
  const root = await source.root();
  const want = options.platform ?? { os: 'linux', architecture: 'amd64' };
  const out: ResolvedImage[] = [];
  // Each document is read once, and only so many: an index listing an index 2,000 times that
  // lists one image 2,000 times made --all-platforms walk four million paths.
  const visited = new Set<string>();

  const visit = async (bytes: Buffer, digest: string, declared: string | undefined, depth: number, platform?: Platform) => {
    if (depth > 4) throw new OciError('MANIFEST_INVALID', `${source.display}: image indexes nested too deeply`);
    if (visited.size >= MAX_DOCUMENTS) {
      throw new OciError('MANIFEST_INVALID', `${source.display}: its indexes name more than ${MAX_DOCUMENTS} manifests`);
    }
    visited.add(digest);
    let raw: Record<string, unknown>;
    try {
      raw = JSON.parse(bytes.toString('utf8')) as Record<string, unknown>;
    } catch {
      throw new OciError('MANIFEST_INVALID', `${source.display}: manifest ${digest} is not valid JSON`);
    }
    if (raw === null || typeof raw !== 'object') {
      throw new OciError('MANIFEST_INVALID', `${source.display}: manifest ${digest} is not a JSON object`);
    }
    const mediaType = sniffMediaType(raw) ?? declared;
    if (isSchema1(mediaType) || raw.schemaVersion === 1) {
      throw new OciError('MANIFEST_UNSUPPORTED', `${source.display}: Docker schema 1 manifests are not supported; re-push the image with a current client`);
    }
    if (isIndexMediaType(mediaType)) {
      const index = parseJson(IndexSchema, bytes, `${source.display} index ${digest}`);
      const children = index.manifests.filter((m) => isManifestMediaType(m.mediaType) || isIndexMediaType(m.mediaType));
      const chosen = options.allPlatforms
        ? children.filter((m) => m.platform && m.platform.os !== 'unknown')
        : children.filter((m) => platformMatches(m.platform, want)).slice(0, 1);
      if (chosen.length === 0) {
        throw new OciError(
          'PLATFORM_NOT_FOUND',
          `${source.display}: no image for platform ${formatPlatform(want)} (available: ${availablePlatforms(children)}); use --platform`,
        );
      }
      for (const child of chosen) {
        if (visited.has(child.digest)) continue;
        const childBytes = source.readManifest
          ? await source.readManifest(child, MAX_DOCUMENT_BYTES)
          : await source.readBlob(child, MAX_DOCUMENT_BYTES);
        await visit(childBytes, child.digest, child.mediaType, depth + 1, child.platform);
      }
      return;
    }
    if (!isManifestMediaType(mediaType)) {
      throw new OciError('MANIFEST_UNSUPPORTED', `${source.display}: ${digest} has unsupported media type ${mediaType !== undefined ? printable(mediaType.slice(0, 200)) : '(none)'}`);
    }
    const manifest = parseJson(ManifestSchema, bytes, `${source.display} manifest ${digest}`);
    // Checked before the config is fetched: each layer is a download and a walk.
    if (manifest.layers.length > MAX_LAYERS) {
      throw new OciError(
        'MANIFEST_INVALID',
        `${source.display}: manifest ${digest} lists ${manifest.layers.length} layers, more than the ${MAX_LAYERS} portcullis reads (container runtimes stop at about 128)`,
      );
    }
    const configBytes = await source.readBlob(manifest.config, MAX_DOCUMENT_BYTES);
    const config = parseJson(ImageConfigSchema, configBytes, `${source.display} config ${manifest.config.digest}`);
    const layerCount = manifest.layers.length;
    if (config.rootfs.diff_ids.length !== layerCount) {
      throw new OciError(
        'MANIFEST_INVALID',
        `${source.display}: manifest has ${layerCount} layers but its config lists ${config.rootfs.diff_ids.length} diff_ids`,
      );
    }
    const p = platform ?? (config.os && config.architecture ? { os: config.os, architecture: config.architecture, variant: config.variant } : undefined);
    // A single-platform image has nothing to choose from, so it is scanned as it is (as skopeo
    // copies it); but a --platform it does not match is said, not silently passed over.
    const warnings =
      depth === 0 && options.platform && !options.allPlatforms && p && !platformMatches(p, options.platform)
        ? [
            `${source.display} is a single-platform image for ${formatPlatform(p)}, not ${formatPlatform(options.platform)}; scanned it as it is`,
          ]
        : undefined;
    out.push({
      manifestDigest: digest,
      manifest,
      configDigest: manifest.config.digest,
      config,
      platform: p ? { os: p.os, architecture: p.architecture, variant: p.variant } : undefined,
      ...(warnings ? { warnings } : {}),
    });
  };

  const rootDigest = root.digest || digestOf(root.bytes);
  await visit(root.bytes, rootDigest, root.mediaType, 0);
  return out;
}
