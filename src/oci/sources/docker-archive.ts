import type { Readable } from 'node:stream';
import { OciError } from '../../errors.js';
import { verifiedBlob, digestOf, verifyBytes } from '../digest.js';
import { MediaType } from '../media-types.js';
import { DockerArchiveManifestSchema, ImageConfigSchema, IndexSchema, ManifestSchema, parseJson } from '../schemas.js';
import { MAX_DOCUMENT_BYTES, type BlobRef, type ImageSource, type RootDocument } from '../source.js';
import type { FileAccess } from './file-access.js';
import { blobPath } from './oci-layout.js';
import { selectImage } from './select-image.js';

const BLOB_PATH = /^blobs\/(sha256|sha512)\/([a-f0-9]+)$/;

/**
 * Whether a RepoTags entry (`alpine:3.20`, `registry.example/team/app:1`) is the one a user named:
 * the whole name, the tag alone, or the same Docker Hub name written with more or less of what
 * docker implies (`alpine`, `library/alpine`, `docker.io/library/alpine` are one image).
 */
export function repoTagMatches(repoTag: string, wanted: string): boolean {
  if (repoTag === wanted || repoTag.endsWith(`:${wanted}`)) return true;
  return dockerHubShortName(repoTag) === dockerHubShortName(wanted);
}

/**
 * A name as docker would print it for Docker Hub: without `docker.io/` (or `index.docker.io/`),
 * and without `library/` before a one-segment repository. The first segment names a registry
 * when it holds a dot or a colon or is `localhost`, as in docker's reference parsing; such a name,
 * other than Docker Hub's, is returned as it is.
 */
function dockerHubShortName(name: string): string {
  const slash = name.indexOf('/');
  let path = name;
  if (slash >= 0) {
    const first = name.slice(0, slash);
    if (first.includes('.') || first.includes(':') || first === 'localhost') {
      if (first !== 'docker.io' && first !== 'index.docker.io') return name;
      path = name.slice(slash + 1);
    }
  }
  const rest = path.startsWith('library/') ? path.slice('library/'.length) : undefined;
  return rest !== undefined && !rest.includes('/') ? rest : path;
}

/**
 * The output of `docker save`: `manifest.json` names the config and layer files. Legacy archives
 * keep each layer as an uncompressed `<id>/layer.tar`, whose digest is the config's diff_id; newer
 * Docker writes an OCI layout inside the tar and points manifest.json at `blobs/sha256/...`. Both
 * are read through manifest.json, and we synthesise an OCI manifest so the rest of the pipeline
 * sees one shape. Its digest is ours, not a registry's: the config digest (the image id) is the
 * stable identity of a docker-archive image.
 */
export class DockerArchiveSource implements ImageSource {
  private readonly paths = new Map<string, string>();
  repoTags: string[] = [];

  constructor(
    readonly display: string,
    private readonly files: FileAccess,
    private readonly tag: string | undefined,
  ) {}

  async root(): Promise<RootDocument> {
    if ((await this.files.size('manifest.json')) === undefined) {
      throw new OciError('NOT_A_DOCKER_ARCHIVE', `${this.display}: no manifest.json (is this the output of docker save?)`);
    }
    const entries = parseJson(
      DockerArchiveManifestSchema,
      await this.files.read('manifest.json', MAX_DOCUMENT_BYTES),
      `${this.display} manifest.json`,
    );
    if (entries.length === 0) throw new OciError('MANIFEST_UNKNOWN', `${this.display}: manifest.json lists no images`);
    const images = entries.map((e) => ({ item: e, names: e.RepoTags ?? [] }));
    const entry = selectImage(images, this.tag, this.display, repoTagMatches);
    this.repoTags = entry.RepoTags ?? [];

    const configBytes = await this.files.read(entry.Config, MAX_DOCUMENT_BYTES);
    const configDigest = digestOf(configBytes);
    this.paths.set(configDigest, entry.Config);
    const config = parseJson(ImageConfigSchema, configBytes, `${this.display} ${entry.Config}`);
    if (config.rootfs.diff_ids.length !== entry.Layers.length) {
      throw new OciError(
        'MANIFEST_INVALID',
        `${this.display}: manifest.json lists ${entry.Layers.length} layers but the config has ${config.rootfs.diff_ids.length} diff_ids`,
      );
    }
    const layers = [];
    for (const [i, layerPath] of entry.Layers.entries()) {
      const size = await this.files.size(layerPath);
      if (size === undefined) throw new OciError('BLOB_UNKNOWN', `${this.display}: layer file ${layerPath} is missing`);
      const m = BLOB_PATH.exec(layerPath);
      // Legacy layer.tar files are uncompressed, so their content digest is the diff_id.
      const digest = m ? `${m[1]}:${m[2]}` : config.rootfs.diff_ids[i]!;
      this.paths.set(digest, layerPath);
      layers.push({ mediaType: MediaType.dockerLayerGzip, digest, size });
    }
    const original = await this.originalManifest(configDigest, layers.map((l) => l.digest));
    if (original) return original;
    const manifest = {
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      config: { mediaType: MediaType.ociConfig, digest: configDigest, size: configBytes.length },
      layers,
    };
    const bytes = Buffer.from(JSON.stringify(manifest));
    return { bytes, digest: digestOf(bytes), mediaType: MediaType.ociManifest };
  }

  /**
   * Docker 25 and later save an OCI layout beside manifest.json. Its manifest for this image (the
   * same config and layers) is the one a registry would serve, so its digest is the image's real
   * one; without it (legacy archives) the manifest is synthesised and its digest is ours.
   */
  private async originalManifest(configDigest: string, layerDigests: string[]): Promise<RootDocument | undefined> {
    if ((await this.files.size('index.json')) === undefined) return undefined;
    let index;
    try {
      index = parseJson(IndexSchema, await this.files.read('index.json', MAX_DOCUMENT_BYTES), `${this.display} index.json`);
    } catch {
      return undefined; // manifest.json is what docker-archive readers go by; a bad index.json is not fatal
    }
    for (const desc of index.manifests) {
      if ((desc.size ?? 0) > MAX_DOCUMENT_BYTES) continue;
      try {
        const path = blobPath(desc.digest, this.display);
        if ((await this.files.size(path)) === undefined) continue;
        const bytes = await this.files.read(path, MAX_DOCUMENT_BYTES);
        verifyBytes(bytes, desc.digest, this.display);
        const manifest = parseJson(ManifestSchema, bytes, `${this.display} ${path}`);
        if (manifest.config.digest !== configDigest) continue;
        if (manifest.layers.map((l) => l.digest).join() !== layerDigests.join()) continue;
        return { bytes, digest: desc.digest, mediaType: manifest.mediaType ?? desc.mediaType };
      } catch {
        // An index, a blob that is not what it claims, a malformed digest: not this image's manifest.
      }
    }
    return undefined;
  }

  private pathOf(digest: string): string {
    const path = this.paths.get(digest);
    if (!path) throw new OciError('BLOB_UNKNOWN', `${this.display}: no file for blob ${digest}`);
    return path;
  }

  async openBlob(ref: BlobRef): Promise<Readable> {
    return verifiedBlob(await this.files.open(this.pathOf(ref.digest)), ref.digest, ref.size, this.display);
  }

  async readBlob(ref: BlobRef, maxBytes: number): Promise<Buffer> {
    const bytes = await this.files.read(this.pathOf(ref.digest), maxBytes);
    verifyBytes(bytes, ref.digest, this.display);
    return bytes;
  }

  async close(): Promise<void> {
    await this.files.close?.();
  }
}
