export * from './app.js';
export * from './auth-hook.js';
export * from './basic-auth.js';
export * from './errors.js';
export * from './keyed-lock.js';
export * from './routes.js';
export * from './project-rules.js';
export * from './extensions.js';
