import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import type { ImportSummary, UpdateProgress } from '../vulndb/index.js';
import { DEFAULT_OSV_BASE_URL } from '../vulndb/update-defaults.js';

/** The database code (SQLite, zip reading) loads only when a db command runs. */
const vulndb = () => import('../vulndb/index.js');
import { loadConfig } from './config.js';
import { printable } from '../terminal-text.js';
import { byCodeUnits } from '../text-order.js';

function dataDirFrom(flags: { data?: string; config?: string }): string {
  return flags.data ?? loadConfig(flags.config).data;
}

function printSummary(s: ImportSummary): void {
  const ecos = Object.entries(s.ecosystems)
    .sort(([a], [b]) => byCodeUnits(a, b))
    .map(([e, n]) => `${printable(e)} ${n}`)
    .join(', ');
  process.stdout.write(
    `imported ${s.records} records (${s.unchanged} unchanged, ${s.skipped} skipped), ${s.cves} CVE severities, in ${(s.durationMs / 1000).toFixed(1)} s\n`,
  );
  if (ecos) process.stdout.write(`  ${ecos}\n`);
  // Reasons name entries of the archive read, which whoever made it chose.
  for (const r of s.skippedReasons) process.stderr.write(`  skipped: ${printable(r)}\n`);
}

/** A progress bar for a person at a terminal; nothing in CI or when piped (and the bar library not loaded). */
async function updateProgress(): Promise<{ onProgress?: (p: UpdateProgress) => void; stop(): void }> {
  if (!process.stderr.isTTY || process.env.CI) return { stop() {} };
  const { default: cliProgress } = await import('cli-progress');
  const bar = new cliProgress.SingleBar(
    { stream: process.stderr, format: ' {label} [{bar}] {value}/{total}', clearOnComplete: true },
    cliProgress.Presets.shades_classic,
  );
  let label = '';
  let started = false;
  return {
    onProgress(p) {
      const next = p.phase === 'download' ? `download ${p.ecosystem}` : `import ${p.file.split('/').pop()}`;
      const value = p.phase === 'download' ? p.bytes : p.done;
      const total = (p.phase === 'download' ? p.totalBytes : p.total) ?? Math.max(value, 1);
      if (!started || next !== label) {
        if (started) bar.stop();
        bar.start(total, value, { label: next });
        started = true;
        label = next;
      } else {
        bar.setTotal(total);
        bar.update(value);
      }
    },
    stop() {
      if (started) bar.stop();
    },
  };
}

export function addDbCommands(program: Command): void {
  const db = program.command('db').description('the vulnerability database (OSV)');

  db.command('update')
    .description('download OSV data (per ecosystem all.zip) and replace the database atomically')
    .option('--ecosystem <name...>', 'ecosystems to fetch (default: those your scans needed; "all" for every one)')
    .option('--base-url <url>', 'OSV bucket or mirror', process.env.PORTCULLIS_OSV_BASE_URL ?? DEFAULT_OSV_BASE_URL)
    .option('--data <dir>', 'data folder')
    .option('--config <file>', 'configuration file')
    .action(async (flags: { ecosystem?: string[]; baseUrl: string; data?: string; config?: string }) => {
      const { ecosystemsToUpdate, updateOsv } = await vulndb();
      const data = dataDirFrom(flags);
      const ecosystems = ecosystemsToUpdate(data, flags.ecosystem);
      const progress = await updateProgress();
      try {
        process.stderr.write(`updating ${ecosystems.join(', ')} from ${flags.baseUrl}\n`);
        const summary = await updateOsv(data, { ecosystems, baseUrl: flags.baseUrl, onProgress: progress.onProgress });
        progress.stop();
        printSummary(summary);
      } finally {
        progress.stop();
      }
    });

  db.command('import')
    .description('load OSV zips, folders or JSON files (and NVD JSON 2.0 feeds) for air-gapped installs')
    .argument('<path...>', 'zip, folder or JSON file')
    .option('--data <dir>', 'data folder')
    .option('--config <file>', 'configuration file')
    .action(async (paths: string[], flags: { data?: string; config?: string }) => {
      if (paths.length === 0) throw new UsageError('FLAG_INVALID', 'name at least one path to import');
      const { importOsv } = await vulndb();
      printSummary(await importOsv(dataDirFrom(flags), paths));
    });

  db.command('status')
    .description('records, newest modification and source per ecosystem')
    .option('--data <dir>', 'data folder')
    .option('--config <file>', 'configuration file')
    .option('--format <format>', 'table or json', 'table')
    .action(async (flags: { data?: string; config?: string; format: string }) => {
      const { AdvisoryStore } = await vulndb();
      const store = AdvisoryStore.open(dataDirFrom(flags));
      try {
        const rows = store.status();
        if (flags.format === 'json') {
          process.stdout.write(`${JSON.stringify({ path: store.path, ecosystems: rows, cves: store.cveCount() }, null, 2)}\n`);
          return;
        }
        const table = [['ECOSYSTEM', 'RECORDS', 'NEWEST MODIFIED', 'IMPORTED', 'SOURCE']].concat(
          rows.map((r) => [r.ecosystem, String(r.records), r.newestModified ?? '-', r.importedAt, r.source].map(printable)),
        );
        const widths = table[0]!.map((_, i) => Math.max(...table.map((row) => row[i]!.length)));
        process.stdout.write(`database: ${store.path}\n`);
        for (const row of table) process.stdout.write(`${row.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()}\n`);
        process.stdout.write(`CVE severities: ${store.cveCount()}\n`);
      } finally {
        store.close();
      }
    });
}
