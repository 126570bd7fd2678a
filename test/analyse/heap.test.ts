import { spawnSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { ALLOCATOR_TUNABLES, withAllocatorTunables } from '../../src/analyse/heap.js';

const OURS = Object.entries(ALLOCATOR_TUNABLES).map(([name, value]) => `${name}=${value}`);

describe('the analysis processes allocator settings', () => {
  it('adds both settings to an environment that has none, keeping everything else', () => {
    const env = withAllocatorTunables({ PATH: '/usr/bin', HOME: '/root' });
    expect(env.PATH).toBe('/usr/bin');
    expect(env.HOME).toBe('/root');
    expect(env.GLIBC_TUNABLES!.split(':').sort()).toEqual([...OURS].sort());
  });

  it('leaves a setting the caller already chose, and keeps the caller’s other tunables', () => {
    const env = withAllocatorTunables({
      GLIBC_TUNABLES: 'glibc.malloc.trim_threshold=1048576:glibc.malloc.arena_max=2',
    });
    const given = env.GLIBC_TUNABLES!.split(':');
    expect(given).toContain('glibc.malloc.trim_threshold=1048576');
    expect(given).toContain('glibc.malloc.arena_max=2');
    expect(given).toContain(
      `glibc.malloc.mmap_threshold=${ALLOCATOR_TUNABLES['glibc.malloc.mmap_threshold']}`,
    );
    expect(given.filter((t) => t.startsWith('glibc.malloc.trim_threshold='))).toHaveLength(1);
  });

  it('does not change the environment it is given', () => {
    const original = { GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' };
    withAllocatorTunables(original);
    expect(original).toEqual({ GLIBC_TUNABLES: 'glibc.malloc.arena_max=2' });
  });
});

// The settings only matter if glibc knows their names: it ignores unknown tunables without a word.
// So this measures what they are for. A process streams 640 MiB through 1 MiB buffers, holding
// the last four, as a layer read does, with a minor collection after every 16; with freed memory
// kept, the buffers reuse the same pages instead of faulting in fresh ones.
const header = process.report?.getReport() as { header?: { glibcVersionRuntime?: string } } | undefined;
const GLIBC = process.platform === 'linux' && Boolean(header?.header?.glibcVersionRuntime);
const CHURN = `
const before = process.resourceUsage().minorPageFault;
const held = [];
for (let i = 0; i < 640; i++) {
  const b = Buffer.allocUnsafeSlow(1 << 20);
  b.fill(i & 255);
  held.push(b);
  if (held.length > 4) held.shift();
  if (i % 16 === 15) globalThis.gc({ type: 'minor' });
}
process.stdout.write(String(process.resourceUsage().minorPageFault - before));
`;

function faultsWhileChurning(env: NodeJS.ProcessEnv): number {
  const run = spawnSync(process.execPath, ['--expose-gc', '-e', CHURN], { env, encoding: 'utf8' });
  expect(run.status, run.stderr).toBe(0);
  return Number(run.stdout);
}

describe.skipIf(!GLIBC)(
  `glibc${GLIBC ? '' : ' (skipped: not a glibc Linux, where the settings are ignored)'}`,
  () => {
    it('keeps freed buffers for reuse under these settings, so streaming faults in far fewer pages', () => {
      const { GLIBC_TUNABLES: _drop, ...plain } = process.env;
      const defaults = faultsWhileChurning(plain);
      const tuned = faultsWhileChurning(withAllocatorTunables(plain));
      const oneRoundOfPages = (24 << 20) / 4096;
      // Seen here: 14,000–17,000 faults with glibc's defaults, 6,400–7,200 with the settings.
      expect(tuned).toBeLessThan(2 * oneRoundOfPages);
      expect(tuned).toBeLessThan(0.6 * defaults);
    });
  },
);
