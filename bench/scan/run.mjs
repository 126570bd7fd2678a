#!/usr/bin/env node
// Scan benchmark: for each fixture image (../shared/fixtures/images/*.tar) and a generated
// ~1 GiB image, measures the floor (read + sha256 + gunzip every layer once), cold and warm CLI
// scans, cold and warm in-process scans, and cdxgen on the same archive. See BENCHMARKS.md.
//
//   npm run build && npm run bench [-- --only NAME] [--runs N] [--skip-cdxgen] [--no-large]
//                                   [--cdxgen-runs N (default: --runs)] [--cold-only]
//                                   [--node-flags=FLAGS] [--default-heap] [--steady N [--packages-only]]
//
// --cold-only measures only what the cold/floor target needs: the floor, the cold CLI and the
// in-process calls (first call, and no-cache calls in a process that has scanned before).
// No warm CLI runs and no cdxgen.
//
// --node-flags=FLAGS passes Node/V8 flags (space-separated; write it with '=', e.g.
// --node-flags=--initial-old-space-size=128) to the scanner's processes, CLI and in-process; the
// floor is still measured in this process, without them.
//
// The in-process child runs with the flags and allocator settings of the registry's analysis
// process (ANALYSIS_PROCESS_FLAGS and ALLOCATOR_TUNABLES in src/analyse/heap.ts), since that is the
// long-running process these figures stand for; --default-heap runs it with V8's default heap and
// glibc's default allocator instead. The CLI runs as users run it. The floor is measured twice: in
// this process, and in a child with the same allocator settings ("tuned floor"), both after
// warm-up runs. It is also timed as the cold CLI is, as a whole fresh process that does it once
// ("floor process", with and without those settings): Node's start and cold code are in that.
//
// --packages-only (with --steady) pairs each steady call with one that skips the secret search and
// the misconfiguration checks: the floor has no such work, and the difference shows its share.
//
// Results: a table on stdout and .bench-tmp/scan/results.json.
import { execFileSync, spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { basename, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';
import { floorRuns } from './lib/floor.mjs';
import { ensureLargeImage } from './lib/large-image.mjs';
import { measure, median, rssMethod } from './lib/measure.mjs';
import { extractArchive, imageLayers } from './lib/oci.mjs';

const ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../..');
const FIXTURES = resolve(ROOT, '../shared/fixtures/images');
const TMP = join(ROOT, '.bench-tmp');
const WORK = join(TMP, 'scan');
const CDXGEN_DIR = join(TMP, 'cdxgen');
const CLI = join(ROOT, 'bin/portcullis.js');
const NODE = process.execPath;
const MiB = 1 << 20;

const FLOOR_WARM_UP = 3;
const SMALL_FLOOR_RUNS = 10;
const TARGETS = { coldOverFloor: 1.3, cdxgenOverCold: 10, warmInProcessMs: 100, largeRssMb: 200 };

const { values: opts } = parseArgs({
  options: {
    only: { type: 'string' },
    runs: { type: 'string', default: '3' },
    'cdxgen-runs': { type: 'string' },
    'skip-cdxgen': { type: 'boolean', default: false },
    'no-large': { type: 'boolean', default: false },
    'cold-only': { type: 'boolean', default: false },
    steady: { type: 'string', default: '0' },
    'node-flags': { type: 'string', default: '' },
    'default-heap': { type: 'boolean', default: false },
    'packages-only': { type: 'boolean', default: false },
    help: { type: 'boolean', short: 'h', default: false },
  },
  strict: true,
});
if (opts.help) {
  console.log(`usage: node bench/scan/run.mjs [--only NAME] [--runs N] [--cdxgen-runs N] [--skip-cdxgen] [--no-large] [--cold-only] [--steady N [--packages-only]] [--node-flags=FLAGS] [--default-heap]
  NAME is a fixture file name without .tar (e.g. alpine-3.20) or "large" for the generated image.
  --cold-only: floor, cold CLI and in-process cold calls only (no warm CLI, no cdxgen).
  --steady N: also N in-process calls without cache after 15 untimed ones ("steady").
  --node-flags=FLAGS: Node/V8 flags for the scanner's processes (CLI and in-process), not the floor.
  --default-heap: the in-process child without the registry analysis process's heap flags and allocator settings.
  --packages-only: with --steady, pair every steady call with one without the secret search and the
    misconfiguration checks, to show what those checks cost against the floor.`);
  process.exit(0);
}
const RUNS = Math.max(1, Number.parseInt(opts.runs, 10) || 3);
const COLD_ONLY = opts['cold-only'];
const STEADY_RUNS = Math.max(0, Number.parseInt(opts.steady, 10) || 0);
const PACKAGES_ONLY = opts['packages-only'] && STEADY_RUNS > 0;
const NODE_FLAGS = opts['node-flags'].split(/\s+/).filter(Boolean);
const HEAP = await import(new URL('../../dist/analyse/heap.js', import.meta.url).href);
const ANALYSIS_FLAGS = opts['default-heap'] ? [] : HEAP.ANALYSIS_PROCESS_FLAGS;
// The analysis processes' allocator settings (GLIBC_TUNABLES): the in-process child runs with
// them, as the registry's analysis process does, and the tuned floor is measured with them.
const TUNED_ENV = HEAP.withAllocatorTunables(process.env);
const ANALYSIS_ENV = opts['default-heap'] ? process.env : TUNED_ENV;
const CDXGEN_RUNS =
  opts['cdxgen-runs'] === undefined ? RUNS : Math.max(1, Number.parseInt(opts['cdxgen-runs'], 10) || 1);

const log = (...a) => console.error('[bench]', ...a);
const fmtMs = (ms) =>
  Number.isFinite(ms)
    ? ms >= 10_000
      ? `${(ms / 1000).toFixed(1)} s`
      : `${ms.toFixed(ms < 100 ? 1 : 0)} ms`
    : '-';
const fmtMb = (mb) => (Number.isFinite(mb) ? `${mb.toFixed(0)} MB` : '-');
const fmtX = (x) => (Number.isFinite(x) ? `${x.toFixed(x < 10 ? 2 : 1)}x` : '-');

// ---------------------------------------------------------------------------------------------
// Preconditions

if (!existsSync(FIXTURES) || readdirSync(FIXTURES).filter((f) => f.endsWith('.tar')).length === 0) {
  console.log(
    `bench: no fixture images at ${FIXTURES} (expected ../shared/fixtures/images/*.tar beside the repo); skipping.`,
  );
  process.exit(0);
}
for (const f of ['dist/cli/index.js', 'dist/analyse/index.js', 'dist/oci/index.js']) {
  if (!existsSync(join(ROOT, f))) {
    console.error(`bench: ${f} is missing; run \`npm run build\` first.`);
    process.exit(1);
  }
}

function gitFacts() {
  try {
    const commit = execFileSync('git', ['rev-parse', '--short', 'HEAD'], {
      cwd: ROOT,
      encoding: 'utf8',
    }).trim();
    const dirty =
      execFileSync('git', ['status', '--porcelain', '--untracked-files=no', '--', 'src'], {
        cwd: ROOT,
        encoding: 'utf8',
      }).trim() !== '';
    const untracked =
      execFileSync('git', ['status', '--porcelain', '--', 'src'], { cwd: ROOT, encoding: 'utf8' }).trim() !==
      '';
    return { commit, srcModified: dirty || untracked };
  } catch {
    return { commit: 'unknown', srcModified: null };
  }
}

const machine = {
  date: new Date().toISOString(),
  nproc: os.availableParallelism?.() ?? os.cpus().length,
  cpu: os.cpus()[0]?.model ?? 'unknown',
  memGiB: +(os.totalmem() / 2 ** 30).toFixed(1),
  node: process.version,
  platform: `${os.platform()} ${os.release()} ${os.arch()}`,
  rssMethod,
  loadAvgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  ...gitFacts(),
};

// ---------------------------------------------------------------------------------------------
// cdxgen, installed on demand outside the project

function ensureCdxgen() {
  const bin = join(CDXGEN_DIR, 'node_modules/.bin/cdxgen');
  if (!existsSync(bin)) {
    log('installing @cyclonedx/cdxgen into .bench-tmp/cdxgen (once) ...');
    const r = spawnSync(
      'npm',
      ['install', '--prefix', CDXGEN_DIR, '--no-audit', '--no-fund', '@cyclonedx/cdxgen'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'pipe'],
        timeout: 15 * 60_000,
      },
    );
    if (r.status !== 0 || !existsSync(bin)) {
      const why =
        r.error?.message ??
        (r.stderr || r.stdout || `exit ${r.status}`).trim().split('\n').slice(-5).join('\n');
      return { error: `npm install @cyclonedx/cdxgen failed: ${why}` };
    }
  }
  let version = 'unknown';
  try {
    version = JSON.parse(
      readFileSync(join(CDXGEN_DIR, 'node_modules/@cyclonedx/cdxgen/package.json'), 'utf8'),
    ).version;
  } catch {
    /* keep unknown */
  }
  return { bin, version };
}

/** All components (nested too), and how many carry a package URL that is not pkg:generic. */
function countComponents(bom) {
  let total = 0;
  let packages = 0;
  const byType = {};
  const walk = (list) => {
    for (const c of list ?? []) {
      total++;
      const kind = c.purl ? c.purl.slice(4).split('/')[0] : `(${c.type ?? 'no type'})`;
      byType[kind] = (byType[kind] ?? 0) + 1;
      if (c.purl && !c.purl.startsWith('pkg:generic/')) packages++;
      walk(c.components);
    }
  };
  walk(bom.components);
  return { total, packages, byType };
}

async function runCdxgen(cdx, archive) {
  const runs = [];
  for (let i = 0; i < CDXGEN_RUNS; i++) {
    const cwd = await mkdtemp(join(os.tmpdir(), 'bench-cdxgen-'));
    const env = {
      ...process.env,
      FETCH_LICENSE: 'false',
      CDXGEN_FETCH_PKG_METADATA: 'false',
      CDXGEN_TEMP_DIR: cwd,
    };
    const m = await measure(cdx.bin, ['-t', 'docker', '-o', join(cwd, 'out.json'), archive], {
      cwd,
      env,
      timeoutMs: 20 * 60_000,
    });
    let components = null;
    let componentsDetail = null;
    try {
      componentsDetail = countComponents(JSON.parse(await readFile(join(cwd, 'out.json'), 'utf8')));
      components = componentsDetail.total;
    } catch (err) {
      m.error = `no readable out.json (exit ${m.code}): ${m.stderr.trim().split('\n').slice(-3).join(' | ') || err.message}`;
    }
    runs.push({ ms: m.ms, rssMb: m.rssMb, code: m.code, components, componentsDetail, error: m.error });
    await rm(cwd, { recursive: true, force: true });
  }
  const ok = runs.filter((r) => r.components !== null);
  return {
    runs,
    ms: median(ok.map((r) => r.ms)),
    rssMb: median(ok.map((r) => r.rssMb)),
    components: ok[0]?.components ?? null,
    componentsDetail: ok[0]?.componentsDetail ?? null,
    error: ok.length ? undefined : runs[0]?.error,
  };
}

// ---------------------------------------------------------------------------------------------
// Scanner runs

function packagesOf(outFile) {
  try {
    const json = JSON.parse(readFileSync(outFile, 'utf8'));
    const results = Array.isArray(json) ? json : [json];
    return results.reduce((n, r) => n + (r.packages?.length ?? 0), 0);
  } catch {
    return null;
  }
}

async function scanCli(archive, cacheDir, outFile) {
  const m = await measure(
    NODE,
    [...NODE_FLAGS, CLI, 'scan', `oci-archive:${archive}`, '--format', 'json', '--cache-dir', cacheDir],
    {
      cwd: ROOT,
      stdoutFile: outFile,
    },
  );
  const packages = m.code === 0 ? packagesOf(outFile) : null;
  return {
    ms: m.ms,
    rssMb: m.rssMb,
    code: m.code,
    packages,
    error: m.code === 0 ? undefined : m.stderr.trim().split('\n').slice(-3).join(' | '),
  };
}

async function scanInProcess(archive) {
  const cacheDir = await mkdtemp(join(os.tmpdir(), 'bench-cache-api-'));
  const outFile = join(WORK, 'inprocess.out');
  try {
    const m = await measure(
      NODE,
      [
        ...ANALYSIS_FLAGS,
        ...NODE_FLAGS,
        join(ROOT, 'bench/scan/inprocess.mjs'),
        `oci-archive:${archive}`,
        cacheDir,
        String(COLD_ONLY ? 0 : RUNS),
        String(RUNS),
        String(STEADY_RUNS),
        PACKAGES_ONLY ? '1' : '0',
      ],
      {
        cwd: ROOT,
        env: ANALYSIS_ENV,
        stdoutFile: outFile,
      },
    );
    if (m.code !== 0) return { error: m.stderr.trim().split('\n').slice(-3).join(' | ') };
    const r = JSON.parse(readFileSync(outFile, 'utf8').trim().split('\n').pop());
    return {
      coldMs: r.coldMs,
      warmMs: median(r.warmMs),
      warmRuns: r.warmMs,
      coldAgainMs: median(r.coldAgainMs ?? []),
      coldAgainRuns: r.coldAgainMs ?? [],
      steadyMs: median(r.steadyMs ?? []),
      steadyRuns: r.steadyMs ?? [],
      steadyPackagesOnlyMs: median(r.steadyPackagesOnlyMs ?? []),
      steadyPackagesOnlyRuns: r.steadyPackagesOnlyMs ?? [],
      packages: r.packages,
      warmPackages: r.warmPackages,
      rssMb: m.rssMb,
    };
  } finally {
    await rm(cacheDir, { recursive: true, force: true });
  }
}

/**
 * The floor in a child process with the analysis allocator settings: on hosts where page faults are
 * dear these settings speed up plain decompression too, so the scanner is also read against this.
 */
async function floorWithTunedAllocator(layers, warmUp, runs) {
  const outFile = join(WORK, 'floor-child.out');
  const m = await measure(
    NODE,
    [join(ROOT, 'bench/scan/floor-child.mjs'), JSON.stringify(layers), String(warmUp), String(runs)],
    { cwd: ROOT, env: TUNED_ENV, stdoutFile: outFile },
  );
  if (m.code !== 0) return { ms: NaN, runs: [], error: m.stderr.trim().split('\n').slice(-3).join(' | ') };
  const r = JSON.parse(readFileSync(outFile, 'utf8').trim().split('\n').pop());
  return { ms: median(r.runs), runs: r.runs };
}

/**
 * The floor as a one-shot program, timed as the cold CLI is: a fresh Node process that reads, hashes
 * and gunzips every layer once and exits, so Node's own start and a first pass through cold code
 * and fresh memory are in it, and no warm-up is. Measured with glibc's default allocator (`env`
 * unset), as a plain program runs, and with the analysis allocator settings the CLI gives its own
 * second process for archives of 128 MiB or more.
 */
async function floorProcess(layers, runs, env) {
  const times = [];
  for (let i = 0; i < runs; i++) {
    const m = await measure(
      NODE,
      [join(ROOT, 'bench/scan/floor-child.mjs'), JSON.stringify(layers), '0', '1'],
      { cwd: ROOT, env, stdoutFile: join(WORK, 'floor-process.out') },
    );
    if (m.code !== 0) return { ms: NaN, runs: times, error: m.stderr.trim().split('\n').slice(-3).join(' | ') };
    times.push(m.ms);
  }
  return { ms: median(times), runs: times };
}

async function benchImage({ name, archive, layoutDir, isLarge }, cdx) {
  log(`${name}: preparing`);
  const layers = await imageLayers(layoutDir);
  const result = {
    name,
    archive: relative(ROOT, archive),
    archiveMb: statSync(archive).size / MiB,
    layers: layers.length,
    large: isLarge,
    loadAvgAtStart: os.loadavg().map((x) => +x.toFixed(2)),
  };

  // The floor is taken warm: its first runs in this process pay for compiling the stream and zlib
  // code paths and measured up to twice the later ones. Small images get more runs, since a few
  // milliseconds of noise move their ratio most.
  const floorWarmUp = isLarge ? 1 : FLOOR_WARM_UP;
  const floorCount = isLarge ? RUNS : Math.max(RUNS, SMALL_FLOOR_RUNS);
  const floors = await floorRuns(layers, floorWarmUp, floorCount);
  result.floor = {
    ms: median(floors.map((f) => f.ms)),
    runs: floors.map((f) => f.ms),
    compressedMb: floors[0].compressed / MiB,
    uncompressedMb: floors[0].uncompressed / MiB,
  };
  result.floorTuned = await floorWithTunedAllocator(layers, floorWarmUp, floorCount);
  result.floorProcess = await floorProcess(layers, floorCount, process.env);
  result.floorProcessTuned = await floorProcess(layers, floorCount, TUNED_ENV);
  log(
    `${name}: floor ${fmtMs(result.floor.ms)}, with the tuned allocator ${fmtMs(result.floorTuned.ms)} (${result.floor.uncompressedMb.toFixed(0)} MiB uncompressed); as a fresh process ${fmtMs(result.floorProcess.ms)}, tuned ${fmtMs(result.floorProcessTuned.ms)}`,
  );

  const cold = [];
  const warm = [];
  for (let i = 0; i < RUNS; i++) {
    const cacheDir = await mkdtemp(join(os.tmpdir(), 'bench-cache-'));
    try {
      cold.push(await scanCli(archive, cacheDir, join(WORK, `${name}.cold.json`)));
      if (!COLD_ONLY) warm.push(await scanCli(archive, cacheDir, join(WORK, `${name}.warm.json`)));
    } finally {
      await rm(cacheDir, { recursive: true, force: true });
    }
    const c = cold.at(-1);
    const w = warm.at(-1);
    log(
      `${name}: run ${i + 1}/${RUNS} cold ${fmtMs(c.ms)} ${fmtMb(c.rssMb)}${c.error ? ` FAILED: ${c.error}` : ''}${w ? `; warm ${fmtMs(w.ms)} ${fmtMb(w.rssMb)}${w.error ? ` FAILED: ${w.error}` : ''}` : ''}`,
    );
  }
  const summarise = (runs) => {
    const ok = runs.filter((r) => r.code === 0);
    return {
      ms: median(ok.map((r) => r.ms)),
      rssMb: median(ok.map((r) => r.rssMb)),
      maxRssMb: ok.length ? Math.max(...ok.map((r) => r.rssMb)) : NaN,
      packages: ok[0]?.packages ?? null,
      runs,
      error: ok.length === runs.length ? undefined : runs.find((r) => r.error)?.error,
    };
  };
  result.cold = summarise(cold);
  result.warm = summarise(warm);

  result.inProcess = await scanInProcess(archive);
  log(
    `${name}: in-process cold ${fmtMs(result.inProcess.coldMs)}, warm ${fmtMs(result.inProcess.warmMs)}, cold again ${fmtMs(result.inProcess.coldAgainMs)}${STEADY_RUNS ? `, steady ${fmtMs(result.inProcess.steadyMs)}` : ''}${PACKAGES_ONLY ? `, steady packages only ${fmtMs(result.inProcess.steadyPackagesOnlyMs)}` : ''}${result.inProcess.error ? ` FAILED: ${result.inProcess.error}` : ''}`,
  );

  if (cdx?.bin && !isLarge && !COLD_ONLY) {
    log(`${name}: cdxgen ...`);
    result.cdxgen = await runCdxgen(cdx, archive);
    log(
      `${name}: cdxgen ${fmtMs(result.cdxgen.ms)} ${fmtMb(result.cdxgen.rssMb)} ${result.cdxgen.components ?? '?'} components ${JSON.stringify(result.cdxgen.componentsDetail?.byType ?? {})}${result.cdxgen.error ? ` (${result.cdxgen.error})` : ''}`,
    );
  }

  result.loadAvgAtEnd = os.loadavg().map((x) => +x.toFixed(2));
  result.ratios = {
    coldOverFloor: result.cold.ms / result.floor.ms,
    inProcessColdOverFloor: result.inProcess.coldMs / result.floor.ms,
    inProcessColdAgainOverFloor: result.inProcess.coldAgainMs / result.floor.ms,
    inProcessSteadyOverFloor: result.inProcess.steadyMs / result.floor.ms,
    inProcessSteadyPackagesOnlyOverFloor: result.inProcess.steadyPackagesOnlyMs / result.floor.ms,
    coldOverTunedFloor: result.cold.ms / result.floorTuned.ms,
    inProcessSteadyOverTunedFloor: result.inProcess.steadyMs / result.floorTuned.ms,
    coldOverFloorProcess: result.cold.ms / result.floorProcess.ms,
    coldOverTunedFloorProcess: result.cold.ms / result.floorProcessTuned.ms,
    cdxgenOverCold: result.cdxgen ? result.cdxgen.ms / result.cold.ms : null,
  };
  return result;
}

// ---------------------------------------------------------------------------------------------
// Output

function table(headers, rows) {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(headers), `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`, ...rows.map(line)].join('\n');
}

function report(results, baselines, cdx) {
  const out = [];
  out.push(
    `Scan benchmark ${machine.date}: nproc ${machine.nproc}, ${machine.cpu}, ${machine.memGiB} GiB RAM, node ${machine.node}, commit ${machine.commit}${machine.srcModified ? ' (src/ has uncommitted changes)' : ''}`,
  );
  out.push(
    `Load average (1/5/15 min) at start ${machine.loadAvgAtStart.join(' ')}, at end ${machine.loadAvgAtEnd.join(' ')}.`,
  );
  out.push(
    `Median of ${RUNS} run(s)${cdx?.bin ? `; cdxgen ${cdx.version}, median of ${CDXGEN_RUNS}` : ''}. Peak RSS: ${machine.rssMethod}.`,
  );
  if (NODE_FLAGS.length) out.push(`Node flags for the scanner's processes (not the floor): ${NODE_FLAGS.join(' ')}.`);
  out.push(
    ANALYSIS_FLAGS.length
      ? `In-process (API) figures: a child process started as the registry's analysis process is, with ${ANALYSIS_FLAGS.join(' ')} and GLIBC_TUNABLES=${TUNED_ENV.GLIBC_TUNABLES}.`
      : "In-process (API) figures: a child process with V8's default heap and glibc's default allocator (--default-heap).",
  );
  out.push(
    `Node startup baseline (node -e 0): ${fmtMs(baselines.nodeStartup.ms)}, ${fmtMb(baselines.nodeStartup.rssMb)}; CLI startup (portcullis --version): ${fmtMs(baselines.cliStartup.ms)}, ${fmtMb(baselines.cliStartup.rssMb)}.`,
  );
  out.push('');
  out.push(
    table(
      [
        'image',
        'archive',
        'uncompr.',
        'layers',
        'floor',
        'floor, tuned alloc.',
        'floor process',
        'floor process, tuned',
        'cold CLI',
        'cold RSS',
        'warm CLI',
        'warm RSS',
        'cold API',
        'cold again API',
        'steady API',
        ...(PACKAGES_ONLY ? ['steady API, packages only'] : []),
        'warm API',
        'pkgs',
        'cdxgen',
        'cdxgen RSS',
        'cdxgen comps (with purl)',
      ],
      results.map((r) => [
        r.name,
        `${r.archiveMb.toFixed(1)} MiB`,
        `${r.floor.uncompressedMb.toFixed(0)} MiB`,
        r.layers,
        fmtMs(r.floor.ms),
        fmtMs(r.floorTuned.ms),
        fmtMs(r.floorProcess.ms),
        fmtMs(r.floorProcessTuned.ms),
        r.cold.error && !Number.isFinite(r.cold.ms) ? 'FAILED' : fmtMs(r.cold.ms),
        fmtMb(r.cold.rssMb),
        r.warm.error && !Number.isFinite(r.warm.ms) ? 'FAILED' : fmtMs(r.warm.ms),
        fmtMb(r.warm.rssMb),
        r.inProcess.error ? 'FAILED' : fmtMs(r.inProcess.coldMs),
        r.inProcess.error ? 'FAILED' : fmtMs(r.inProcess.coldAgainMs),
        r.inProcess.error ? 'FAILED' : fmtMs(r.inProcess.steadyMs),
        ...(PACKAGES_ONLY ? [r.inProcess.error ? 'FAILED' : fmtMs(r.inProcess.steadyPackagesOnlyMs)] : []),
        r.inProcess.error ? 'FAILED' : fmtMs(r.inProcess.warmMs),
        r.cold.packages ?? '-',
        r.cdxgen ? (r.cdxgen.error ? 'FAILED' : fmtMs(r.cdxgen.ms)) : '-',
        r.cdxgen ? fmtMb(r.cdxgen.rssMb) : '-',
        r.cdxgen?.componentsDetail
          ? `${r.cdxgen.componentsDetail.total} (${r.cdxgen.componentsDetail.packages})`
          : '-',
      ]),
    ),
  );
  out.push('');
  const mark = (ok) => (ok === null ? '' : ok ? ' ok' : ' MISS');
  out.push(
    table(
      [
        'image',
        `cold/floor (<= ${TARGETS.coldOverFloor})`,
        'API cold/floor',
        'API cold again/floor',
        'API steady/floor',
        ...(PACKAGES_ONLY ? ['API steady, packages only/floor'] : []),
        'cold/tuned floor',
        'API steady/tuned floor',
        'cold/floor process',
        'cold/tuned floor process',
        `cdxgen/cold (>= ${TARGETS.cdxgenOverCold})`,
        `warm API (< ${TARGETS.warmInProcessMs} ms)`,
        `peak RSS cold${results.some((r) => r.large) ? ` (large < ${TARGETS.largeRssMb} MB)` : ''}`,
        'load (1 min) start-end',
      ],
      results.map((r) => [
        r.name,
        `${fmtX(r.ratios.coldOverFloor)}${mark(Number.isFinite(r.ratios.coldOverFloor) ? r.ratios.coldOverFloor <= TARGETS.coldOverFloor : null)}`,
        fmtX(r.ratios.inProcessColdOverFloor),
        fmtX(r.ratios.inProcessColdAgainOverFloor),
        fmtX(r.ratios.inProcessSteadyOverFloor),
        ...(PACKAGES_ONLY ? [fmtX(r.ratios.inProcessSteadyPackagesOnlyOverFloor)] : []),
        fmtX(r.ratios.coldOverTunedFloor),
        fmtX(r.ratios.inProcessSteadyOverTunedFloor),
        fmtX(r.ratios.coldOverFloorProcess),
        fmtX(r.ratios.coldOverTunedFloorProcess),
        r.ratios.cdxgenOverCold === null || !Number.isFinite(r.ratios.cdxgenOverCold)
          ? '-'
          : `${fmtX(r.ratios.cdxgenOverCold)}${mark(r.ratios.cdxgenOverCold >= TARGETS.cdxgenOverCold)}`,
        `${fmtMs(r.inProcess.warmMs)}${mark(Number.isFinite(r.inProcess.warmMs) ? r.inProcess.warmMs < TARGETS.warmInProcessMs : null)}`,
        `${fmtMb(r.cold.maxRssMb)}${r.large ? mark(r.cold.maxRssMb < TARGETS.largeRssMb) : ''}`,
        `${r.loadAvgAtStart[0].toFixed(2)}-${r.loadAvgAtEnd[0].toFixed(2)}`,
      ]),
    ),
  );
  const failures = results.flatMap((r) =>
    [
      r.cold.error && `${r.name}: cold scan: ${r.cold.error}`,
      r.warm.error && `${r.name}: warm scan: ${r.warm.error}`,
      r.inProcess.error && `${r.name}: in-process: ${r.inProcess.error}`,
      r.floorProcess.error && `${r.name}: floor process: ${r.floorProcess.error}`,
      r.floorProcessTuned.error && `${r.name}: tuned floor process: ${r.floorProcessTuned.error}`,
      r.cdxgen?.error && `${r.name}: cdxgen: ${r.cdxgen.error}`,
      r.inProcess.packages != null &&
        r.cold.packages != null &&
        r.inProcess.packages !== r.cold.packages &&
        `${r.name}: CLI found ${r.cold.packages} packages, API ${r.inProcess.packages}`,
      r.warm.packages != null &&
        r.cold.packages != null &&
        r.warm.packages !== r.cold.packages &&
        `${r.name}: warm scan found ${r.warm.packages} packages, cold ${r.cold.packages}`,
    ].filter(Boolean),
  );
  if (cdx?.error) failures.push(`cdxgen not run: ${cdx.error}`);
  if (failures.length) out.push('', 'Problems:', ...failures.map((f) => `  - ${f}`));
  return out.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Main

await mkdir(WORK, { recursive: true });
const fixtures = readdirSync(FIXTURES)
  .filter((f) => f.endsWith('.tar'))
  .sort()
  .map((f) => ({ name: basename(f, '.tar'), archive: join(FIXTURES, f), isLarge: false }));
const wanted = [...fixtures, ...(opts['no-large'] ? [] : [{ name: 'large', isLarge: true }])].filter(
  (i) => !opts.only || i.name === opts.only,
);
if (wanted.length === 0) {
  console.error(
    `bench: no image named "${opts.only}"; choose from ${[...fixtures.map((f) => f.name), 'large'].join(', ')}`,
  );
  process.exit(1);
}

let cdx = null;
if (!opts['skip-cdxgen'] && !COLD_ONLY && wanted.some((i) => !i.isLarge)) {
  cdx = ensureCdxgen();
  if (cdx.error) log(`cdxgen will not run: ${cdx.error}`);
}

log('baselines ...');
const startupRuns = Math.max(5, RUNS);
const nodeRuns = [];
const cliRuns = [];
for (let i = 0; i < startupRuns; i++) {
  nodeRuns.push(await measure(NODE, ['-e', '0']));
  cliRuns.push(await measure(NODE, [CLI, '--version'], { cwd: ROOT }));
}
const baselines = {
  nodeStartup: {
    ms: median(nodeRuns.map((r) => r.ms)),
    rssMb: median(nodeRuns.map((r) => r.rssMb)),
    runs: startupRuns,
  },
  cliStartup: {
    ms: median(cliRuns.map((r) => r.ms)),
    rssMb: median(cliRuns.map((r) => r.rssMb)),
    runs: startupRuns,
  },
};

const results = [];
for (const image of wanted) {
  if (image.isLarge) {
    const large = await ensureLargeImage(join(TMP, 'large'), log);
    results.push(await benchImage({ ...image, archive: large.archive, layoutDir: large.layout }, cdx));
  } else {
    const layoutDir = join(TMP, 'extract', image.name);
    await extractArchive(image.archive, layoutDir);
    results.push(await benchImage({ ...image, layoutDir }, cdx));
    await rm(layoutDir, { recursive: true, force: true });
  }
}

machine.loadAvgAtEnd = os.loadavg().map((x) => +x.toFixed(2));
const text = report(results, baselines, cdx);
console.log(text);
const resultsFile = join(WORK, 'results.json');
const json = JSON.stringify(
  {
    machine,
    runs: RUNS,
    nodeFlags: NODE_FLAGS,
    inProcessFlags: [...ANALYSIS_FLAGS, ...NODE_FLAGS],
    cdxgenRuns: CDXGEN_RUNS,
    cdxgen: cdx && { version: cdx.version, error: cdx.error },
    targets: TARGETS,
    baselines,
    results,
    table: text,
  },
  null,
  2,
);
// results.json is the latest run; each run is also kept under its start time.
const keptFile = join(WORK, `results-${machine.date.replace(/[:.]/g, '-')}.json`);
await writeFile(resultsFile, json);
await writeFile(keptFile, json);
console.log(`\nResults: ${relative(ROOT, resultsFile)} (also ${relative(ROOT, keptFile)})`);
