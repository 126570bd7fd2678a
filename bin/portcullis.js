#!/usr/bin/env node
// Thin launcher: the CLI is compiled to dist/ by `npm run build`.
import { main } from '../dist/cli/index.js';

main(process.argv).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    console.error(`portcullis: ${err instanceof Error ? err.message : String(err)}`);
    process.exitCode = 2;
  },
);
