import type { PackageRecord } from '../../sbom/model.js';
import { MAX_OWNED_FILES_PER_FILE, MAX_PACKAGES_PER_FILE } from '../dispatch.js';
import { baseName, type Analyser, type AnalyserFile, type FileFacts, type FileStream } from '../types.js';
import { linesOf } from './parse-helpers.js';

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
 * Longest line kept whole. The fields packages are made of are short; a longer line (a hostile
 * description, or a file with no newline at all) keeps its first bytes only, so reading the file
 * as it arrives never holds more than this of one line.
 */
const MAX_LINE_BYTES = 1 << 20;

/**
 * Reads a status file (or a status.d entry) as its bytes arrive: cut into lines at newline bytes
 * (a UTF-8 sequence never holds one), each line into the current deb822 stanza, each stanza into a
 * package as it ends. Only the end of a line cut by a chunk's end is copied and kept, so a 128 MiB
 * status is never held whole (it was: 249 MB for bench/hostile's). Stops reading one package past
 * MAX_PACKAGES_PER_FILE.
 */
class StatusReader implements FileStream {
  private readonly packages: PackageRecord[] = [];
  private readonly warnings: string[] = [];
  private fields = new Map<string, string>();
  private last: string | undefined;
  /** The bytes of a line not ended yet, at most MAX_LINE_BYTES of them. */
  private partial: Buffer[] = [];
  private partialBytes = 0;
  private full = false;

  constructor(private readonly path: string) {}

  write(chunk: Buffer): void {
    if (this.full) return;
    const nl = chunk.lastIndexOf(0x0a);
    if (nl < 0) {
      this.keepPartial(chunk);
      return;
    }
    let from = 0;
    if (this.partialBytes > 0) {
      // The line begun in earlier chunks ends in this one.
      from = chunk.indexOf(0x0a) + 1;
      this.keepPartial(chunk.subarray(0, from));
      const line = Buffer.concat(this.partial, this.partialBytes);
      this.partial = [];
      this.partialBytes = 0;
      for (const l of linesOf(line)) this.line(l);
    }
    for (const l of linesOf(chunk.subarray(from, nl + 1))) this.line(l);
    if (nl + 1 < chunk.length) this.keepPartial(chunk.subarray(nl + 1));
  }

  end(): FileFacts {
    if (this.partialBytes > 0 && !this.full) for (const l of linesOf(Buffer.concat(this.partial, this.partialBytes))) this.line(l);
    this.partial = [];
    this.endStanza();
    return { packages: this.packages, warnings: this.warnings };
  }

  /** Copies (the chunk is only lent) up to MAX_LINE_BYTES of an unfinished line. */
  private keepPartial(bytes: Buffer): void {
    const room = MAX_LINE_BYTES - this.partialBytes;
    if (room <= 0 || bytes.length === 0) return;
    const kept = Buffer.from(bytes.subarray(0, room));
    this.partial.push(kept);
    this.partialBytes += kept.length;
  }

  private line(line: string): void {
    if (this.full) return;
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
    if (stanza.size === 0 || this.full) return;
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
    if (this.packages.length > MAX_PACKAGES_PER_FILE || this.warnings.length > MAX_PACKAGES_PER_FILE) this.full = true;
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
  version: 4,
  maxFileSize: 128 * 1024 * 1024,
  wants(path) {
    if (path === STATUS) return true;
    if (path.startsWith(DOC) && path.endsWith('/copyright')) return path.indexOf('/', DOC.length) === path.length - '/copyright'.length;
    if (path.startsWith(STATUS_D)) return !path.endsWith('.md5sums') && !path.slice(STATUS_D.length).includes('/');
    return path.startsWith(INFO) && path.endsWith('.list');
  },
  stream(path) {
    // Only the status file can be large; status.d entries, lists and copyrights are read whole.
    return path === STATUS ? new StatusReader(path) : undefined;
  },
  analyse(file: AnalyserFile): FileFacts {
    if (file.path.startsWith(DOC)) {
      const text = file.content.toString('utf8');
      const owner = file.path.slice(DOC.length, -'/copyright'.length);
      const licenses = copyrightLicenses(text);
      return licenses.length ? { licenses: [{ owner: { type: 'deb', name: owner }, licenses }] } : {};
    }
    if (file.path.startsWith(INFO)) {
      const owner = baseName(file.path).slice(0, -'.list'.length).replace(/:.*$/, '');
      // Line by line into one array: split, map and filter made three arrays of every line.
      const files: string[] = [];
      let listed = 0;
      for (const line of linesOf(file.content)) {
        const path = line.trim().replace(/^\/+/, '');
        if (path === '' || path === '.') continue;
        if (++listed <= MAX_OWNED_FILES_PER_FILE) files.push(path);
      }
      const warnings =
        listed > MAX_OWNED_FILES_PER_FILE
          ? [`${file.path}: lists ${listed} installed files, more than any real package; kept the first ${MAX_OWNED_FILES_PER_FILE}`]
          : [];
      return { owned: [{ owner: { type: 'deb', name: owner }, files }], warnings };
    }
    const reader = new StatusReader(file.path);
    reader.write(file.content);
    return reader.end();
  },
};
