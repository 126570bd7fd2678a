#!/usr/bin/env node
// Thin launcher. `npm run build` compiles to dist/ and bundles the CLI into dist/bundle/ (a few
// files instead of hundreds of modules, which halves start-up); the unbundled build is the fallback.
import { existsSync } from 'node:fs';

// `portcullis scan ... | head` closes the pipe early; that is the reader's choice, not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

const bundled = new URL('../dist/bundle/cli.js', import.meta.url);
const { main } = await import(existsSync(bundled) ? bundled.href : '../dist/cli/index.js');

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`portcullis: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 2;
  },
);
