import cliProgress from 'cli-progress';
import type { LayerProgress } from '../analyse/index.js';

/** One bar per layer on stderr, only for a person at a terminal: never in CI or when piped. */
export function createLayerProgress(): { progress?: LayerProgress; stop(): void } {
  if (!process.stderr.isTTY || process.env.CI) return { stop() {} };
  const multi = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      format: ' {label} [{bar}] {percentage}% {value}/{total} bytes',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<number, cliProgress.SingleBar>();
  return {
    progress: {
      start(index, label, total) {
        bars.set(index, multi.create(total, 0, { label }));
      },
      advance(index, bytes) {
        bars.get(index)?.update(bytes);
      },
      done(index) {
        const bar = bars.get(index);
        if (bar) {
          bar.update(bar.getTotal());
          bar.stop();
        }
      },
    },
    stop() {
      multi.stop();
    },
  };
}
