import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { ScanResult } from '../sbom/result.js';
import { PURL_TYPE_ECOSYSTEM } from './ecosystems.js';

/**
 * Remembers which OSV ecosystems scans in this data folder needed, so a plain `db update`
 * downloads just those (Trivy-sized downloads for an Alpine shop are wasteful).
 */
function seenFile(dataDir: string): string {
  return join(dataDir, 'vulndb', 'ecosystems-seen.json');
}

export function readSeenEcosystems(dataDir: string): string[] {
  try {
    const parsed = JSON.parse(readFileSync(seenFile(dataDir), 'utf8')) as unknown;
    return Array.isArray(parsed) ? parsed.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}

export function recordSeenEcosystems(dataDir: string, results: ScanResult[]): void {
  const osList = results.flatMap((r) => (r.os ? [r.os] : []));
  const types = [...new Set(results.flatMap((r) => r.packages.map((p) => p.type)))];
  const seen = new Set(readSeenEcosystems(dataDir));
  const before = seen.size;
  for (const e of ecosystemsForScan(osList, types)) seen.add(e);
  if (seen.size === before) return;
  const file = seenFile(dataDir);
  mkdirSync(join(dataDir, 'vulndb'), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  writeFileSync(tmp, JSON.stringify([...seen].sort()));
  renameSync(tmp, file);
}

/** Every ecosystem osv.dev publishes that Portcullis can match; `--ecosystem all`. */
export const ALL_ECOSYSTEMS = [
  'AlmaLinux',
  'Alpine',
  'Chainguard',
  'Debian',
  'Go',
  'Maven',
  'NuGet',
  'Packagist',
  'PyPI',
  'Red Hat',
  'Rocky Linux',
  'RubyGems',
  'Ubuntu',
  'Wolfi',
  'crates.io',
  'npm',
];

/** What a first `db update` fetches when no scan has run yet. */
export const DEFAULT_ECOSYSTEMS = ['Alpine', 'Debian', 'Ubuntu', 'npm', 'PyPI', 'Go', 'Maven'];

/**
 * What `db update` fetches: the ecosystems asked for (`all` for every one), else those the scans
 * and stored images of this data folder needed, else the common defaults.
 */
export function ecosystemsToUpdate(dataDir: string, requested?: string[]): string[] {
  const wanted = requested ?? readSeenEcosystems(dataDir);
  if (wanted.includes('all')) return ALL_ECOSYSTEMS;
  return wanted.length > 0 ? wanted : DEFAULT_ECOSYSTEMS;
}

const OS_ECOSYSTEMS: Record<string, string> = {
  alpine: 'Alpine',
  debian: 'Debian',
  ubuntu: 'Ubuntu',
  rhel: 'Red Hat',
  redhat: 'Red Hat',
  rocky: 'Rocky Linux',
  almalinux: 'AlmaLinux',
  wolfi: 'Wolfi',
  chainguard: 'Chainguard',
  opensuse: 'openSUSE',
  'opensuse-leap': 'openSUSE',
  sles: 'SUSE',
  photon: 'Photon OS',
  mageia: 'Mageia',
};

/**
 * OSV bucket ecosystems a scan needs: one per detected OS family and per language package type
 * (purl type). Unknown families or types have no OSV data and are left out.
 */
export function ecosystemsForScan(
  osList: Array<{ family: string; version?: string }>,
  languageTypes: string[],
): string[] {
  const out = new Set<string>();
  for (const os of osList) {
    const eco = OS_ECOSYSTEMS[os.family.toLowerCase()];
    if (eco !== undefined) out.add(eco);
  }
  for (const type of languageTypes) {
    const eco = PURL_TYPE_ECOSYSTEM[type.toLowerCase()];
    if (eco !== undefined) out.add(eco);
  }
  return [...out];
}
