import type { Readable } from 'node:stream';
import { OciError } from '../../errors.js';
import { verifiedBlob, verifyBytes } from '../digest.js';
import type { BlobRef, ImageSource, RootDocument } from '../source.js';

/**
 * An image whose root document is already in hand and whose blobs come from a function: how the
 * registry analyses what was pushed to it, reading straight from its own blob store (no network,
 * no copy). Every blob is still verified against its digest while it streams.
 */
export class BlobCallbackSource implements ImageSource {
  constructor(
    readonly display: string,
    private readonly rootDocument: RootDocument,
    private readonly open: (digest: string) => Promise<Readable>,
  ) {}

  async root(): Promise<RootDocument> {
    verifyBytes(this.rootDocument.bytes, this.rootDocument.digest, this.display);
    return this.rootDocument;
  }

  async openBlob(ref: BlobRef): Promise<Readable> {
    return verifiedBlob(await this.open(ref.digest), ref.digest, ref.size, this.display);
  }

  async readBlob(ref: BlobRef, maxBytes: number): Promise<Buffer> {
    const chunks: Buffer[] = [];
    let size = 0;
    for await (const chunk of await this.openBlob(ref)) {
      size += (chunk as Buffer).length;
      if (size > maxBytes) throw new OciError('DOCUMENT_TOO_LARGE', `${this.display}: blob ${ref.digest} is larger than ${maxBytes} bytes`);
      chunks.push(chunk as Buffer);
    }
    return Buffer.concat(chunks);
  }

  async close(): Promise<void> {}
}
