import { parse as parseToml } from 'smol-toml';
import type { PackageRecord } from '../../sbom/model.js';
import type { Analyser, AnalyserFile, FileFacts } from '../types.js';
import { baseName, dirName } from '../types.js';
import { MAX_LICENSES, type JsonObject, fileText, isObject, oneLine, parseJsonFile, str, tomlTooLarge } from './parse-helpers.js';

/**
 * Python: installed distributions (`*.dist-info/METADATA`, `*.egg-info/PKG-INFO`, single-file
 * `*.egg-info`) and the lockfiles poetry.lock, Pipfile.lock and pinned requirements*.txt.
 */

/** PEP 503: the purl name is the normalised one; the spelling the project used is kept alongside. */
function normalisePythonName(name: string): string {
  return name.toLowerCase().replace(/[-_.]+/g, '-');
}

function pypiRecord(
  name: string,
  version: string,
  path: string,
  extra: { dev?: boolean; licenses?: string[] } = {},
): PackageRecord {
  const normalised = normalisePythonName(name);
  const rec: PackageRecord = { type: 'pypi', name: normalised, version, paths: [path] };
  if (extra.dev) rec.dev = true;
  if (extra.licenses && extra.licenses.length > 0) rec.licenses = extra.licenses;
  if (normalised !== name) rec.properties = { originalName: name };
  return rec;
}

// ---------------------------------------------------------------------------------------------
// METADATA / PKG-INFO

/** Header fields (RFC 822 style, continuation lines indented) up to the first blank line. */
function parseHeaders(body: string): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  let last: { key: string; index: number } | undefined;
  for (const line of body.split(/\r?\n/)) {
    // Only a truly empty line ends the headers: setuptools indents blank lines inside long values.
    if (line === '') break;
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      const values = headers.get(last.key) as string[];
      values[last.index] += `\n${line.trim()}`;
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    const key = line.slice(0, colon).trim().toLowerCase();
    const value = line.slice(colon + 1).trim();
    const values = headers.get(key) ?? [];
    values.push(value);
    headers.set(key, values);
    last = { key, index: values.length - 1 };
  }
  return headers;
}

/**
 * License-Expression (PEP 639) is the most precise; a short one-line License field next; otherwise
 * the trove classifiers. Many projects paste the whole licence text into License, which is no name.
 */
function metadataLicenses(headers: Map<string, string[]>): string[] {
  const expr = headers.get('license-expression')?.[0];
  if (expr) return [expr];
  const lic = headers.get('license')?.[0];
  if (lic && !lic.includes('\n') && lic.length <= 100 && lic.toUpperCase() !== 'UNKNOWN') return [lic];
  // A Set: includes() on the growing list was quadratic in the classifiers (200,000: 36 s).
  const out = new Set<string>();
  for (const c of headers.get('classifier') ?? []) {
    if (!c.startsWith('License ::')) continue;
    const last = c.slice(c.lastIndexOf('::') + 2).trim();
    if (last && last !== 'OSI Approved') out.add(last);
    if (out.size >= MAX_LICENSES) break;
  }
  return [...out];
}

function parseMetadata(file: AnalyserFile): FileFacts {
  const headers = parseHeaders(fileText(file));
  const name = headers.get('name')?.[0];
  const version = headers.get('version')?.[0];
  if (!name || !version) return { warnings: [`${file.path}: missing Name or Version`] };
  return { packages: [pypiRecord(name, version, file.path, { licenses: metadataLicenses(headers) })] };
}

// ---------------------------------------------------------------------------------------------
// poetry.lock

function parsePoetryLock(file: AnalyserFile): FileFacts {
  const text = fileText(file);
  const tooLarge = tomlTooLarge(file.path, text);
  if (tooLarge) return { warnings: [tooLarge] };
  let doc: JsonObject;
  try {
    doc = parseToml(text) as JsonObject;
  } catch (e) {
    return { warnings: [`${file.path}: invalid TOML: ${oneLine(e)}`] };
  }
  const list = doc['package'];
  if (list !== undefined && !Array.isArray(list))
    return { warnings: [`${file.path}: "package" is not an array`] };
  const packages: PackageRecord[] = [];
  for (const p of list ?? []) {
    if (!isObject(p)) continue;
    const name = str(p['name']);
    const version = str(p['version']);
    if (!name || !version) continue;
    // Poetry < 1.5 wrote `category`; Poetry 2 writes the dependency `groups` instead.
    const groups = p['groups'];
    const dev = Array.isArray(groups)
      ? groups.length > 0 && !groups.includes('main')
      : p['category'] === 'dev';
    packages.push(pypiRecord(name, version, file.path, { dev }));
  }
  return { packages };
}

// ---------------------------------------------------------------------------------------------
// Pipfile.lock

function parsePipfileLock(file: AnalyserFile): FileFacts {
  const parsed = parseJsonFile(file);
  if ('warning' in parsed) return { warnings: [parsed.warning] };
  const doc = parsed.doc;
  if (!isObject(doc)) return { warnings: [`${file.path}: not a Pipfile.lock object`] };
  const packages: PackageRecord[] = [];
  for (const [section, dev] of [
    ['default', false],
    ['develop', true],
  ] as const) {
    const deps = doc[section];
    if (!isObject(deps)) continue;
    for (const [name, entry] of Object.entries(deps)) {
      const v = isObject(entry) ? str(entry['version']) : undefined;
      // Git and editable requirements have no version pin.
      if (!v || !v.startsWith('==')) continue;
      packages.push(pypiRecord(name, v.slice(v.startsWith('===') ? 3 : 2), file.path, { dev }));
    }
  }
  return { packages };
}

// ---------------------------------------------------------------------------------------------
// requirements*.txt

const PIN =
  /^([A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\]\s*)?===?\s*([A-Za-z0-9][A-Za-z0-9.+!_-]*)$/;

function parseRequirements(file: AnalyserFile): FileFacts {
  const packages: PackageRecord[] = [];
  // Backslash-newline continues a logical line (typically before --hash options).
  const logical = fileText(file)
    .replace(/\\\r?\n/g, ' ')
    .split(/\r?\n/);
  for (const raw of logical) {
    let line = raw;
    const hash = line.search(/(^|\s)#/);
    if (hash >= 0) line = line.slice(0, hash);
    const semi = line.indexOf(';');
    if (semi >= 0) line = line.slice(0, semi);
    line = line.trim();
    if (line === '' || line.startsWith('-')) continue;
    const opt = line.search(/\s--?[a-z]/);
    if (opt >= 0) line = line.slice(0, opt).trim();
    const m = PIN.exec(line);
    if (m?.[1] && m[2]) packages.push(pypiRecord(m[1], m[2], file.path));
  }
  return { packages };
}

// ---------------------------------------------------------------------------------------------

function isRequirementsTxt(base: string): boolean {
  return base.startsWith('requirements') && base.endsWith('.txt');
}

export const pythonAnalyser: Analyser = {
  name: 'python',
  version: 3,
  maxFileSize: 20 * 1024 * 1024,
  wants(path) {
    if (path.endsWith('/METADATA')) return dirName(path).endsWith('.dist-info');
    if (path.endsWith('/PKG-INFO')) return dirName(path).endsWith('.egg-info');
    if (path.endsWith('.egg-info')) return true;
    if (path.endsWith('.lock')) {
      const base = baseName(path);
      return base === 'poetry.lock' || base === 'Pipfile.lock';
    }
    return path.endsWith('.txt') && isRequirementsTxt(baseName(path));
  },
  analyse(file) {
    try {
      const base = baseName(file.path);
      if (base === 'poetry.lock') return parsePoetryLock(file);
      if (base === 'Pipfile.lock') return parsePipfileLock(file);
      if (isRequirementsTxt(base)) return parseRequirements(file);
      return parseMetadata(file);
    } catch (e) {
      return { warnings: [`${file.path}: ${oneLine(e)}`] };
    }
  },
};
