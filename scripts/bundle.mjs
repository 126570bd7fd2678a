// Bundles the CLI into dist/bundle/ with esbuild, so `portcullis` starts by loading a handful of
// files instead of hundreds of modules (start-up is most of a small image's scan time). Dynamic
// imports become separate chunks, so commands still load only what they use. Native and
// data-carrying packages stay external.
import { build } from 'esbuild';

await build({
  entryPoints: { cli: 'dist/cli/index.js' },
  outdir: 'dist/bundle',
  bundle: true,
  splitting: true,
  format: 'esm',
  platform: 'node',
  target: 'node20',
  sourcemap: true,
  logLevel: 'warning',
  // better-sqlite3 is a native addon; the CycloneDX library and ajv read schema files from their
  // own package folders at run time.
  external: ['better-sqlite3', '@cyclonedx/cyclonedx-library', 'ajv', 'ajv-formats', 'ajv-formats-draft2019', 'fastify', 'pino'],
  banner: { js: "import { createRequire as __portcullisCreateRequire } from 'node:module'; const require = __portcullisCreateRequire(import.meta.url);" },
});
