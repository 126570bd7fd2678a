import type { LayerRef, OsInfo, Package, PackageRecord } from '../sbom/model.js';
import { OS_PACKAGE_TYPES } from '../sbom/model.js';
import type { AnalysedFile, LayerFacts } from './dispatch.js';
import { dirName, type FileAttribute, type FileFacts, type OwnedFiles } from './types.js';

interface PathVersion {
  layer: number;
  files: AnalysedFile[];
}

export interface SquashedPackage extends PackageRecord {
  paths: string[];
  layer: LayerRef;
  foundBy: string;
  ownedBy?: Package['ownedBy'];
}

export interface LayerSecret {
  path: string;
  layer: LayerRef;
  /** Removed or replaced by a later layer: not in the container's filesystem, still in the image. */
  deleted: boolean;
  secret: NonNullable<FileFacts['secrets']>[number];
}

export interface SquashResult {
  os: OsInfo | null;
  packages: SquashedPackage[];
  warnings: string[];
  /** Secrets from every layer, not only the final filesystem. */
  secrets: LayerSecret[];
  /** Risky attributes of files present in the final filesystem. */
  attributes: Array<{ path: string; attribute: FileAttribute }>;
}

function identity(p: PackageRecord): string {
  return `${p.type}\u0000${p.namespace ?? ''}\u0000${p.name}\u0000${p.version}`;
}

function deletePrefix(live: Map<string, PathVersion[]>, prefix: string): void {
  if (prefix === '') {
    live.clear();
    return;
  }
  live.delete(prefix);
  deleteBelow(live, prefix);
}

function deleteBelow(live: Map<string, PathVersion[]>, dir: string): void {
  const under = `${dir}/`;
  for (const key of live.keys()) if (key.startsWith(under)) live.delete(key);
}

/** Bits of `interest`: a path that says something in some layer, and a folder above such a path. */
const COUNTED = 1;
const ABOVE = 2;

// Which file wins when several describe the OS: the distro's own release files are more precise.
const OS_PRIORITY = [
  'etc/os-release',
  'usr/lib/os-release',
  'etc/alpine-release',
  'etc/debian_version',
  'etc/redhat-release',
  'etc/rocky-release',
  'etc/almalinux-release',
  'etc/centos-release',
  'etc/fedora-release',
];

function mergeOs(found: Map<string, OsInfo>): OsInfo | null {
  let os: OsInfo | null = null;
  for (const path of OS_PRIORITY) {
    const o = found.get(path);
    if (!o) continue;
    if (!os) os = { ...o };
    else if (o.family === os.family && o.version && (!os.version || o.version.startsWith(os.version))) {
      os.version = o.version; // "12" from os-release refined to "12.15" by debian_version
    }
  }
  return os;
}

/** Whether a file's facts feed the squashed result (secrets are gathered per layer, before). */
function saysSomething(file: AnalysedFile): boolean {
  const f = file.facts;
  return !!(f.packages?.length || f.os || f.owned?.length || f.licenses?.length || f.attributes?.length || f.warnings?.length);
}

/**
 * Applies layers in order as a container runtime would: whiteouts and opaque folders hide what
 * lower layers had; any entry in an upper layer replaces the same path below, whatever its type
 * (a folder over a folder merges with it), and a non-folder also replaces everything below its
 * path. What remains is the final filesystem's facts. A package is attributed to the lowest layer
 * from which it was continuously present at the same path, so a base image's packages stay with
 * the base layer even when a later layer rewrites the package database.
 */
export function squashLayers(layers: Array<{ ref: LayerRef; facts: LayerFacts }>): SquashResult {
  // Most files an analyser wanted told it nothing (the secret search reads every small text file:
  // 32,771 of the large benchmark image's 32,780). Only paths that say something in some layer
  // can affect the result, so only their histories are kept; a quiet version of such a path still
  // counts, since it replaces what was below. Building the history of every path took about 38 ms
  // of each cached scan of that image.
  // Those paths, and the folders above them, are also the only ones where an upper layer's entry
  // can replace something: one lookup per entry decides whether it does.
  const interest = new Map<string, number>();
  const found: Array<{ layer: number; path: string; secrets: NonNullable<FileFacts['secrets']>; overwritten?: true }> = [];
  for (const [i, { facts }] of layers.entries()) {
    for (const f of facts.files) {
      if (f.facts.secrets?.length) found.push({ layer: i, path: f.path, secrets: f.facts.secrets });
      else if (!saysSomething(f)) continue;
      interest.set(f.path, COUNTED);
    }
    for (const f of facts.overwritten) {
      if (f.facts.secrets?.length) found.push({ layer: i, path: f.path, secrets: f.facts.secrets, overwritten: true });
    }
  }
  for (const path of [...interest.keys()]) {
    for (let s = path.lastIndexOf('/'); s > 0; s = path.lastIndexOf('/', s - 1)) {
      const dir = path.slice(0, s);
      const bits = interest.get(dir) ?? 0;
      if (bits & ABOVE) break; // and so are the folders above it
      interest.set(dir, bits | ABOVE);
    }
  }
  const live = new Map<string, PathVersion[]>();
  const warnings: string[] = [];
  for (const [i, { facts }] of layers.entries()) {
    warnings.push(...facts.warnings);
    for (const dir of facts.opaqueDirs) deletePrefix(live, dir);
    for (const path of facts.whiteouts) deletePrefix(live, path);
    if (live.size) {
      // A folder replaces a file; anything else replaces a file, or a folder with all below it.
      for (const path of facts.dirs) if ((interest.get(path) ?? 0) & COUNTED) live.delete(path);
      for (const path of facts.others) {
        const bits = interest.get(path);
        if (bits === undefined) continue;
        if (bits & COUNTED) live.delete(path);
        if (bits & ABOVE) deleteBelow(live, path);
      }
    }
    const byPath = new Map<string, AnalysedFile[]>();
    for (const f of facts.files) {
      const bits = interest.get(f.path);
      if (bits === undefined) continue;
      // A file over a folder: what lower layers had below it is gone.
      if (bits & ABOVE && live.size > 0) deleteBelow(live, f.path);
      if (!(bits & COUNTED)) continue;
      const list = byPath.get(f.path);
      if (list) list.push(f);
      else byPath.set(f.path, [f]);
    }
    for (const [path, files] of byPath) {
      const history = live.get(path);
      if (history) history.push({ layer: i, files });
      else live.set(path, [{ layer: i, files }]);
    }
  }

  const osFound = new Map<string, OsInfo>();
  // Every list of installed files, in the order of the paths that give them (a later one wins).
  const ownedLists: OwnedFiles[] = [];
  const declaredLicenses = new Map<string, string[]>();
  const packages: SquashedPackage[] = [];
  const attributes: SquashResult['attributes'] = [];
  // Only paths whose current version says something are sorted and walked.
  const paths: string[] = [];
  for (const [path, history] of live) {
    if (history[history.length - 1]!.files.some(saysSomething)) paths.push(path);
  }
  paths.sort();
  // The identities each file's packages have, made once per file: looking each package up in the
  // lower layers' lists one by one cost packages² per layer (24,000 dpkg packages rewritten in 4
  // layers: 73 s).
  const idSets = new Map<FileFacts, Set<string>>();
  const idsOf = (facts: FileFacts): Set<string> => {
    let ids = idSets.get(facts);
    if (ids === undefined) {
      ids = new Set((facts.packages ?? []).map(identity));
      idSets.set(facts, ids);
    }
    return ids;
  };
  for (const path of paths) {
    const history = live.get(path)!;
    const top = history[history.length - 1]!;
    for (const file of top.files) {
      const { facts } = file;
      if (facts.warnings) warnings.push(...facts.warnings);
      if (facts.os) osFound.set(path, facts.os);
      for (const a of facts.attributes ?? []) attributes.push({ path, attribute: a });
      for (const o of facts.owned ?? []) ownedLists.push(o);
      for (const l of facts.licenses ?? []) declaredLicenses.set(`${l.owner.type}:${l.owner.name}`, l.licenses);
      for (const pkg of facts.packages ?? []) {
        let introducedAt = top.layer;
        const id = identity(pkg);
        for (let h = history.length - 2; h >= 0; h--) {
          const lower = history[h]!.files.find((f) => f.analyser === file.analyser);
          if (lower === undefined || !idsOf(lower.facts).has(id)) break;
          introducedAt = history[h]!.layer;
        }
        packages.push({
          ...pkg,
          paths: pkg.paths?.length ? pkg.paths : [path],
          layer: layers[introducedAt]!.ref,
          foundBy: file.analyser,
        });
      }
    }
  }

  const owned = ownersOf(ownedLists, packages);
  for (const pkg of packages) {
    if (OS_PACKAGE_TYPES.has(pkg.type)) {
      const declared = declaredLicenses.get(`${pkg.type}:${pkg.name}`);
      if (declared && !pkg.licenses?.length) pkg.licenses = declared;
      continue;
    }
    for (const p of pkg.paths) {
      const owner = owned.get(p) ?? owned.get(dirName(p));
      if (owner) {
        pkg.ownedBy = owner;
        break;
      }
    }
  }
  const secrets: LayerSecret[] = [];
  for (const f of found) {
    const history = live.get(f.path);
    const deleted = f.overwritten || history?.[history.length - 1]?.layer !== f.layer;
    for (const secret of f.secrets) secrets.push({ path: f.path, layer: layers[f.layer]!.ref, deleted, secret });
  }
  return { os: mergeOs(osFound), packages, warnings, secrets, attributes };
}

/**
 * The OS package owning each path a language package could be owned through (its paths and their
 * folders), the last list naming a path winning. Only those paths are looked up and kept: a map of
 * every installed file (hundreds of thousands in a large image, half a million from a hostile
 * database) cost tens of megabytes for the few hundred paths ever asked for.
 */
function ownersOf(lists: readonly OwnedFiles[], packages: readonly SquashedPackage[]): Map<string, OwnedFiles['owner']> {
  const owners = new Map<string, OwnedFiles['owner']>();
  if (lists.length === 0) return owners;
  const wanted = new Set<string>();
  for (const pkg of packages) {
    if (OS_PACKAGE_TYPES.has(pkg.type)) continue;
    for (const p of pkg.paths) {
      wanted.add(p);
      wanted.add(dirName(p));
    }
  }
  if (wanted.size === 0) return owners;
  for (const o of lists) {
    // ownedPaths(), inlined: this runs for every installed file of the image.
    const files = o.files;
    for (let from = 0; from < files.length; ) {
      let end = files.indexOf('\n', from);
      if (end < 0) end = files.length;
      const f = files.slice(from, end);
      if (wanted.has(f)) owners.set(f, o.owner);
      from = end + 1;
    }
  }
  return owners;
}
