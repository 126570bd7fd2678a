import type { PackageRecord } from '../../sbom/model.js';
import { baseName, type Analyser, type AnalyserFile, type FileFacts } from '../types.js';

const STATUS = 'var/lib/dpkg/status';
const STATUS_D = 'var/lib/dpkg/status.d/';
const INFO = 'var/lib/dpkg/info/';

/** Splits a deb822 file into stanzas of field -> value (continuation lines joined with newlines). */
function parseStanzas(text: string): Array<Map<string, string>> {
  const stanzas: Array<Map<string, string>> = [];
  let fields = new Map<string, string>();
  let last: string | undefined;
  for (const line of text.split('\n')) {
    if (line.trim() === '') {
      if (fields.size) stanzas.push(fields);
      fields = new Map();
      last = undefined;
      continue;
    }
    if ((line[0] === ' ' || line[0] === '\t') && last) {
      fields.set(last, `${fields.get(last)}\n${line.trim()}`);
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue;
    last = line.slice(0, colon);
    fields.set(last, line.slice(colon + 1).trim());
  }
  if (fields.size) stanzas.push(fields);
  return stanzas;
}

function toPackage(f: Map<string, string>, path: string): PackageRecord | undefined {
  const name = f.get('Package');
  const version = f.get('Version');
  if (!name || !version) return undefined;
  // "Source: openssl (3.0.11-1~deb12u2)" names a source package built at another version.
  const source = /^(\S+)(?:\s+\((\S+)\))?/.exec(f.get('Source') ?? '');
  return {
    type: 'deb',
    name,
    version,
    sourceName: source?.[1] ?? name,
    sourceVersion: source?.[2] ?? version,
    arch: f.get('Architecture'),
    licenses: [],
    paths: [path],
  };
}

/**
 * dpkg's database: `status` (or distroless `status.d/*`, one file per package) lists what is
 * installed; `info/<pkg>.list` lists each package's files, used to mark language packages that
 * Debian installed (python3-urllib3's egg-info, liblog4j2-java's jars).
 */
export const dpkgAnalyser: Analyser = {
  name: 'dpkg',
  version: 1,
  maxFileSize: 128 * 1024 * 1024,
  wants(path) {
    if (path === STATUS) return true;
    if (path.startsWith(STATUS_D)) return !path.endsWith('.md5sums') && !path.slice(STATUS_D.length).includes('/');
    return path.startsWith(INFO) && path.endsWith('.list');
  },
  analyse(file: AnalyserFile): FileFacts {
    const text = file.content.toString('utf8');
    if (file.path.startsWith(INFO)) {
      const owner = baseName(file.path).slice(0, -'.list'.length).replace(/:.*$/, '');
      const files = text
        .split('\n')
        .map((l) => l.trim().replace(/^\/+/, ''))
        .filter((l) => l !== '' && l !== '.');
      return { owned: [{ owner: { type: 'deb', name: owner }, files }] };
    }
    const packages: PackageRecord[] = [];
    const warnings: string[] = [];
    for (const stanza of parseStanzas(text)) {
      // distroless status.d entries carry no Status field: their presence means installed.
      const status = stanza.get('Status');
      if (status !== undefined) {
        const [want, , state] = status.split(/\s+/);
        if (state !== 'installed' || (want !== 'install' && want !== 'hold')) continue;
      }
      const pkg = toPackage(stanza, file.path);
      if (pkg) packages.push(pkg);
      else warnings.push(`${file.path}: a stanza without Package or Version was skipped`);
    }
    return { packages, warnings };
  },
};
