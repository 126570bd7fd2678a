// Deterministic synthetic OSV records shaped like osv.dev's: Debian (DEBIAN-CVE-*, one record per
// CVE with Debian:11/12/13 entries, upstream CVE), Alpine (ALPINE-CVE-*, Alpine:v3.19/v3.20), npm
// (GHSA with SEMVER ranges, CVSS vectors, aliases) and PyPI (PYSEC with ECOSYSTEM ranges and the
// explicit `versions` list PyPA records carry). `details` is long generated prose, which is what
// makes real records a few KiB each; Portcullis validates it but does not store it.

export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

export const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
export const pick = (r, arr) => arr[Math.floor(r() * arr.length)];

export function hash(s) {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619);
  return h >>> 0;
}

const WORDS = (
  'buffer overflow heap stack use after free double integer underflow out of bounds read write ' +
  'denial service remote attacker crafted request response header cookie session token parser ' +
  'certificate validation signature verification memory leak null pointer dereference race ' +
  'condition privilege escalation arbitrary code execution injection command path traversal ' +
  'symlink temporary file permission bypass authentication authorization regular expression ' +
  'catastrophic backtracking prototype pollution deserialization untrusted input archive ' +
  'extraction decompression bomb resource exhaustion infinite loop recursion depth limit ' +
  'handshake renegotiation cipher padding oracle timing side channel entropy random seed ' +
  'hostname wildcard redirect open proxy smuggling chunked encoding boundary multipart form ' +
  'upload filename unicode normalisation case folding escape sequence terminal log forging ' +
  'configuration default insecure fallback downgrade version negotiation protocol state machine ' +
  'function module library component affected versions before fixed release upstream patch ' +
  'backport distribution maintainers advisory vendor users should upgrade mitigate workaround ' +
  'disable feature flag option environment variable when processing specially via network local'
).split(' ');

function sentencePool(count, seed) {
  const r = rng(seed);
  const out = [];
  for (let i = 0; i < count; i++) {
    const n = int(r, 8, 28);
    const w = [];
    for (let j = 0; j < n; j++) w.push(pick(r, WORDS));
    let s = w.join(' ');
    s = s[0].toUpperCase() + s.slice(1);
    if (r() < 0.2) s += ` (see \`${pick(r, WORDS)}_${pick(r, WORDS)}()\`)`;
    out.push(`${s}.`);
  }
  return out;
}

const SENTENCES = sentencePool(5000, 7);

/** Prose of about `chars` characters, in paragraphs. */
export function prose(r, chars) {
  const parts = [];
  let len = 0;
  let inPara = 0;
  while (len < chars) {
    const s = SENTENCES[Math.floor(r() * SENTENCES.length)];
    parts.push(s);
    len += s.length + 1;
    if (++inPara > int(r, 3, 7)) {
      parts.push('\n\n');
      inPara = 0;
    }
  }
  return parts.join(' ');
}

/** Long-tailed `details` length: most records 1-4 KiB, some tens of KiB. */
export function detailsLength(r, mean) {
  // Exponential with the given mean, at least 200 characters, capped at 40x the mean.
  return Math.min(Math.max(200, Math.round(-Math.log(1 - r()) * mean)), mean * 40);
}

const REAL_DEB = (
  'linux glibc openssl systemd curl openssh git python3.11 perl tiff imagemagick ffmpeg ' +
  'libxml2 sqlite3 zlib expat gnutls28 krb5 binutils gcc-12 nss firefox-esr thunderbird ' +
  'postgresql-15 mariadb php8.2 nginx apache2 bind9 samba cups ghostscript poppler libwebp ' +
  'libpng1.6 libjpeg-turbo freetype fontconfig cairo pango1.0 gdk-pixbuf gtk+3.0 glib2.0 ' +
  'dbus util-linux e2fsprogs shadow sudo bash coreutils tar gzip xz-utils bzip2 zstd lz4 ' +
  'libssh2 nghttp2 libidn2 libpsl gnupg2 libgcrypt20 libgpg-error pcre2 pcre3 ncurses ' +
  'readline sensible-utils apt dpkg debconf libseccomp libcap2 libcap-ng pam audit ' +
  'libselinux libsemanage cyrus-sasl2 openldap libtasn1-6 p11-kit ca-certificates tzdata ' +
  'icu libxslt jq oniguruma vim emacs less file libarchive unzip zip'
).split(' ');

const SYL = 'al be co da el fa gi ho in ju ka lo mu no pe qu ra si tu ve wa xo yi zu'.split(' ');

/** `count` distinct names: the real list first (when given), then synthetic ones. */
export function names(count, { real = [], prefix = '', seed = 1, sep = '' } = {}) {
  const r = rng(seed);
  const out = [...real.slice(0, count)];
  const seen = new Set(out);
  while (out.length < count) {
    const n = `${prefix}${pick(r, SYL)}${pick(r, SYL)}${pick(r, SYL)}${sep}${pick(r, WORDS)}`;
    const name = seen.has(n) ? `${n}${out.length}` : n;
    seen.add(name);
    out.push(name);
  }
  return out;
}

export const debianNames = (count, seed = 11) => names(count, { real: REAL_DEB, prefix: 'lib', seed });
export const npmNames = (count, seed = 12) =>
  names(count, { seed, sep: '-' }).map((n, i) => (i % 9 === 0 ? `@${n.split('-')[0]}/${n}` : n));
export const pypiNames = (count, seed = 13) => names(count, { seed, sep: '-' });
export const alpineNames = (count, seed = 14) => names(count, { real: REAL_DEB.slice(1), seed });

const GHSA_CHARS = '23456789cfghjmpqrvwx';
function ghsa(r) {
  const part = () => Array.from({ length: 4 }, () => pick(r, GHSA_CHARS)).join('');
  return `GHSA-${part()}-${part()}-${part()}`;
}

const CVSS = [
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H',
  'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N',
  'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H',
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:R/S:C/C:L/I:L/A:N',
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:L',
];
const GH_SEV = ['LOW', 'MODERATE', 'HIGH', 'CRITICAL'];

function references(r, name, cve, n) {
  const refs = [{ type: 'ADVISORY', url: `https://nvd.nist.gov/vuln/detail/${cve}` }];
  for (let i = 1; i < n; i++) {
    const kind = pick(r, ['WEB', 'FIX', 'REPORT', 'PACKAGE', 'ARTICLE']);
    const url =
      kind === 'FIX'
        ? `https://github.com/${name.replace('@', '').replace('/', '-')}/${name.replace(/.*\//, '')}/commit/${hash(`${cve}${i}`).toString(16).padStart(8, '0')}${hash(`${i}${cve}`).toString(16)}`
        : kind === 'REPORT'
          ? `https://github.com/${name.replace('@', '').replace('/', '-')}/issues/${int(r, 10, 9999)}`
          : `https://example.org/security/${cve.toLowerCase()}/${i}`;
    refs.push({ type: kind, url });
  }
  return refs;
}

export function cveId(r, seq) {
  return `CVE-${int(r, 2014, 2025)}-${String(10000 + (seq % 89999)).padStart(5, '0')}`;
}

function stamp(r, year) {
  const m = String(int(r, 1, 12)).padStart(2, '0');
  const d = String(int(r, 1, 28)).padStart(2, '0');
  return `${year}-${m}-${d}T${String(int(r, 0, 23)).padStart(2, '0')}:${String(int(r, 0, 59)).padStart(2, '0')}:00Z`;
}

/** A Debian record for `name`, fixed at `fixed` in Debian:12 (`undefined` = no fix yet). */
export function debianRecord(r, seq, name, fixed, { detailsMean = 600 } = {}) {
  const cve = `CVE-${2014 + (seq % 12)}-${String(seq).padStart(5, '0')}`;
  const affected = [];
  for (const rel of ['Debian:11', 'Debian:12', 'Debian:13']) {
    if (rel === 'Debian:13' && r() < 0.5) continue;
    const events = [{ introduced: '0' }];
    const fix = rel === 'Debian:12' ? fixed : r() < 0.8 ? fixed?.replace(/\+deb12u\d+$/, '') : undefined;
    if (fix !== undefined) events.push({ fixed: fix });
    affected.push({
      package: { ecosystem: rel, name, purl: `pkg:deb/debian/${name}?arch=source` },
      ranges: [{ type: 'ECOSYSTEM', events }],
      versions: [],
      ecosystem_specific: { urgency: pick(r, ['low', 'medium', 'high', 'not yet assigned']) },
      database_specific: {
        source: `https://storage.googleapis.com/debian-osv/debian-cve-osv/DEBIAN-${cve}.json`,
      },
    });
  }
  const year = 2014 + (seq % 12);
  return {
    id: `DEBIAN-${cve}`,
    modified: stamp(r, 2025),
    published: stamp(r, year),
    upstream: [cve],
    details: prose(r, detailsLength(r, detailsMean)),
    affected,
    schema_version: '1.6.0',
  };
}

export function alpineRecord(r, seq, name, fixed, { detailsMean = 600 } = {}) {
  const cve = `CVE-${2014 + (seq % 12)}-${String(seq).padStart(5, '0')}`;
  return {
    id: `ALPINE-${cve}`,
    modified: stamp(r, 2025),
    published: stamp(r, 2014 + (seq % 12)),
    upstream: [cve],
    details: prose(r, detailsLength(r, detailsMean)),
    affected: ['Alpine:v3.19', 'Alpine:v3.20'].map((rel) => ({
      package: { ecosystem: rel, name, purl: `pkg:apk/alpine/${name}?arch=source` },
      ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed }] }],
      database_specific: { source: `https://secdb.alpinelinux.org/${rel.slice(7)}/main.json` },
    })),
    schema_version: '1.6.0',
  };
}

/** An npm GHSA record; `ranges` are [introduced, fixed?] pairs of semver strings. */
export function npmRecord(r, seq, name, ranges, { detailsMean = 600 } = {}) {
  const cve = `CVE-${2014 + (seq % 12)}-${String(50000 + (seq % 49999)).padStart(5, '0')}`;
  const id = ghsa(r);
  const sev = int(r, 0, 3);
  return {
    schema_version: '1.4.0',
    id,
    modified: stamp(r, 2025),
    published: stamp(r, 2014 + (seq % 12)),
    aliases: r() < 0.85 ? [cve] : [],
    summary: `${pick(r, WORDS)} ${pick(r, WORDS)} in ${name}`,
    details: prose(r, detailsLength(r, detailsMean)),
    severity: [{ type: 'CVSS_V3', score: CVSS[(seq + sev) % CVSS.length] }],
    affected: [
      {
        package: { ecosystem: 'npm', name },
        ranges: [
          {
            type: 'SEMVER',
            events: ranges.flatMap(([intro, fix]) =>
              fix === undefined ? [{ introduced: intro }] : [{ introduced: intro }, { fixed: fix }],
            ),
          },
        ],
        database_specific: {
          source: `https://github.com/github/advisory-database/blob/main/advisories/github-reviewed/${id}.json`,
        },
      },
    ],
    references: references(r, name, cve, int(r, 2, 9)),
    database_specific: {
      cwe_ids: [`CWE-${int(r, 20, 1333)}`],
      severity: GH_SEV[sev],
      github_reviewed: true,
      github_reviewed_at: stamp(r, 2024),
      nvd_published_at: stamp(r, 2024),
    },
  };
}

export function pypiRecord(r, seq, name, { detailsMean = 600 } = {}) {
  const year = 2014 + (seq % 12);
  const cve = `CVE-${year}-${String(60000 + (seq % 39999)).padStart(5, '0')}`;
  const major = int(r, 0, 5);
  const minor = int(r, 0, 30);
  const versions = [];
  for (let m = 0; m <= minor; m++) for (let p = 0; p < int(r, 1, 4); p++) versions.push(`${major}.${m}.${p}`);
  return {
    id: `PYSEC-${year}-${seq}`,
    modified: stamp(r, 2025),
    published: stamp(r, year),
    aliases: r() < 0.6 ? [cve, ghsa(r)] : [cve],
    details: prose(r, detailsLength(r, detailsMean)),
    affected: [
      {
        package: { ecosystem: 'PyPI', name, purl: `pkg:pypi/${name}` },
        ranges: [
          {
            type: 'ECOSYSTEM',
            events: [{ introduced: '0' }, { fixed: `${major}.${minor + 1}.0` }],
          },
        ],
        versions,
      },
    ],
    references: references(r, name, cve, int(r, 2, 7)),
  };
}

/**
 * Streams records of the four ecosystems into `zip` until `targetBytes` of uncompressed JSON are
 * written. Popularity is skewed (a cube of a uniform draw) so some names get hundreds of records.
 */
export function fillLarge(zip, targetBytes, { seed = 42, detailsMean = 3000, onProgress } = {}) {
  const r = rng(seed);
  const deb = debianNames(4000);
  const alp = alpineNames(2500);
  const npm = npmNames(30000);
  const py = pypiNames(15000);
  const skew = (arr) => arr[Math.floor(arr.length * r() ** 3)];
  const counts = { Debian: 0, Alpine: 0, npm: 0, PyPI: 0 };
  let seq = 0;
  let bytes = 0;
  while (bytes < targetBytes) {
    seq++;
    const x = r();
    let rec;
    const opt = { detailsMean };
    if (x < 0.35) {
      const name = skew(deb);
      const h = hash(name);
      const base = `${1 + (h % 9)}.${(h >>> 4) % 20}.${(h >>> 9) % 10}-${1 + ((h >>> 13) % 5)}`;
      rec = debianRecord(r, seq, name, r() < 0.85 ? `${base}+deb12u${int(r, 1, 5)}` : undefined, opt);
      counts.Debian++;
    } else if (x < 0.5) {
      const name = skew(alp);
      const h = hash(name);
      rec = alpineRecord(
        r,
        seq,
        name,
        `${1 + (h % 9)}.${(h >>> 4) % 20}.${int(r, 0, 12)}-r${int(r, 0, 6)}`,
        opt,
      );
      counts.Alpine++;
    } else if (x < 0.75) {
      const name = skew(npm);
      const maj = int(r, 0, 8);
      const ranges = [[`${maj}.0.0`, `${maj}.${int(r, 0, 20)}.${int(r, 1, 9)}`]];
      if (maj > 0 && r() < 0.3) ranges.unshift(['0', `${maj - 1}.${int(r, 0, 20)}.${int(r, 1, 9)}`]);
      rec = npmRecord(r, seq, name, ranges, opt);
      counts.npm++;
    } else {
      rec = pypiRecord(r, seq, skew(py), opt);
      counts.PyPI++;
    }
    const data = Buffer.from(JSON.stringify(rec, null, 2));
    zip.add(`${rec.id}.json`, data);
    bytes += data.length;
    if (onProgress && seq % 20000 === 0) onProgress(bytes, seq);
  }
  return { records: seq, bytes, counts };
}

/** SBOM packages (the scanner's model) for the names and versions these records describe. */
export function debPackage(src, bin, version, layer) {
  return {
    type: 'deb',
    namespace: 'debian',
    name: bin,
    version,
    sourceName: src,
    sourceVersion: version,
    arch: 'amd64',
    purl: `pkg:deb/debian/${bin}@${encodeURIComponent(version)}?arch=amd64&distro=debian-12`,
    paths: ['/var/lib/dpkg/status'],
    licenses: [],
    layer,
    foundBy: 'dpkg',
  };
}

export function npmPackage(full, version, layer) {
  const scoped = full.startsWith('@');
  const [namespace, name] = scoped ? full.split('/') : [undefined, full];
  const p = {
    type: 'npm',
    name,
    version,
    purl: `pkg:npm/${scoped ? `${encodeURIComponent(namespace)}/` : ''}${name}@${version}`,
    paths: [`/app/node_modules/${full}/package.json`],
    licenses: ['MIT'],
    layer,
    foundBy: 'npm',
  };
  if (namespace) p.namespace = namespace;
  return p;
}
