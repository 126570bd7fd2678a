import { join } from 'node:path';
import type { Readable } from 'node:stream';
import { gunzipSync, gzipSync } from 'node:zlib';
import { analyseInput } from '../analyse/index.js';
import { BlobCallbackSource } from '../oci/index.js';
import type { ScanResult } from '../sbom/result.js';
import type { IndexedPackage, MatchKeyRow } from '../store/index.js';
import { matchKeyOf } from '../vulndb/index.js';

/** What the analysis needs from the registry: the manifest bytes and a way to stream blobs. */
export interface StoredImage {
  repository: string;
  digest: string;
  mediaType: string;
  manifest: Buffer;
  openBlob(digest: string): Promise<Readable>;
}

/**
 * Extracts the facts of an image that was pushed to the registry: packages, secrets and
 * misconfigurations, read straight from the blob store with the same analysers and per-layer
 * cache as `portcullis scan` (an image sharing base layers with one scanned before reads only its
 * new layers). Vulnerabilities are not part of the facts: they are matched at evaluation, so a
 * database update never reads a layer again.
 */
export async function analyseStoredImage(image: StoredImage, dataDir: string): Promise<ScanResult> {
  const display = `${image.repository}@${image.digest}`;
  const source = new BlobCallbackSource(display, { bytes: image.manifest, digest: image.digest, mediaType: image.mediaType }, image.openBlob);
  const cacheDir = join(dataDir, 'cache');
  const [result] = await analyseInput(
    { kind: 'source', source, display },
    { cacheDir, scratchRoot: join(cacheDir, 'scratch'), secrets: true, misconfig: true },
  );
  if (!result) throw new Error(`${display}: the manifest describes no image`);
  return result;
}

export function encodeFacts(result: ScanResult): Buffer {
  return gzipSync(JSON.stringify(result), { level: 6 });
}

export function decodeFacts(bytes: Buffer): ScanResult {
  return JSON.parse(gunzipSync(bytes).toString('utf8')) as ScanResult;
}

/**
 * How a package is named in the index: the way OSV names it in that ecosystem (Maven
 * `group:artifact`, npm `@scope/name`, Go module paths), lower-cased where the ecosystem ignores
 * case (PyPI with its separators folded, NuGet, Packagist).
 */
export function indexName(type: string, name: string, namespace?: string): string {
  const full = namespace ? `${namespace}${type === 'maven' ? ':' : '/'}${name}` : name;
  if (type === 'pypi') return full.toLowerCase().replace(/[-_.]+/g, '-');
  if (type === 'nuget' || type === 'composer') return full.toLowerCase();
  return full;
}

const OSV_ECOSYSTEM_TYPES: ReadonlyArray<[RegExp, string]> = [
  [/^(Alpine|Wolfi|Chainguard)(:|$)/, 'apk'],
  [/^(Debian|Ubuntu)(:|$)/, 'deb'],
  [/^(Red Hat|Rocky Linux|AlmaLinux|openSUSE|SUSE|Mageia|openEuler)(:|$)/, 'rpm'],
  [/^npm$/, 'npm'],
  [/^PyPI$/, 'pypi'],
  [/^Go$/, 'golang'],
  [/^Maven$/, 'maven'],
  [/^crates\.io$/, 'cargo'],
  [/^RubyGems$/, 'gem'],
  [/^NuGet$/, 'nuget'],
  [/^Packagist$/, 'composer'],
];

/** The index key of an OSV (ecosystem, name); undefined for ecosystems images cannot hold. */
export function indexKeyOfOsvPackage(ecosystem: string, name: string): { type: string; name: string } | undefined {
  const hit = OSV_ECOSYSTEM_TYPES.find(([re]) => re.test(ecosystem));
  return hit ? { type: hit[1], name: indexName(hit[1], name) } : undefined;
}

/** The rows of the package index: what a new advisory is looked up by. */
export function packageIndexRows(result: ScanResult): IndexedPackage[] {
  return result.packages.map((p) => ({
    type: p.type,
    name: indexName(p.type, p.name, p.namespace),
    version: p.version,
    purl: p.purl,
    sourceName: p.sourceName ?? null,
  }));
}

/**
 * The image's match keys (what the matcher looks its packages up by, with the gate's matching
 * options): a database update re-matches the keys it names, and decides each stored image from
 * its key numbers, without reading its facts.
 */
export function matchKeyRows(result: ScanResult): MatchKeyRow[] {
  return result.packages.flatMap((p) => matchKeyOf(p, result.os) ?? []);
}
