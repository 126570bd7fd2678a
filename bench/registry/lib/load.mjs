// HTTP load with wrk (when installed) or autocannon (installed on demand into .bench-tmp/registry/tools
// with `npm install --prefix`). Returns { tool, requests, seconds, rps, p50Ms, p99Ms, non2xx, errors }.
import { spawn, spawnSync } from 'node:child_process';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

function onPath(bin) {
  return spawnSync('sh', ['-c', `command -v ${bin}`], { stdio: 'ignore' }).status === 0;
}

function run(cmd, args) {
  return new Promise((res, rej) => {
    const child = spawn(cmd, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => (out += d));
    child.stderr.on('data', (d) => (err += d));
    child.on('error', rej);
    child.on('close', (code) => res({ code, out, err }));
  });
}

/** Picks the load generator; installs autocannon when wrk is absent. */
export async function loadTool(toolsDir, log) {
  if (onPath('wrk')) {
    const v = spawnSync('wrk', ['--version'], { encoding: 'utf8' });
    return { name: 'wrk', version: `${v.stdout}${v.stderr}`.split('\n')[0].trim() };
  }
  const bin = join(toolsDir, 'node_modules/.bin/autocannon');
  if (!existsSync(bin)) {
    log('wrk is not installed; installing autocannon with npm install --prefix ' + toolsDir);
    mkdirSync(toolsDir, { recursive: true });
    const r = spawnSync(
      'npm',
      ['install', '--prefix', toolsDir, '--no-save', '--no-audit', '--no-fund', 'autocannon@8'],
      { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] },
    );
    if (r.status !== 0 || !existsSync(bin)) throw new Error(`npm install autocannon failed: ${r.stderr}`);
  }
  const v = spawnSync(process.execPath, [bin, '--version'], { encoding: 'utf8' });
  return { name: 'autocannon', bin, version: `autocannon ${v.stdout.trim().split('\n')[0]}` };
}

/** One load run: `method` on `url` with `headers` for `seconds` over `connections` connections. */
export async function load(
  tool,
  { url, method = 'GET', headers = {}, seconds, connections, threads = 1, scratchDir },
) {
  if (method === 'HEAD') {
    // wrk and autocannon both hang on a HEAD answer with Content-Length: use the Node client.
    const r = await run(process.execPath, [
      join(dirname(fileURLToPath(import.meta.url)), 'http-load.mjs'),
      method,
      url,
      String(connections),
      String(seconds),
      JSON.stringify(headers),
    ]);
    if (r.code !== 0) throw new Error(`http-load failed (${r.code}): ${r.err}`);
    const j = JSON.parse(r.out);
    return { tool: 'node http-load.mjs', ...j, rps: j.requests / j.seconds };
  }
  if (tool.name === 'wrk') {
    const script = join(scratchDir, `wrk-${method.toLowerCase()}.lua`);
    writeFileSync(
      script,
      `wrk.method = "${method}"\n` +
        // The summary on stdout in one parseable line (latencies in microseconds).
        'done = function(summary, latency, requests)\n' +
        '  io.write(string.format("RESULT %d %d %d %d %d %d %d %d\\n", summary.requests, summary.duration, latency:percentile(50), latency:percentile(99), summary.errors.status, summary.errors.connect + summary.errors.read + summary.errors.write + summary.errors.timeout, latency.mean, latency.max))\n' +
        'end\n',
    );
    const args = [
      '-t',
      String(threads),
      '-c',
      String(connections),
      '-d',
      `${seconds}s`,
      '--timeout',
      '5s',
      '-s',
      script,
    ];
    for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}: ${v}`);
    args.push(url);
    const r = await run('wrk', args);
    const m = /RESULT (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+) (\d+)/.exec(r.out);
    if (r.code !== 0 || !m) throw new Error(`wrk failed (${r.code}): ${r.out}${r.err}`);
    const [requests, durationUs, p50, p99, non2xx, errors] = m.slice(1, 7).map(Number);
    const secondsRun = durationUs / 1e6;
    return {
      tool: 'wrk',
      requests,
      seconds: secondsRun,
      rps: requests / secondsRun,
      p50Ms: p50 / 1000,
      p99Ms: p99 / 1000,
      non2xx,
      errors,
    };
  }
  const args = [
    tool.bin,
    '-j',
    '-c',
    String(connections),
    '-d',
    String(seconds),
    '-m',
    method,
    '-w',
    String(Math.max(1, threads)),
  ];
  for (const [k, v] of Object.entries(headers)) args.push('-H', `${k}=${v}`);
  args.push(url);
  const r = await run(process.execPath, args);
  if (r.code !== 0) throw new Error(`autocannon failed (${r.code}): ${r.err}`);
  const j = JSON.parse(r.out);
  const requests = j.requests.total;
  const secondsRun = j.duration;
  return {
    tool: 'autocannon',
    requests,
    seconds: secondsRun,
    rps: requests / secondsRun,
    p50Ms: j.latency.p50,
    p99Ms: j.latency.p99,
    non2xx: j.non2xx,
    errors: j.errors + j.timeouts,
  };
}
