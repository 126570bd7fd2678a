// What secret and misconfiguration checks add to a scan (issue: at most 30 % over package-only).
// Cold scans, no cache, in one process after a warm-up, alternating the two modes so machine load
// hits both alike. Usage: npm run build && node bench/scan/checks-cost.mjs [IMAGE.tar] [RUNS]
import { existsSync } from 'node:fs';
import { resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const image = process.argv[2] ?? resolve(root, '../shared/fixtures/images/debian-12-minbase.tar');
const runs = Number(process.argv[3] ?? 7);
if (!existsSync(image)) {
  console.log(`skipped: ${image} is absent (../shared/fixtures not present)`);
  process.exit(0);
}
const { analyseInput } = await import(pathToFileURL(resolve(root, 'dist/analyse/index.js')).href);
const { parseImageInput } = await import(pathToFileURL(resolve(root, 'dist/oci/index.js')).href);
const input = parseImageInput(`oci-archive:${image}`);

async function time(opts) {
  const t0 = process.hrtime.bigint();
  const [r] = await analyseInput(input, { cacheDir: null, ...opts });
  return { ms: Number(process.hrtime.bigint() - t0) / 1e6, r };
}

await time({ secrets: true, misconfig: true }); // warm-up: module compilation, page cache
const base = [];
const full = [];
let last;
for (let i = 0; i < runs; i++) {
  base.push((await time({})).ms);
  const f = await time({ secrets: true, misconfig: true });
  full.push(f.ms);
  last = f.r;
}
const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const b = median(base);
const f = median(full);
console.log(`image: ${image}`);
console.log(`runs: ${runs} each, medians`);
console.log(`packages only:                    ${b.toFixed(0)} ms`);
console.log(`packages + secrets + misconfig:   ${f.toFixed(0)} ms`);
console.log(`added cost:                       ${(((f - b) / b) * 100).toFixed(1)} % (target <= 30 %)`);
console.log(`findings: ${last.secrets.length} secrets, ${last.misconfigurations.length} misconfigurations`);
