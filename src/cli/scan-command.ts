import { extname, join } from 'node:path';
import type { Command } from 'commander';
import { Option } from 'commander';
import { analyseInput } from '../analyse/index.js';
import { parseImageInput, parsePlatform } from '../oci/index.js';
import type { OutputFormat } from '../sbom/index.js';
import { renderResult } from '../sbom/render.js';
import type { AdvisoryStore as AdvisoryStoreType } from '../vulndb/store.js';
import type { RuleSet } from '../secrets/engine.js';
import type { ScanResult } from '../sbom/result.js';
import { UsageError } from '../errors.js';
import { existsSync } from 'node:fs';
import { checkOutputPath, writeOutputFile } from './output-file.js';
import { printableLines } from '../terminal-text.js';
import { loadConfig } from './config.js';
import { createLayerProgress } from './progress.js';

export interface ScanFlags {
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
  vulns?: boolean;
  severity?: string;
  ignoreUnfixed?: boolean;
  exitCode?: number;
  failOn?: string;
  ignorefile?: string;
  vex?: string[];
  matchOwnedLanguagePackages?: boolean;
  scanners?: string;
  secretConfig?: string;
  /** Not a flag: set by `policy test`, where a missing vulnerability database is an error. */
  requireDatabase?: boolean;
}

export interface ScanBehaviour {
  /** `scan` matches vulnerabilities; `sbom` lists packages only. */
  vulnerabilities: boolean;
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of process.stdin) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
}

export function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError('FLAG_INVALID', `"${value}" is not a positive whole number`);
  return n;
}

function platformSuffix(r: ScanResult): string {
  const p = r.image.platform;
  return p ? [p.os, p.architecture, p.variant].filter(Boolean).join('-') : 'image';
}

/**
 * Where several platforms go. JSON: one array (always an array with --all-platforms, so a script
 * need not care how many platforms an image has); SARIF: one log with a run per platform;
 * CycloneDX and SPDX, whose documents describe one thing each: one file per platform next to
 * --output, or one document per line.
 */
async function emit(results: ScanResult[], flags: ScanFlags): Promise<void> {
  const color = !flags.output && process.stdout.isTTY === true && !process.env.NO_COLOR;
  const out = async (text: string) => {
    const whole = text.endsWith('\n') ? text : `${text}\n`;
    if (flags.output) await writeOutputFile(flags.output, whole);
    else process.stdout.write(whole);
  };
  if (flags.format === 'json' && (results.length > 1 || flags.allPlatforms)) {
    const docs = await Promise.all(results.map((r) => renderResult(r, 'json')));
    return out(`[\n${docs.join(',\n')}\n]\n`);
  }
  if (results.length === 1 || flags.format === 'table') {
    return out((await Promise.all(results.map((r) => renderResult(r, flags.format, { color })))).join('\n'));
  }
  if (flags.format === 'sarif') {
    const { combineSarifLogs } = await import('../sbom/sarif.js');
    const logs = await Promise.all(results.map(async (r) => ({ category: platformSuffix(r), sarif: await renderResult(r, 'sarif') })));
    return out(combineSarifLogs(logs));
  }
  for (const r of results) {
    const doc = await renderResult(r, flags.format, { color: false });
    if (flags.output) {
      const ext = extname(flags.output);
      const file = join(flags.output.slice(0, flags.output.length - ext.length) + `-${platformSuffix(r)}${ext}`);
      await writeOutputFile(file, doc);
      process.stderr.write(`wrote ${file}\n`);
    } else {
      process.stdout.write(`${JSON.stringify(JSON.parse(doc))}\n`);
    }
  }
}

const IMAGE_FORMS = 'oci-archive:FILE[:TAG|:@N] | oci:DIR[:TAG|:@N] | docker-archive:FILE[:NAME:TAG|:TAG|:@N] | dir:PATH | HOST[:PORT]/REPO[:TAG|@DIGEST] | PATH';

/**
 * The options `scan` and `sbom` share. `scan` also takes configuration inputs and writes SARIF;
 * `sbom` lists packages, which neither a Dockerfile nor SARIF (a findings format) holds.
 */
export function addScanOptions(cmd: Command, command: 'scan' | 'sbom'): Command {
  const formats = command === 'scan' ? ['table', 'json', 'cyclonedx', 'spdx', 'sarif'] : ['table', 'json', 'cyclonedx', 'spdx'];
  const defaultFormat: OutputFormat = command === 'scan' ? 'table' : 'cyclonedx';
  return addImageReadingOptions(
    cmd
      .argument('<image>', command === 'scan' ? `${IMAGE_FORMS} | dockerfile:PATH | k8s:PATH` : IMAGE_FORMS)
      .addOption(new Option('-f, --format <format>', 'output format').choices(formats).default(defaultFormat))
      .option('-o, --output <file>', 'write the report to FILE instead of standard output')
      .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-arch image (default linux/amd64)')
      .option('--all-platforms', 'scan every platform of a multi-arch image')
      .option('--data <dir>', 'data folder (env PORTCULLIS_DATA; default ./data)'),
  );
}

/** How an image is fetched and unpacked: cache, config, registry login, extraction limits. */
export function addImageReadingOptions(cmd: Command): Command {
  return cmd
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

export function addVulnerabilityOptions(cmd: Command): Command {
  return cmd
    .option('--no-vulns', 'list packages only; do not match vulnerabilities')
    .option('--severity <list>', 'report only these severities, e.g. CRITICAL,HIGH (also: MEDIUM, LOW, NONE, UNKNOWN)')
    .option('--ignore-unfixed', 'leave out vulnerabilities that have no fix yet')
    .option('--exit-code <n>', 'exit with N when findings (vulnerabilities, secrets, misconfigurations) remain after filters (default 0, or 1 with --fail-on)', nonNegativeInt)
    .option('--fail-on <severity>', 'count only findings at or above this severity for --exit-code')
    .option('--ignorefile <file>', 'ignore file with ids, reasons and expiry dates (default ./.portcullisignore when present)')
    .option('--vex <file...>', 'OpenVEX documents; not_affected statements suppress findings')
    .option('--match-owned-language-packages', 'also match language packages an OS package installed against language advisories')
    .option('--scanners <list>', 'what to look for, any of vuln,secret,misconfig', 'vuln,secret,misconfig')
    .option('--secret-config <file>', 'extra secret rules and allowlists (YAML; default ./portcullis-secrets.yaml when present)');
}

type Scanner = 'vuln' | 'secret' | 'misconfig';

function parseScanners(list: string | undefined): Set<Scanner> {
  const out = new Set<Scanner>();
  for (const raw of (list ?? 'vuln,secret,misconfig').split(',')) {
    const s = raw.trim().toLowerCase();
    if (s === '') continue;
    if (s !== 'vuln' && s !== 'secret' && s !== 'misconfig') {
      throw new UsageError('FLAG_INVALID', `unknown scanner "${raw}"; use any of vuln, secret, misconfig`);
    }
    out.add(s);
  }
  return out;
}

/** Dockerfiles and Kubernetes manifests are scanned as configuration: no image, only checks. */
async function scanConfiguration(text: string, kind: 'dockerfile' | 'k8s', path: string): Promise<ScanResult> {
  if (!path) throw new UsageError('IMAGE_INPUT_INVALID', `"${text}": a path is needed after "${kind}:"`);
  if (!existsSync(path)) throw new UsageError('IMAGE_INPUT_INVALID', `${text}: ${path} does not exist`);
  const { scanConfigPath } = await import('../misconfig/config-files.js');
  const { GENERATOR_VERSION } = await import('../analyse/index.js');
  const { misconfigurations, warnings } = await scanConfigPath(path, kind);
  return {
    schemaVersion: 1,
    generator: { name: 'portcullis', version: GENERATOR_VERSION },
    scannedAt: new Date().toISOString(),
    image: { reference: text, manifestDigest: '', configDigest: '', layers: [] },
    os: null,
    packages: [],
    warnings,
    misconfigurations,
  };
}

function nonNegativeInt(value: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0 || n > 255) throw new UsageError('FLAG_INVALID', `"${value}" is not an exit code (0-255)`);
  return n;
}

/**
 * Matches vulnerabilities and applies the user's filters and suppressions. Fails closed: when an
 * exit code is asked for and there is no database, that is an error, never a silent pass.
 */
async function addVulnerabilities(results: ScanResult[], flags: ScanFlags, data: string): Promise<ScanResult[]> {
  const { recordSeenEcosystems } = await import('../vulndb/seen.js');
  recordSeenEcosystems(data, results);
  const gating = flags.exitCode !== undefined || flags.failOn !== undefined || flags.requireDatabase === true;
  // Asked before the matcher, SQLite and the policy code are loaded (about 20 ms), which a scan
  // without a database does not use; `AdvisoryStore.open` asks again and fails the same way.
  const { missingDatabase } = await import('../vulndb/location.js');
  const missing = missingDatabase(data);
  if (missing && !gating) {
    return results.map((r) => ({ ...r, warnings: [...r.warnings, `vulnerabilities not checked: ${missing.message}`] }));
  }
  const { AdvisoryStore, withVulnerabilities } = await import('../vulndb/index.js');
  const { applySuppressions, filterFindings, loadIgnoreFile, loadVex, parseSeverityList } = await import('../policy/index.js');
  const store: AdvisoryStoreType = AdvisoryStore.open(data);
  try {
    const ignorePath = flags.ignorefile ?? (existsSync('.portcullisignore') ? '.portcullisignore' : undefined);
    const ignore = ignorePath ? loadIgnoreFile(ignorePath) : undefined;
    const vex = flags.vex?.flatMap((f) => loadVex(f));
    const severities = flags.severity ? parseSeverityList(flags.severity) : undefined;
    return results.map((r) => {
      const matched = withVulnerabilities(r, store, { matchOwnedLanguagePackages: flags.matchOwnedLanguagePackages });
      const { kept, suppressed, expiredIgnores } = applySuppressions(matched.vulnerabilities ?? [], {
        ignore,
        vex,
        image: { reference: r.image.reference, manifestDigest: r.image.manifestDigest },
      });
      const warnings = [...matched.warnings];
      for (const e of expiredIgnores) warnings.push(`ignore entry for ${e.id} expired on ${e.expires}; it no longer suppresses anything`);
      return {
        ...matched,
        warnings,
        vulnerabilities: filterFindings(kept, { severities, ignoreUnfixed: flags.ignoreUnfixed }),
        suppressed,
      };
    });
  } finally {
    store.close();
  }
}

/** --severity applies to secrets and misconfigurations as it does to vulnerabilities. */
async function applyFindingFilters(results: ScanResult[], flags: ScanFlags): Promise<ScanResult[]> {
  if (!flags.severity) return results;
  const { parseSeverityList } = await import('../policy/filter.js');
  const keep = new Set(parseSeverityList(flags.severity));
  return results.map((r) => ({
    ...r,
    ...(r.secrets ? { secrets: r.secrets.filter((s) => keep.has(s.severity)) } : {}),
    ...(r.misconfigurations ? { misconfigurations: r.misconfigurations.filter((m) => keep.has(m.severity)) } : {}),
  }));
}

/** Any remaining finding (at or above --fail-on, when given) of any scanner fails the run. */
async function exitCodeFor(results: ScanResult[], flags: ScanFlags): Promise<number> {
  const { parseSeverity, shouldFail } = await import('../policy/filter.js');
  const failOn = flags.failOn ? parseSeverity(flags.failOn) : undefined;
  const exitCode = flags.exitCode ?? (failOn ? 1 : 0);
  // Vulnerabilities, secrets and misconfigurations all count, by the same severity rule.
  const findings = results.flatMap((r) => [...(r.vulnerabilities ?? []), ...(r.secrets ?? []), ...(r.misconfigurations ?? [])]);
  const failing = failOn ? shouldFail(findings, failOn) : findings.length > 0;
  return failing ? exitCode : 0;
}

export async function runScan(imageText: string, flags: ScanFlags, behaviour: ScanBehaviour = { vulnerabilities: false }): Promise<number> {
  checkOutputPath(flags.output);
  for (const kind of ['dockerfile', 'k8s'] as const) {
    if (imageText.startsWith(`${kind}:`)) {
      if (!behaviour.vulnerabilities) {
        throw new UsageError('IMAGE_INPUT_INVALID', `${kind}: inputs hold no packages; check them with \`portcullis scan ${imageText}\``);
      }
      loadConfig(flags.config);
      parseScanners(flags.scanners);
      const result = await scanConfiguration(imageText, kind, imageText.slice(kind.length + 1));
      const filtered = await applyFindingFilters([result], flags);
      for (const w of result.warnings) process.stderr.write(`warning: ${printableLines(w)}\n`);
      await emit(filtered, flags);
      // Each warning here is a file of the folder that was not checked (too large, unreadable,
      // not YAML). A gate must not pass what it could not look at (helper-34's review).
      if (result.warnings.length > 0 && (flags.exitCode !== undefined || flags.failOn !== undefined)) {
        throw new UsageError(
          'CONFIG_UNCHECKED',
          `${imageText}: ${result.warnings.length} file(s) or folder(s) could not be checked (see the warnings); --exit-code/--fail-on do not pass what was not checked`,
        );
      }
      return exitCodeFor(filtered, flags);
    }
  }
  const checked = await scanImage(imageText, flags, behaviour);
  await emit(checked, flags);
  return exitCodeFor(checked, flags);
}

/**
 * Analyses an image and, for `scan`, matches vulnerabilities and applies the filters: the one code
 * path behind `scan`, `sbom` and `policy test`. Warnings go to stderr.
 */
export async function scanImage(imageText: string, flags: ScanFlags, behaviour: ScanBehaviour): Promise<ScanResult[]> {
  const config = loadConfig(flags.config);
  const data = flags.data ?? config.data;
  const cacheFolder = flags.cacheDir ?? config.cacheDir ?? join(data, 'cache');
  const cacheDir = flags.cache === false ? null : cacheFolder;
  const scanners = behaviour.vulnerabilities ? parseScanners(flags.scanners) : new Set<Scanner>();
  if (flags.platform !== undefined && flags.allPlatforms) {
    throw new UsageError('FLAG_INVALID', '--platform picks one platform and --all-platforms takes every one; give one of them');
  }
  const input = parseImageInput(imageText);
  let secretRules: RuleSet | undefined;
  if (scanners.has('secret')) {
    const { buildRuleSet, loadSecretConfig } = await import('../secrets/index.js');
    const configPath = flags.secretConfig ?? (existsSync('portcullis-secrets.yaml') ? 'portcullis-secrets.yaml' : undefined);
    secretRules = buildRuleSet(configPath ? await loadSecretConfig(configPath) : undefined);
  }
  let password: string | undefined;
  if (flags.passwordStdin) {
    if (!flags.username) throw new UsageError('FLAG_INVALID', '--password-stdin needs --username');
    password = await readStdin();
  }
  const bars = await createLayerProgress();
  try {
    const results = await analyseInput(input, {
      cacheDir,
      platform: flags.platform ? parsePlatform(flags.platform) : undefined,
      allPlatforms: flags.allPlatforms,
      insecure: flags.insecure,
      username: flags.username,
      password,
      ...(config.registryTimeoutMs !== undefined ? { timeoutMs: config.registryTimeoutMs } : {}),
      limits: {
        ...config.limits,
        ...(flags.maxTotalBytes ? { maxTotalBytes: flags.maxTotalBytes } : {}),
        ...(flags.maxEntries ? { maxEntries: flags.maxEntries } : {}),
        ...(flags.maxFileBytes ? { maxFileBytes: flags.maxFileBytes } : {}),
      },
      progress: bars.progress,
      scratchRoot: join(cacheFolder, 'scratch'),
      secrets: secretRules ?? false,
      misconfig: scanners.has('misconfig'),
    });
    bars.stop();
    const vulnChecked =
      scanners.has('vuln') && flags.vulns !== false ? await addVulnerabilities(results, flags, data) : results;
    const checked = await applyFindingFilters(vulnChecked, flags);
    for (const w of new Set(checked.flatMap((r) => r.warnings))) process.stderr.write(`warning: ${printableLines(w)}\n`);
    return checked;
  } finally {
    bars.stop();
  }
}
