import { PortcullisError } from '../errors.js';

/**
 * Errors of the storage layer (blobs and metadata). Codes reuse the OCI vocabulary where one fits
 * (DIGEST_INVALID, BLOB_UNKNOWN) so the registry maps them without a translation table.
 */
export class StoreError extends PortcullisError {}
