// Bundles the CLI into dist/bundle/ with esbuild, so `portcullis` starts by loading one file instead
// of hundreds of modules (start-up is most of a small image's scan time): dist/bundle/cli.cjs, whose
// compiled code the launcher caches (src/cli/code-cache.ts). The analysis worker is an ES module
// bundle beside it. Native and data-carrying packages stay external.
import { createHash } from 'node:crypto';
import { readFile, rm, writeFile } from 'node:fs/promises';
import { build } from 'esbuild';

const OUT = 'dist/bundle';

/**
 * `import { z } from 'zod'` is a namespace import, so esbuild keeps all of zod v4 including its
 * 60-odd translated error-message locales (about 250 KB of the bundle), which every command would
 * parse at start-up. Nothing here selects a locale: zod's schemas register English themselves from
 * `locales/en.js`, which this plugin leaves alone; only the `locales` namespace becomes empty.
 */
const zodWithoutLocales = {
  name: 'zod-without-locales',
  setup(b) {
    b.onResolve({ filter: /\/locales\/index\.js$/ }, (args) =>
      /[\\/]node_modules[\\/]zod[\\/]/.test(args.importer) ? { path: 'zod-locales', namespace: 'portcullis-empty' } : undefined,
    );
    b.onLoad({ filter: /.*/, namespace: 'portcullis-empty' }, () => ({ contents: 'export {};', loader: 'js' }));
  },
};

/**
 * packageurl-js makes an ICU collator (`new Intl.Collator()`) as it loads, only to put the names of
 * the purl components in order once. Making it costs 8-12 ms of every start on this project's
 * 2-core machines (alpine-3.20's cold scan: 372 against 386 ms, medians of 20 alternating runs),
 * and the order it gives follows the process's locale. The purl specification orders by code
 * points, so the module gets a code-unit comparison instead. The build fails if the line is not
 * there to replace: a new packageurl-js needs a fresh look.
 */
const COLLATOR_LINE = 'const { compare: localeCompare } = new Intl.Collator()';
const purlWithoutCollator = {
  name: 'packageurl-without-collator',
  setup(b) {
    b.onLoad({ filter: /[\\/]packageurl-js[\\/]src[\\/]strings\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(COLLATOR_LINE)) {
        throw new Error(
          `${args.path} no longer says "${COLLATOR_LINE}"; review scripts/bundle.mjs's purlWithoutCollator`,
        );
      }
      return {
        contents: text.replace(COLLATOR_LINE, 'const localeCompare = (a, b) => (a < b ? -1 : a > b ? 1 : 0)'),
        loader: 'js',
      };
    });
  },
};

/**
 * commander loads child_process (and with it net and dgram) as it loads, for the one thing it
 * spawns: executable subcommands, which Portcullis does not have. Every command paid for it
 * before parsing its arguments; the module is now fetched on first use instead. The build fails
 * if the line is not there to replace: a new commander needs a fresh look.
 */
const COMMANDER_CHILD_PROCESS_LINE = "const childProcess = require('node:child_process');";
const commanderLazyChildProcess = {
  name: 'commander-lazy-child-process',
  setup(b) {
    b.onLoad({ filter: /[\\/]node_modules[\\/]commander[\\/]lib[\\/]command\.js$/ }, async (args) => {
      const text = await readFile(args.path, 'utf8');
      if (!text.includes(COMMANDER_CHILD_PROCESS_LINE)) {
        throw new Error(
          `${args.path} no longer says "${COMMANDER_CHILD_PROCESS_LINE}"; review scripts/bundle.mjs's commanderLazyChildProcess`,
        );
      }
      return {
        contents: text.replace(
          COMMANDER_CHILD_PROCESS_LINE,
          "const childProcess = { spawn: (...a) => require('node:child_process').spawn(...a) };",
        ),
        loader: 'js',
      };
    });
  },
};

/** What both bundles share. */
const COMMON = {
  outdir: OUT,
  bundle: true,
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Less text to parse at every start (~10 ms); names are kept, so stack traces and
  // constructor names read as in the source, and the source map points back to dist/.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  plugins: [zodWithoutLocales, purlWithoutCollator, commanderLazyChildProcess],
  // better-sqlite3 is a native addon; the CycloneDX library and ajv read schema files from their
  // own package folders at run time.
  external: ['better-sqlite3', '@cyclonedx/cyclonedx-library', 'ajv', 'ajv-formats', 'ajv-formats-draft2019', 'fastify', 'pino'],
};

// Chunk names are content hashes: without this, every build leaves the previous chunks behind.
await rm(OUT, { recursive: true, force: true });
await build({
  ...COMMON,
  // The gate's analysis process runs this entry by file name next to the bundle's chunks (gate/analysis-process.ts).
  entryPoints: { 'analysis-worker': 'dist/gate/analysis-worker.js' },
  splitting: true,
  format: 'esm',
  banner: { js: "import { createRequire as __portcullisCreateRequire } from 'node:module'; const require = __portcullisCreateRequire(import.meta.url);" },
});

// The CLI is one CommonJS file, because only a script (vm.Script) can be given V8's cached data on
// Node 20: bin/portcullis.js loads it through src/cli/code-cache.ts, which keeps the compiled code
// between runs. Its content hash goes beside it, since V8 checks only a source's length.
await build({
  ...COMMON,
  entryPoints: { cli: 'dist/cli/index.js' },
  outExtension: { '.js': '.cjs' },
  format: 'cjs',
  // The sources are ES modules, strict and with import.meta.url; the directive must come first.
  define: { 'import.meta.url': '__portcullisModuleUrl' },
  // `import()` becomes require(): code deserialised from V8's cache loses the script's handler for
  // dynamic imports ("A dynamic import callback was not specified"), and every external here is
  // CommonJS.
  supported: { 'dynamic-import': false },
  banner: { js: '"use strict";const __portcullisModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
});
const cli = await readFile(`${OUT}/cli.cjs`);
if (/(?<![\w$.])import\(/.test(cli.toString('utf8'))) {
  throw new Error(`${OUT}/cli.cjs calls import(), which fails in code loaded from V8's cache (src/cli/code-cache.ts)`);
}
await writeFile(`${OUT}/cli.cjs.sha256`, `${createHash('sha256').update(cli).digest('hex')}\n`);
