export * from './errors.js';
export * from './blob-store.js';
export * from './metadata.js';
export * from './job-store.js';
export * from './artifact-store.js';
