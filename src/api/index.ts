export * from './artifact-routes.js';
