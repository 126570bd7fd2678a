export * from './audit.js';
export * from './control.js';
export * from './policy.js';
export * from './robots.js';
