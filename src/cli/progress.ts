import type { LayerProgress } from '../analyse/index.js';

/**
 * One bar per layer on stderr, only for a person at a terminal: never in CI or when piped. The bar
 * library (and the readline module it loads) is imported only then, so piped runs do not load it.
 */
export async function createLayerProgress(): Promise<{ progress?: LayerProgress; stop(): void }> {
  if (!process.stderr.isTTY || process.env.CI) return { stop() {} };
  const { default: cliProgress } = await import('cli-progress');
  const multi = new cliProgress.MultiBar(
    {
      stream: process.stderr,
      format: ' {label} [{bar}] {percentage}% {value}/{total} bytes',
      hideCursor: true,
      clearOnComplete: true,
    },
    cliProgress.Presets.shades_classic,
  );
  const bars = new Map<number, InstanceType<typeof cliProgress.SingleBar>>();
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
