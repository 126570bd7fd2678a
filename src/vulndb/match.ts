import type { Finding, Severity } from '../sbom/finding.js';
import { OS_PACKAGE_TYPES, type OsInfo, type Package } from '../sbom/model.js';
import { PURL_TYPE_ECOSYSTEM } from './ecosystems.js';
import { severityFromVectors, severityFromWord } from './severity.js';
import type { StoredAffected, StoredRange, StoredRecord, StoredSeverity } from './store.js';
import { compareSemverRangeVersions, orderingFor, type Compare } from './versions/index.js';
import { byCodeUnits } from '../text-order.js';

/** What the matcher needs from a database; the SQLite AdvisoryStore is one. */
export interface AdvisorySource {
  advisoriesFor(ecosystem: string, name: string): StoredAffected[];
  cveSeverity(cveId: string): StoredSeverity[] | undefined;
  ecosystems(): string[];
}

export interface MatchOptions {
  /**
   * Also match language packages that an OS package installed against the language ecosystem.
   * Off by default: the distro's advisory for its own package is the truth (backported fixes).
   */
  matchOwnedLanguagePackages?: boolean;
}

export interface MatchResult {
  findings: Finding[];
  warnings: string[];
}

/** The OSV ecosystem of a distro release, e.g. debian 12.15 → Debian:12, alpine 3.20.3 → Alpine:v3.20. */
export function osEcosystem(os: OsInfo | null): string | undefined {
  if (!os) return undefined;
  const [major = '', minor] = os.version.split('.');
  switch (os.family) {
    case 'alpine':
      return minor === undefined ? undefined : `Alpine:v${major}.${minor}`;
    case 'debian':
      return major ? `Debian:${major}` : undefined;
    case 'ubuntu':
      return os.version ? `Ubuntu:${os.version}` : undefined;
    case 'rocky':
      return major ? `Rocky Linux:${major}` : undefined;
    case 'almalinux':
      return major ? `AlmaLinux:${major}` : undefined;
    case 'wolfi':
      return 'Wolfi';
    case 'chainguard':
      return 'Chainguard';
    default:
      return undefined;
  }
}

interface Query {
  ecosystems: string[];
  name: string;
  version: string;
}

function normalisePypi(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

/** What to look up for one package: which ecosystems, under which name and version. */
function queryFor(pkg: Package, osEcosystems: string[]): Query | undefined {
  switch (pkg.type) {
    case 'deb':
      // Debian publishes advisories per source package, at the source version.
      return { ecosystems: osEcosystems, name: pkg.sourceName ?? pkg.name, version: pkg.sourceVersion ?? pkg.version };
    case 'apk':
      return { ecosystems: osEcosystems, name: pkg.sourceName ?? pkg.name, version: pkg.version };
    case 'rpm':
      return { ecosystems: osEcosystems, name: pkg.name, version: pkg.epoch ? `${pkg.epoch}:${pkg.version}` : pkg.version };
    default: {
      const eco = PURL_TYPE_ECOSYSTEM[pkg.type];
      if (!eco) return undefined;
      if (pkg.type === 'golang' && pkg.properties?.mainModule === 'true' && pkg.version === '(devel)') return undefined;
      let name = pkg.namespace ? `${pkg.namespace}/${pkg.name}` : pkg.name;
      if (pkg.type === 'maven') name = `${pkg.namespace ?? pkg.name}:${pkg.name}`;
      if (pkg.type === 'pypi') name = normalisePypi(name);
      return { ecosystems: [eco], name, version: pkg.version };
    }
  }
}

interface RangeVerdict {
  affected: boolean;
  /** The nearest fix above the installed version in an affecting range. */
  fixed?: string;
}

/** OSV's evaluation: walk the events in version order; the last one at or below the version decides. */
const preparedRanges = new WeakMap<StoredRange, { sorted: StoredRange['events']; limits: string[] }>();

/** Sorting a range's events is the costly part of evaluating it; ranges are immutable, so once. */
function prepareRange(range: StoredRange, compare: Compare): { sorted: StoredRange['events']; limits: string[] } {
  let p = preparedRanges.get(range);
  if (p) return p;
  const at = (e: { introduced?: string; fixed?: string; last_affected?: string; limit?: string }) =>
    e.introduced ?? e.fixed ?? e.last_affected ?? e.limit ?? '0';
  const events = range.events.filter((e) => e.limit === undefined);
  const limits = range.events.map((e) => e.limit).filter((l): l is string => l !== undefined && l !== '*');
  const sorted = [...events].sort((a, b) => {
    const va = at(a);
    const vb = at(b);
    if (va === '0') return vb === '0' ? 0 : -1;
    if (vb === '0') return 1;
    return compare(va, vb);
  });
  p = { sorted, limits };
  preparedRanges.set(range, p);
  return p;
}

export function evaluateRange(version: string, range: StoredRange, compare: Compare): RangeVerdict {
  const { sorted, limits } = prepareRange(range, compare);
  let affected = false;
  let fixed: string | undefined;
  for (const e of sorted) {
    if (e.introduced !== undefined) {
      if (e.introduced === '0' || compare(version, e.introduced) >= 0) affected = true;
    } else if (e.fixed !== undefined) {
      if (compare(version, e.fixed) >= 0) affected = false;
      else if (affected && fixed === undefined) fixed = e.fixed;
    } else if (e.last_affected !== undefined) {
      if (compare(version, e.last_affected) > 0) affected = false;
    }
  }
  if (affected && limits.length && !limits.some((l) => compare(version, l) < 0)) affected = false;
  return affected ? { affected, fixed } : { affected: false };
}

/** Does this affected entry cover the version? Ranges need an ordering; `versions` lists need none. */
export function affects(
  version: string,
  affected: Pick<StoredAffected, 'ranges' | 'versions'>,
  ecosystem: string,
  warn: (msg: string) => void,
): RangeVerdict {
  const fixes: string[] = [];
  let hit = affected.versions.includes(version);
  for (const range of affected.ranges) {
    const compare = range.type === 'SEMVER' ? compareSemverRangeVersions : orderingFor(ecosystem);
    if (!compare) continue;
    try {
      const v = evaluateRange(version, range, compare);
      if (v.affected) {
        hit = true;
        if (v.fixed) fixes.push(v.fixed);
      }
    } catch (err) {
      warn(`cannot compare version "${version}" in ${ecosystem}: ${(err as Error).message}`);
    }
  }
  return hit ? { affected: true, fixed: fixes[0] } : { affected: false };
}

class UnionFind {
  private parent = new Map<string, string>();
  find(x: string): string {
    let p = this.parent.get(x) ?? x;
    if (p !== x) {
      p = this.find(p);
      this.parent.set(x, p);
    }
    return p;
  }
  union(a: string, b: string): void {
    const ra = this.find(a);
    const rb = this.find(b);
    if (ra !== rb) this.parent.set(rb, ra);
  }
}

function resolveSeverity(
  records: StoredRecord[],
  affectedSeverities: StoredSeverity[],
  source: AdvisorySource,
): Pick<Finding, 'severity' | 'score' | 'cvssVector' | 'severitySource'> {
  for (const r of records) {
    const s = severityFromVectors([...r.severity, ...affectedSeverities]);
    if (s) return { severity: s.severity, score: s.score, cvssVector: s.vector, severitySource: 'record' };
  }
  for (const r of records) {
    const word = severityFromWord(r.databaseSeverity);
    if (word) return { severity: word, severitySource: 'database' };
  }
  const cves = new Set<string>();
  for (const r of records) for (const id of [...r.upstream, ...r.aliases, r.id]) if (id.startsWith('CVE-')) cves.add(id);
  for (const cve of [...cves].sort()) {
    const known = source.cveSeverity(cve);
    if (!known) continue;
    const s = severityFromVectors(known);
    if (s) return { severity: s.severity, score: s.score, cvssVector: s.vector, severitySource: 'upstream-cve' };
    const word = severityFromWord(known.find((x) => !x.type.startsWith('CVSS'))?.score);
    if (word) return { severity: word, severitySource: 'upstream-cve' };
  }
  return { severity: 'unknown' as Severity };
}

interface Matched {
  affected: StoredAffected;
  fixed?: string;
  ecosystem: string;
}

/**
 * Results that depend only on the database, kept per database object across calls: a registry
 * matching thousands of images sees the same (ecosystem, name, version) many times. A database
 * update opens a new store object, which starts with an empty cache.
 */
type FindingTemplate = Omit<Finding, 'package'>;

interface MatchCache {
  lookups: Map<string, StoredAffected[]>;
  verdicts: Map<string, FindingTemplate[]>;
  severities: Map<string, ReturnType<typeof resolveSeverity>>;
  cves: Map<string, StoredSeverity[] | undefined>;
  ecosystems?: string[];
  /** The database with CVE severity lookups cached. */
  source?: AdvisorySource;
}
const caches = new WeakMap<AdvisorySource, MatchCache>();

function cacheFor(source: AdvisorySource): MatchCache {
  let c = caches.get(source);
  if (!c) {
    c = { lookups: new Map(), verdicts: new Map(), severities: new Map(), cves: new Map() };
    caches.set(source, c);
  }
  return c;
}

/** Merges aliasing records into one finding each; computed once per (ecosystem, name, version). */
function buildTemplates(matched: Matched[], q: Query, cache: MatchCache, source: AdvisorySource): FindingTemplate[] {
  if (matched.length === 0) return [];
  const uf = new UnionFind();
  for (const m of matched) {
    const r = m.affected.record;
    for (const alias of r.aliases) uf.union(r.id, alias);
    if (r.upstream.length === 1) uf.union(r.id, r.upstream[0]!);
  }
  const groups = new Map<string, Matched[]>();
  for (const m of matched) {
    const root = uf.find(m.affected.record.id);
    const g = groups.get(root);
    if (g) g.push(m);
    else groups.set(root, [m]);
  }
  const out: FindingTemplate[] = [];
  for (const group of groups.values()) {
    group.sort((a, b) => byCodeUnits(a.affected.record.id, b.affected.record.id));
    const records = group.map((g) => g.affected.record);
    const ids = new Set<string>();
    for (const r of records) for (const id of [r.id, ...r.aliases, ...r.upstream]) ids.add(id);
    const primary = records[0]!;
    ids.delete(primary.id);
    const compare = orderingFor(group[0]!.ecosystem);
    const fixes = [...new Set(group.map((g) => g.fixed).filter((f): f is string => !!f))];
    if (compare) {
      fixes.sort((a, b) => {
        try {
          return compare(a, b);
        } catch {
          return byCodeUnits(a, b);
        }
      });
    }
    const sevKey = records.map((r) => r.id).join('\u0000');
    let severity = cache.severities.get(sevKey);
    if (!severity) {
      severity = resolveSeverity(records, group.flatMap((g) => g.affected.severity ?? []), source);
      cache.severities.set(sevKey, severity);
    }
    out.push({
      id: primary.id,
      aliases: [...ids].sort(),
      ecosystem: group[0]!.ecosystem,
      matchedName: q.name,
      installedVersion: q.version,
      fixedVersions: fixes,
      ...severity,
      summary: records.find((r) => r.summary)?.summary,
      published: primary.published,
      modified: records.map((r) => r.modified).sort().at(-1),
      references: [...new Set(records.flatMap((r) => r.references))],
    });
  }
  return out;
}

/** Every finding of one (ecosystems, name, version) query, computed once per database object. */
function templatesFor(source: AdvisorySource, cache: MatchCache, q: Query, warn: (m: string) => void): FindingTemplate[] {
  const verdictKey = `${q.ecosystems.join('|')}\u0000${q.name}\u0000${q.version}`;
  const cached = cache.verdicts.get(verdictKey);
  if (cached) return cached;
  cache.source ??= {
    advisoriesFor: (e, n) => source.advisoriesFor(e, n),
    ecosystems: () => (cache.ecosystems ??= source.ecosystems()),
    cveSeverity: (id) => {
      if (cache.cves.has(id)) return cache.cves.get(id);
      const v = source.cveSeverity(id);
      cache.cves.set(id, v);
      return v;
    },
  };
  const matched: Matched[] = [];
  for (const eco of q.ecosystems) {
    const lookupKey = `${eco}\u0000${q.name}`;
    let entries = cache.lookups.get(lookupKey);
    if (!entries) {
      entries = source.advisoriesFor(eco, q.name);
      cache.lookups.set(lookupKey, entries);
    }
    for (const a of entries) {
      // Ranges first: the record (and its withdrawn flag) is only read for entries that match.
      const v = affects(q.version, a, eco, warn);
      if (v.affected && !a.record.withdrawn) matched.push({ affected: a, fixed: v.fixed, ecosystem: eco });
    }
  }
  const templates = buildTemplates(matched, q, cache, cache.source);
  cache.verdicts.set(verdictKey, templates);
  return templates;
}

/** A finding without the package instance: what every package with the same match key shares. */
export type KeyFinding = Readonly<FindingTemplate>;

/**
 * What a package is looked up by, independent of the database: packages with equal keys have the
 * same findings. The registry stores each image's keys, so a database update re-matches keys, not
 * images. OS packages carry their release's ecosystem (`Debian:12`), which matches that ecosystem
 * and its sub-ecosystems present in the database, exactly as `matchPackages` does.
 */
export interface MatchKey {
  ecosystem: string;
  os: boolean;
  name: string;
  version: string;
}

export function matchKeyOf(pkg: Package, os: OsInfo | null, options: MatchOptions = {}): MatchKey | undefined {
  if (pkg.ownedBy && !options.matchOwnedLanguagePackages) return undefined;
  const isOs = OS_PACKAGE_TYPES.has(pkg.type);
  const ecosystem = isOs ? osEcosystem(os) : PURL_TYPE_ECOSYSTEM[pkg.type];
  if (ecosystem === undefined) return undefined;
  const q = queryFor(pkg, [ecosystem]);
  return q ? { ecosystem, os: isOs, name: q.name, version: q.version } : undefined;
}

/** The findings of every package with this key (`matchPackages` gives each of them these). */
export function findingsForKey(source: AdvisorySource, key: MatchKey): readonly KeyFinding[] {
  const cache = cacheFor(source);
  const known = (cache.ecosystems ??= source.ecosystems());
  const ecosystems = key.os ? known.filter((e) => e === key.ecosystem || e.startsWith(`${key.ecosystem}:`)) : [key.ecosystem];
  return templatesFor(source, cache, { ecosystems, name: key.name, version: key.version }, () => {});
}

/**
 * Matches every package against the database. OS packages are matched only against their own
 * release's advisories (vendor first), never against upstream ranges for the same name. Ids that
 * alias each other within one package become one finding listing them all.
 */
export function matchPackages(source: AdvisorySource, os: OsInfo | null, packages: Package[], options: MatchOptions = {}): MatchResult {
  const warnings = new Set<string>();
  const warn = (m: string) => warnings.add(m);
  const cache = cacheFor(source);
  // The ecosystem list is a query; like every other database-only answer it is asked once.
  const known = (cache.ecosystems ??= source.ecosystems());
  const osEco = osEcosystem(os);
  const osEcosystems = osEco ? known.filter((e) => e === osEco || e.startsWith(`${osEco}:`)) : [];
  if (os && packages.some((p) => p.type === 'deb' || p.type === 'apk' || p.type === 'rpm')) {
    if (!osEco) warn(`${os.name ?? os.family} ${os.version}: no vulnerability data source is known for this distribution; OS packages were not checked`);
    else if (osEcosystems.length === 0) {
      warn(`${osEco} is not in the vulnerability database; OS packages were not checked (run: portcullis db update --ecosystem ${osEco.split(':')[0]})`);
    }
  }
  const findings: Finding[] = [];
  for (const pkg of packages) {
    if (pkg.ownedBy && !options.matchOwnedLanguagePackages) continue;
    const q = queryFor(pkg, osEcosystems);
    if (!q) continue;
    const templates = templatesFor(source, cache, q, warn);
    if (templates.length === 0) continue;
    // Everything but the package is shared by every instance of the same (name, version), and
    // one package object serves all of that instance's findings.
    const where: Finding['package'] = {
      type: pkg.type,
      namespace: pkg.namespace,
      name: pkg.name,
      version: pkg.version,
      purl: pkg.purl,
      sourceName: pkg.sourceName,
      layer: pkg.layer,
      paths: pkg.paths,
    };
    for (const t of templates) {
      // An explicit literal, not a spread: V8 builds it with a fixed shape, which matters at
      // hundreds of thousands of findings.
      findings.push({
        id: t.id,
        aliases: t.aliases,
        ecosystem: t.ecosystem,
        matchedName: t.matchedName,
        installedVersion: t.installedVersion,
        fixedVersions: t.fixedVersions,
        severity: t.severity,
        score: t.score,
        cvssVector: t.cvssVector,
        severitySource: t.severitySource,
        summary: t.summary,
        published: t.published,
        modified: t.modified,
        references: t.references,
        package: where,
      });
    }
  }
  return { findings, warnings: [...warnings] };
}
