/**
 * The one error shape every domain uses: a stable machine `code`, a message that says what went
 * wrong and what to do, and the subject (image, blob, file) it is about. The CLI turns any of these
 * into a one-line message and exit code 2; the registry will map codes to OCI error bodies.
 */
export class PortcullisError extends Error {
  readonly code: string;
  readonly subject?: string;

  constructor(code: string, message: string, options?: { subject?: string; cause?: unknown }) {
    super(message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.name = new.target.name;
    this.code = code;
    this.subject = options?.subject;
  }
}

/** Errors about reading images: references, manifests, blobs, registries. */
export class OciError extends PortcullisError {}

/** Errors raised while walking layers: corrupt archives, limits, unsafe entries. */
export class AnalyseError extends PortcullisError {}

/** Errors about the command line or configuration. */
export class UsageError extends PortcullisError {}

export function describeError(err: unknown): string {
  if (err instanceof PortcullisError) return err.message;
  if (err instanceof Error) return err.message;
  return String(err);
}
