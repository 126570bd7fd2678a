// Child process for the in-process figures: imports the built scanner once, then times
// analyseInput calls with a cache folder that starts empty. Call 1 is the cold call (modules
// already loaded, cache empty); calls 2..N+1 are warm (cache filled by call 1). Then M calls with
// no cache at all ("cold again"): every layer decompressed and analysed again in a process that
// has scanned before, which is what a long-running registry worker does for each new image.
// With STEADY_RUNS, another STEADY_WARM_UP uncached calls are made untimed and then STEADY_RUNS
// timed ("steady"): the same work once V8 has compiled the hot paths, as in a worker that has
// analysed many images.
// With PACKAGES_ONLY set to 1, every steady call is paired with one without the secret search and
// the misconfiguration checks ("steady, packages only"), alternating so that drifting load hits
// both alike: the difference is what those checks cost once the process is warm.
// Usage: node bench/scan/inprocess.mjs IMAGE_INPUT CACHE_DIR WARM_RUNS [COLD_AGAIN_RUNS] [STEADY_RUNS] [PACKAGES_ONLY]
// Prints one JSON line: { coldMs, warmMs: [...], coldAgainMs: [...], steadyMs: [...], steadyPackagesOnlyMs: [...], packages, hwmMb }
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const [input, cacheDir, warmRunsText = '3', coldAgainRunsText = '0', steadyRunsText = '0', packagesOnlyText = '0'] =
  process.argv.slice(2);
const PACKAGES_ONLY = packagesOnlyText === '1';
const STEADY_WARM_UP = 15;
const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const { analyseInput } = await import(pathToFileURL(resolve(root, 'dist/analyse/index.js')).href);
const { parseImageInput } = await import(pathToFileURL(resolve(root, 'dist/oci/index.js')).href);

async function timed(dir = cacheDir, checks = true) {
  const t0 = process.hrtime.bigint();
  // The same analysis as `portcullis scan` and the registry's on-push analysis: secrets and
  // image misconfigurations included (unless `checks` is false: packages only).
  const results = await analyseInput(parseImageInput(input), { cacheDir: dir, secrets: checks, misconfig: checks });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, packages: results.reduce((n, r) => n + r.packages.length, 0) };
}

const cold = await timed();
const warmMs = [];
let warmPackages = 0;
for (let i = 0; i < Number(warmRunsText); i++) {
  const w = await timed();
  warmMs.push(w.ms);
  warmPackages = w.packages;
}
const coldAgainMs = [];
for (let i = 0; i < Number(coldAgainRunsText); i++) coldAgainMs.push((await timed(null)).ms);
const steadyMs = [];
const steadyPackagesOnlyMs = [];
if (Number(steadyRunsText) > 0) {
  for (let i = 0; i < STEADY_WARM_UP; i++) {
    await timed(null);
    if (PACKAGES_ONLY) await timed(null, false);
  }
  for (let i = 0; i < Number(steadyRunsText); i++) {
    // Alternate which goes first, so neither always follows the other's garbage.
    if (PACKAGES_ONLY && i % 2 === 1) steadyPackagesOnlyMs.push((await timed(null, false)).ms);
    steadyMs.push((await timed(null)).ms);
    if (PACKAGES_ONLY && i % 2 === 0) steadyPackagesOnlyMs.push((await timed(null, false)).ms);
  }
}
const status = await readFile('/proc/self/status', 'utf8').catch(() => '');
const hwm = /VmHWM:\s+(\d+) kB/.exec(status);
process.stdout.write(
  `${JSON.stringify({
    coldMs: cold.ms,
    warmMs,
    coldAgainMs,
    steadyMs,
    steadyPackagesOnlyMs,
    packages: cold.packages,
    warmPackages,
    hwmMb: hwm ? Number(hwm[1]) / 1024 : null,
  })}\n`,
);
