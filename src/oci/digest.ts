import { createHash, type Hash } from 'node:crypto';
import { Transform, pipeline, type Readable, type TransformCallback } from 'node:stream';
import { OciError } from '../errors.js';

export type DigestAlgorithm = 'sha256' | 'sha512';

const DIGEST_RE = /^(sha256|sha512):([a-f0-9]+)$/;
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

export interface ParsedDigest {
  algorithm: DigestAlgorithm;
  hex: string;
}

/** Parses `sha256:<64 hex>` or `sha512:<128 hex>`; anything else is a clear error. */
export function parseDigest(digest: string, subject?: string): ParsedDigest {
  const m = DIGEST_RE.exec(digest);
  const algorithm = m?.[1] as DigestAlgorithm | undefined;
  const hex = m?.[2];
  if (!algorithm || !hex || hex.length !== HEX_LENGTH[algorithm]) {
    throw new OciError('DIGEST_INVALID', `invalid digest "${digest}"${subject ? ` in ${subject}` : ''}`, {
      subject,
    });
  }
  return { algorithm, hex };
}

export function isDigest(value: string): boolean {
  const m = DIGEST_RE.exec(value);
  return !!m && m[2]!.length === HEX_LENGTH[m[1] as DigestAlgorithm];
}

export function digestOf(data: Uint8Array | string, algorithm: DigestAlgorithm = 'sha256'): string {
  return `${algorithm}:${createHash(algorithm).update(data).digest('hex')}`;
}

/**
 * A pass-through stream that hashes what flows through it and fails at the end if the content
 * does not match the expected digest (or size, when known). Every blob we read goes through one,
 * so tampered or truncated content is never trusted.
 */
export class DigestVerifier extends Transform {
  private readonly hash: Hash;
  private readonly expected: ParsedDigest;
  private bytes = 0;

  /** `note` ends each failure message: what the reader knows of why the bytes may differ. */
  constructor(
    private readonly digest: string,
    private readonly expectedSize: number | undefined,
    private readonly subject: string,
    private readonly note = '',
  ) {
    super({ highWaterMark: 1 << 20 });
    this.expected = parseDigest(digest, subject);
    this.hash = createHash(this.expected.algorithm);
  }

  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.bytes += chunk.length;
    if (this.expectedSize !== undefined && this.bytes > this.expectedSize) {
      cb(
        new OciError(
          'SIZE_MISMATCH',
          `${this.subject}: blob ${this.digest} is larger than its descriptor size ${this.expectedSize}${this.note}`,
          { subject: this.subject },
        ),
      );
      return;
    }
    this.hash.update(chunk);
    cb(null, chunk);
  }

  override _flush(cb: TransformCallback): void {
    if (this.expectedSize !== undefined && this.bytes !== this.expectedSize) {
      cb(
        new OciError(
          'SIZE_MISMATCH',
          `${this.subject}: blob ${this.digest} is ${this.bytes} bytes, its descriptor says ${this.expectedSize} (truncated?)${this.note}`,
          { subject: this.subject },
        ),
      );
      return;
    }
    const actual = this.hash.digest('hex');
    if (actual !== this.expected.hex) {
      cb(
        new OciError(
          'DIGEST_MISMATCH',
          `${this.subject}: blob content does not match its digest ${this.digest} (got ${this.expected.algorithm}:${actual})${this.note}`,
          { subject: this.subject },
        ),
      );
      return;
    }
    cb();
  }
}

/**
 * `source` read through a DigestVerifier, joined with `pipeline` rather than `pipe`: a consumer
 * that stops early (an analysis that failed, a walk that has what it needs) destroys the verifier,
 * and with `pipe` the file under it stayed open until the garbage collector closed it (Node's
 * DEP0137 warning in the registry's long-lived analysis process). An error of the source reaches
 * the consumer through the verifier.
 */
export function verifiedBlob(source: Readable, digest: string, size: number | undefined, subject: string): Readable {
  const verifier = new DigestVerifier(digest, size, subject);
  pipeline(source, verifier, () => undefined);
  return verifier;
}

/** Checks a fully buffered blob (manifests, configs) against its digest. */
export function verifyBytes(data: Uint8Array, digest: string, subject: string): void {
  const { algorithm, hex } = parseDigest(digest, subject);
  const actual = createHash(algorithm).update(data).digest('hex');
  if (actual !== hex) {
    throw new OciError(
      'DIGEST_MISMATCH',
      `${subject}: content does not match its digest ${digest} (got ${algorithm}:${actual})`,
      { subject },
    );
  }
}
