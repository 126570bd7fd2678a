export * from './digest.js';
export * from './media-types.js';
export * from './schemas.js';
export * from './source.js';
export * from './resolve.js';
export * from './open-source.js';
export { parseRegistryReference } from './registry-reference.js';
export { BlobCallbackSource } from './sources/blob-callback.js';
