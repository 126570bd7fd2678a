import type { PackageRecord } from '../../sbom/model.js';
import type { Analyser, AnalyserFile, FileFacts } from '../types.js';
import { baseName, dirName } from '../types.js';
import { isObject, oneLine, parseJsonFile, str } from './parse-helpers.js';

/** PHP: composer.lock and Composer's record of what it installed, vendor/composer/installed.json. */

function composerRecord(
  entry: unknown,
  path: string,
  dev: boolean | ((name: string) => boolean),
): PackageRecord | undefined {
  if (!isObject(entry)) return undefined;
  const fullName = str(entry['name']);
  const rawVersion = str(entry['version']);
  if (!fullName || !rawVersion) return undefined;
  const slash = fullName.indexOf('/');
  const version = /^v\d/.test(rawVersion) ? rawVersion.slice(1) : rawVersion;
  const rec: PackageRecord = { type: 'composer', name: fullName, version, paths: [path] };
  if (slash > 0) {
    rec.namespace = fullName.slice(0, slash);
    rec.name = fullName.slice(slash + 1);
  }
  if (typeof dev === 'function' ? dev(fullName) : dev) rec.dev = true;
  const lic = entry['license'];
  const licenses = (Array.isArray(lic) ? lic : [lic]).filter(
    (l): l is string => typeof l === 'string' && l !== '',
  );
  if (licenses.length > 0) rec.licenses = licenses;
  return rec;
}

function collect(list: unknown, path: string, dev: boolean | ((name: string) => boolean)): PackageRecord[] {
  if (!Array.isArray(list)) return [];
  return list.map((e) => composerRecord(e, path, dev)).filter((r): r is PackageRecord => r !== undefined);
}

function parseComposerLock(file: AnalyserFile): FileFacts {
  const parsed = parseJsonFile(file);
  if ('warning' in parsed) return { warnings: [parsed.warning] };
  const doc = parsed.doc;
  if (!isObject(doc) || !Array.isArray(doc['packages'])) {
    return { warnings: [`${file.path}: no "packages" array`] };
  }
  return {
    packages: [
      ...collect(doc['packages'], file.path, false),
      ...collect(doc['packages-dev'], file.path, true),
    ],
  };
}

function parseInstalledJson(file: AnalyserFile): FileFacts {
  const parsed = parseJsonFile(file);
  if ('warning' in parsed) return { warnings: [parsed.warning] };
  const doc = parsed.doc;
  // Composer 1 wrote a bare array; Composer 2 wraps it and names the dev-only packages separately.
  if (Array.isArray(doc)) return { packages: collect(doc, file.path, false) };
  if (isObject(doc) && Array.isArray(doc['packages'])) {
    const devNames = doc['dev-package-names'];
    const devSet = new Set(Array.isArray(devNames) ? devNames.filter((n) => typeof n === 'string') : []);
    return { packages: collect(doc['packages'], file.path, (name) => devSet.has(name)) };
  }
  return { warnings: [`${file.path}: neither an array nor an object with "packages"`] };
}

const INSTALLED = 'vendor/composer/installed.json';

export const phpAnalyser: Analyser = {
  name: 'php',
  version: 2,
  maxFileSize: 20 * 1024 * 1024,
  wants(path) {
    if (path.endsWith(INSTALLED))
      return path.length === INSTALLED.length || path[path.length - INSTALLED.length - 1] === '/';
    if (!path.endsWith('composer.lock') || baseName(path) !== 'composer.lock') return false;
    // Packages under vendor/<vendor>/<name>/ may ship their own development lockfile.
    return baseName(dirName(dirName(dirName(path)))) !== 'vendor';
  },
  analyse(file) {
    try {
      return file.path.endsWith(INSTALLED) ? parseInstalledJson(file) : parseComposerLock(file);
    } catch (e) {
      return { warnings: [`${file.path}: ${oneLine(e)}`] };
    }
  },
};
