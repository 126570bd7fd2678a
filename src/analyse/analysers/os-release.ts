import type { Analyser, AnalyserFile, FileFacts } from '../types.js';

const FILES = new Set([
  'etc/os-release',
  'usr/lib/os-release',
  'etc/alpine-release',
  'etc/debian_version',
  'etc/redhat-release',
  'etc/centos-release',
  'etc/rocky-release',
  'etc/almalinux-release',
  'etc/fedora-release',
]);

function parseOsRelease(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const line of text.split('\n')) {
    const m = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
    if (!m) continue;
    let value = m[2]!.trim();
    if ((value.startsWith('"') && value.endsWith('"')) || (value.startsWith("'") && value.endsWith("'"))) {
      value = value.slice(1, -1);
    }
    out[m[1]!] = value.replace(/\\(.)/g, '$1');
  }
  return out;
}

const REDHAT_LIKE: Array<[RegExp, string]> = [
  [/^Rocky Linux/i, 'rocky'],
  [/^AlmaLinux/i, 'almalinux'],
  [/^CentOS/i, 'centos'],
  [/^Fedora/i, 'fedora'],
  [/^Red Hat Enterprise Linux/i, 'rhel'],
];

/**
 * Identifies the distribution. os-release gives the family and name; the distro's own release
 * files are more precise about the version (Debian's point release, Alpine's patch level), so the
 * squash step lets them refine what os-release said. Each file yields a fact tagged by its source.
 */
export const osReleaseAnalyser: Analyser = {
  name: 'os-release',
  version: 1,
  maxFileSize: 64 * 1024,
  wants: (path) => FILES.has(path),
  analyse(file: AnalyserFile): FileFacts {
    const text = file.content.toString('utf8');
    if (file.path.endsWith('os-release')) {
      const kv = parseOsRelease(text);
      if (!kv.ID) return { warnings: [`${file.path}: no ID field`] };
      return {
        os: {
          family: kv.ID.toLowerCase(),
          version: kv.VERSION_ID ?? '',
          name: kv.PRETTY_NAME ?? kv.NAME,
          codename: kv.VERSION_CODENAME || undefined,
        },
      };
    }
    const firstLine = text.split('\n')[0]!.trim();
    if (file.path === 'etc/alpine-release') return firstLine ? { os: { family: 'alpine', version: firstLine } } : {};
    if (file.path === 'etc/debian_version') {
      // Ubuntu ships debian_version too (e.g. "bookworm/sid"); only a numeric one is Debian's.
      return /^\d+(\.\d+)*$/.test(firstLine) ? { os: { family: 'debian', version: firstLine } } : {};
    }
    const m = /release\s+([\d.]+)/i.exec(firstLine);
    if (!m) return {};
    const family = REDHAT_LIKE.find(([re]) => re.test(firstLine))?.[1] ?? 'rhel';
    return { os: { family, version: m[1]!, name: firstLine } };
  },
};
