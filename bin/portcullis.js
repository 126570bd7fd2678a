#!/usr/bin/env node
// Thin launcher. `npm run build` compiles to dist/ and bundles the CLI into dist/bundle/ (a few
// files instead of hundreds of modules, which halves start-up); the unbundled build is the fallback.
import { existsSync } from 'node:fs';
import os from 'node:os';

// `portcullis scan ... | head` closes the pipe early; that is the reader's choice, not an error.
process.stdout.on('error', (err) => {
  if (err.code === 'EPIPE') process.exit(process.exitCode ?? 0);
  throw err;
});

// A large local archive is scanned in a second process whose V8 heap and C allocator are set up
// for streaming (dist/cli/sized-heap.js says when and why); this one only waits for it and passes on its exit.
const sizedHeap = await import('../dist/cli/sized-heap.js').catch(() => undefined);
const nodeArgs = sizedHeap?.sizedHeapNodeArgs(process.argv.slice(2));
if (nodeArgs) {
  const { spawn } = await import('node:child_process');
  const { fileURLToPath } = await import('node:url');
  const child = spawn(process.execPath, [...nodeArgs, fileURLToPath(import.meta.url), ...process.argv.slice(2)], {
    stdio: 'inherit',
    env: sizedHeap.sizedHeapEnv(process.env),
  });
  // A terminal's Ctrl-C reaches both processes; a signal sent to this one alone is passed on.
  for (const signal of ['SIGINT', 'SIGTERM', 'SIGHUP']) process.on(signal, () => child.kill(signal));
  child.on('error', (err) => {
    console.error(`portcullis: ${err.message}`);
    process.exit(2);
  });
  child.on('exit', (code, signal) => {
    process.exit(code ?? 128 + (signal ? (os.constants.signals[signal] ?? 0) : 0));
  });
} else {
  await runHere();
}

async function runHere() {
  const main = await loadMain();

  main(process.argv, { standalone: true }).then(
    (code) => {
      process.exitCode = code;
    },
    (err) => {
      console.error(`portcullis: ${err instanceof Error ? err.message : String(err)}`);
      process.exitCode = 2;
    },
  );
}

/**
 * The CLI's main(): from the one-file bundle through the compiled-code cache when both are there
 * (dist/cli/code-cache.js says why and how it is kept safe), else from the unbundled build.
 */
async function loadMain() {
  const { fileURLToPath } = await import('node:url');
  const bundle = fileURLToPath(new URL('../dist/bundle/cli.cjs', import.meta.url));
  const codeCache = existsSync(bundle) ? await import('../dist/cli/code-cache.js').catch(() => undefined) : undefined;
  if (codeCache) {
    const args = process.argv.slice(2);
    const kind = args.includes('scan') || args.includes('sbom') ? 'scan' : 'other';
    return codeCache.loadBundle(bundle, kind).exports.main;
  }
  return (await import('../dist/cli/index.js')).main;
}
