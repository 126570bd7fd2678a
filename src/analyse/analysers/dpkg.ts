import type { PackageRecord } from '../../sbom/model.js';
import { MAX_PACKAGES_PER_FILE } from '../dispatch.js';
import { baseName, type Analyser, type AnalyserFile, type FileFacts } from '../types.js';
import { LineStream, OwnedFilesBound, PathList } from './parse-helpers.js';

const STATUS = 'var/lib/dpkg/status';
const STATUS_D = 'var/lib/dpkg/status.d/';
const INFO = 'var/lib/dpkg/info/';
const DOC = 'usr/share/doc/';

// Debian's short licence names (DEP-5) mapped to SPDX ids where the meaning is unambiguous.
const DEBIAN_TO_SPDX: Record<string, string> = {
  'GPL-2': 'GPL-2.0-only',
  'GPL-2+': 'GPL-2.0-or-later',
  'GPL-3': 'GPL-3.0-only',
  'GPL-3+': 'GPL-3.0-or-later',
  'LGPL-2': 'LGPL-2.0-only',
  'LGPL-2+': 'LGPL-2.0-or-later',
  'LGPL-2.1': 'LGPL-2.1-only',
  'LGPL-2.1+': 'LGPL-2.1-or-later',
  'LGPL-3': 'LGPL-3.0-only',
  'LGPL-3+': 'LGPL-3.0-or-later',
  'AGPL-3': 'AGPL-3.0-only',
  'AGPL-3+': 'AGPL-3.0-or-later',
  'Apache-2': 'Apache-2.0',
  'Apache-2.0': 'Apache-2.0',
  Expat: 'MIT',
  MIT: 'MIT',
  'BSD-2-clause': 'BSD-2-Clause',
  'BSD-3-clause': 'BSD-3-Clause',
  'BSD-4-clause': 'BSD-4-Clause',
  Zlib: 'Zlib',
  'MPL-2.0': 'MPL-2.0',
  ISC: 'ISC',
  'Artistic': 'Artistic-1.0-Perl',
  'PSF-2': 'PSF-2.0',
};

/** Distinct `License:` names of a machine-readable copyright file, in order of appearance. */
function copyrightLicenses(text: string): string[] {
  const out = new Set<string>();
  for (const line of text.split('\n')) {
    if (!line.startsWith('License:')) continue;
    // Runs of blanks made one: the \s+ around the separators below backtracked over a long run
    // once per position in it (a License line with 80,000 spaces took 13 s).
    const value = line.slice(8).trim().replace(/\s+/g, ' ');
    if (!value) continue;
    // "GPL-2+ or Artistic" and "GPL-3+ with Bison exception": keep each named licence once.
    for (const part of value.split(/ (?:or|and|\||&) |, ?/i)) {
      const name = part.replace(/ with .*$/i, '').trim();
      if (name) out.add(DEBIAN_TO_SPDX[name] ?? name);
    }
  }
  return [...out];
}

/** The fields of the status file that packages are made of; the rest (descriptions) is skipped. */
const STANZA_FIELDS = new Set(['Package', 'Version', 'Source', 'Architecture', 'Status']);

/**
 * Reads a status file (or a status.d entry) as its bytes arrive (LineStream): each line into the
 * current deb822 stanza, each stanza into a package as it ends, so a 128 MiB status is never held
 * whole (it was: 249 MB for bench/hostile's). Stops reading one package past MAX_PACKAGES_PER_FILE.
 */
class StatusReader extends LineStream {
  private readonly packages: PackageRecord[] = [];
  private readonly warnings: string[] = [];
  private fields = new Map<string, string>();
  private last: string | undefined;

  constructor(private readonly path: string) {
    super();
  }

  protected finish(): FileFacts {
    this.endStanza();
    return { packages: this.packages, warnings: this.warnings };
  }

  protected line(line: string): void {
    if (line.trim() === '') {
      this.endStanza();
      return;
    }
    if (line[0] === ' ' || line[0] === '\t') {
      if (this.last) this.fields.set(this.last, `${this.fields.get(this.last)}\n${line.trim()}`);
      return;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) return;
    const name = line.slice(0, colon);
    this.last = STANZA_FIELDS.has(name) ? name : undefined;
    if (this.last) this.fields.set(this.last, line.slice(colon + 1).trim());
  }

  private endStanza(): void {
    const stanza = this.fields;
    this.fields = new Map();
    this.last = undefined;
    if (stanza.size === 0 || this.stopped) return;
    // distroless status.d entries carry no Status field: their presence means installed.
    const status = stanza.get('Status');
    if (status !== undefined) {
      const [want, , state] = status.split(/\s+/);
      if (state !== 'installed' || (want !== 'install' && want !== 'hold')) return;
    }
    const pkg = toPackage(stanza, this.path);
    if (pkg) this.packages.push(pkg);
    else this.warnings.push(`${this.path}: a stanza without Package or Version was skipped`);
    // One past the bound is enough for the dispatcher to say the file lists too many.
    if (this.packages.length > MAX_PACKAGES_PER_FILE || this.warnings.length > MAX_PACKAGES_PER_FILE) this.stopped = true;
  }
}

/**
 * Reads `info/<pkg>.list` as its bytes arrive (LineStream), gathering the paths into one string
 * (PathList): a list up to the 128 MiB limit was held whole, and each path as a string of its own.
 */
class ListReader extends LineStream {
  private readonly files = new PathList();
  private readonly bound = new OwnedFilesBound();

  constructor(private readonly path: string) {
    super();
  }

  protected line(line: string): void {
    const path = line.trim().replace(/^\/+/, '');
    if (path === '' || path === '.') return;
    // Past the bound only counted, for the warning.
    if (this.bound.admit(path)) this.files.add(path);
  }

  protected finish(): FileFacts {
    const owner = baseName(this.path).slice(0, -'.list'.length).replace(/:.*$/, '');
    const tooMany = this.bound.warning(this.path, 'package');
    const warnings = tooMany ? [tooMany] : [];
    return { owned: [{ owner: { type: 'deb', name: owner }, files: this.files.take() }], warnings };
  }
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
  // 5: info/*.list read as it arrives; a line over MAX_LINE_BYTES keeps its first bytes only.
  version: 5,
  maxFileSize: 128 * 1024 * 1024,
  wants(path) {
    if (path === STATUS) return true;
    if (path.startsWith(DOC) && path.endsWith('/copyright')) return path.indexOf('/', DOC.length) === path.length - '/copyright'.length;
    if (path.startsWith(STATUS_D)) return !path.endsWith('.md5sums') && !path.slice(STATUS_D.length).includes('/');
    return path.startsWith(INFO) && path.endsWith('.list');
  },
  stream(path) {
    // The status file and the lists can be large; status.d entries and copyrights are read whole.
    if (path === STATUS) return new StatusReader(path);
    return path.startsWith(INFO) ? new ListReader(path) : undefined;
  },
  analyse(file: AnalyserFile): FileFacts {
    if (file.path.startsWith(DOC)) {
      const text = file.content.toString('utf8');
      const owner = file.path.slice(DOC.length, -'/copyright'.length);
      const licenses = copyrightLicenses(text);
      return licenses.length ? { licenses: [{ owner: { type: 'deb', name: owner }, licenses }] } : {};
    }
    if (file.path.startsWith(INFO)) return new ListReader(file.path).readAll(file.content);
    return new StatusReader(file.path).readAll(file.content);
  },
};
