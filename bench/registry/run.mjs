#!/usr/bin/env node
/* global fetch */
// Registry benchmark: Portcullis (`portcullis serve`, token auth on) side by side with CNCF
// distribution 2.8 (Debian's docker-registry, no auth), both on loopback with filesystem storage,
// driven by skopeo and wrk/autocannon. Needs `npm run build` first. Usage:
//   node bench/registry/run.mjs [--no-large] [--only transfer,tiny,load] [--runs N] [--tiny N]
//                               [--duration S] [--connections N] [--cpu-prof] [--portcullis-root DIR]
//                               [--login robot|password] [--no-warm-up]
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync, copyFileSync } from 'node:fs';
import { availableParallelism, cpus, loadavg, totalmem } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { bigImage, tinyImages } from './lib/images.mjs';
import {
  bearerToken,
  cpuMs,
  DISTRIBUTION_BIN,
  killAll,
  peakRssMb,
  startDistribution,
  startPortcullis,
} from './lib/servers.mjs';
import { load, loadTool } from './lib/load.mjs';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
const TMP = join(ROOT, '.bench-tmp/registry');
const PARTS = ['transfer', 'tiny', 'load'];
const TARGETS = { manifestRatio: 5, p99Ms: 20, rssMb: 150 };

function parseArgs(argv) {
  const o = {
    large: true,
    only: new Set(PARTS),
    // Transfers only. Three runs per row were too few: the spread of one server's pulls of the
    // same image (about ±15%) was wider than the differences the rows are read for.
    runs: 9,
    tiny: 200,
    duration: 10,
    connections: 32,
    cpuProf: false,
    portcullisRoot: ROOT,
    login: 'robot',
    warmUp: true,
  };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--no-large') o.large = false;
    else if (a === '--only') {
      o.only = new Set(argv[++i].split(','));
      for (const p of o.only)
        if (!PARTS.includes(p)) throw new Error(`--only takes ${PARTS.join(',')}; got ${p}`);
    } else if (a === '--runs') o.runs = Number(argv[++i]);
    else if (a === '--tiny') o.tiny = Number(argv[++i]);
    else if (a === '--duration') o.duration = Number(argv[++i]);
    else if (a === '--connections') o.connections = Number(argv[++i]);
    else if (a === '--cpu-prof') o.cpuProf = true;
    // Another checkout (built) to run as the Portcullis side, e.g. an older commit for before/after.
    else if (a === '--portcullis-root') o.portcullisRoot = resolve(argv[++i]);
    // How skopeo logs in to Portcullis: a project robot (CI's way) or admin's password (scrypt).
    else if (a === '--login') {
      o.login = argv[++i];
      if (!['robot', 'password'].includes(o.login)) throw new Error(`--login takes robot or password; got ${o.login}`);
    }
    // Measure each transfer on a server that has served nothing before (its first push, cold).
    else if (a === '--no-warm-up') o.warmUp = false;
    else if (a === '--help' || a === '-h') {
      console.log(
        'node bench/registry/run.mjs [--no-large] [--only transfer,tiny,load] [--runs N] [--tiny N] [--duration S] [--connections N] [--cpu-prof] [--portcullis-root DIR] [--login robot|password] [--no-warm-up]',
      );
      process.exit(0);
    } else throw new Error(`unknown argument ${a}`);
  }
  for (const k of ['runs', 'tiny', 'duration', 'connections'])
    if (!(Number.isInteger(o[k]) && o[k] >= 1)) throw new Error(`--${k} needs a positive integer`);
  return o;
}

const opts = parseArgs(process.argv.slice(2));
const log = (m) => process.stderr.write(`[bench:registry ${new Date().toISOString().slice(11, 19)}] ${m}\n`);
const la = () =>
  loadavg()
    .map((l) => l.toFixed(2))
    .join(' ');

function onPath(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}
const missing = [];
if (!existsSync(join(opts.portcullisRoot, 'dist/cli/index.js')))
  missing.push(`${join(opts.portcullisRoot, 'dist')}/ (run \`npm run build\` there first)`);
if (!onPath('skopeo')) missing.push('skopeo (apt-get install skopeo)');
if (!existsSync(DISTRIBUTION_BIN)) missing.push(`${DISTRIBUTION_BIN} (apt-get install docker-registry)`);
if (missing.length) {
  console.error(`bench:registry cannot run, missing: ${missing.join('; ')}`);
  process.exit(2);
}

// Servers never outlive the benchmark, whatever ends it.
process.on('exit', killAll);
for (const sig of ['SIGINT', 'SIGTERM', 'SIGHUP']) {
  process.on(sig, () => {
    log(`${sig}: stopping servers`);
    killAll();
    process.exit(130);
  });
}

mkdirSync(TMP, { recursive: true });
const RUN = mkdtempSync(join(TMP, 'run-'));
const SCRATCH = join(RUN, 'scratch');
mkdirSync(SCRATCH, { recursive: true });
const PROF = opts.cpuProf ? join(TMP, 'profiles') : undefined;
if (PROF) mkdirSync(PROF, { recursive: true });

const version = (cmd, args) => {
  const r = spawnSync(cmd, args, { encoding: 'utf8' });
  return `${r.stdout ?? ''}${r.stderr ?? ''}`.trim().split('\n')[0];
};
const results = {
  date: new Date().toISOString(),
  argv: process.argv.slice(2),
  portcullisRoot: opts.portcullisRoot,
  facts: {
    nproc: availableParallelism(),
    cpu: cpus()[0]?.model?.trim(),
    memGb: +(totalmem() / 1024 ** 3).toFixed(1),
    node: process.version,
    skopeo: version('skopeo', ['--version']),
    distribution: version(DISTRIBUTION_BIN, ['--version']),
    loadavgStart: la(),
  },
  transfer: [],
  tiny: [],
  load: [],
};

// skopeo with no host policy, its temp files and blob-info cache kept inside the run folder.
const SKOPEO_ENV = { ...process.env, TMPDIR: SCRATCH };
// Node cannot read a child's CPU time after it exits; GNU time (Debian's `time`) can. Where it is
// installed, every skopeo run reports its user+system CPU, which shows whether a transfer row is
// bound by the client rather than by the server.
const GNU_TIME = existsSync('/usr/bin/time') ? '/usr/bin/time' : undefined;
const CPU_MARK = 'skopeo-cpu-seconds:';
/** Runs skopeo; resolves to its wall ms, with `.clientCpuMs` (user + system) when GNU time is installed. */
function skopeoRun(args) {
  return new Promise((res, rej) => {
    const t0 = process.hrtime.bigint();
    const argv = ['skopeo', '--insecure-policy', ...args];
    const child = GNU_TIME
      ? spawn(GNU_TIME, ['-f', `${CPU_MARK} %U %S`, ...argv], { env: SKOPEO_ENV, stdio: ['ignore', 'ignore', 'pipe'] })
      : spawn(argv[0], argv.slice(1), { env: SKOPEO_ENV, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => (err += d));
    child.on('error', rej);
    child.on('close', (code) => {
      const ms = Number(process.hrtime.bigint() - t0) / 1e6;
      if (code !== 0) return rej(new Error(`skopeo ${args.join(' ')} failed (${code}): ${err}`));
      const cpu = new RegExp(`${CPU_MARK} ([\\d.]+) ([\\d.]+)`).exec(err);
      res({ ms, clientCpuMs: cpu ? (Number(cpu[1]) + Number(cpu[2])) * 1000 : undefined });
    });
  });
}
const skopeo = async (args) => (await skopeoRun(args)).ms;

const START = {
  portcullis: () => startPortcullis(opts.portcullisRoot, RUN, { cpuProfDir: PROF, login: opts.login }),
  distribution: () => startDistribution(RUN),
};
const SERVERS = ['portcullis', 'distribution'];
const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};
/** First and third quartiles (linear interpolation between the sorted values). */
const quartiles = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => {
    const i = (s.length - 1) * q;
    const lo = Math.floor(i);
    return s[lo] + (s[Math.min(lo + 1, s.length - 1)] - s[lo]) * (i - lo);
  };
  return [at(0.25), at(0.75)];
};

// ---------------------------------------------------------------------------------------------
// Transfers: a fresh server (empty storage, new port so skopeo's blob-info cache cannot skip
// uploads) for every run; push from the OCI layout, then pull into a fresh OCI layout. Unless
// --no-warm-up, each fresh server first takes WARM_UP pushes and pulls of other 5 MiB images that
// share no blob with the measured one: a registry serves pushes for weeks, so the measured transfer
// is what a running server does, not its process's first requests (a JIT-compiled server runs
// those interpreted, and V8 optimises a function only after it has run a while). The first push
// and pull of each fresh server are timed too and reported as rows of their own.
const WARM_UP = 3;
async function warmUp(server, img, r) {
  const ref = `docker://${server.host}/bench/warm-up-${r}:v1`;
  let c0 = cpuMs(server.pid);
  const pushMs = await skopeo(['copy', '--quiet', ...server.destFlags, `oci:${img.dir}:v1`, ref]);
  const pushCpuMs = cpuMs(server.pid) - c0;
  const out = join(SCRATCH, `warm-up-${server.name}-${r}`);
  c0 = cpuMs(server.pid);
  const pullMs = await skopeo(['copy', '--quiet', ...server.srcFlags, ref, `oci:${out}:v1`]);
  const pullCpuMs = cpuMs(server.pid) - c0;
  rmSync(out, { recursive: true, force: true });
  return { pushMs, pullMs, pushCpuMs, pullCpuMs };
}

async function transfer() {
  const warm = [];
  if (opts.warmUp) for (let i = 0; i < WARM_UP; i++) warm.push(await bigImage(join(TMP, 'images'), `warm-up-5m-${i}`, 5, 1));
  const first = Object.fromEntries(SERVERS.map((n) => [n, []]));
  const sizes = [
    { name: 'img-5m', mib: 5, layers: 1 },
    { name: 'img-200m', mib: 200, layers: 4 },
    ...(opts.large ? [{ name: 'img-500m', mib: 500, layers: 5 }] : []),
  ];
  for (const s of sizes) {
    const t0 = Date.now();
    const img = await bigImage(join(TMP, 'images'), s.name, s.mib, s.layers);
    log(
      `${s.name}: ${img.built ? `generated in ${((Date.now() - t0) / 1000).toFixed(1)} s` : 'reused'} (${(img.bytes / 1e6).toFixed(1)} MB compressed, ${img.layers} layer${img.layers > 1 ? 's' : ''})`,
    );
    const row = { image: s.name, mib: s.mib, layers: s.layers, bytes: img.bytes, runs: {} };
    for (const name of SERVERS) row.runs[name] = [];
    for (let r = 0; r < opts.runs; r++) {
      // Alternate which server goes first, so drifting machine load hits both alike.
      for (const name of r % 2 ? [...SERVERS].reverse() : SERVERS) {
        const server = await START[name]();
        try {
          for (const [i, img] of warm.entries()) {
            const w = await warmUp(server, img, i);
            if (i === 0) first[name].push(w);
            log(
              `${s.name} ${name} run ${r + 1}: warm-up ${i + 1}/${warm.length}${i === 0 ? ' (the fresh server\'s first)' : ''}: push / pull of ${(img.bytes / 1e6).toFixed(1)} MB ${w.pushMs.toFixed(0)} / ${w.pullMs.toFixed(0)} ms, server CPU ${w.pushCpuMs.toFixed(0)} / ${w.pullCpuMs.toFixed(0)} ms`,
            );
          }
          const ref = `docker://${server.host}/bench/${s.name}:v1`;
          let c0 = cpuMs(server.pid);
          const pushMs = await skopeo(['copy', '--quiet', ...server.destFlags, `oci:${img.dir}:v1`, ref]);
          const pushCpu = cpuMs(server.pid) - c0;
          const rss = peakRssMb(server.pid);
          const out = join(SCRATCH, `pull-${name}-${s.name}-${r}`);
          c0 = cpuMs(server.pid);
          const pulled = await skopeoRun(['copy', '--quiet', ...server.srcFlags, ref, `oci:${out}:v1`]);
          const pullMs = pulled.ms;
          const pullCpu = cpuMs(server.pid) - c0;
          rmSync(out, { recursive: true, force: true });
          const run = {
            pushMs,
            pullMs,
            pushCpuMs: pushCpu,
            pullCpuMs: pullCpu,
            pullClientCpuMs: pulled.clientCpuMs,
            peakRssMbAfterPush: rss,
            loadavg: la(),
          };
          row.runs[name].push(run);
          log(
            `${s.name} ${name} run ${r + 1}: push ${(img.bytes / 1e6 / (pushMs / 1000)).toFixed(1)} MB/s (${pushMs.toFixed(0)} ms, server CPU ${pushCpu.toFixed(0)} ms), ` +
              `pull ${(img.bytes / 1e6 / (pullMs / 1000)).toFixed(1)} MB/s (${pullMs.toFixed(0)} ms, CPU ${pullCpu.toFixed(0)} ms${pulled.clientCpuMs === undefined ? '' : `, skopeo CPU ${pulled.clientCpuMs.toFixed(0)} ms`}), peak RSS ${rss.toFixed(0)} MB; load ${la()}`,
          );
        } finally {
          await server.stop();
        }
      }
    }
    for (const name of SERVERS) {
      const runs = row.runs[name];
      const mbs = (ms) => img.bytes / 1e6 / (ms / 1000);
      const clientCpu = runs.map((x) => x.pullClientCpuMs).filter((x) => x !== undefined);
      row[name] = {
        pushMBs: mbs(median(runs.map((x) => x.pushMs))),
        pullMBs: mbs(median(runs.map((x) => x.pullMs))),
        // Quartiles of the runs' own rates: the spread a median ratio has to be read against.
        pushMBsQuartiles: quartiles(runs.map((x) => mbs(x.pushMs))),
        pullMBsQuartiles: quartiles(runs.map((x) => mbs(x.pullMs))),
        pushCpuMs: median(runs.map((x) => x.pushCpuMs)),
        pullCpuMs: median(runs.map((x) => x.pullCpuMs)),
        pullClientCpuMs: clientCpu.length ? median(clientCpu) : undefined,
        peakRssMb: Math.max(...runs.map((x) => x.peakRssMbAfterPush)),
      };
    }
    results.transfer.push(row);
  }
  if (warm.length)
    results.firstPush = {
      bytes: warm[0].bytes,
      ...Object.fromEntries(
        SERVERS.map((n) => [
          n,
          {
            runs: first[n].length,
            pushMs: median(first[n].map((x) => x.pushMs)),
            pullMs: median(first[n].map((x) => x.pullMs)),
            pushCpuMs: median(first[n].map((x) => x.pushCpuMs)),
            pullCpuMs: median(first[n].map((x) => x.pullCpuMs)),
          },
        ]),
      ),
    };
}

// ---------------------------------------------------------------------------------------------
// Tiny images: N images pushed one after another (one skopeo process each), then pulled. Both
// servers run at once and take turns image by image (the order swapping every image), so load that
// drifts during the part (other jobs on a shared machine) hits both alike; each server's wall time
// and CPU are summed over its own copies only.
async function tiny() {
  const set = tinyImages(join(TMP, 'images'), opts.tiny);
  const servers = {};
  try {
    for (const name of SERVERS) servers[name] = await START[name]();
    const acc = Object.fromEntries(SERVERS.map((n) => [n, { pushMs: 0, pullMs: 0, pushCpu: 0, pullCpu: 0 }]));
    const timed = async (name, what, args) => {
      const c0 = cpuMs(servers[name].pid);
      acc[name][`${what}Ms`] += await skopeo(args);
      acc[name][`${what}Cpu`] += cpuMs(servers[name].pid) - c0;
    };
    const turns = (i) => (i % 2 ? [...SERVERS].reverse() : SERVERS);
    for (const [i, tag] of set.tags.entries())
      for (const name of turns(i)) {
        const server = servers[name];
        await timed(name, 'push', [
          'copy',
          '--quiet',
          ...server.destFlags,
          `oci:${set.dir}:${tag}`,
          `docker://${server.host}/bench/tiny:${tag}`,
        ]);
      }
    for (const [i, tag] of set.tags.entries())
      for (const name of turns(i)) {
        const server = servers[name];
        const out = join(SCRATCH, `tiny-${name}-${tag}`);
        await timed(name, 'pull', [
          'copy',
          '--quiet',
          ...server.srcFlags,
          `docker://${server.host}/bench/tiny:${tag}`,
          `oci:${out}:${tag}`,
        ]);
        rmSync(out, { recursive: true, force: true });
      }
    const n = set.tags.length;
    for (const name of SERVERS) {
      const a = acc[name];
      const row = {
        server: name,
        count: n,
        pushMsPerImage: a.pushMs / n,
        pullMsPerImage: a.pullMs / n,
        pushCpuMsPerImage: a.pushCpu / n,
        pullCpuMsPerImage: a.pullCpu / n,
        loadavg: la(),
      };
      results.tiny.push(row);
      log(
        `tiny ${name}: push ${row.pushMsPerImage.toFixed(1)} ms/image (server CPU ${row.pushCpuMsPerImage.toFixed(1)}), pull ${row.pullMsPerImage.toFixed(1)} ms/image (CPU ${row.pullCpuMsPerImage.toFixed(1)}); load ${la()}`,
      );
    }
  } finally {
    for (const server of Object.values(servers)) await server.stop();
  }
  // What one skopeo process costs with no registry work at all, for reading the figures above.
  const t0 = process.hrtime.bigint();
  for (let i = 0; i < 10; i++)
    await skopeo([
      'copy',
      '--quiet',
      `oci:${set.dir}:${set.tags[0]}`,
      `oci:${join(SCRATCH, `local-${i}`)}:x`,
    ]);
  results.tinySkopeoLocalMs = Number(process.hrtime.bigint() - t0) / 1e6 / 10;
  log(`skopeo oci->oci copy of one tiny image (no registry): ${results.tinySkopeoLocalMs.toFixed(1)} ms`);
}

// ---------------------------------------------------------------------------------------------
// Request load: manifest GET and blob HEAD on one small image, after a 2 s warm-up.
async function loadPart() {
  const tool = await loadTool(join(TMP, 'tools'), log);
  results.loadTool = tool.version;
  const set = tinyImages(join(TMP, 'images'), opts.tiny);
  const { readFileSync } = await import('node:fs');
  const index = JSON.parse(readFileSync(join(set.dir, 'index.json'), 'utf8'));
  const manifestDesc = index.manifests[0];
  const manifest = JSON.parse(
    readFileSync(join(set.dir, 'blobs/sha256', manifestDesc.digest.slice(7)), 'utf8'),
  );
  const layer = manifest.layers[0].digest;
  for (const name of SERVERS) {
    const server = await START[name]();
    try {
      await skopeo([
        'copy',
        '--quiet',
        ...server.destFlags,
        `oci:${set.dir}:${set.tags[0]}`,
        `docker://${server.host}/bench/load:v1`,
      ]);
      let t0 = process.hrtime.bigint();
      const headers = server.auth
        ? { Authorization: `Bearer ${await bearerToken(server, 'bench/load')}` }
        : {};
      const tokenMs = server.auth ? Number(process.hrtime.bigint() - t0) / 1e6 : undefined;
      // Check both requests answer 200 before loading them.
      t0 = process.hrtime.bigint();
      const check = await fetch(`${server.base}/v2/bench/load/manifests/v1`, {
        headers: { ...headers, Accept: manifestDesc.mediaType },
      });
      await check.arrayBuffer();
      const head = await fetch(`${server.base}/v2/bench/load/blobs/${layer}`, { method: 'HEAD', headers });
      if (check.status !== 200 || head.status !== 200)
        throw new Error(`${name}: manifest GET ${check.status}, blob HEAD ${head.status}`);
      const cases = [
        {
          what: 'manifest GET',
          url: `${server.base}/v2/bench/load/manifests/v1`,
          method: 'GET',
          headers: { ...headers, Accept: manifestDesc.mediaType },
        },
        { what: 'blob HEAD', url: `${server.base}/v2/bench/load/blobs/${layer}`, method: 'HEAD', headers },
      ];
      for (const c of cases) {
        await load(tool, { ...c, seconds: 2, connections: opts.connections, scratchDir: SCRATCH });
        const c0 = cpuMs(server.pid);
        const r = await load(tool, {
          ...c,
          seconds: opts.duration,
          connections: opts.connections,
          scratchDir: SCRATCH,
        });
        const cpu = cpuMs(server.pid) - c0;
        if (!r.requests)
          throw new Error(
            `${c.what} ${name}: no request completed (${r.tool}); non-2xx ${r.non2xx}, errors ${r.errors}`,
          );
        const row = {
          server: name,
          what: c.what,
          ...r,
          cpuUsPerRequest: (cpu * 1000) / r.requests,
          serverCpuMs: cpu,
          tokenMs,
          loadavg: la(),
        };
        results.load.push(row);
        log(
          `${c.what} ${name}: ${r.rps.toFixed(0)} req/s, p50 ${r.p50Ms.toFixed(2)} ms, p99 ${r.p99Ms.toFixed(2)} ms, ` +
            `server CPU ${row.cpuUsPerRequest.toFixed(0)} µs/req, non-2xx ${r.non2xx}, errors ${r.errors}; load ${la()}`,
        );
      }
    } finally {
      await server.stop();
    }
  }
}

// ---------------------------------------------------------------------------------------------
function table() {
  const rows = [];
  const verdict = (ok) => (ok ? 'met' : '**missed**');
  const f1 = (x) => (x >= 100 ? x.toFixed(0) : x.toFixed(1));
  // "median (first–third quartile)" once there are enough runs for quartiles to mean something.
  const spread = (x, q) => (q && opts.runs >= 4 ? `${f1(x)} (${f1(q[0])}–${f1(q[1])})` : f1(x));
  for (const t of results.transfer) {
    const p = t.portcullis;
    const d = t.distribution;
    const label = `${t.mib} MiB (${t.layers} layer${t.layers > 1 ? 's' : ''}, ${(t.bytes / 1e6).toFixed(0)} MB)`;
    rows.push([
      `push ${label}, MB/s`,
      spread(p.pushMBs, p.pushMBsQuartiles),
      spread(d.pushMBs, d.pushMBsQuartiles),
      (p.pushMBs / d.pushMBs).toFixed(2),
      '≥ distribution',
      verdict(p.pushMBs >= d.pushMBs),
    ]);
    rows.push([
      `pull ${label}, MB/s`,
      spread(p.pullMBs, p.pullMBsQuartiles),
      spread(d.pullMBs, d.pullMBsQuartiles),
      (p.pullMBs / d.pullMBs).toFixed(2),
      '≥ distribution',
      verdict(p.pullMBs >= d.pullMBs),
    ]);
    rows.push([
      `server CPU push / pull, ms`,
      `${p.pushCpuMs.toFixed(0)} / ${p.pullCpuMs.toFixed(0)}`,
      `${d.pushCpuMs.toFixed(0)} / ${d.pullCpuMs.toFixed(0)}`,
      '',
      '',
      '',
    ]);
    if (p.pullClientCpuMs !== undefined && d.pullClientCpuMs !== undefined)
      rows.push([
        'skopeo CPU per pull (user + system), ms',
        p.pullClientCpuMs.toFixed(0),
        d.pullClientCpuMs.toFixed(0),
        '',
        '',
        '',
      ]);
    if (t.mib === 500)
      rows.push([
        'peak RSS during 500 MiB push, MB',
        p.peakRssMb.toFixed(0),
        d.peakRssMb.toFixed(0),
        '',
        `< ${TARGETS.rssMb} MB`,
        verdict(p.peakRssMb < TARGETS.rssMb),
      ]);
    else
      rows.push([
        `peak RSS after ${t.mib} MiB push, MB`,
        p.peakRssMb.toFixed(0),
        d.peakRssMb.toFixed(0),
        '',
        '',
        '',
      ]);
  }
  const fp = results.firstPush;
  if (fp) {
    const p = fp.portcullis;
    const d = fp.distribution;
    const label = `${(fp.bytes / 1e6).toFixed(0)} MB image to a fresh server (median of ${p.runs})`;
    rows.push([`first push of a ${label}, ms`, p.pushMs.toFixed(0), d.pushMs.toFixed(0), (p.pushMs / d.pushMs).toFixed(2), '', '']);
    rows.push([`first pull from a fresh server, ms`, p.pullMs.toFixed(0), d.pullMs.toFixed(0), (p.pullMs / d.pullMs).toFixed(2), '', '']);
    rows.push([
      'server CPU first push / pull, ms',
      `${p.pushCpuMs.toFixed(0)} / ${p.pullCpuMs.toFixed(0)}`,
      `${d.pushCpuMs.toFixed(0)} / ${d.pullCpuMs.toFixed(0)}`,
      '',
      '',
      '',
    ]);
  }
  const tp = results.tiny.find((r) => r.server === 'portcullis');
  const td = results.tiny.find((r) => r.server === 'distribution');
  if (tp && td) {
    rows.push([
      `${tp.count} tiny images pushed, ms/image`,
      tp.pushMsPerImage.toFixed(1),
      td.pushMsPerImage.toFixed(1),
      (tp.pushMsPerImage / td.pushMsPerImage).toFixed(2),
      '≤ distribution',
      verdict(tp.pushMsPerImage <= td.pushMsPerImage),
    ]);
    rows.push([
      `${tp.count} tiny images pulled, ms/image`,
      tp.pullMsPerImage.toFixed(1),
      td.pullMsPerImage.toFixed(1),
      (tp.pullMsPerImage / td.pullMsPerImage).toFixed(2),
      '≤ distribution',
      verdict(tp.pullMsPerImage <= td.pullMsPerImage),
    ]);
    rows.push([
      'server CPU per tiny push / pull, ms',
      `${tp.pushCpuMsPerImage.toFixed(1)} / ${tp.pullCpuMsPerImage.toFixed(1)}`,
      `${td.pushCpuMsPerImage.toFixed(1)} / ${td.pullCpuMsPerImage.toFixed(1)}`,
      '',
      '',
      '',
    ]);
  }
  for (const what of ['manifest GET', 'blob HEAD']) {
    const p = results.load.find((r) => r.server === 'portcullis' && r.what === what);
    const d = results.load.find((r) => r.server === 'distribution' && r.what === what);
    if (!p || !d) continue;
    const isManifest = what === 'manifest GET';
    rows.push([
      `${what}, requests/s`,
      p.rps.toFixed(0),
      d.rps.toFixed(0),
      (p.rps / d.rps).toFixed(2),
      isManifest ? `≥ ${TARGETS.manifestRatio}× distribution` : '',
      isManifest ? verdict(p.rps >= TARGETS.manifestRatio * d.rps) : '',
    ]);
    rows.push([
      `${what}, p50 / p99 ms`,
      `${p.p50Ms.toFixed(2)} / ${p.p99Ms.toFixed(2)}`,
      `${d.p50Ms.toFixed(2)} / ${d.p99Ms.toFixed(2)}`,
      '',
      isManifest ? `p99 < ${TARGETS.p99Ms} ms` : '',
      isManifest ? verdict(p.p99Ms < TARGETS.p99Ms) : '',
    ]);
    rows.push([
      `${what}, server CPU µs/request`,
      p.cpuUsPerRequest.toFixed(0),
      d.cpuUsPerRequest.toFixed(0),
      (p.cpuUsPerRequest / d.cpuUsPerRequest).toFixed(2),
      '',
      '',
    ]);
    if (p.non2xx || p.errors || d.non2xx || d.errors)
      rows.push([
        `${what}, non-2xx / errors`,
        `${p.non2xx} / ${p.errors}`,
        `${d.non2xx} / ${d.errors}`,
        '',
        '',
        '',
      ]);
  }
  const head = ['measure', `Portcullis (auth on, ${opts.login === 'robot' ? 'robot' : 'admin password'})`, 'distribution 2.8 (no auth)', 'P/D', 'target', 'verdict'];
  const widths = head.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) => `| ${cells.map((c, i) => String(c).padEnd(widths[i])).join(' | ')} |`;
  return [line(head), line(widths.map((w) => '-'.repeat(w))), ...rows.map(line)].join('\n');
}

log(
  `load average at start: ${results.facts.loadavgStart}; runs ${opts.runs}; parts ${[...opts.only].join(',')}; login ${opts.login}${opts.warmUp ? '' : '; --no-warm-up'}${opts.large ? '' : '; --no-large'}${opts.portcullisRoot === ROOT ? '' : `; Portcullis from ${opts.portcullisRoot}`}`,
);
try {
  if (opts.only.has('transfer')) await transfer();
  if (opts.only.has('tiny')) await tiny();
  if (opts.only.has('load')) await loadPart();
} finally {
  killAll();
  rmSync(RUN, { recursive: true, force: true });
}
results.facts.loadavgEnd = la();
const text = table();
console.log(
  `\nRegistry benchmark, ${results.date}; nproc ${results.facts.nproc}; load average ${results.facts.loadavgStart} at start, ${results.facts.loadavgEnd} at end`,
);
console.log(
  `${results.facts.skopeo}; ${results.facts.distribution}; node ${results.facts.node}${results.loadTool ? `; ${results.loadTool}` : ''}`,
);
if (results.load.length) {
  const tools = [...new Set(results.load.map((r) => `${r.what} with ${r.tool}`))].join(', ');
  console.log(
    `load: ${opts.connections} connections, ${opts.duration} s per case after a 2 s warm-up; ${tools}`,
  );
}
if (results.tinySkopeoLocalMs)
  console.log(
    `one skopeo oci->oci copy of a tiny image with no registry involved: ${results.tinySkopeoLocalMs.toFixed(1)} ms`,
  );
const tok = results.load.find((r) => r.tokenMs !== undefined);
if (tok)
  console.log(
    `one Portcullis /token request with Basic credentials (password check included): ${tok.tokenMs.toFixed(1)} ms`,
  );
console.log(`\n${text}\n`);
results.table = text;
writeFileSync(join(TMP, 'results.json'), JSON.stringify(results, null, 2));
copyFileSync(join(TMP, 'results.json'), join(TMP, `results-${results.date.replace(/[:.]/g, '-')}.json`));
if (PROF) log(`CPU profiles of the Portcullis server: ${PROF}`);
