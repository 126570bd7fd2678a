import { PortcullisError } from '../errors.js';

/**
 * The OCI Distribution error codes, and the HTTP status each one is answered with by default. The
 * spec says an error body's code MUST be one of these fourteen, so nothing else belongs here (a 416
 * carries BLOB_UPLOAD_INVALID or SIZE_INVALID with an explicit status).
 */
export const OCI_ERROR_STATUS = {
  BLOB_UNKNOWN: 404,
  BLOB_UPLOAD_INVALID: 400,
  BLOB_UPLOAD_UNKNOWN: 404,
  DIGEST_INVALID: 400,
  MANIFEST_BLOB_UNKNOWN: 400,
  MANIFEST_INVALID: 400,
  MANIFEST_UNKNOWN: 404,
  NAME_INVALID: 400,
  NAME_UNKNOWN: 404,
  SIZE_INVALID: 400,
  UNAUTHORIZED: 401,
  DENIED: 403,
  UNSUPPORTED: 405,
  TOOMANYREQUESTS: 429,
} as const;

export type OciErrorCode = keyof typeof OCI_ERROR_STATUS;

/** An error the registry answers with `{errors:[{code,message,detail}]}`. */
export class RegistryError extends PortcullisError {
  readonly status: number;
  readonly detail: unknown;
  readonly headers: Record<string, string>;

  constructor(
    code: OciErrorCode,
    message: string,
    options?: { status?: number; detail?: unknown; headers?: Record<string, string>; cause?: unknown },
  ) {
    super(code, message, options?.cause === undefined ? undefined : { cause: options.cause });
    this.status = options?.status ?? OCI_ERROR_STATUS[code];
    this.detail = options?.detail;
    this.headers = options?.headers ?? {};
  }
}

export function isOciErrorCode(code: string): code is OciErrorCode {
  return Object.hasOwn(OCI_ERROR_STATUS, code);
}
