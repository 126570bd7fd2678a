/**
 * Portcullis's own JSON format: the ScanResult, written with a fixed key order so that two scans
 * of the same image differ only where the results do. docs/json-format.md describes the fields.
 *
 * Key order (absent optional fields are left out, never written as null):
 * - top level: schemaVersion, generator, scannedAt, image, os, packages, vulnerabilities,
 *   suppressed, secrets, misconfigurations, warnings (vulnerabilities and suppressed only when
 *   the scan was matched; secrets and misconfigurations only when those checks ran)
 * - generator: name, version
 * - image: reference, manifestDigest, configDigest, platform, repoTags, created, layers
 * - image.platform: os, architecture, variant
 * - layer (image.layers[] and package.layer): index, digest, diffId
 * - os: family, version, name, codename (or null)
 * - package: type, namespace, name, version, purl, arch, epoch, sourceName, sourceVersion,
 *   licenses, dev, layer, paths, foundBy, ownedBy, properties (properties' keys sorted)
 * - finding (vulnerabilities[] and suppressed[].finding): id, aliases, severity, score,
 *   cvssVector, severitySource, summary, package, ecosystem, matchedName, installedVersion,
 *   fixedVersions, published, modified, references
 * - finding.package: type, namespace, name, version, purl, sourceName, layer, paths
 * - suppressed entry: finding, reason, source
 * - secret: ruleId, title, severity, location, target, line, layer, deleted, redacted
 * - misconfiguration: id, title, severity, target, line, message, remedy, cis, pss
 * Packages are sorted by type, name (with namespace), version, purl, then first path;
 * layers by index; findings (and suppressed entries, by their finding) in package order, then
 * by id; secrets by location (file, config, history), target, line, layer, rule id, redacted
 * value; misconfigurations by target, line, id, message. Fields not listed above are not written.
 */
import type { Finding, Misconfiguration, SecretFinding } from './finding.js';
import type { LayerRef, OsInfo, Package } from './model.js';
import { packageDisplayName } from './purl.js';
import type { ScanResult } from './result.js';
import { byCodeUnits as cmp } from '../text-order.js';

type Json = string | number | boolean | null | Json[] | { [key: string]: Json };

/** Builds an object from entries in the given order, skipping undefined values. */
function ordered(entries: [string, Json | undefined][]): { [key: string]: Json } {
  const out: { [key: string]: Json } = {};
  for (const [key, value] of entries) if (value !== undefined) out[key] = value;
  return out;
}

function layerJson(layer: LayerRef): Json {
  return ordered([
    ['index', layer.index],
    ['digest', layer.digest],
    ['diffId', layer.diffId],
  ]);
}

function osJson(os: OsInfo | null): Json {
  if (!os) return null;
  return ordered([
    ['family', os.family],
    ['version', os.version],
    ['name', os.name],
    ['codename', os.codename],
  ]);
}

function packageJson(pkg: Package): Json {
  const properties = pkg.properties
    ? ordered(
        Object.keys(pkg.properties)
          .sort(cmp)
          .map((k): [string, Json | undefined] => [k, pkg.properties?.[k]]),
      )
    : undefined;
  return ordered([
    ['type', pkg.type],
    ['namespace', pkg.namespace],
    ['name', pkg.name],
    ['version', pkg.version],
    ['purl', pkg.purl],
    ['arch', pkg.arch],
    ['epoch', pkg.epoch],
    ['sourceName', pkg.sourceName],
    ['sourceVersion', pkg.sourceVersion],
    ['licenses', [...pkg.licenses]],
    ['dev', pkg.dev],
    ['layer', layerJson(pkg.layer)],
    ['paths', [...pkg.paths]],
    ['foundBy', pkg.foundBy],
    [
      'ownedBy',
      pkg.ownedBy
        ? ordered([
            ['type', pkg.ownedBy.type],
            ['name', pkg.ownedBy.name],
          ])
        : undefined,
    ],
    ['properties', properties],
  ]);
}

/** The order packages are listed in by every human- and machine-facing writer. */
export function comparePackages(a: Package, b: Package): number {
  return (
    cmp(a.type, b.type) ||
    cmp(packageDisplayName(a), packageDisplayName(b)) ||
    cmp(a.version, b.version) ||
    cmp(a.purl, b.purl) ||
    cmp(a.paths[0] ?? '', b.paths[0] ?? '')
  );
}

function findingJson(finding: Finding): Json {
  const p = finding.package;
  return ordered([
    ['id', finding.id],
    ['aliases', [...finding.aliases]],
    ['severity', finding.severity],
    ['score', finding.score],
    ['cvssVector', finding.cvssVector],
    ['severitySource', finding.severitySource],
    ['summary', finding.summary],
    [
      'package',
      ordered([
        ['type', p.type],
        ['namespace', p.namespace],
        ['name', p.name],
        ['version', p.version],
        ['purl', p.purl],
        ['sourceName', p.sourceName],
        ['layer', layerJson(p.layer)],
        ['paths', [...p.paths]],
      ]),
    ],
    ['ecosystem', finding.ecosystem],
    ['matchedName', finding.matchedName],
    ['installedVersion', finding.installedVersion],
    ['fixedVersions', [...finding.fixedVersions]],
    ['published', finding.published],
    ['modified', finding.modified],
    ['references', [...finding.references]],
  ]);
}

/**
 * The order findings are listed in by the JSON, CycloneDX and SARIF writers: by package (as
 * `comparePackages` orders packages), then by id. The table orders by severity instead.
 */
export function compareFindings(a: Finding, b: Finding): number {
  const pa = a.package;
  const pb = b.package;
  return (
    cmp(pa.type, pb.type) ||
    cmp(packageDisplayName(pa), packageDisplayName(pb)) ||
    cmp(pa.version, pb.version) ||
    cmp(pa.purl, pb.purl) ||
    cmp(pa.paths[0] ?? '', pb.paths[0] ?? '') ||
    pa.layer.index - pb.layer.index ||
    cmp(a.id, b.id)
  );
}

const SECRET_LOCATION_ORDER: Record<SecretFinding['location'], number> = { file: 0, config: 1, history: 2 };

/**
 * The order secrets are listed in by the JSON and SARIF writers: file findings first, then the
 * config and the history; within those by target, line, layer, rule id and redacted value.
 */
export function compareSecrets(a: SecretFinding, b: SecretFinding): number {
  return (
    SECRET_LOCATION_ORDER[a.location] - SECRET_LOCATION_ORDER[b.location] ||
    cmp(a.target, b.target) ||
    (a.line ?? 0) - (b.line ?? 0) ||
    (a.layer?.index ?? -1) - (b.layer?.index ?? -1) ||
    cmp(a.ruleId, b.ruleId) ||
    cmp(a.redacted, b.redacted) ||
    Number(a.deleted === true) - Number(b.deleted === true)
  );
}

/** The order misconfigurations are listed in by the JSON and SARIF writers: target, line, id, message. */
export function compareMisconfigurations(a: Misconfiguration, b: Misconfiguration): number {
  return (
    cmp(a.target, b.target) || (a.line ?? 0) - (b.line ?? 0) || cmp(a.id, b.id) || cmp(a.message, b.message)
  );
}

function secretJson(s: SecretFinding): Json {
  return ordered([
    ['ruleId', s.ruleId],
    ['title', s.title],
    ['severity', s.severity],
    ['location', s.location],
    ['target', s.target],
    ['line', s.line],
    ['layer', s.layer ? layerJson(s.layer) : undefined],
    ['deleted', s.deleted === true ? true : undefined],
    ['redacted', s.redacted],
  ]);
}

function misconfigurationJson(m: Misconfiguration): Json {
  return ordered([
    ['id', m.id],
    ['title', m.title],
    ['severity', m.severity],
    ['target', m.target],
    ['line', m.line],
    ['message', m.message],
    ['remedy', m.remedy],
    ['cis', m.cis],
    ['pss', m.pss],
  ]);
}

/** The ScanResult as ordered plain data (what `toJson` prints). */
export function toJsonValue(result: ScanResult): Json {
  const { image } = result;
  return ordered([
    ['schemaVersion', result.schemaVersion],
    [
      'generator',
      ordered([
        ['name', result.generator.name],
        ['version', result.generator.version],
      ]),
    ],
    ['scannedAt', result.scannedAt],
    [
      'image',
      ordered([
        ['reference', image.reference],
        ['manifestDigest', image.manifestDigest],
        ['configDigest', image.configDigest],
        [
          'platform',
          image.platform
            ? ordered([
                ['os', image.platform.os],
                ['architecture', image.platform.architecture],
                ['variant', image.platform.variant],
              ])
            : undefined,
        ],
        ['repoTags', image.repoTags ? [...image.repoTags] : undefined],
        ['created', image.created],
        ['layers', [...image.layers].sort((a, b) => a.index - b.index).map(layerJson)],
      ]),
    ],
    ['os', osJson(result.os)],
    ['packages', [...result.packages].sort(comparePackages).map(packageJson)],
    [
      'vulnerabilities',
      result.vulnerabilities ? [...result.vulnerabilities].sort(compareFindings).map(findingJson) : undefined,
    ],
    [
      'suppressed',
      result.suppressed
        ? [...result.suppressed]
            .sort((a, b) => compareFindings(a.finding, b.finding) || cmp(a.source, b.source))
            .map((s) =>
              ordered([
                ['finding', findingJson(s.finding)],
                ['reason', s.reason],
                ['source', s.source],
              ]),
            )
        : undefined,
    ],
    ['secrets', result.secrets ? [...result.secrets].sort(compareSecrets).map(secretJson) : undefined],
    [
      'misconfigurations',
      result.misconfigurations
        ? [...result.misconfigurations].sort(compareMisconfigurations).map(misconfigurationJson)
        : undefined,
    ],
    ['warnings', [...result.warnings]],
  ]);
}

/** The ScanResult as JSON text: fixed key order, 2-space indent, no trailing newline. */
export function toJson(result: ScanResult): string {
  return JSON.stringify(toJsonValue(result), null, 2);
}
