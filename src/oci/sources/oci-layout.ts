import type { Readable } from 'node:stream';
import { OciError } from '../../errors.js';
import { verifiedBlob, parseDigest, verifyBytes } from '../digest.js';
import { IndexSchema, parseJson, type Descriptor } from '../schemas.js';
import { MAX_DOCUMENT_BYTES, type BlobRef, type ImageSource, type RootDocument } from '../source.js';
import type { FileAccess } from './file-access.js';
import { selectImage } from './select-image.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

export function blobPath(digest: string, subject: string): string {
  const { algorithm, hex } = parseDigest(digest, subject);
  return `blobs/${algorithm}/${hex}`;
}

/** Picks the index.json entry a tag (`org.opencontainers.image.ref.name`) or `@N` names; with neither, the only entry. */
export function selectByTag(manifests: Descriptor[], tag: string | undefined, display: string): Descriptor {
  if (manifests.length === 0) throw new OciError('MANIFEST_UNKNOWN', `${display}: index.json lists no images`);
  const images = manifests.map((m) => ({ item: m, names: m.annotations?.[REF_NAME] ? [m.annotations[REF_NAME]] : [] }));
  return selectImage(images, tag, display);
}

/** An OCI image layout (oci-layout, index.json, blobs/) in a folder or an oci-archive tar. */
export class OciLayoutSource implements ImageSource {
  constructor(
    readonly display: string,
    private readonly files: FileAccess,
    private readonly tag: string | undefined,
  ) {}

  async root(): Promise<RootDocument> {
    if ((await this.files.size('index.json')) === undefined) {
      throw new OciError('NOT_AN_OCI_LAYOUT', `${this.display}: no index.json (is this an OCI image layout?)`);
    }
    const index = parseJson(IndexSchema, await this.files.read('index.json', MAX_DOCUMENT_BYTES), `${this.display} index.json`);
    const desc = selectByTag(index.manifests, this.tag, this.display);
    const bytes = await this.readBlob(desc, MAX_DOCUMENT_BYTES);
    return { bytes, digest: desc.digest, mediaType: desc.mediaType };
  }

  async openBlob(ref: BlobRef): Promise<Readable> {
    const path = blobPath(ref.digest, this.display);
    return verifiedBlob(await this.files.open(path), ref.digest, ref.size, this.display);
  }

  async readBlob(ref: BlobRef, maxBytes: number): Promise<Buffer> {
    const path = blobPath(ref.digest, this.display);
    const bytes = await this.files.read(path, maxBytes);
    if (ref.size !== undefined && bytes.length !== ref.size) {
      throw new OciError('SIZE_MISMATCH', `${this.display}: blob ${ref.digest} is ${bytes.length} bytes, its descriptor says ${ref.size}`);
    }
    verifyBytes(bytes, ref.digest, this.display);
    return bytes;
  }

  async close(): Promise<void> {
    await this.files.close?.();
  }
}
