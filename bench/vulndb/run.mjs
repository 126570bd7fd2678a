#!/usr/bin/env node
// Vulnerability database benchmark: `db import` time and peak RSS (fixture zips, a generated
// ~1 GB OSV zip), and in-process matching time (one 500-package image; 200 images = 100,000
// package instances). Needs `npm run build` first. Usage:
//   node bench/vulndb/run.mjs [--no-large] [--large-gb N] [--runs N] [--only fixtures,large,match,bulk]
import { existsSync, mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { delimiter, dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { measure, median, percentile, rssMethod } from './lib/measure.mjs';
import { ZipWriter } from './lib/zip-writer.mjs';
import { fillLarge } from './lib/osv-gen.mjs';
import { imagePackages, writeMatchZip } from './lib/match-set.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TMP = join(ROOT, '.bench-tmp/vulndb');
const FIXTURES = resolve(ROOT, '../shared/fixtures/vulndb');
const FIXTURE_ECOSYSTEMS = ['Alpine', 'Go', 'Maven', 'PyPI', 'npm'];
const CLI = join(ROOT, 'bin/portcullis.js');
const GENERATOR_VERSION = 1;

const TARGETS = { largeRssMb: 300, matchMs: 20, bulkMs: 1000 };

function parseArgs(argv) {
  const o = { large: true, largeGb: 1, runs: 20, only: undefined };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-large') o.large = false;
    else if (a === '--large-gb') o.largeGb = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--only') o.only = new Set(argv[++i].split(','));
    else if (a === '--help' || a === '-h') {
      console.log(
        'node bench/vulndb/run.mjs [--no-large] [--large-gb N] [--runs N] [--only fixtures,large,match,bulk]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  if (!(o.largeGb > 0)) throw new Error('--large-gb needs a positive number');
  if (!(o.runs >= 1)) throw new Error('--runs needs a positive number');
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const wants = (part) => opts.only === undefined || opts.only.has(part);
const log = (m) => process.stderr.write(`[bench:vulndb] ${m}\n`);
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 2 : 1)} ms`);
const mb = (bytes) => bytes / 1024 / 1024;

if (!existsSync(join(ROOT, 'dist/vulndb/import.js'))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
const { importOsv } = await dist('vulndb/import.js');
const { AdvisoryStore, vulnDbPath } = await dist('vulndb/store.js');
const { matchPackages } = await dist('vulndb/match.js');

mkdirSync(TMP, { recursive: true });
const rows = []; // [measure, figure, target, verdict]
const notes = [];
const results = { date: new Date().toISOString(), facts: machineFacts() };

function machineFacts() {
  const c = cpus();
  return {
    nproc: availableParallelism(),
    cpu: c[0]?.model?.trim() ?? 'unknown',
    memGb: +(totalmem() / 1024 ** 3).toFixed(1),
    node: process.version,
    platform: `${process.platform} ${process.arch}`,
    rss: rssMethod,
    loadavg: loadavg()
      .map((l) => l.toFixed(2))
      .join(' '),
  };
}

function importSummary(stdout) {
  const m = /imported (\d+) records/.exec(stdout);
  return m ? Number(m[1]) : NaN;
}

async function cliImport(label, paths, dataDir) {
  rmSync(dataDir, { recursive: true, force: true });
  const args = [CLI, 'db', 'import', ...paths, '--data', dataDir];
  log(`${label}: node ${args.map((a) => relative(ROOT, a) || a).join(' ')}`);
  const r = await measure(process.execPath, args, { cwd: ROOT });
  if (r.code !== 0) throw new Error(`${label}: db import exited ${r.code}\n${r.stderr}`);
  const dbBytes = statSync(vulnDbPath(dataDir)).size;
  return { ...r, records: importSummary(r.stdout), dbBytes };
}

// 1. Fixture zips ------------------------------------------------------------------------------
if (wants('fixtures')) {
  const zips = FIXTURE_ECOSYSTEMS.map((e) => join(FIXTURES, e, 'all.zip'));
  const missing = zips.filter((z) => !existsSync(z));
  if (missing.length) {
    console.log(`fixture import skipped: ${missing.map((m) => relative(ROOT, m)).join(', ')} not found`);
    rows.push(['db import, fixture all.zip x5', 'skipped (fixtures absent)', '-', '-']);
  } else {
    const bytes = zips.reduce((s, z) => s + statSync(z).size, 0);
    const r = await cliImport('fixtures', zips, join(TMP, 'data-fixtures'));
    results.fixtures = { zipBytes: bytes, records: r.records, ms: r.ms, rssMb: r.rssMb, dbBytes: r.dbBytes };
    rows.push([
      `db import, fixture all.zip x5 (${mb(bytes).toFixed(1)} MB zipped, ${r.records} records)`,
      `${fmtMs(r.ms)}, peak RSS ${r.rssMb.toFixed(0)} MB, db ${mb(r.dbBytes).toFixed(1)} MB`,
      'none',
      '-',
    ]);
  }
}

// 2. Generated large zip -----------------------------------------------------------------------
function ensureLargeZip(gb) {
  const name = `osv-large-${gb}gb`;
  const zipPath = join(TMP, `${name}.zip`);
  const metaPath = join(TMP, `${name}.meta.json`);
  const want = { generator: GENERATOR_VERSION, gb };
  if (existsSync(zipPath) && existsSync(metaPath)) {
    const meta = JSON.parse(readFileSync(metaPath, 'utf8'));
    if (meta.generator === want.generator && meta.gb === gb && statSync(zipPath).size === meta.zipBytes) {
      log(`reusing ${relative(ROOT, zipPath)}`);
      return { zipPath, ...meta };
    }
  }
  const target = Math.round(gb * 1024 ** 3);
  log(`generating ${relative(ROOT, zipPath)} (${gb} GiB of OSV JSON, one time)...`);
  const t0 = performance.now();
  const tmp = `${zipPath}.partial`;
  const zip = new ZipWriter(tmp);
  const gen = fillLarge(zip, target, {
    onProgress: (b, n) => log(`  ${n} records, ${(b / 1024 ** 3).toFixed(2)} GiB`),
  });
  const z = zip.close();
  renameSync(tmp, zipPath);
  const meta = {
    ...want,
    records: gen.records,
    counts: gen.counts,
    uncompressedBytes: gen.bytes,
    zipBytes: z.bytes,
  };
  writeFileSync(metaPath, JSON.stringify(meta, null, 2));
  log(
    `  done in ${((performance.now() - t0) / 1000).toFixed(0)} s: ${gen.records} records, ${mb(z.bytes).toFixed(0)} MB zipped`,
  );
  return { zipPath, ...meta };
}

if (wants('large')) {
  if (!opts.large) {
    rows.push([
      `db import, generated ${opts.largeGb} GB OSV zip`,
      'skipped (--no-large)',
      `RSS < ${TARGETS.largeRssMb} MB`,
      '-',
    ]);
  } else {
    const big = ensureLargeZip(opts.largeGb);
    const r = await cliImport('large', [big.zipPath], join(TMP, 'data-large'));
    rmSync(join(TMP, 'data-large'), { recursive: true, force: true });
    const met = r.rssMb < TARGETS.largeRssMb;
    results.large = {
      ...big,
      zipPath: relative(ROOT, big.zipPath),
      imported: r.records,
      ms: r.ms,
      rssMb: r.rssMb,
      dbBytes: r.dbBytes,
    };
    const c = big.counts;
    rows.push([
      `db import, generated OSV zip: ${(big.uncompressedBytes / 1024 ** 3).toFixed(2)} GiB JSON / ${mb(big.zipBytes).toFixed(0)} MB zipped, ` +
        `${big.records} records (Debian ${c.Debian}, Alpine ${c.Alpine}, npm ${c.npm}, PyPI ${c.PyPI})`,
      `${fmtMs(r.ms)} (${(big.records / (r.ms / 1000)).toFixed(0)} records/s, ${(mb(big.uncompressedBytes) / (r.ms / 1000)).toFixed(1)} MB/s JSON), ` +
        `peak RSS ${r.rssMb.toFixed(0)} MB, db ${mb(r.dbBytes).toFixed(0)} MB`,
      `peak RSS < ${TARGETS.largeRssMb} MB`,
      met ? 'met' : `MISSED by ${(r.rssMb - TARGETS.largeRssMb).toFixed(0)} MB`,
    ]);
    if (r.records !== big.records) notes.push(`large import wrote ${r.records} of ${big.records} records`);
  }
}

// 3 + 4. Matching ------------------------------------------------------------------------------
let matchData;
async function matchDatabase() {
  if (matchData) return matchData;
  const dataDir = join(TMP, 'data-match');
  rmSync(dataDir, { recursive: true, force: true });
  const zipPath = join(TMP, 'match-debian12-npm.zip');
  log('writing the matching advisory set and importing it (with the fixture zips when present)...');
  const set = writeMatchZip(zipPath);
  const fixtureZips = FIXTURE_ECOSYSTEMS.map((e) => join(FIXTURES, e, 'all.zip')).filter((z) =>
    existsSync(z),
  );
  const summary = await importOsv(dataDir, [zipPath, ...fixtureZips]);
  matchData = { dataDir, set, summary };
  return matchData;
}

/**
 * What-if (diagnostic only, not a Portcullis code path): the store behind a memo of
 * advisoriesFor and cveSeverity, to show how much of the time is SQLite reads + JSON.parse.
 */
function memoised(store) {
  const adv = new Map();
  const cve = new Map();
  return {
    advisoriesFor(e, n) {
      const k = `${e}\u0000${n}`;
      let v = adv.get(k);
      if (v === undefined) adv.set(k, (v = store.advisoriesFor(e, n)));
      return v;
    },
    cveSeverity(id) {
      if (!cve.has(id)) cve.set(id, store.cveSeverity(id));
      return cve.get(id);
    },
    ecosystems: () => store.ecosystems(),
  };
}

const OS = {
  family: 'debian',
  version: '12.8',
  name: 'Debian GNU/Linux 12 (bookworm)',
  codename: 'bookworm',
};

if (wants('match')) {
  const { dataDir, set, summary } = await matchDatabase();
  const pkgs = imagePackages(set, 0);
  const store = AdvisoryStore.open(dataDir);
  const warm = matchPackages(store, OS, pkgs);
  const times = [];
  let findings = 0;
  for (let i = 0; i < opts.runs; i++) {
    const t0 = performance.now();
    const res = matchPackages(store, OS, pkgs);
    times.push(performance.now() - t0);
    findings = res.findings.length;
  }
  // Diagnostic: same runs with lookups memoised (warmed by one run).
  const memo = memoised(store);
  matchPackages(memo, OS, pkgs);
  const memoTimes = [];
  for (let i = 0; i < opts.runs; i++) {
    const t0 = performance.now();
    matchPackages(memo, OS, pkgs);
    memoTimes.push(performance.now() - t0);
  }
  store.close();
  const byType = (t) => pkgs.filter((p) => p.type === t).length;
  const advisedDeb = new Set(
    pkgs.filter((p) => p.type === 'deb' && set.debAdvised.includes(p.sourceName)).map((p) => p.sourceName),
  );
  const med = median(times);
  results.match = {
    packages: pkgs.length,
    findings,
    warmupFindings: warm.findings.length,
    runsMs: times,
    medianMs: med,
    memoisedMedianMs: median(memoTimes),
    records: summary.records,
  };
  notes.push(
    `what-if (diagnostic, not Portcullis code): with advisoriesFor and cveSeverity memoised outside the store, ` +
      `the 500-package match takes a median ${fmtMs(median(memoTimes))}; the rest of ${fmtMs(med)} is SQLite reads and JSON.parse.`,
  );
  rows.push([
    `match one image: ${pkgs.length} packages (${byType('deb')} deb from ${new Set(pkgs.filter((p) => p.type === 'deb').map((p) => p.sourceName)).size} sources, ` +
      `${advisedDeb.size} with advisories; ${byType('npm')} npm) -> ${findings} findings; db ${summary.records} records`,
    `median ${fmtMs(med)} of ${opts.runs} (min ${fmtMs(Math.min(...times))}, p90 ${fmtMs(percentile(times, 90))}) after 1 warm-up`,
    `< ${TARGETS.matchMs} ms`,
    med < TARGETS.matchMs
      ? 'met'
      : `MISSED by ${fmtMs(med - TARGETS.matchMs)} (${(med / TARGETS.matchMs).toFixed(1)}x)`,
  ]);
}

if (wants('bulk')) {
  const { dataDir, set } = await matchDatabase();
  const images = Array.from({ length: 200 }, (_, i) => imagePackages(set, i));
  const instances = images.reduce((s, p) => s + p.length, 0);
  const keyOf = (p) =>
    p.type === 'deb' ? `deb:${p.sourceName}` : `npm:${p.namespace ? `${p.namespace}/` : ''}${p.name}`;
  const distinct = new Set(images.flatMap((ps) => ps.map(keyOf))).size;
  const run = (store) => {
    let findings = 0;
    const t0 = performance.now();
    for (const pkgs of images) findings += matchPackages(store, OS, pkgs).findings.length;
    return { ms: performance.now() - t0, findings };
  };
  // Fresh store: nothing parsed yet (what a registry sees after a restart).
  let store = AdvisoryStore.open(dataDir);
  const cold = run(store);
  const warm = run(store);
  // Instrumented pass: how many (ecosystem, name) lookups reach SQLite, and their share of the time.
  let calls = 0;
  let lookupMs = 0;
  const counting = {
    advisoriesFor: (e, n) => {
      calls++;
      const t0 = performance.now();
      const out = store.advisoriesFor(e, n);
      lookupMs += performance.now() - t0;
      return out;
    },
    cveSeverity: (id) => store.cveSeverity(id),
    ecosystems: () => store.ecosystems(),
  };
  const inst = run(counting);
  store.close();
  // Diagnostic: a fresh store behind a memo shared by all 200 calls.
  store = AdvisoryStore.open(dataDir);
  const memoRun = run(memoised(store));
  store.close();
  // All 100,000 instances in one call (the per-call lookup cache then spans all images).
  store = AdvisoryStore.open(dataDir);
  const all = images.flat();
  const t0 = performance.now();
  const one = matchPackages(store, OS, all);
  const oneMs = performance.now() - t0;
  store.close();
  results.bulk = {
    images: images.length,
    instances,
    distinctNames: distinct,
    coldMs: cold.ms,
    warmMs: warm.ms,
    findings: cold.findings,
    lookupsPerPass: calls,
    lookupMsInstrumented: lookupMs,
    instrumentedMs: inst.ms,
    singleCallMs: oneMs,
    singleCallFindings: one.findings.length,
    memoisedMs: memoRun.ms,
  };
  rows.push([
    `match ${images.length} images x 500 = ${instances} package instances (${distinct} distinct names) -> ${cold.findings} findings`,
    `${fmtMs(cold.ms)} with a freshly opened store; ${fmtMs(warm.ms)} second pass; ${fmtMs(oneMs)} as one matchPackages call`,
    `< ${fmtMs(TARGETS.bulkMs)}`,
    cold.ms < TARGETS.bulkMs
      ? 'met'
      : `MISSED by ${fmtMs(cold.ms - TARGETS.bulkMs)} (${(cold.ms / TARGETS.bulkMs).toFixed(1)}x)`,
  ]);
  notes.push(
    `AdvisoryStore caches parsed records by id across calls, but not (ecosystem, name) lookups: ` +
      `matchPackages dedupes lookups only within one call, so the 200 calls made ${calls} advisoriesFor queries ` +
      `(SQLite read + JSON.parse of each affected row), taking ${fmtMs(lookupMs)} of ${fmtMs(inst.ms)} in an instrumented pass. ` +
      `What-if with advisoriesFor/cveSeverity memoised across the 200 calls (fresh store): ${fmtMs(memoRun.ms)}.`,
  );
}

// Peers ----------------------------------------------------------------------------------------
function onPath(cmd) {
  for (const dir of (process.env.PATH ?? '').split(delimiter)) {
    if (dir && existsSync(join(dir, cmd))) return join(dir, cmd);
  }
  return undefined;
}
const peers = ['osv-scanner', 'grype', 'trivy'].map((p) => [p, onPath(p)]);
const present = peers.filter(([, p]) => p);
const peerLine = present.length
  ? `peers on PATH: ${present.map(([n, p]) => `${n} (${p})`).join(', ')} - not run by this script; compare by hand`
  : 'peer: N/A - none of osv-scanner, grype, trivy is on PATH (nothing is installed by this benchmark)';

// Report ---------------------------------------------------------------------------------------
const f = results.facts;
console.log(`\nPortcullis vulnerability database benchmark, ${results.date}`);
console.log(
  `machine: nproc ${f.nproc}, ${f.cpu}, ${f.memGb} GiB RAM, node ${f.node}, ${f.platform}; load average at start ${f.loadavg}; RSS via ${f.rss}\n`,
);
const header = ['measure', 'result', 'target', 'verdict'];
const widths = header.map((h, i) =>
  Math.min(90, Math.max(h.length, ...rows.map((r) => String(r[i]).length))),
);
const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
console.log(line(header));
console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
for (const r of rows) console.log(line(r));
console.log('');
for (const n of notes) console.log(`note: ${n}`);
console.log(peerLine);
const argv = process.argv.slice(2).join(' ');
console.log(`\nreproduce: npm run build && node bench/vulndb/run.mjs${argv ? ` ${argv}` : ''}`);
console.log('');
writeFileSync(
  join(TMP, 'results.json'),
  JSON.stringify({ ...results, rows, notes, peer: peerLine }, null, 2),
);
log(`results written to ${relative(ROOT, join(TMP, 'results.json'))}`);
