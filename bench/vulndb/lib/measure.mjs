// Runs a command in a child process and measures wall time (hrtime around spawn and exit) and peak
// RSS: GNU time's %M when /usr/bin/time exists, otherwise /proc/<pid>/status VmHWM polled every
// 5 ms (top process only; can miss a peak in the last few ms).
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';

const GNU_TIME = '/usr/bin/time';

export const rssMethod = existsSync(GNU_TIME)
  ? "/usr/bin/time -f '%e %M' (max RSS, kB)"
  : '/proc/<pid>/status VmHWM polled every 5 ms';

async function vmHwmKb(pid) {
  try {
    const m = /VmHWM:\s+(\d+) kB/.exec(await readFile(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/** Returns { ms, rssMb, code, stdout, stderr }. */
export async function measure(cmd, args, { cwd, timeoutMs = 60 * 60_000 } = {}) {
  const useTime = existsSync(GNU_TIME);
  const timeFile = join(tmpdir(), `bench-vulndb-time-${randomBytes(6).toString('hex')}`);
  const [file, argv] = useTime ? [GNU_TIME, ['-f', '%e %M', '-o', timeFile, cmd, ...args]] : [cmd, args];
  let stdout = '';
  let stderr = '';
  let hwm = 0;
  const t0 = process.hrtime.bigint();
  const child = spawn(file, argv, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  child.stdout.on('data', (d) => {
    if (stdout.length < 64_000) stdout += d;
  });
  child.stderr.on('data', (d) => {
    if (stderr.length < 64_000) stderr += d;
  });
  const poller = useTime
    ? undefined
    : setInterval(async () => {
        hwm = Math.max(hwm, await vmHwmKb(child.pid));
      }, 5);
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? `signal ${signal}`));
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  clearTimeout(timer);
  if (poller) clearInterval(poller);
  let rssKb = hwm;
  if (useTime) {
    try {
      const last = (await readFile(timeFile, 'utf8')).trim().split('\n').pop();
      rssKb = Number(last.split(/\s+/)[1]);
    } catch {
      rssKb = NaN;
    }
    await rm(timeFile, { force: true });
  }
  return { ms, rssMb: rssKb / 1024, code, stdout, stderr };
}

export function median(values) {
  const v = [...values].sort((a, b) => a - b);
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}

export function percentile(values, p) {
  const v = [...values].sort((a, b) => a - b);
  return v[Math.min(v.length - 1, Math.ceil((p / 100) * v.length) - 1)];
}
