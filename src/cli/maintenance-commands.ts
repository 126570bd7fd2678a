import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { loadConfig } from './config.js';

const UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };

/** `0`, `500ms`, `90s`, `10m`, `1h`, `2d` (also combined: `1h30m`) → milliseconds. */
export function parseDuration(text: string): number {
  const value = text.trim();
  if (value === '0') return 0;
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/gy;
  let total = 0;
  let consumed = 0;
  for (let m = re.exec(value); m; m = re.exec(value)) {
    total += Number(m[1]) * UNITS[m[2]!]!;
    consumed = re.lastIndex;
  }
  if (consumed === 0 || consumed !== value.length) {
    throw new UsageError('FLAG_INVALID', `"${text}" is not a duration (e.g. 0, 30s, 10m, 1h, 2d)`);
  }
  return total;
}

function formatBytes(n: number): string {
  if (n < 1024) return `${n} B`;
  const units = ['KiB', 'MiB', 'GiB', 'TiB'];
  let v = n / 1024;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${v.toFixed(1)} ${units[i]}`;
}

interface GcFlags {
  data?: string;
  config?: string;
  dryRun?: boolean;
  grace: string;
  keepUntagged?: boolean;
  json?: boolean;
}

interface FsckFlags {
  data?: string;
  config?: string;
  verifyContent?: boolean;
  json?: boolean;
}

/**
 * `portcullis gc` and `portcullis fsck`. Both work on the data folder directly and are safe next
 * to a running `serve` (GC coordinates through the metadata database, fsck only reads).
 * `setExitCode` receives 1 when fsck finds problems (the caller owns the process exit code).
 */
export function addMaintenanceCommands(program: Command, setExitCode: (code: number) => void = (code) => (process.exitCode = code)): void {
  program
    .command('gc')
    .description('delete registry blobs and untagged manifests nothing references (safe while serving)')
    .option('--data <dir>', 'data folder (env PORTCULLIS_DATA; default ./data)')
    .option('--config <file>', 'configuration file (default ./portcullis.yaml when present)')
    .option('--dry-run', 'only report what would be deleted')
    .option('--grace <duration>', 'keep anything pushed or used more recently than this', '1h')
    .option('--keep-untagged', 'keep manifests no tag points at')
    .option('--json', 'print the result as JSON')
    .action(async (flags: GcFlags) => {
      const gracePeriodMs = parseDuration(flags.grace);
      const dataDir = flags.data ?? loadConfig(flags.config).data;
      const { gc } = await import('../store/gc.js');
      const r = await gc(dataDir, { gracePeriodMs, dryRun: !!flags.dryRun, deleteUntagged: !flags.keepUntagged });
      if (flags.json) {
        process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
        return;
      }
      const verb = r.dryRun ? 'would delete' : 'deleted';
      process.stdout.write(
        `${verb} ${r.manifestsDeleted.length} manifest(s), ${r.blobsDeleted.length} blob(s) (${formatBytes(r.bytesFreed)}), ` +
          `${r.uploadsRemoved} stale upload(s), ${r.tempFilesRemoved} temp file(s) (${formatBytes(r.tempBytesFreed)}), ` +
          `${r.analysesRemoved} analysis record(s), ${r.linksRemoved} repository link(s), ${r.repositoriesRemoved} empty repositor${r.repositoriesRemoved === 1 ? 'y' : 'ies'}; ` +
          `kept ${r.blobsKept} blob(s)\n`,
      );
    });

  program
    .command('fsck')
    .description('check the registry storage for consistency (exit 1 when problems are found)')
    .option('--data <dir>', 'data folder (env PORTCULLIS_DATA; default ./data)')
    .option('--config <file>', 'configuration file (default ./portcullis.yaml when present)')
    .option('--verify-content', 'hash every blob and compare with its digest (reads all data)')
    .option('--json', 'print the result as JSON')
    .action(async (flags: FsckFlags) => {
      const dataDir = flags.data ?? loadConfig(flags.config).data;
      const { fsck } = await import('../store/fsck.js');
      const r = await fsck(dataDir, { verifyContent: !!flags.verifyContent });
      if (flags.json) process.stdout.write(`${JSON.stringify(r, null, 2)}\n`);
      else {
        for (const p of r.problems) process.stdout.write(`${p.kind}: ${p.message}\n`);
        const c = r.checked;
        process.stdout.write(
          `checked ${c.repositories} repositories, ${c.manifests} manifests, ${c.tags} tags, ${c.blobs} blobs: ` +
            `${r.problems.length === 0 ? 'no problems' : `${r.problems.length} problem(s)`}\n`,
        );
      }
      if (r.problems.length > 0) setExitCode(1);
    });
}
