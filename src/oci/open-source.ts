import { existsSync, statSync } from 'node:fs';
import { join, resolve as resolvePath } from 'node:path';
import { tmpdir } from 'node:os';
import { OciError, UsageError } from '../errors.js';
import { splitArchivePath } from './archive-path.js';
import { RegistrySource, type RegistrySourceOptions } from './registry.js';
import type { ImageSource } from './source.js';
import { archiveTar } from './sources/compressed-archive.js';
import { DockerArchiveSource } from './sources/docker-archive.js';
import { FolderAccess, TarAccess } from './sources/file-access.js';
import { OciLayoutSource } from './sources/oci-layout.js';

export type ImageInput =
  | { kind: 'oci-archive' | 'oci' | 'docker-archive'; path: string; tag?: string; display: string }
  | { kind: 'dir'; path: string; display: string }
  | { kind: 'registry'; reference: string; display: string }
  /** An already opened source (the registry analysing its own blobs). */
  | { kind: 'source'; source: ImageSource; display: string };

const TRANSPORTS = ['oci-archive', 'oci', 'docker-archive', 'dir'] as const;

/** Reads what the user typed after `scan`/`sbom` into a typed image input. */
export function parseImageInput(text: string): ImageInput {
  for (const t of TRANSPORTS) {
    if (text.startsWith(`${t}:`)) {
      const rest = text.slice(t.length + 1);
      if (rest === '') throw new UsageError('IMAGE_INPUT_INVALID', `"${text}": a path is needed after "${t}:"`);
      if (t === 'dir') return { kind: 'dir', path: rest, display: text };
      const { path, name } = splitArchivePath(rest);
      return { kind: t, path, tag: name || undefined, display: text };
    }
  }
  if (text.startsWith('docker://')) return { kind: 'registry', reference: text.slice(9), display: text };
  return localInput(text) ?? { kind: 'registry', reference: text, display: text };
}

/** What marks text as a path rather than a registry reference: a leading `/` or `.`, or an archive's extension. */
const PATH_LIKE = /^(?:\/|\.{1,2}\/)|\.(?:tar|tgz|tar\.gz|tar\.zst|tar\.zstd)$/;

/**
 * A path written without a transport, as syft and `trivy image --input` take one: an archive
 * (docker save output or an OCI layout in a tar, told apart by what it holds) or an OCI layout
 * folder. Only text that looks like a path (`./x`, `/x`, `x.tar`) and exists is taken for one, so
 * `scan alpine` stays a registry reference even beside a folder named `alpine`; such a path that
 * is a folder without an index.json gets a hint instead of a registry error about its name.
 */
function localInput(text: string): ImageInput | undefined {
  if (!PATH_LIKE.test(text)) return undefined;
  const st = statSync(text, { throwIfNoEntry: false });
  if (st?.isFile()) return { kind: 'docker-archive', path: text, display: text };
  if (st?.isDirectory()) {
    if (existsSync(join(text, 'index.json'))) return { kind: 'oci', path: text, display: text };
    throw new UsageError(
      'IMAGE_INPUT_INVALID',
      `${text} is a folder but not an OCI image layout (no index.json); to scan it as a root filesystem, write dir:${text}`,
    );
  }
  // No registry reference starts with `/` or `./`: a missing file, not a bad repository name.
  if (!st && /^(?:\/|\.{1,2}\/)/.test(text)) {
    throw new UsageError('IMAGE_INPUT_INVALID', `${text} does not exist (a file or folder was expected; a registry image is written HOST/REPO:TAG)`);
  }
  return undefined;
}

export interface OpenSourceOptions extends RegistrySourceOptions {
  /** Where a compressed archive is decompressed to (default: the system's temporary folder). */
  scratchRoot?: string;
  /** The most a compressed archive may decompress to. */
  maxArchiveBytes?: number;
}

/** The scanner's default --max-total-bytes: an archive holds no more than its image. */
const DEFAULT_MAX_ARCHIVE_BYTES = 32 * 1024 ** 3;

/** Opens a source for an image input. `dir:` inputs are not images and are handled by the caller. */
export async function openImageSource(input: ImageInput, options: OpenSourceOptions = {}): Promise<ImageSource> {
  switch (input.kind) {
    case 'oci':
      if (!statSync(input.path, { throwIfNoEntry: false })?.isDirectory()) {
        throw new UsageError('IMAGE_INPUT_INVALID', `${input.display}: ${input.path} ${existsSync(input.path) ? 'is not a folder' : 'does not exist'}`);
      }
      return new OciLayoutSource(input.display, new FolderAccess(resolvePath(input.path), input.display), input.tag);
    case 'oci-archive':
    case 'docker-archive': {
      if (!statSync(input.path, { throwIfNoEntry: false })?.isFile()) {
        throw new UsageError('IMAGE_INPUT_INVALID', `${input.display}: ${input.path} ${existsSync(input.path) ? 'is not a file' : 'does not exist'}`);
      }
      const tar = await archiveTar(input.path, input.display, {
        scratchRoot: options.scratchRoot ?? tmpdir(),
        maxBytes: options.maxArchiveBytes ?? DEFAULT_MAX_ARCHIVE_BYTES,
      });
      const files = await TarAccess.open(tar.path, input.display, tar.cleanup);
      if (input.kind === 'docker-archive' && (await files.size('manifest.json')) !== undefined) {
        return new DockerArchiveSource(input.display, files, input.tag);
      }
      if (input.kind === 'docker-archive' && (await files.size('index.json')) === undefined) {
        await files.close();
        throw new OciError('NOT_AN_IMAGE_ARCHIVE', `${input.display}: holds neither manifest.json (docker save output) nor index.json (an OCI image layout)`);
      }
      // An OCI layout packed in a tar; docker-archives without manifest.json are read this way too.
      return new OciLayoutSource(input.display, files, input.tag);
    }
    case 'registry':
      return new RegistrySource(input.reference, options);
    case 'source':
      return input.source;
    case 'dir':
      throw new UsageError('IMAGE_INPUT_INVALID', `${input.display}: a folder is not an image source`);
  }
}
