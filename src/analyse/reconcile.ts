import type { Package } from '../sbom/model.js';

/**
 * Post-squash clean-up of language packages. npm lockfile entries and installed package.json files
 * both carry `properties.installPath`; where they meet, the installed package is what actually runs,
 * so it wins. The lockfile still contributes its `dev` flag (package.json cannot know it) and its path.
 * Exact duplicates (same identity and same paths) are then dropped. Inputs are never mutated.
 */
export function reconcilePackages(packages: Package[]): Package[] {
  const installedAt = new Map<string, number>();
  packages.forEach((p, i) => {
    const at = p.properties?.['installPath'];
    if (p.type === 'npm' && at !== undefined && isInstalledManifest(p)) installedAt.set(at, i);
  });

  const merged = packages.slice();
  const dropped = new Set<number>();
  packages.forEach((p, i) => {
    const at = p.properties?.['installPath'];
    if (p.type !== 'npm' || at === undefined || isInstalledManifest(p)) return;
    const target = installedAt.get(at);
    if (target === undefined) return;
    const installed = merged[target] as Package;
    merged[target] = {
      ...installed,
      ...(p.dev !== undefined ? { dev: p.dev } : {}),
      paths: [...installed.paths, ...p.paths.filter((x) => !installed.paths.includes(x))],
    };
    dropped.add(i);
  });

  const seen = new Set<string>();
  return merged.filter((p, i) => {
    if (dropped.has(i)) return false;
    const key = JSON.stringify([p.type, p.namespace ?? '', p.name, p.version, p.paths]);
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}

function isInstalledManifest(p: Package): boolean {
  const first = p.paths[0];
  return first !== undefined && (first === 'package.json' || first.endsWith('/package.json'));
}
