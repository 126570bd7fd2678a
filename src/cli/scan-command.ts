import { writeFile } from 'node:fs/promises';
import { extname, join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { analyseInput } from '../analyse/index.js';
import { UsageError } from '../errors.js';
import { parseImageInput, parsePlatform } from '../oci/index.js';
import { formatResult, type OutputFormat } from '../sbom/index.js';
import type { ScanResult } from '../sbom/result.js';
import { loadConfig } from './config.js';
import { createLayerProgress } from './progress.js';

interface ScanFlags {
  format: OutputFormat;
  output?: string;
  platform?: string;
  allPlatforms?: boolean;
  data?: string;
  cacheDir?: string;
  cache: boolean;
  config?: string;
  insecure?: boolean;
  username?: string;
  passwordStdin?: boolean;
  maxTotalBytes?: number;
  maxEntries?: number;
  maxFileBytes?: number;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError('FLAG_INVALID', `"${value}" is not a positive whole number`);
  return n;
}

function platformSuffix(r: ScanResult): string {
  const p = r.image.platform;
  return p ? [p.os, p.architecture, p.variant].filter(Boolean).join('-') : 'image';
}

/** Where several platforms go: one file each next to --output, or one document per line. */
async function emit(results: ScanResult[], flags: ScanFlags): Promise<void> {
  const color = !flags.output && process.stdout.isTTY === true && !process.env.NO_COLOR;
  if (results.length === 1 || flags.format === 'table') {
    const text = results.map((r) => formatResult(r, flags.format, { color })).join('\n');
    if (flags.output) await writeFile(flags.output, text.endsWith('\n') ? text : `${text}\n`);
    else process.stdout.write(text.endsWith('\n') ? text : `${text}\n`);
    return;
  }
  if (flags.format === 'json') {
    const text = `[\n${results.map((r) => formatResult(r, 'json', { color: false })).join(',\n')}\n]\n`;
    if (flags.output) await writeFile(flags.output, text);
    else process.stdout.write(text);
    return;
  }
  for (const r of results) {
    const doc = formatResult(r, flags.format, { color: false });
    if (flags.output) {
      const ext = extname(flags.output);
      const file = join(flags.output.slice(0, flags.output.length - ext.length) + `-${platformSuffix(r)}${ext}`);
      await writeFile(file, doc);
      process.stderr.write(`wrote ${file}\n`);
    } else {
      process.stdout.write(`${JSON.stringify(JSON.parse(doc))}\n`);
    }
  }
}

export function addScanOptions(cmd: Command, defaultFormat: OutputFormat): Command {
  return cmd
    .argument('<image>', 'oci-archive:FILE[:TAG] | oci:DIR[:TAG] | docker-archive:FILE[:TAG] | dir:PATH | HOST[:PORT]/REPO[:TAG|@DIGEST]')
    .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json', 'cyclonedx', 'spdx']).default(defaultFormat))
    .option('-o, --output <file>', 'write the report to FILE instead of standard output')
    .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-arch image (default linux/amd64)')
    .option('--all-platforms', 'scan every platform of a multi-arch image')
    .option('--data <dir>', 'data folder (env PORTCULLIS_DATA; default ./data)')
    .option('--cache-dir <dir>', 'layer cache folder (default DATA/cache)')
    .option('--no-cache', 'do not read or write the layer cache')
    .option('--config <file>', 'configuration file (default ./portcullis.yaml when present)')
    .option('--insecure', 'use plain HTTP for the registry')
    .option('--username <user>', 'registry user name')
    .option('--password-stdin', 'read the registry password from standard input')
    .option('--max-total-bytes <n>', 'largest total uncompressed size of an image', positiveInt)
    .option('--max-entries <n>', 'most tar entries in an image', positiveInt)
    .option('--max-file-bytes <n>', 'largest single file in a layer', positiveInt);
}

export async function runScan(imageText: string, flags: ScanFlags): Promise<number> {
  const config = loadConfig(flags.config);
  const data = flags.data ?? config.data;
  const cacheFolder = flags.cacheDir ?? config.cacheDir ?? join(data, 'cache');
  const cacheDir = flags.cache === false ? null : cacheFolder;
  const input = parseImageInput(imageText);
  let password: string | undefined;
  if (flags.passwordStdin) {
    if (!flags.username) throw new UsageError('FLAG_INVALID', '--password-stdin needs --username');
    password = await readStdin();
  }
  const bars = createLayerProgress();
  try {
    const results = await analyseInput(input, {
      cacheDir,
      platform: flags.platform ? parsePlatform(flags.platform) : undefined,
      allPlatforms: flags.allPlatforms,
      insecure: flags.insecure,
      username: flags.username,
      password,
      limits: {
        ...config.limits,
        ...(flags.maxTotalBytes ? { maxTotalBytes: flags.maxTotalBytes } : {}),
        ...(flags.maxEntries ? { maxEntries: flags.maxEntries } : {}),
        ...(flags.maxFileBytes ? { maxFileBytes: flags.maxFileBytes } : {}),
      },
      progress: bars.progress,
      scratchRoot: join(cacheFolder, 'scratch'),
    });
    bars.stop();
    for (const r of results) for (const w of r.warnings) process.stderr.write(`warning: ${w}\n`);
    await emit(results, flags);
    return 0;
  } finally {
    bars.stop();
  }
}
