// Runs a command and measures its wall time (hrtime in this process, around spawn and exit) and
// peak RSS: from GNU time's %M when /usr/bin/time is installed, otherwise by polling
// /proc/<pid>/status for VmHWM every 5 ms (which can miss a peak in the last few ms of a run).
import { spawn } from 'node:child_process';
import { existsSync, openSync, closeSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { clearInterval, setInterval } from 'node:timers';

const GNU_TIME = '/usr/bin/time';

export const rssMethod = existsSync(GNU_TIME)
  ? "GNU time -f '%e %M' (max RSS of the process or of its largest waited-for descendant)"
  : '/proc/<pid>/status VmHWM polled every 5 ms (the top process only)';

async function vmHwmKb(pid) {
  try {
    const text = await readFile(`/proc/${pid}/status`, 'utf8');
    const m = /VmHWM:\s+(\d+) kB/.exec(text);
    return m ? Number(m[1]) : 0;
  } catch {
    return 0;
  }
}

/**
 * Runs `cmd args` with stdout sent to `stdoutFile` (or discarded) and stderr kept in memory.
 * Returns { ms, rssMb, code, stderr }.
 */
export async function measure(cmd, args, { cwd, env, stdoutFile, timeoutMs = 30 * 60_000 } = {}) {
  const out = stdoutFile ? openSync(stdoutFile, 'w') : 'ignore';
  const useTime = existsSync(GNU_TIME);
  const timeFile = join(tmpdir(), `bench-time-${randomBytes(6).toString('hex')}`);
  const [file, argv] = useTime ? [GNU_TIME, ['-f', '%e %M', '-o', timeFile, cmd, ...args]] : [cmd, args];
  let stderr = '';
  let hwm = 0;
  const t0 = process.hrtime.bigint();
  const child = spawn(file, argv, { cwd, env, stdio: ['ignore', out, 'pipe'] });
  child.stderr.on('data', (d) => {
    if (stderr.length < 64_000) stderr += d;
  });
  let poller;
  if (!useTime) {
    poller = setInterval(async () => {
      hwm = Math.max(hwm, await vmHwmKb(child.pid));
    }, 5);
  }
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  const code = await new Promise((resolve, reject) => {
    child.on('error', reject);
    child.on('close', (c, signal) => resolve(c ?? `signal ${signal}`));
  });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  clearTimeout(timer);
  if (poller) clearInterval(poller);
  if (typeof out === 'number') closeSync(out);
  let rssKb = hwm;
  if (useTime) {
    try {
      const text = (await readFile(timeFile, 'utf8')).trim().split('\n').pop();
      rssKb = Number(text.split(/\s+/)[1]);
    } catch {
      rssKb = NaN;
    }
    await rm(timeFile, { force: true });
  }
  return { ms, rssMb: rssKb / 1024, code, stderr };
}

export function median(values) {
  const v = values.filter((x) => Number.isFinite(x)).sort((a, b) => a - b);
  if (v.length === 0) return NaN;
  const mid = v.length >> 1;
  return v.length % 2 ? v[mid] : (v[mid - 1] + v[mid]) / 2;
}
