export * from './facts.js';
export * from './messages.js';
export * from './policy-source.js';
export * from './referrers.js';
export * from './service.js';
export * from './verdicts.js';
export * from './vulndb-handle.js';
export * from './webhooks.js';
