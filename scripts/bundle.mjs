// Bundles the CLI into dist/bundle/ with esbuild, so `portcullis` starts by loading a handful of
// files instead of hundreds of modules (start-up is most of a small image's scan time). Dynamic
// imports become separate chunks, so commands still load only what they use. Native and
// data-carrying packages stay external.
import { rm } from 'node:fs/promises';
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

// Chunk names are content hashes: without this, every build leaves the previous chunks behind.
await rm(OUT, { recursive: true, force: true });
await build({
  // The gate's analysis process runs this entry by file name next to the bundle's chunks (gate/analysis-process.ts).
  entryPoints: { cli: 'dist/cli/index.js', 'analysis-worker': 'dist/gate/analysis-worker.js' },
  outdir: OUT,
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  // Less text to parse at every start (~10 ms); names are kept, so stack traces and
  // constructor names read as in the source, and the source map points back to dist/.
  minifyWhitespace: true,
  minifySyntax: true,
  logLevel: 'warning',
  plugins: [zodWithoutLocales],
  // better-sqlite3 is a native addon; the CycloneDX library and ajv read schema files from their
  // own package folders at run time.
  external: ['better-sqlite3', '@cyclonedx/cyclonedx-library', 'ajv', 'ajv-formats', 'ajv-formats-draft2019', 'fastify', 'pino'],
  banner: { js: "import { createRequire as __portcullisCreateRequire } from 'node:module'; const require = __portcullisCreateRequire(import.meta.url);" },
});
