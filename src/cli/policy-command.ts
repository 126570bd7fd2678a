import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { Option } from 'commander';
import { LineCounter, parseDocument, stringify } from 'yaml';
import { UsageError } from '../errors.js';
import { printableLines } from '../terminal-text.js';
import type { ScanResult } from '../sbom/result.js';
import type { EffectivePolicy, PolicyDocument, Verdict } from '../policy/index.js';
import { loadConfig } from './config.js';
import { addImageReadingOptions, scanImage, type ScanFlags } from './scan-command.js';
import { checkOutputPath, writeOutputFile } from './output-file.js';

/** The policy modules (zod schemas, YAML, version orderings) load only when a policy command runs. */
const policyModule = () => import('../policy/index.js');

interface PolicySourceFlags {
  policy?: string;
  config?: string;
  project?: string;
}

interface PolicyTestFlags extends PolicySourceFlags {
  repository?: string;
  format: 'table' | 'json';
  output?: string;
  failOnWarn?: boolean;
  platform?: string;
  data?: string;
  cacheDir?: string;
  cache: boolean;
  insecure?: boolean;
  username?: string;
  passwordStdin?: boolean;
  maxTotalBytes?: number;
  maxEntries?: number;
  maxFileBytes?: number;
  ignorefile?: string;
  vex?: string[];
  matchOwnedLanguagePackages?: boolean;
  secretConfig?: string;
}

export interface LoadedPolicy {
  policy: PolicyDocument;
  /** A file path, `FILE: policy` for a policy inside portcullis.yaml, or `built-in policy`. */
  source: string;
  builtin: boolean;
}

/**
 * The policy in force: --policy FILE, else the `policy:` key of portcullis.yaml (a path relative
 * to that file, or the policy itself), else the built-in policy. Any invalid policy is an error.
 */
export async function loadPolicyInForce(flags: PolicySourceFlags): Promise<LoadedPolicy> {
  const { BUILTIN_POLICY_SOURCE, builtinPolicy, loadPolicyFile, validatePolicy } = await policyModule();
  if (flags.policy !== undefined) return { policy: loadPolicyFile(flags.policy), source: flags.policy, builtin: false };
  const config = loadConfig(flags.config);
  if (typeof config.policy === 'string') {
    return { policy: loadPolicyFile(config.policy), source: config.policy, builtin: false };
  }
  if (config.policy !== undefined && config.file !== undefined) {
    // Re-read the file as a YAML document so errors can name lines inside the policy: key.
    const counter = new LineCounter();
    const doc = parseDocument(readFileSync(config.file, 'utf8'), { lineCounter: counter });
    const policy = validatePolicy(config.policy, config.file, { doc, counter, prefix: ['policy'] });
    return { policy, source: `${config.file}: policy`, builtin: false };
  }
  return { policy: builtinPolicy(), source: BUILTIN_POLICY_SOURCE, builtin: true };
}

/**
 * A repository's project is its first path segment (`team/app/api` → `team`; a one-segment name is
 * its own project), exactly as the registry's gate decides it, so CI and the registry apply the
 * same per-project overrides and exceptions.
 */
export function projectOfRepository(repository: string | undefined): string | undefined {
  if (repository === undefined || repository === '') return undefined;
  const i = repository.indexOf('/');
  return i < 0 ? repository : repository.slice(0, i);
}

async function repositoryOf(imageText: string): Promise<string | undefined> {
  const { parseImageInput, parseRegistryReference } = await import('../oci/index.js');
  const input = parseImageInput(imageText);
  if (input.kind !== 'registry') return undefined;
  return parseRegistryReference(input.reference).repository;
}

async function showPolicy(flags: PolicySourceFlags): Promise<string> {
  const { BUILTIN_POLICY_YAML, effectiveAsDocument, resolvePolicy } = await policyModule();
  const loaded = await loadPolicyInForce(flags);
  const header = [`# policy in force: ${loaded.source}`];
  if (flags.project === undefined) {
    if (loaded.builtin) return `${header.join('\n')}\n${BUILTIN_POLICY_YAML}`;
    return `${header.join('\n')}\n${stringify(loaded.policy, { lineWidth: 0 })}`;
  }
  const effective: EffectivePolicy = resolvePolicy(loaded.policy, flags.project);
  header.push(
    `# project: ${flags.project}; overrides applied: ${effective.appliedOverrides.length > 0 ? effective.appliedOverrides.join(', ') : 'none'}`,
  );
  if (loaded.builtin && effective.appliedOverrides.length === 0) return `${header.join('\n')}\n${BUILTIN_POLICY_YAML}`;
  return `${header.join('\n')}\n${stringify(effectiveAsDocument(effective), { lineWidth: 0 })}`;
}

// ---- verdict output -----------------------------------------------------------------------------

export interface Evaluated {
  result: ScanResult;
  verdict: Verdict;
}

function scopeText(scope: Verdict['exceptionsApplied'][number]['scope']): string {
  if (scope === 'global') return 'global';
  return Object.entries(scope)
    .map(([k, v]) => `${k} ${String(v)}`)
    .join(', ');
}

/** The verdict as text; what it quotes from the image (names, versions, paths) is escaped. */
export function renderVerdictTable(items: Evaluated[], source: string): string {
  return printableLines(verdictLines(items, source));
}

function verdictLines(items: Evaluated[], source: string): string {
  const out: string[] = [];
  for (const { result, verdict } of items) {
    const ctx = verdict.context;
    out.push(`${verdict.status.toUpperCase()}  ${result.image.reference}`);
    out.push(
      `  policy: ${source}${verdict.policy.name !== undefined ? ` (${verdict.policy.name})` : ''}` +
        `; project: ${ctx.project ?? '-'}; repository: ${ctx.repository ?? '-'}` +
        (verdict.policy.overrides.length > 0 ? `; overrides: ${verdict.policy.overrides.join(', ')}` : ''),
    );
    if (ctx.digest !== undefined) out.push(`  digest: ${ctx.digest}`);
    if (verdict.reasons.length === 0) out.push('', '  no rule matched: nothing to fix');
    for (const reason of verdict.reasons) {
      out.push('', `${reason.action.toUpperCase()}  ${reason.ruleId}: ${reason.message}`);
      for (const f of reason.findings) {
        out.push(`  - ${f.message}`);
        if (f.kind !== 'vulnerability') out.push(`    fix: ${f.remedy}`);
      }
      if (reason.kind === 'vulnerability') {
        for (const line of reason.remedy.split('; ')) out.push(`  fix: ${line}`);
      }
    }
    if (verdict.exceptionsApplied.length > 0) {
      out.push('', 'exceptions applied:');
      for (const e of verdict.exceptionsApplied) {
        out.push(
          `  ${e.id} (${scopeText(e.scope)}${e.expires !== undefined ? `, until ${e.expires}` : ''}${e.author !== undefined ? `, by ${e.author}` : ''}): ${e.reason}; covers ${e.matches.length} match${e.matches.length === 1 ? '' : 'es'}`,
        );
      }
    }
    if (verdict.expiredExceptions.length > 0) {
      out.push('', 'expired exceptions (no longer applied; renew or remove them):');
      for (const e of verdict.expiredExceptions) {
        out.push(
          `  ${e.id} (${scopeText(e.scope)}) expired ${e.expires ?? ''}: ${e.reason}${e.matches.length > 0 ? `; would have covered ${e.matches.length}` : ''} [${e.origin}]`,
        );
      }
    }
    const suppressed = result.suppressed ?? [];
    if (suppressed.length > 0) {
      out.push('', `suppressed before the policy ran (ignore file, VEX): ${suppressed.length}`);
      for (const s of suppressed) out.push(`  ${s.finding.id} in ${s.finding.package.name}: ${s.reason} [${s.source}]`);
    }
    if (verdict.notes.length > 0) {
      out.push('', 'notes:');
      for (const n of verdict.notes) out.push(`  ${n}`);
    }
    out.push('');
  }
  return `${out.join('\n')}\n`;
}

function renderJson(items: Evaluated[], source: string): string {
  const docs = items.map(({ result, verdict }) => ({
    schemaVersion: 1,
    image: { reference: result.image.reference, manifestDigest: result.image.manifestDigest },
    policySource: source,
    ...verdict,
    suppressed: (result.suppressed ?? []).map((s) => ({ id: s.finding.id, package: s.finding.package.name, reason: s.reason, source: s.source })),
  }));
  return `${JSON.stringify(docs.length === 1 ? docs[0] : docs, null, 2)}\n`;
}

async function testPolicy(imageText: string, flags: PolicyTestFlags): Promise<number> {
  for (const kind of ['dockerfile:', 'k8s:']) {
    if (imageText.startsWith(kind)) {
      throw new UsageError(
        'IMAGE_INPUT_INVALID',
        `policy test evaluates images; for ${kind.slice(0, -1)} files use portcullis scan ${imageText}`,
      );
    }
  }
  const { evaluate } = await policyModule();
  // The policy is read and validated before the (slower) scan, so a broken policy fails fast.
  const loaded = await loadPolicyInForce(flags);
  checkOutputPath(flags.output);
  const repository = flags.repository ?? (await repositoryOf(imageText));
  const project = flags.project ?? projectOfRepository(repository);
  const scanFlags: ScanFlags = {
    format: 'json',
    platform: flags.platform,
    data: flags.data,
    cacheDir: flags.cacheDir,
    cache: flags.cache,
    config: flags.config,
    insecure: flags.insecure,
    username: flags.username,
    passwordStdin: flags.passwordStdin,
    maxTotalBytes: flags.maxTotalBytes,
    maxEntries: flags.maxEntries,
    maxFileBytes: flags.maxFileBytes,
    ignorefile: flags.ignorefile,
    vex: flags.vex,
    matchOwnedLanguagePackages: flags.matchOwnedLanguagePackages,
    secretConfig: flags.secretConfig,
    scanners: 'vuln,secret,misconfig',
    requireDatabase: true,
  };
  const results = await scanImage(imageText, scanFlags, { vulnerabilities: true });
  const now = new Date();
  const items = results.map((result) => ({
    result,
    verdict: evaluate(result, loaded.policy, { project, repository, now }),
  }));
  const text = flags.format === 'json' ? renderJson(items, loaded.source) : renderVerdictTable(items, loaded.source);
  if (flags.output !== undefined) {
    await writeOutputFile(flags.output, text);
  } else {
    process.stdout.write(text);
  }
  const statuses = items.map((i) => i.verdict.status);
  if (statuses.includes('fail')) return 1;
  if (statuses.includes('warn') && flags.failOnWarn === true) return 1;
  return 0;
}

/**
 * `portcullis policy show` and `portcullis policy test`. Exit codes of `test`: 0 pass or warn
 * (1 for warn with --fail-on-warn), 1 fail, 2 any error (an invalid policy or a missing
 * vulnerability database included: never a silent pass).
 */
export function addPolicyCommands(program: Command, setExitCode: (code: number) => void): void {
  const policy = program.command('policy').description('the policy that decides whether an image passes');

  policy
    .command('show')
    .description('print the policy in force (with --project: after that project\'s overrides) as YAML')
    .option('--policy <file>', 'policy file (default: policy: in portcullis.yaml, else the built-in policy)')
    .option('--project <name>', 'show the policy as it applies to this project')
    .option('--config <file>', 'configuration file (default ./portcullis.yaml when present)')
    .action(async (flags: PolicySourceFlags) => {
      process.stdout.write(await showPolicy(flags));
    });

  addImageReadingOptions(
    policy
      .command('test')
      .description('scan an image and evaluate the policy: pass, warn or fail, with reasons and remedies')
      .argument('<image>', 'oci-archive:FILE[:TAG|:@N] | oci:DIR[:TAG|:@N] | docker-archive:FILE[:NAME:TAG|:TAG|:@N] | dir:PATH | HOST[:PORT]/REPO[:TAG|@DIGEST] | PATH')
      .option('--policy <file>', 'policy file (default: policy: in portcullis.yaml, else the built-in policy)')
      .option('--project <name>', 'project the image belongs to (default: the first segment of the repository)')
      .option('--repository <name>', 'repository the image belongs to, for exception scopes (default: from a registry reference)')
      .addOption(new Option('-f, --format <format>', 'output format').choices(['table', 'json']).default('table'))
      .option('-o, --output <file>', 'write the verdict to FILE instead of standard output')
      .option('--fail-on-warn', 'exit with 1 on a warn verdict too')
      .option('--platform <os/arch[/variant]>', 'platform to pick from a multi-arch image (default linux/amd64)')
      .option('--data <dir>', 'data folder with the vulnerability database (env PORTCULLIS_DATA; default ./data)'),
  )
    .option('--ignorefile <file>', 'ignore file applied before the policy (default ./.portcullisignore when present)')
    .option('--vex <file...>', 'OpenVEX documents; not_affected statements suppress findings before the policy')
    .option('--match-owned-language-packages', 'also match language packages an OS package installed against language advisories')
    .option('--secret-config <file>', 'extra secret rules and allowlists (default ./portcullis-secrets.yaml when present)')
    .action(async (image: string, flags: PolicyTestFlags) => {
      setExitCode(await testPolicy(image, flags));
    });
}
