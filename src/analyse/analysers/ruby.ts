import type { PackageRecord } from '../../sbom/model.js';
import type { Analyser, AnalyserFile, FileFacts } from '../types.js';
import { baseName, dirName } from '../types.js';
import { MAX_LICENSES, oneLine } from './parse-helpers.js';

/**
 * Ruby: installed gem specifications (`specifications/*.gemspec`, written by RubyGems in a fixed
 * generated style, so a few line patterns suffice) and Bundler's Gemfile.lock.
 */

function gemRecord(
  name: string,
  version: string,
  path: string,
  extra: { licenses?: string[]; platform?: string },
): PackageRecord {
  const rec: PackageRecord = { type: 'gem', name, version, paths: [path] };
  if (extra.licenses && extra.licenses.length > 0) rec.licenses = extra.licenses;
  if (extra.platform !== undefined && extra.platform !== 'ruby')
    rec.properties = { platform: extra.platform };
  return rec;
}

// ---------------------------------------------------------------------------------------------
// specifications/*.gemspec
// Leading space is [ \t]*, not \s*: under the m flag \s* ran from every line start across all the
// blank lines after it, so a gemspec of 80,000 blank lines took 23 s.

const NAME = /^[ \t]*\w+\.name\s*=\s*["']([^"']+)["']/m;
const VERSION = /^[ \t]*\w+\.version\s*=\s*(?:Gem::Version\.new\(\s*)?["']([^"']+)["']/m;
const PLATFORM = /^[ \t]*\w+\.platform\s*=\s*["']([^"']+)["']/m;
const LICENSES = /^[ \t]*\w+\.licenses?\s*=\s*(.*)$/gm;
/** RubyGems writes `# stub: name version platform require_paths` at the top of every spec. */
const STUB = /^# stub: (\S+) (\S+) (\S+)/m;

function parseGemspec(file: AnalyserFile): FileFacts {
  const src = file.content.toString('utf8');
  const stub = STUB.exec(src);
  const name = NAME.exec(src)?.[1] ?? stub?.[1];
  const version = VERSION.exec(src)?.[1] ?? stub?.[2];
  if (!name || !version) return { warnings: [`${file.path}: no name or version found`] };
  // A Set, and a bound: includes() on the growing list was quadratic (200,000 licences: 40 s).
  const found = new Set<string>();
  for (const line of src.matchAll(LICENSES)) {
    for (const m of (line[1] ?? '').matchAll(/["']([^"']+)["']/g)) {
      if (m[1]) found.add(m[1]);
      if (found.size >= MAX_LICENSES) break;
    }
    if (found.size >= MAX_LICENSES) break;
  }
  const licenses = [...found];
  const platform = PLATFORM.exec(src)?.[1] ?? stub?.[3];
  return { packages: [gemRecord(name, version, file.path, { licenses, platform })] };
}

// ---------------------------------------------------------------------------------------------
// Gemfile.lock

/** `    name (version)` at four spaces: a gem in a `specs:` list; deeper lines are its dependencies. */
const SPEC = /^ {4}(\S+) \(([^)]+)\)$/;

function parseGemfileLock(file: AnalyserFile): FileFacts {
  const packages: PackageRecord[] = [];
  let section = '';
  let inSpecs = false;
  let sawSection = false;
  for (const rawLine of file.content.toString('utf8').split('\n')) {
    const line = rawLine.endsWith('\r') ? rawLine.slice(0, -1) : rawLine;
    if (line === '') continue;
    if (line[0] !== ' ') {
      section = line.trim();
      sawSection = true;
      inSpecs = false;
      continue;
    }
    if (section !== 'GEM') continue;
    if (line === '  specs:') {
      inSpecs = true;
      continue;
    }
    if (!line.startsWith('    ')) {
      inSpecs = false;
      continue;
    }
    if (!inSpecs) continue;
    const m = SPEC.exec(line);
    if (!m?.[1] || !m[2]) continue;
    // Gem versions use dots for prereleases, so the first dash starts the platform.
    const dash = m[2].indexOf('-');
    const version = dash < 0 ? m[2] : m[2].slice(0, dash);
    const platform = dash < 0 ? undefined : m[2].slice(dash + 1);
    packages.push(gemRecord(m[1], version, file.path, { platform }));
  }
  if (!sawSection) return { warnings: [`${file.path}: no sections found`] };
  return { packages };
}

// ---------------------------------------------------------------------------------------------

export const rubyAnalyser: Analyser = {
  name: 'ruby',
  version: 1,
  maxFileSize: 20 * 1024 * 1024,
  wants(path) {
    if (path.endsWith('.gemspec')) return baseName(dirName(path)) === 'specifications';
    if (!path.endsWith('Gemfile.lock')) return false;
    const dir = dirName(path);
    // A Gemfile.lock inside an installed gem (gems/<name>-<version>/) records that gem's own
    // development setup, not what the image runs.
    return baseName(path) === 'Gemfile.lock' && baseName(dirName(dir)) !== 'gems';
  },
  analyse(file) {
    try {
      return baseName(file.path) === 'Gemfile.lock' ? parseGemfileLock(file) : parseGemspec(file);
    } catch (e) {
      return { warnings: [`${file.path}: ${oneLine(e)}`] };
    }
  },
};
