import { mkdirSync, mkdtempSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { AnalyseError, OciError, PortcullisError } from '../errors.js';
import { formatPlatform, openImageSource, resolveImages, type ImageInput, type OpenSourceOptions, type PlatformWanted } from '../oci/index.js';
import type { LayerRef, Package } from '../sbom/model.js';
import { buildPurl } from '../sbom/purl.js';
import type { ScanResult } from '../sbom/result.js';
import { ALL_ANALYSERS } from './analysers/index.js';
import { LayerCache, analysersKey } from './cache.js';
import { walkDirectory } from './dir-walker.js';
import type { LayerFacts } from './dispatch.js';
import { DEFAULT_LIMITS, LimitTracker, type WalkLimits } from './limits.js';
import { reconcilePackages } from './reconcile.js';
import { squashLayers } from './squash.js';
import { walkTarLayer } from './tar-walker.js';
import type { Analyser, AnalyserContext } from './types.js';
import { MAX_SECRETS_PER_FILE, SECRET_MAX_FILE_BYTES, createSecretAnalyser } from './analysers/secrets.js';
import { defaultRuleSet, scanText, type FindingBound, type RuleSet } from '../secrets/engine.js';
import { checkImage } from '../misconfig/image.js';
import type { SecretFinding } from '../sbom/finding.js';
import type { ImageConfig } from '../oci/schemas.js';
import { comparePackages } from '../sbom/json.js';

export const GENERATOR_VERSION = '0.1.0';

export interface LayerProgress {
  start(index: number, label: string, totalBytes: number): void;
  advance(index: number, bytes: number): void;
  done(index: number, cached: boolean): void;
}

export interface AnalyseOptions extends OpenSourceOptions {
  /** Folder for the per-layer cache; null disables caching. */
  cacheDir: string | null;
  limits?: Partial<WalkLimits>;
  platform?: PlatformWanted;
  allPlatforms?: boolean;
  analysers?: readonly Analyser[];
  progress?: LayerProgress;
  /**
   * Where analysers may write scratch files (an rpmdb.sqlite must be a file to be opened). The
   * CLI puts it inside the cache folder so nothing from a layer lands anywhere else.
   */
  scratchRoot?: string;
  /** Search layers, config and history for secrets (with these rules, or the built-in ones). */
  secrets?: RuleSet | boolean;
  /** Run the image misconfiguration checks. */
  misconfig?: boolean;
  /** How many layers to read at once (decompression runs on libuv's pool). */
  concurrency?: number;
}

async function mapLimited<T, R>(items: T[], limit: number, fn: (item: T, i: number) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const workers = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i]!, i);
    }
  });
  await Promise.all(workers);
  return out;
}

function layerSecrets(squashed: ReturnType<typeof squashLayers>): SecretFinding[] {
  return squashed.secrets.map((s) => ({
    ruleId: s.secret.ruleId,
    title: s.secret.title,
    severity: s.secret.severity,
    location: 'file' as const,
    target: s.path,
    line: s.secret.line,
    layer: s.layer,
    redacted: s.secret.redacted,
    ...(s.deleted ? { deleted: true } : {}),
  }));
}

/**
 * Env, Labels, Cmd/Entrypoint and every history step are searched like files are, and bounded
 * like one file: at most SECRET_MAX_FILE_BYTES characters of them are searched (a string that
 * would go past that is not, and is counted), and the first MAX_SECRETS_PER_FILE findings are
 * kept, in that order, the rest counted. A config may be 4 MiB: 135,000 Env entries of key ids
 * gave as many findings, a 28 MB report and a 435 MB scan.
 */
function scanConfigForSecrets(config: ImageConfig, rules: RuleSet): { findings: SecretFinding[]; warnings: string[] } {
  const findings: SecretFinding[] = [];
  let more = 0;
  let searched = 0;
  let skipped = 0;
  let skippedChars = 0;
  const add = (text: string, location: 'config' | 'history', target: string) => {
    if (searched + text.length > SECRET_MAX_FILE_BYTES) {
      skipped++;
      skippedChars += text.length;
      return;
    }
    searched += text.length;
    const bound: FindingBound = { max: MAX_SECRETS_PER_FILE - findings.length, total: 0 };
    const kept = scanText(text, { path: '' }, rules, bound);
    more += bound.total - kept.length;
    for (const s of kept) {
      findings.push({ ruleId: s.ruleId, title: s.title, severity: s.severity, location, target, redacted: s.redacted });
    }
  };
  const c = config.config ?? {};
  (c.Env ?? []).forEach((e, i) => add(e, 'config', `Env[${i}]`));
  for (const [k, v] of Object.entries(c.Labels ?? {})) add(`${k}=${v}`, 'config', `Labels.${k}`);
  if (c.Entrypoint?.length) add(c.Entrypoint.join(' '), 'config', 'Entrypoint');
  if (c.Cmd?.length) add(c.Cmd.join(' '), 'config', 'Cmd');
  (config.history ?? []).forEach((h, i) => {
    if (h.created_by) add(h.created_by, 'history', `history[${i}].created_by`);
  });
  const warnings: string[] = [];
  if (more > 0) warnings.push(`image config: ${more} more secrets past the first ${MAX_SECRETS_PER_FILE} not reported`);
  if (skipped > 0) {
    warnings.push(`image config: searched for secrets up to ${SECRET_MAX_FILE_BYTES} characters; ${skipped} of its strings (${skippedChars} characters) were not searched`);
  }
  return { findings, warnings };
}

/** A package whose coordinates the purl spec rejects still gets an identifier: a generic purl. */
function safePurl(p: Parameters<typeof buildPurl>[0], os: Parameters<typeof buildPurl>[1]): string {
  try {
    return buildPurl(p, os);
  } catch {
    const name = encodeURIComponent(p.namespace ? `${p.namespace}/${p.name}` : p.name);
    return `pkg:generic/${name}@${encodeURIComponent(p.version)}?ecosystem=${p.type}`;
  }
}

function finishPackages(
  squashed: ReturnType<typeof squashLayers>,
): Package[] {
  const packages: Package[] = squashed.packages.map((p) => ({
    ...p,
    licenses: p.licenses ?? [],
    purl: safePurl(p, squashed.os),
  }));
  // The JSON format's order, which every writer uses too.
  return reconcilePackages(packages).sort(comparePackages);
}

/**
 * The per-scan scratch folder, made on first use: only the rpm sqlite reader ever writes there, so
 * most scans never create one (making and removing it cost 2-5 ms of a scan's wall time). It is a
 * fresh mode-0700 folder under `root`, so nothing from a layer lands anywhere else.
 */
class LazyScratch implements AnalyserContext {
  private dir: string | undefined;

  constructor(private readonly root: string) {}

  get scratchDir(): string {
    if (this.dir === undefined) {
      mkdirSync(this.root, { recursive: true, mode: 0o700 });
      this.dir = mkdtempSync(join(this.root, 'portcullis-scratch-'));
    }
    return this.dir;
  }

  /** Removes the folder, if it was ever made. */
  async dispose(): Promise<void> {
    if (this.dir !== undefined) await rm(this.dir, { recursive: true, force: true });
  }
}

/**
 * The scanner's one entry point: reads an image (or a root filesystem folder), analyses every
 * layer once (or takes it from the cache), squashes, and returns one result per platform.
 */
export async function analyseInput(input: ImageInput, options: AnalyseOptions): Promise<ScanResult[]> {
  const base = options.analysers ?? ALL_ANALYSERS;
  const secretRules = options.secrets === true ? defaultRuleSet() : options.secrets || undefined;
  const analysers = secretRules ? [...base, createSecretAnalyser(secretRules)] : base;
  const limits = new LimitTracker({ ...DEFAULT_LIMITS, ...options.limits });
  const ctx = new LazyScratch(options.scratchRoot ?? tmpdir());
  try {
    if (input.kind === 'dir') {
      const facts = await walkDirectory(input.path, { analysers, ctx, limits, subject: input.display });
      const ref: LayerRef = { index: 0, digest: '' };
      const squashed = squashLayers([{ ref, facts }]);
      return [
        {
          schemaVersion: 1,
          generator: { name: 'portcullis', version: GENERATOR_VERSION },
          scannedAt: new Date().toISOString(),
          image: { reference: input.display, manifestDigest: '', configDigest: '', layers: [ref] },
          os: squashed.os,
          packages: finishPackages(squashed),
          warnings: squashed.warnings,
          ...(secretRules ? { secrets: layerSecrets(squashed) } : {}),
        },
      ];
    }

    const source = await openImageSource(input, { ...options, maxArchiveBytes: limits.limits.maxTotalBytes });
    try {
      const images = await resolveImages(source, { platform: options.platform, allPlatforms: options.allPlatforms });
      const cache = options.cacheDir ? new LayerCache(options.cacheDir, analysersKey(analysers)) : undefined;
      const results: ScanResult[] = [];
      for (const image of images) {
        // Said only of the platforms whose own layers could not be cached.
        if (cache) cache.writeFailure = undefined;
        const refs: LayerRef[] = image.manifest.layers.map((l, index) => ({
          index,
          digest: l.digest,
          diffId: image.config.rootfs.diff_ids[index],
        }));
        const layerFacts = await mapLimited(image.manifest.layers, options.concurrency ?? 2, async (desc, index) => {
          const label = `layer ${index + 1}/${refs.length} ${desc.digest.slice(7, 19)}`;
          const cached = await cache?.get(desc.digest);
          if (cached) {
            limits.addCachedLayer(cached, `${source.display} layer ${index} (${desc.digest})`);
            options.progress?.done(index, true);
            return cached;
          }
          if (desc.urls?.length && desc.mediaType.includes('foreign')) {
            throw new OciError('LAYER_FOREIGN', `${source.display}: layer ${desc.digest} is a foreign layer served elsewhere; not supported`);
          }
          options.progress?.start(index, label, desc.size);
          const subject = `${source.display} layer ${index} (${desc.digest})`;
          const blob = await source.openBlob(desc);
          let facts: LayerFacts;
          try {
            facts = await walkTarLayer(blob, {
              analysers,
              ctx,
              limits,
              subject,
              onProgress: options.progress ? (n) => options.progress!.advance(index, n) : undefined,
            });
          } catch (err) {
            // Our own errors name what they are about; anything else (V8 running out of string
            // length, say) would reach the user as a bare message naming nothing.
            if (err instanceof PortcullisError) throw err;
            throw new AnalyseError('ANALYSIS_FAILED', `${subject}: ${err instanceof Error ? err.message : String(err)}`, { subject, cause: err });
          }
          options.progress?.done(index, false);
          await cache?.put(desc.digest, facts);
          return facts;
        });
        const squashed = squashLayers(refs.map((ref, i) => ({ ref, facts: layerFacts[i]! })));
        const cfg = image.config;
        const packages = finishPackages(squashed);
        const { findings: configSecrets, warnings: configWarnings } = secretRules ? scanConfigForSecrets(cfg, secretRules) : { findings: [], warnings: [] };
        const extra: Partial<ScanResult> = {};
        if (secretRules) extra.secrets = [...layerSecrets(squashed), ...configSecrets];
        if (options.misconfig) {
          extra.misconfigurations = checkImage({ config: cfg, packages, attributes: squashed.attributes, configSecrets });
        }
        results.push({
          schemaVersion: 1,
          generator: { name: 'portcullis', version: GENERATOR_VERSION },
          scannedAt: new Date().toISOString(),
          image: {
            reference: images.length > 1 && image.platform ? `${input.display} (${formatPlatform(image.platform)})` : input.display,
            manifestDigest: image.manifestDigest,
            configDigest: image.configDigest,
            platform: image.platform,
            layers: refs,
            created: cfg.created,
            ...(cfg.config?.Labels ? { labels: { ...cfg.config.Labels } } : {}),
            ...(image.manifest.annotations ? { annotations: { ...image.manifest.annotations } } : {}),
          },
          os: squashed.os,
          packages,
          warnings: [...(image.warnings ?? []), ...squashed.warnings, ...configWarnings, ...(cache?.writeFailure ? [cache.writeFailure] : [])],
          ...extra,
        });
      }
      return results;
    } finally {
      await source.close();
    }
  } finally {
    await ctx.dispose();
  }
}
