import type { PackageRecord } from '../../sbom/model.js';
import type { Analyser, AnalyserFile, FileFacts } from '../types.js';
import { baseName, dirName } from '../types.js';
import { MAX_PACKAGES_PER_FILE } from '../dispatch.js';
import { MAX_LICENSES, type JsonObject, fileText, isObject, oneLine, parseJsonFile, str } from './parse-helpers.js';
import { LockYamlError, loadLastYamlDocument, type YamlLoadNotes } from './lock-yaml.js';
import { EXACT_SCALAR, readYamlLines, SCALAR, type Spec } from './lock-yaml-lines.js';

/**
 * npm ecosystem: package-lock.json / npm-shrinkwrap.json, yarn.lock (classic and berry),
 * pnpm-lock.yaml, and package.json files of installed packages under node_modules.
 *
 * Lockfile entries of package-lock.json carry `properties.installPath` (where npm would put the
 * package), as do installed package.json files, so `reconcilePackages` can let the installed copy
 * win. yarn and pnpm do not say where a package ends up (hoisting, the .pnpm store), so theirs do not.
 */

type Json = unknown;
function joinPath(dir: string, rel: string): string {
  return dir === '' ? rel : `${dir}/${rel}`;
}

function npmRecord(
  fullName: string,
  version: string,
  path: string,
  extra: { dev?: boolean; licenses?: string[]; installPath?: string },
): PackageRecord {
  const rec: PackageRecord = { type: 'npm', name: fullName, version, paths: [path] };
  if (fullName.startsWith('@')) {
    const slash = fullName.indexOf('/');
    if (slash > 1) {
      rec.namespace = fullName.slice(0, slash);
      rec.name = fullName.slice(slash + 1);
    }
  }
  if (extra.dev) rec.dev = true;
  if (extra.licenses && extra.licenses.length > 0) rec.licenses = extra.licenses;
  if (extra.installPath !== undefined) rec.properties = { installPath: extra.installPath };
  return rec;
}

/** `license` may be an SPDX string or a legacy `{type}` object; `licenses` is a legacy array of either. */
function licensesOf(pkg: JsonObject): string[] {
  // A Set, and a bound: includes() on the growing list was quadratic (200,000 licences: 24 s).
  const out = new Set<string>();
  const one = (v: Json): void => {
    const s = str(v) ?? (isObject(v) ? str(v['type']) : undefined);
    if (s !== undefined) out.add(s);
  };
  one(pkg['license']);
  const legacy = pkg['licenses'];
  if (Array.isArray(legacy)) {
    for (const v of legacy) {
      if (out.size >= MAX_LICENSES) break;
      one(v);
    }
  } else if (legacy !== undefined) one(legacy);
  return [...out];
}

// ---------------------------------------------------------------------------------------------
// package-lock.json

const NM = 'node_modules/';

function nameFromLockKey(key: string): string | undefined {
  const i = key.lastIndexOf(NM);
  return i < 0 ? undefined : key.slice(i + NM.length);
}

/** `npm:real-name@1.2.3` is how v1 lockfiles spell an aliased dependency. */
function unalias(name: string, version: string): [string, string] {
  if (!version.startsWith('npm:')) return [name, version];
  const spec = version.slice(4);
  const at = spec.lastIndexOf('@');
  return at > 0 ? [spec.slice(0, at), spec.slice(at + 1)] : [name, version];
}

function parsePackageLock(file: AnalyserFile): FileFacts {
  const parsed = parseJsonFile(file);
  if ('warning' in parsed) return { warnings: [parsed.warning] };
  const doc = parsed.doc as Json;
  if (!isObject(doc)) return { warnings: [`${file.path}: not a package-lock object`] };
  const dir = dirName(file.path);
  const packages: PackageRecord[] = [];

  const map = doc['packages'];
  if (isObject(map)) {
    for (const [key, entry] of Object.entries(map)) {
      // "" is the project itself; links point at a folder reported under its own key.
      // One past the bound is enough for the dispatcher to say the file lists too many.
      if (packages.length > MAX_PACKAGES_PER_FILE) break;
      if (key === '' || !isObject(entry) || entry['link'] === true) continue;
      const version = str(entry['version']);
      const name = str(entry['name']) ?? nameFromLockKey(key);
      if (version === undefined || name === undefined) continue;
      packages.push(
        npmRecord(name, version, file.path, {
          dev: entry['dev'] === true,
          licenses: licensesOf(entry),
          installPath: joinPath(dir, key),
        }),
      );
    }
    return { packages };
  }

  let tooDeep = false;
  const walk = (deps: JsonObject, parentFolder: string, depth: number): void => {
    // Each level's install path repeats all the folders above it, so a hostile lockfile nested
    // thousands deep made records of quadratic size (a 680 KB file: over a gigabyte). npm itself
    // hoists; real trees are a few dozen levels at most.
    if (depth > MAX_LOCK_DEPTH) {
      tooDeep = true;
      return;
    }
    for (const [key, entry] of Object.entries(deps)) {
      // One past the bound, as for "packages" above: the dispatcher keeps the first ones and warns.
      if (packages.length > MAX_PACKAGES_PER_FILE) return;
      if (!isObject(entry)) continue;
      const folder = `${parentFolder}${NM}${key}`;
      const rawVersion = str(entry['version']);
      if (rawVersion !== undefined) {
        const [name, version] = unalias(key, rawVersion);
        packages.push(
          npmRecord(name, version, file.path, {
            dev: entry['dev'] === true,
            installPath: joinPath(dir, folder),
          }),
        );
      }
      const nested = entry['dependencies'];
      if (isObject(nested)) walk(nested, `${folder}/`, depth + 1);
    }
  };
  const deps = doc['dependencies'];
  if (isObject(deps)) walk(deps, '', 1);
  else if (deps === undefined && doc['lockfileVersion'] === undefined) {
    return { warnings: [`${file.path}: neither "packages" nor "dependencies" found`] };
  }
  return tooDeep ? { packages, warnings: [`${file.path}: dependencies nested deeper than ${MAX_LOCK_DEPTH} levels were not read`] } : { packages };
}

// ---------------------------------------------------------------------------------------------
// yarn.lock

function unquote(s: string): string {
  const t = s.trim();
  return t.length >= 2 && (t[0] === '"' || t[0] === "'") && t.endsWith(t[0]) ? t.slice(1, -1) : t;
}

/**
 * Splits `name@range` (or berry's `name@npm:range`); an npm alias `alias@npm:real@range` yields
 * the real name. Returns the name and what follows it.
 */
function splitDescriptor(desc: string): [string, string] | undefined {
  const at = desc.indexOf('@', 1);
  if (at < 0) return undefined;
  const name = desc.slice(0, at);
  const rest = desc.slice(at + 1);
  if (rest.startsWith('npm:')) {
    const inner = rest.slice(4);
    const innerAt = inner.indexOf('@', 1);
    // `npm:^1.0.0` is a plain range; `npm:other@^1.0.0` is an alias.
    if (innerAt > 0 && !/^[~^<>=\d*]/.test(inner)) return [inner.slice(0, innerAt), inner.slice(innerAt + 1)];
  }
  return [name, rest];
}

/** Protocols that do not name a separate registry package (the workspace itself, patched copies, local links). */
const YARN_SKIP = ['workspace:', 'patch:', 'link:', 'portal:', 'file:'];

function parseYarnLock(file: AnalyserFile): FileFacts {
  const lines = fileText(file).split(/\r?\n/);
  const packages: PackageRecord[] = [];
  let header: string | undefined;
  let version: string | undefined;
  let resolution: string | undefined;
  let sawEntry = false;

  const flush = (): void => {
    if (header === undefined) return;
    sawEntry = true;
    // Classic quotes each descriptor, berry quotes the whole list: strip quotes per piece.
    const firstDesc = (header.split(',')[0] ?? '').trim().replace(/^"|"$/g, '');
    const desc = resolution ?? firstDesc;
    const parts = splitDescriptor(desc);
    const skip = YARN_SKIP.some((p) => (parts?.[1] ?? '').startsWith(p) || firstDesc.includes(`@${p}`));
    if (parts && version !== undefined && !skip && header !== '__metadata') {
      packages.push(npmRecord(parts[0], version, file.path, {}));
    }
    header = undefined;
    version = undefined;
    resolution = undefined;
  };

  for (const line of lines) {
    if (line === '' || line.startsWith('#')) continue;
    const c = line.charCodeAt(0);
    if (c !== 0x20 && c !== 0x09) {
      flush();
      // One past the bound is enough for the dispatcher to say the file lists too many.
      if (packages.length > MAX_PACKAGES_PER_FILE) return { packages };
      if (!line.endsWith(':')) {
        return { warnings: [`${file.path}: unexpected line "${line.slice(0, 60)}"`] };
      }
      header = line.slice(0, -1).trim();
      continue;
    }
    if (header === undefined) continue;
    // Only the entry's own fields (two-space indent) matter; deeper lines list dependencies.
    if (!line.startsWith('  ') || line.charCodeAt(2) === 0x20) continue;
    const field = line.trim();
    const m = /^(version|resolution):?\s+(.+)$/.exec(field);
    if (!m) continue;
    const value = unquote(m[2] ?? '');
    if (m[1] === 'version') version = value;
    else resolution = value;
  }
  flush();
  if (!sawEntry && lines.some((l) => l.trim() !== '' && !l.startsWith('#'))) {
    return { warnings: [`${file.path}: no entries found`] };
  }
  return { packages };
}

// ---------------------------------------------------------------------------------------------
// pnpm-lock.yaml

/** Cuts peer-dependency suffixes: `(react@18.0.0)` from v6/v9 keys, `_react@18.0.0` from v5 keys. */
function stripPeers(version: string): string {
  const p = version.indexOf('(');
  const v = p < 0 ? version : version.slice(0, p);
  const u = v.indexOf('_');
  return u < 0 ? v : v.slice(0, u);
}

function parsePnpmKey(rawKey: string, slashStyle: boolean): [string, string] | undefined {
  const key = rawKey.startsWith('/') ? rawKey.slice(1) : rawKey;
  if (slashStyle) {
    const segs = key.split('/');
    const nameSegs = key.startsWith('@') ? 2 : 1;
    if (segs.length <= nameSegs) return undefined;
    return [segs.slice(0, nameSegs).join('/'), stripPeers(segs.slice(nameSegs).join('/'))];
  }
  const at = key.indexOf('@', 1);
  if (at < 0) return undefined;
  return [key.slice(0, at), stripPeers(key.slice(at + 1))];
}

/**
 * v9 lockfiles dropped the per-package `dev` flag: a package is dev-only when it is reachable from
 * some importer's devDependencies but from no importer's dependencies/optionalDependencies.
 */
function pnpmV9DevKeys(doc: JsonObject): Set<string> | undefined {
  const importers = doc['importers'];
  const snapshots = doc['snapshots'];
  if (!isObject(importers) || !isObject(snapshots)) return undefined;

  const edges = (deps: Json): string[] => {
    if (!isObject(deps)) return [];
    const out: string[] = [];
    for (const [name, v] of Object.entries(deps)) {
      // Importers give `{specifier, version}`, snapshots just the version.
      const ver = isObject(v) ? str(v['version']) : str(v);
      if (ver === undefined || ver.startsWith('link:')) continue;
      // An aliased dependency's version is already the target's full `name@version` key.
      const isKey = ver.indexOf('@', 1) > 0 && !/^\d/.test(ver);
      out.push(isKey ? ver : `${name}@${ver}`);
    }
    return out;
  };
  const reach = (roots: string[]): Set<string> => {
    const seen = new Set<string>();
    const stack = [...roots];
    while (stack.length > 0) {
      const k = stack.pop() as string;
      if (seen.has(k)) continue;
      seen.add(k);
      const snap = snapshots[k];
      if (isObject(snap)) stack.push(...edges(snap['dependencies']), ...edges(snap['optionalDependencies']));
    }
    return seen;
  };

  const prodRoots: string[] = [];
  const devRoots: string[] = [];
  for (const imp of Object.values(importers)) {
    if (!isObject(imp)) continue;
    prodRoots.push(...edges(imp['dependencies']), ...edges(imp['optionalDependencies']));
    devRoots.push(...edges(imp['devDependencies']));
  }
  const prod = new Set([...reach(prodRoots)].map((k) => stripSnapshotKey(k)));
  const dev = new Set<string>();
  for (const k of reach(devRoots)) {
    const base = stripSnapshotKey(k);
    if (!prod.has(base)) dev.add(base);
  }
  return dev;
}

function stripSnapshotKey(key: string): string {
  const p = key.indexOf('(', 1);
  return p < 0 ? key : key.slice(0, p);
}

/**
 * What of a pnpm lockfile parsePnpmDoc reads: the lockfile version, each package's key, name,
 * version and v5/v6 dev flag, and for v9's dev flags the importers' and snapshots' dependencies.
 */
const PNPM_DEPS: Spec = { '*': { version: SCALAR } };
const PNPM_SPEC: Spec = {
  lockfileVersion: EXACT_SCALAR,
  importers: { '*': { dependencies: PNPM_DEPS, optionalDependencies: PNPM_DEPS, devDependencies: PNPM_DEPS } },
  packages: { '*': { name: SCALAR, version: SCALAR, dev: SCALAR } },
  snapshots: { '*': { dependencies: PNPM_DEPS, optionalDependencies: PNPM_DEPS } },
};

/**
 * Largest pnpm lockfile parsed by the yaml package when the line reader cannot read it (YAML that
 * no pnpm writes: anchors, block scalars where a field is read, ...). Even in pieces that parse
 * costs some 60 times the text while it runs: a 2 MiB lockfile with one alias took a scan to 196 MB.
 */
const PNPM_YAML_PARSE_LIMIT = 1024 * 1024;

function parsePnpmLock(file: AnalyserFile): FileFacts {
  let doc: Json;
  const notes: YamlLoadNotes = { collectionKeys: 0 };
  // pnpm 9 may prepend a second YAML document (the package-manager "env" lockfile); the
  // project's lockfile is the last one.
  // Each section is read only as far as the packages kept need (MAX_PACKAGES_PER_FILE): the
  // reading is nearly all of a large lockfile's cost. A v9 file's dev flags then come from the
  // snapshots read, which in a file past the bound may mark a few too many or too few.
  const read = readYamlLines(file.content, PNPM_SPEC, { maxEntries: MAX_PACKAGES_PER_FILE, notes });
  if (read.ok) {
    doc = read.value;
    if (read.cutSections.length > 0) notes.cutSections = read.cutSections;
  } else if (file.content.length > PNPM_YAML_PARSE_LIMIT) {
    return {
      warnings: [`${file.path}: YAML no pnpm writes (${read.reason}, line ${read.line}) in a file over ${PNPM_YAML_PARSE_LIMIT} bytes; skipped`],
    };
  } else {
    notes.collectionKeys = 0;
    try {
      doc = loadLastYamlDocument(fileText(file), notes, { maxEntries: MAX_PACKAGES_PER_FILE }) as Json;
    } catch (e) {
      // Too large to read whole is not a syntax error: say what it is.
      if (e instanceof LockYamlError) return { warnings: [`${file.path}: ${e.message}; skipped`] };
      return { warnings: [`${file.path}: invalid YAML: ${oneLine(e)}`] };
    }
  }
  const facts = parsePnpmDoc(file, doc);
  const warnings = facts.warnings ?? [];
  if (notes.collectionKeys > 0) warnings.push(`${file.path}: ${notes.collectionKeys} YAML entries with a list or map as key ignored`);
  // The dispatcher says so when one past the bound came out; entries that made no package
  // (no name or version) can leave fewer, and the file was still cut.
  if (notes.cutSections && (facts.packages?.length ?? 0) <= MAX_PACKAGES_PER_FILE) {
    warnings.push(`${file.path}: more than ${MAX_PACKAGES_PER_FILE} entries in ${notes.cutSections.map((k) => `"${k}"`).join(', ')}; the rest were not read`);
  }
  if (warnings.length > 0) facts.warnings = warnings;
  return facts;
}

function parsePnpmDoc(file: AnalyserFile, doc: Json): FileFacts {
  if (!isObject(doc)) return { warnings: [`${file.path}: not a pnpm lockfile`] };
  const lockVersion = parseFloat(String(doc['lockfileVersion'] ?? ''));
  if (Number.isNaN(lockVersion)) return { warnings: [`${file.path}: missing lockfileVersion`] };
  const slashStyle = lockVersion < 6;
  const devKeys = lockVersion >= 9 ? pnpmV9DevKeys(doc) : undefined;

  const map = doc['packages'];
  const packages: PackageRecord[] = [];
  if (!isObject(map)) return { packages };
  for (const [key, entry] of Object.entries(map)) {
    // One past the bound is enough for the dispatcher to say the file lists too many.
    if (packages.length > MAX_PACKAGES_PER_FILE) break;
    const e = isObject(entry) ? entry : {};
    const parsed = parsePnpmKey(key, slashStyle);
    // Tarball and git dependencies have keys that are not name@version; they carry both as fields.
    const name = str(e['name']) ?? parsed?.[0];
    const version = str(e['version']) ?? parsed?.[1];
    if (name === undefined || version === undefined) continue;
    const dev = devKeys ? devKeys.has(stripSnapshotKey(key)) : e['dev'] === true;
    packages.push(npmRecord(name, version, file.path, { dev }));
  }
  return { packages };
}

// ---------------------------------------------------------------------------------------------
// node_modules/**/package.json

const NODE_MODULES = 'node_modules';

/** Whether the path segment that ends just before index `end` is exactly `node_modules`. */
function segmentIsNodeModules(path: string, end: number): boolean {
  const start = end - NODE_MODULES.length;
  return start >= 0 && (start === 0 || path[start - 1] === '/') && path.startsWith(NODE_MODULES, start);
}

/**
 * True for `.../node_modules/<name>/package.json` and `.../node_modules/@scope/<name>/package.json`.
 * Works on indices rather than slices: it runs for every package.json in every layer.
 */
function isInstalledManifestPath(path: string): boolean {
  const nameEnd = path.length - '/package.json'.length;
  const nameSlash = path.lastIndexOf('/', nameEnd - 1);
  if (nameSlash < 0) return false;
  // `node_modules/@scope/package.json` sits in a scope folder, which is not a package.
  if (segmentIsNodeModules(path, nameSlash)) return path[nameSlash + 1] !== '@';
  const scopeSlash = path.lastIndexOf('/', nameSlash - 1);
  return scopeSlash >= 0 && path[scopeSlash + 1] === '@' && segmentIsNodeModules(path, scopeSlash);
}

function parseInstalledPackageJson(file: AnalyserFile): FileFacts {
  const parsed = parseJsonFile(file);
  if ('warning' in parsed) return { warnings: [parsed.warning] };
  const doc = parsed.doc as Json;
  if (!isObject(doc)) return { warnings: [`${file.path}: not a package.json object`] };
  const name = str(doc['name']);
  const version = str(doc['version']);
  // Stubs and private helper folders without identity are not packages; nothing to report.
  if (name === undefined || version === undefined) return {};
  return {
    packages: [
      npmRecord(name, version, file.path, { licenses: licensesOf(doc), installPath: dirName(file.path) }),
    ],
  };
}

// ---------------------------------------------------------------------------------------------

/** Lockfiles shipped inside installed packages describe the package's own development, not the image. */
function insideNodeModules(path: string): boolean {
  return path.startsWith(NM) || path.includes(`/${NM}`);
}

/** Deeper than any real node_modules tree (npm hoists); see walk() in the v1 lockfile reader. */
const MAX_LOCK_DEPTH = 100;

export const npmAnalyser: Analyser = {
  name: 'npm',
  // 3: a v1 lockfile's walk stops one past MAX_PACKAGES_PER_FILE, as the v2 "packages" map does.
  // 4: pnpm-lock.yaml entries keyed by a list or map are dropped with a warning, not stringified.
  // 5: a pnpm-lock.yaml too large to read whole is "skipped", not "invalid YAML".
  // 6: yarn.lock and pnpm-lock.yaml stop one past MAX_PACKAGES_PER_FILE (pnpm's sections are not
  //    parsed past it).
  // 7: pnpm-lock.yaml is read a line at a time (lock-yaml-lines.ts): errors in fields not read no
  //    longer refuse the file, and YAML no pnpm writes is parsed whole only up to 1 MiB.
  version: 7,
  maxFileSize: 20 * 1024 * 1024,
  wants(path) {
    if (path.endsWith('.json')) {
      if (path.endsWith('/package.json')) return isInstalledManifestPath(path);
      if (!path.endsWith('package-lock.json') && !path.endsWith('npm-shrinkwrap.json')) return false;
    } else if (!path.endsWith('yarn.lock') && !path.endsWith('pnpm-lock.yaml')) {
      return false;
    }
    const base = baseName(path);
    const isLock =
      base === 'package-lock.json' ||
      base === 'npm-shrinkwrap.json' ||
      base === 'yarn.lock' ||
      base === 'pnpm-lock.yaml';
    return isLock && !insideNodeModules(path);
  },
  analyse(file) {
    try {
      const base = baseName(file.path);
      if (base === 'package.json') return parseInstalledPackageJson(file);
      if (base === 'yarn.lock') return parseYarnLock(file);
      if (base === 'pnpm-lock.yaml') return parsePnpmLock(file);
      return parsePackageLock(file);
    } catch (e) {
      return { warnings: [`${file.path}: ${oneLine(e)}`] };
    }
  },
};
