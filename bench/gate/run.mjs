#!/usr/bin/env node
/* global fetch */
// Gate benchmark. Needs `npm run build` first (it imports dist/). Usage:
//   node bench/gate/run.mjs [--only reeval,rescan,push] [--images N] [--packages N] [--update N]
//                           [--runs N] [--keep]
// reeval: N stored analyses (default 10,000 of ~300 packages) and their verdicts, an OSV import of
//         `--update` new or changed advisories, then one timed gate.checkDatabase() per run (each
//         run on a fresh copy of the same data folder, in its own process).
// rescan: what re-scanning would cost instead: a cold analysis of fixture images, extrapolated.
// push:   push-to-verdict latency of each fixture image through `portcullis serve` and skopeo.
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readFileSync,
  readdirSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import { fleet, writeAdvisories } from './lib/fleet.mjs';
import { measure } from '../vulndb/lib/measure.mjs';
import { freePort } from '../registry/lib/servers.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TMP = join(ROOT, '.bench-tmp/gate');
const FIXTURES = resolve(ROOT, '../shared/fixtures');
const CLI = join(ROOT, 'bin/portcullis.js');
const PARTS = ['reeval', 'rescan', 'push'];
const TARGET_MS = 5000;
const GENERATOR_VERSION = 6;

function parseArgs(argv) {
  const o = { only: new Set(PARTS), images: 10_000, packages: 300, update: 1000, runs: 3, keep: false, watch: 0 };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--only') {
      o.only = new Set(argv[++i].split(','));
      for (const p of o.only)
        if (!PARTS.includes(p)) throw new Error(`--only takes ${PARTS.join(',')}; got ${p}`);
    } else if (a === '--images') o.images = Number(argv[++i]);
    else if (a === '--packages') o.packages = Number(argv[++i]);
    else if (a === '--update') o.update = Number(argv[++i]);
    else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--keep') o.keep = true;
    else if (a === '--watch') o.watch = Number(argv[++i]);
    else if (a === '--help' || a === '-h') {
      console.log(
        'node bench/gate/run.mjs [--only reeval,rescan,push] [--images N] [--packages N] [--update N] [--runs N] [--keep] [--watch N]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const k of ['images', 'packages', 'update', 'runs'])
    if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} needs a positive integer`);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const log = (m) => process.stderr.write(`[bench:gate ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const la = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');
const fmtMs = (ms) => (ms >= 1000 ? `${(ms / 1000).toFixed(2)} s` : `${ms.toFixed(ms < 10 ? 1 : 0)} ms`);
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

if (!existsSync(join(ROOT, 'dist/gate/index.js'))) {
  console.error('dist/ is missing: run `npm run build` first');
  process.exit(2);
}
const dist = (p) => import(pathToFileURL(join(ROOT, 'dist', p)).href);
mkdirSync(TMP, { recursive: true });
const results = {
  date: new Date().toISOString(),
  machine: {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model?.trim(),
    memGb: +(totalmem() / 1024 ** 3).toFixed(1),
    node: process.version,
  },
  commit: spawnSync('git', ['rev-parse', '--short', 'HEAD'], { cwd: ROOT, encoding: 'utf8' }).stdout.trim(),
  opts: { ...opts, only: [...opts.only] },
};
const out = [];

// reeval ------------------------------------------------------------------------------------------
async function buildPristine() {
  const spec = {
    generator: GENERATOR_VERSION,
    images: opts.images,
    packages: opts.packages,
    update: opts.update,
    watch: opts.watch,
  };
  const name = `fleet-${opts.images}x${opts.packages}-u${opts.update}${opts.watch > 0 ? `-w${opts.watch}` : ''}`;
  const dir = join(TMP, name);
  const specFile = join(dir, 'spec.json');
  if (existsSync(specFile) && readFileSync(specFile, 'utf8') === JSON.stringify(spec)) {
    log(`reusing ${dir}`);
    return { dir, ...JSON.parse(readFileSync(join(dir, 'built.json'), 'utf8')) };
  }
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const data = join(dir, 'data');
  const { importOsv } = await dist('vulndb/import.js');
  const { Gate, PolicySource, encodeFacts, matchKeyRows, packageIndexRows } = await dist('gate/index.js');
  const { SqliteRegistryMetadata, FsBlobStore, blobRoot } = await dist('store/index.js');
  const { benchPolicy } = await import('./lib/policy.mjs');
  const { projectOf } = await dist('registry/access/index.js');

  log('writing the advisories (base database and update)...');
  const baseZip = join(dir, 'base.zip');
  const updateZip = join(dir, 'update.zip');
  const adv = writeAdvisories(baseZip, updateZip, { update: opts.update });
  // --watch N: instead of the built-in policy, one that fails on N of the update's new advisories
  // (a watch list), so images move from warn to fail and the update changes verdicts.
  const policyFile = join(dir, 'policy.yaml');
  writeFileSync(policyFile, opts.watch > 0 ? watchPolicy(adv.newIds.slice(0, opts.watch)) : '');
  delete adv.newIds;
  log(`importing the base database (${adv.base.records} records)...`);
  await importOsv(data, [baseZip]);
  const metadata = await SqliteRegistryMetadata.open(data);
  log(`storing ${opts.images} analyses...`);
  let t = performance.now();
  let n = 0;
  let packages = 0;
  let factsBytes = 0;
  const stored = [];
  for (const img of fleet(opts.images, { packages: opts.packages })) {
    const facts = encodeFacts(img.result);
    factsBytes += facts.length;
    packages += img.result.packages.length;
    await metadata.artifacts.putFacts(img.digest, facts, packageIndexRows(img.result), matchKeyRows(img.result));
    stored.push([img.repository, img.digest]);
    if (++n % 1000 === 0) log(`  ${n} (load ${la()})`);
  }
  const storeMs = performance.now() - t;
  const gate = new Gate({
    metadata,
    blobs: new FsBlobStore(blobRoot(data)),
    dataDir: data,
    policy: new PolicySource(
      () => benchPolicy(ROOT, policyFile),
      () => [],
    ),
    projectOf,
    publicUrl: 'http://127.0.0.1:5000',
    analysisProcess: false,
  });
  log('computing the first verdict of each image...');
  t = performance.now();
  const statuses = {};
  for (const [i, [repo, digest]] of stored.entries()) {
    const v = await gate.verdicts.evaluate(repo, digest);
    statuses[v.status] = (statuses[v.status] ?? 0) + 1;
    if ((i + 1) % 1000 === 0) log(`  ${i + 1} (load ${la()})`);
  }
  const firstMs = performance.now() - t;
  await gate.close();
  await metadata.close();
  const built = {
    advisories: adv,
    images: n,
    repositories: new Set(stored.map(([r]) => r)).size,
    packagesPerImage: packages / n,
    factsMbTotal: factsBytes / 1e6,
    storeMs,
    firstEvaluationMs: firstMs,
    firstStatuses: statuses,
  };
  writeFileSync(join(dir, 'built.json'), JSON.stringify(built, null, 2));
  writeFileSync(specFile, JSON.stringify(spec));
  return { dir, ...built };
}

function watchPolicy(ids) {
  return [
    'version: 1',
    'name: watch-list',
    'defaultAction: warn',
    'rules:',
    '  - id: watch-list',
    '    action: fail',
    `    vulnerability: { ids: [${ids.join(', ')}] }`,
    '',
  ].join('\n');
}

async function reeval() {
  const p = await buildPristine();
  results.fleet = p;
  out.push(
    `Fleet: ${p.images} images in ${p.repositories} repositories, ${p.packagesPerImage.toFixed(0)} packages each on average ` +
      `(facts ${p.factsMbTotal.toFixed(0)} MB gzip in all); base database ${p.advisories.base.records} advisories ` +
      `(Debian ${p.advisories.base.counts.deb}, Alpine ${p.advisories.base.counts.apk}, npm ${p.advisories.base.counts.npm}, PyPI ${p.advisories.base.counts.pypi}); ` +
      `update ${p.advisories.update.new + p.advisories.update.changed} advisories (${p.advisories.update.new} new, ${p.advisories.update.changed} changed; ` +
      `Debian ${p.advisories.update.deb}, Alpine ${p.advisories.update.apk}, npm ${p.advisories.update.npm}, PyPI ${p.advisories.update.pypi}).`,
    `Setup (not the measured figure): storing the analyses ${fmtMs(p.storeMs)}, first evaluation of every image ${fmtMs(p.firstEvaluationMs)} ` +
      `(${JSON.stringify(p.firstStatuses)}).`,
  );
  const runs = [];
  for (let i = 0; i < opts.runs; i++) {
    const work = join(TMP, 'run-data');
    rmSync(work, { recursive: true, force: true });
    cpSync(join(p.dir, 'data'), work, { recursive: true });
    const loadBefore = la();
    log(`re-evaluation run ${i + 1}/${opts.runs} (load ${loadBefore})...`);
    const r = spawnSync(
      process.execPath,
      [join(ROOT, 'bench/gate/reeval-child.mjs'), ROOT, work, join(p.dir, 'update.zip'), join(p.dir, 'policy.yaml')],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'inherit'],
        maxBuffer: 16 << 20,
      },
    );
    if (r.status !== 0) throw new Error(`reeval-child exited ${r.status}`);
    const m = JSON.parse(r.stdout.trim().split('\n').pop());
    m.load = `${loadBefore} / ${la()}`;
    runs.push(m);
    log(`  ${m.evaluated} re-evaluated in ${fmtMs(m.ms)}, peak RSS ${m.peakRssMb.toFixed(0)} MB`);
  }
  if (!opts.keep) rmSync(join(TMP, 'run-data'), { recursive: true, force: true });
  results.reeval = runs;
  const ms = median(runs.map((r) => r.ms));
  out.push(
    '',
    '| run | images re-evaluated | checkDatabase() | per image | peak RSS (re-evaluation) | verdict_changed | new_advisory_affects (artifacts) | db import of the update | load average (before / after) |',
    '| --- | --- | --- | --- | --- | --- | --- | --- | --- |',
    ...runs.map(
      (r, i) =>
        `| ${i + 1} | ${r.evaluated} | ${fmtMs(r.ms)} | ${(r.ms / Math.max(1, r.evaluated)).toFixed(2)} ms | ${r.peakRssMb.toFixed(0)} MB${r.hwmReset ? '' : ' (process peak)'} | ${r.events.verdict_changed} | ${r.events.new_advisory_affects} (${r.events.affectsArtifacts}) | ${fmtMs(r.importMs)} | ${r.load} |`,
    ),
    '',
    `Median ${fmtMs(ms)}: target < ${fmtMs(TARGET_MS)} ${ms < TARGET_MS ? 'met' : `MISSED (${(ms / TARGET_MS).toFixed(1)}x)`}.`,
  );
}

// rescan ------------------------------------------------------------------------------------------
async function rescan() {
  const images = ['debian-12-minbase', 'node-app', 'alpine-3.20'].filter((n) =>
    existsSync(join(FIXTURES, 'images', `${n}.tar`)),
  );
  if (images.length === 0) {
    out.push('', 'rescan skipped: ../shared/fixtures/images not found');
    return;
  }
  const { analyseInput } = await dist('analyse/index.js');
  const { parseImageInput } = await dist('oci/index.js');
  const rows = [];
  for (const name of images) {
    const file = join(FIXTURES, 'images', `${name}.tar`);
    const cli = [];
    const api = [];
    let pkgs = 0;
    for (let i = 0; i < opts.runs; i++) {
      const cache = mkdtempSync(join(TMP, 'cache-'));
      const r = await measure(
        process.execPath,
        [CLI, 'scan', `oci-archive:${file}`, '--format', 'json', '--cache-dir', cache, '--no-vulns'],
        { cwd: ROOT },
      );
      if (r.code !== 0) throw new Error(`scan ${name} exited ${r.code}: ${r.stderr}`);
      cli.push(r.ms);
      rmSync(cache, { recursive: true, force: true });
      const cache2 = mkdtempSync(join(TMP, 'cache-'));
      const t = performance.now();
      const [res] = await analyseInput(parseImageInput(`oci-archive:${file}`), {
        cacheDir: cache2,
        scratchRoot: join(cache2, 'scratch'),
        secrets: true,
        misconfig: true,
      });
      api.push(performance.now() - t);
      pkgs = res.packages.length;
      rmSync(cache2, { recursive: true, force: true });
    }
    rows.push({ name, pkgs, cliMs: median(cli), apiMs: median(api), load: la() });
    log(`${name}: cold CLI ${fmtMs(median(cli))}, cold in-process analysis ${fmtMs(median(api))}`);
  }
  results.rescan = rows;
  out.push(
    '',
    `| image | packages | cold \`portcullis scan\` (CLI, median of ${opts.runs}) | x ${opts.images} (extrapolated) | cold in-process analysis (median of ${opts.runs}) | x ${opts.images} (extrapolated) | load average |`,
    '| --- | --- | --- | --- | --- | --- | --- |',
    ...rows.map(
      (r) =>
        `| ${r.name} | ${r.pkgs} | ${fmtMs(r.cliMs)} | ${((r.cliMs * opts.images) / 60000).toFixed(0)} min | ${fmtMs(r.apiMs)} | ${((r.apiMs * opts.images) / 60000).toFixed(0)} min | ${r.load} |`,
    ),
  );
}

// push --------------------------------------------------------------------------------------------
const PASSWORD = 'bench-gate-pw';

function ociIndex(file) {
  // The archive's index.json, read with tar(1): which manifests it holds.
  const json = execFileSync('tar', ['-xOf', file, 'index.json'], { encoding: 'utf8' });
  return JSON.parse(json);
}

function blobJson(file, digest) {
  return JSON.parse(
    execFileSync('tar', ['-xOf', file, `blobs/sha256/${digest.slice(7)}`], { encoding: 'utf8' }),
  );
}

async function startServer(dataDir) {
  const port = await freePort();
  const child = spawn(process.execPath, [CLI, 'serve', '--listen', `127.0.0.1:${port}`, '--data', dataDir], {
    env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: PASSWORD, PORTCULLIS_LOG_LEVEL: 'warn' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let logText = '';
  child.stdout.on('data', (d) => (logText += d));
  child.stderr.on('data', (d) => (logText += d));
  const base = `http://127.0.0.1:${port}`;
  const deadline = Date.now() + 30_000;
  for (;;) {
    if (child.exitCode !== null) throw new Error(`serve exited ${child.exitCode}: ${logText}`);
    try {
      const r = await fetch(`${base}/v2/`);
      await r.arrayBuffer();
      if (r.status === 401) break;
    } catch {
      // not listening yet
    }
    if (Date.now() > deadline) throw new Error(`serve did not start: ${logText}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    host: `127.0.0.1:${port}`,
    base,
    log: () => logText,
    async stop() {
      const exited = new Promise((r) => child.once('exit', r));
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 10_000))]);
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
    },
  };
}

const AUTH = `Basic ${Buffer.from(`admin:${PASSWORD}`).toString('base64')}`;

async function pushAndWait(server, file, repo, digests, all) {
  const args = ['copy', '--quiet', '--dest-creds', `admin:${PASSWORD}`, '--dest-tls-verify=false'];
  if (all) args.push('--all');
  args.push(`oci-archive:${file}`, `docker://${server.host}/${repo}:bench`);
  const t0 = performance.now();
  const r = spawnSync('skopeo', args, { encoding: 'utf8' });
  const pushed = performance.now();
  if (r.status !== 0) throw new Error(`skopeo ${args.join(' ')}: ${r.stderr}`);
  const latency = {};
  const pending = new Set(digests);
  const deadline = pushed + 120_000;
  while (pending.size > 0) {
    for (const d of [...pending]) {
      const res = await fetch(`${server.base}/api/v1/repositories/${repo}/artifacts/${d}`, {
        headers: { authorization: AUTH },
      });
      const body = res.status === 200 ? await res.json() : (await res.arrayBuffer(), null);
      if (body?.verdict?.status) {
        latency[d] = { ms: performance.now() - pushed, status: body.verdict.status };
        pending.delete(d);
      }
    }
    if (pending.size === 0) break;
    if (performance.now() > deadline)
      throw new Error(`no verdict for ${[...pending].join(', ')} within 120 s: ${server.log().slice(-2000)}`);
    await new Promise((res) => setTimeout(res, 20));
  }
  return { pushMs: pushed - t0, latency };
}

async function push() {
  const dir = join(FIXTURES, 'images');
  const vulndb = join(FIXTURES, 'vulndb');
  if (!existsSync(dir) || !existsSync(vulndb)) {
    out.push('', 'push skipped: ../shared/fixtures not found');
    return;
  }
  if (spawnSync('sh', ['-c', 'command -v skopeo'], { stdio: 'ignore' }).status !== 0) {
    out.push('', 'push skipped: skopeo is not installed (apt-get install skopeo)');
    return;
  }
  const zips = readdirSync(vulndb)
    .map((e) => join(vulndb, e, 'all.zip'))
    .filter((z) => existsSync(z));
  const files = readdirSync(dir)
    .filter((f) => f.endsWith('.tar'))
    .sort();
  // The fixture database is imported once (`db import`, as the README does) and copied into each server's data folder.
  const dbTemplate = join(TMP, 'fixture-db');
  rmSync(dbTemplate, { recursive: true, force: true });
  execFileSync(process.execPath, [CLI, 'db', 'import', ...zips, '--data', dbTemplate], { stdio: 'ignore' });
  const rows = [];
  // Cold: one server per image with an empty data folder (no layer cache), the fixture database imported.
  // Then, on the same server, a second image sharing its base layer (node-app after alpine-3.20).
  for (let run = 0; run < opts.runs; run++)
    for (const f of files) {
      const name = f.replace(/\.tar$/, '');
      const file = join(dir, f);
      const data = mkdtempSync(join(TMP, 'serve-'));
      cpSync(join(dbTemplate, 'vulndb'), join(data, 'vulndb'), { recursive: true });
      const server = await startServer(data);
      try {
        const index = ociIndex(file);
        const top = index.manifests[0];
        const isIndex = top.mediaType === 'application/vnd.oci.image.index.v1+json';
        const children = isIndex ? blobJson(file, top.digest).manifests : [top];
        const loadBefore = la();
        const r = await pushAndWait(
          server,
          file,
          `bench/${name}`,
          children.map((c) => c.digest),
          isIndex,
        );
        for (const c of children) {
          const plat = c.platform
            ? ` (${c.platform.os}/${c.platform.architecture}${c.platform.variant ? `/${c.platform.variant}` : ''})`
            : '';
          rows.push({
            image: `${name}${plat}`,
            kind: 'cold',
            pushMs: r.pushMs,
            ms: r.latency[c.digest].ms,
            status: r.latency[c.digest].status,
            load: loadBefore,
          });
        }
        if (name === 'alpine-3.20' && files.includes('node-app.tar')) {
          const file2 = join(dir, 'node-app.tar');
          const top2 = ociIndex(file2).manifests[0];
          const r2 = await pushAndWait(server, file2, 'bench/node-app', [top2.digest], false);
          rows.push({
            image: 'node-app after alpine-3.20 (shared base layer)',
            kind: 'warm',
            pushMs: r2.pushMs,
            ms: r2.latency[top2.digest].ms,
            status: r2.latency[top2.digest].status,
            load: la(),
          });
        }
      } finally {
        await server.stop();
        rmSync(data, { recursive: true, force: true });
      }
      log(
        `run ${run + 1}, ${name}: pushed in ${fmtMs(rows.find((x) => x.run === undefined).pushMs)}; verdicts ${rows
          .filter((x) => x.run === undefined)
          .map((x) => `${x.image} ${fmtMs(x.ms)}`)
          .join(', ')}`,
      );
      for (const x of rows) x.run ??= run;
    }
  results.push = rows;
  const byImage = new Map();
  for (const r of rows) byImage.set(r.image, [...(byImage.get(r.image) ?? []), r]);
  const range = (xs) => `${fmtMs(Math.min(...xs))}–${fmtMs(Math.max(...xs))}`;
  out.push(
    '',
    `| image | push (skopeo copy), median of ${opts.runs} | end of push to verdict, median | range | verdict | load average (first run) |`,
    '| --- | --- | --- | --- | --- | --- |',
    ...[...byImage].map(
      ([image, rs]) =>
        `| ${image} | ${fmtMs(median(rs.map((r) => r.pushMs)))} | ${fmtMs(median(rs.map((r) => r.ms)))} | ${range(rs.map((r) => r.ms))} | ${[...new Set(rs.map((r) => r.status))].join('/')} | ${rs[0].load} |`,
    ),
  );
}

if (opts.only.has('reeval')) await reeval();
if (opts.only.has('rescan')) await rescan();
if (opts.only.has('push')) await push();
const stamp = results.date.replace(/[:.]/g, '-');
writeFileSync(join(TMP, 'results.json'), JSON.stringify(results, null, 2));
writeFileSync(join(TMP, `results-${stamp}.json`), JSON.stringify(results, null, 2));
console.log(
  `Gate benchmark ${results.date}, commit ${results.commit}, ${results.machine.nproc} cores, Node ${results.machine.node}`,
);
console.log(out.join('\n'));
