// The stored fleet the gate benchmark re-evaluates: images grouped in repositories (successive
// versions of one service), built on a few Debian 12 and Alpine 3.20 base flavours that share a core
// of OS packages, plus npm and/or PyPI application dependencies drawn from a skewed popularity, so
// package sets overlap the way real registries' images do. Also the OSV advisories for those
// packages (a base database and an update of new and changed records). Deterministic: every machine
// generates the same fleet.
import { ZipWriter } from '../../vulndb/lib/zip-writer.mjs';
import {
  alpineNames,
  debPackage,
  alpineRecord,
  debianNames,
  debianRecord,
  hash,
  int,
  npmNames,
  npmPackage,
  npmRecord,
  pick,
  rng,
} from '../../vulndb/lib/osv-gen.mjs';

export const SIZES = { debSources: 1500, apkOrigins: 600, npm: 6000, pypi: 3000 };
const BIN_SUFFIX = ['', '-common', '-bin', '-dev', '-data', '-utils', '-doc'];
const CVSS = [
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H',
  'CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:N/I:N/A:H',
  'CVSS:3.1/AV:N/AC:H/PR:N/UI:N/S:U/C:H/I:N/A:N',
  'CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H',
];

export function universe() {
  return {
    deb: debianNames(SIZES.debSources, 31),
    apk: alpineNames(SIZES.apkOrigins, 32),
    npm: npmNames(SIZES.npm, 33),
    pypi: npmNames(SIZES.pypi, 34).map((n) => n.replace(/^@[^/]+\//, '').replace(/-/g, '_')),
  };
}

/** Popularity skew: index 0 is the most used name. */
const skew = (r, arr, power = 2) => arr[Math.floor(arr.length * r() ** power)];

export function debVersions(src) {
  const h = hash(src);
  const base = `${1 + (h % 9)}.${(h >>> 4) % 20}.${(h >>> 9) % 10}-${2 + ((h >>> 13) % 5)}`;
  return { base, installed: [base, `${base}+deb12u1`, `${base}+deb12u2`] };
}
export function apkVersions(origin) {
  const h = hash(origin);
  const base = `${1 + (h % 9)}.${(h >>> 4) % 20}.${(h >>> 9) % 10}`;
  return { base, installed: [`${base}-r0`, `${base}-r1`, `${base}-r2`] };
}
export function npmVersions(name) {
  const h = hash(name);
  const maj = 1 + (h % 6);
  const min = 2 + ((h >>> 5) % 15);
  return { maj, min, installed: [`${maj}.${min}.1`, `${maj}.${min}.4`, `${maj}.${min + 1}.0`] };
}
export function pypiVersions(name) {
  const h = hash(`py:${name}`);
  const maj = h % 5;
  const min = 3 + ((h >>> 5) % 20);
  return { maj, min, installed: [`${maj}.${min}.0`, `${maj}.${min}.3`, `${maj}.${min + 1}.1`] };
}

/** Base flavours: a core every image of that distro has, plus extra sources per flavour. */
function flavours(u) {
  const r = rng(77);
  const deb = [];
  const debCore = u.deb.slice(0, 40);
  for (let f = 0; f < 8; f++) {
    const extra = new Set();
    const want = int(r, 15, 70);
    while (extra.size < want) extra.add(skew(r, u.deb.slice(40), 1.5));
    deb.push([...debCore, ...extra]);
  }
  const apk = [];
  const apkCore = u.apk.slice(0, 14);
  for (let f = 0; f < 6; f++) {
    const extra = new Set();
    const want = int(r, 5, 45);
    while (extra.size < want) extra.add(skew(r, u.apk.slice(14), 1.5));
    apk.push([...apkCore, ...extra]);
  }
  return { deb, apk };
}

const layer = (index, seed) => ({
  index,
  digest: `sha256:${hash(`l${seed}`).toString(16).padStart(8, '0').repeat(8)}`,
});

function apkPackage(origin, name, version, l) {
  return {
    type: 'apk',
    namespace: 'alpine',
    name,
    version,
    sourceName: origin,
    arch: 'x86_64',
    purl: `pkg:apk/alpine/${name}@${version}?arch=x86_64&distro=alpine-3.20.3`,
    paths: ['/lib/apk/db/installed'],
    licenses: ['MIT'],
    layer: l,
    foundBy: 'apk',
  };
}
function pypiPackage(name, version, l) {
  return {
    type: 'pypi',
    name,
    version,
    purl: `pkg:pypi/${name.toLowerCase().replace(/_/g, '-')}@${version}`,
    paths: [`/usr/local/lib/python3.11/site-packages/${name}-${version}.dist-info/METADATA`],
    licenses: ['Apache-2.0'],
    layer: l,
    foundBy: 'python-dist-info',
  };
}

/**
 * `count` images as { repository, digest, result } (result is a ScanResult), `perRepo` versions
 * per repository. Each repository keeps its base flavour and its dependency list; successive
 * versions move the OS packages between three point releases and bump a few dependencies.
 */
export function* fleet(count, { perRepo = 10, packages = 300 } = {}) {
  const u = universe();
  const fl = flavours(u);
  let n = 0;
  for (let repo = 0; n < count; repo++) {
    const rr = rng(5000 + repo);
    const isDeb = rr() < 0.6;
    const flavour = isDeb ? pick(rr, fl.deb) : pick(rr, fl.apk);
    const x = rr();
    const lang = x < 0.55 ? 'npm' : x < 0.9 ? 'pypi' : 'both';
    const deps = [];
    const seen = new Set();
    const target = packages + int(rr, -25, 25);
    // The dependency list of the service, longer than needed: OS package counts vary per flavour.
    while (deps.length < target) {
      const eco = lang === 'both' ? (rr() < 0.6 ? 'npm' : 'pypi') : lang;
      const name = skew(rr, eco === 'npm' ? u.npm : u.pypi);
      if (seen.has(`${eco}:${name}`)) continue;
      seen.add(`${eco}:${name}`);
      deps.push([eco, name]);
    }
    const repository = `team${repo % 60}/svc${repo}`;
    for (let v = 0; v < perRepo && n < count; v++, n++) {
      const age = (repo + v) % 3;
      const osLayer = layer(0, `${isDeb}${fl.deb.indexOf(flavour)}${fl.apk.indexOf(flavour)}${age}`);
      const appLayer = layer(1, `${repo}.${v}`);
      const pkgs = [];
      const binSeen = new Set();
      for (const [i, src] of flavour.entries()) {
        // Core sources ship several binary packages; the others one or two.
        const bins = i < (isDeb ? 40 : 14) ? 1 + (hash(src) % 4) : 1 + (hash(src) % 2);
        for (let b = 0; b < bins; b++) {
          const bin = b === 0 ? src : `${src}${BIN_SUFFIX[b % BIN_SUFFIX.length]}`;
          if (binSeen.has(bin)) continue;
          binSeen.add(bin);
          pkgs.push(
            isDeb
              ? debPackage(src, bin, debVersions(src).installed[age], osLayer)
              : apkPackage(src, bin, apkVersions(src).installed[age], osLayer),
          );
        }
      }
      for (const [eco, name] of deps) {
        if (pkgs.length >= target) break;
        // A dependency moves to its next version now and then.
        const variant = (hash(name) + Math.floor((v + (hash(name) % 4)) / 4)) % 3;
        pkgs.push(
          eco === 'npm'
            ? npmPackage(name, npmVersions(name).installed[variant], appLayer)
            : pypiPackage(name, pypiVersions(name).installed[variant], appLayer),
        );
      }
      const digest = `sha256:${hash(`m${repo}.${v}`).toString(16).padStart(8, '0')}${hash(`n${repo}.${v}`).toString(16).padStart(8, '0').repeat(7)}`;
      const root = isDeb ? repo % 3 !== 0 : repo % 2 === 0;
      yield {
        repository,
        digest,
        result: {
          schemaVersion: 1,
          generator: { name: 'portcullis', version: '0.1.0' },
          scannedAt: '2026-11-01T00:00:00.000Z',
          image: {
            reference: `${repository}@${digest}`,
            manifestDigest: digest,
            configDigest: `sha256:${hash(`c${repo}.${v}`).toString(16).padStart(8, '0').repeat(8)}`,
            platform: { os: 'linux', architecture: 'amd64' },
            layers: [osLayer, appLayer],
            labels: {},
          },
          os: isDeb
            ? {
                family: 'debian',
                version: '12.8',
                name: 'Debian GNU/Linux 12 (bookworm)',
                codename: 'bookworm',
              }
            : { family: 'alpine', version: '3.20.3', name: 'Alpine Linux v3.20' },
          packages: pkgs,
          warnings: [],
          secrets: [],
          misconfigurations: root
            ? [
                {
                  id: 'PC-IMG-001',
                  title: 'Image runs as root',
                  severity: 'high',
                  message: 'config.User is empty: the container runs as root',
                  remedy: 'Add a USER instruction with a non-root user',
                  cis: '4.1',
                  target: 'config.User',
                },
              ]
            : [],
        },
      };
    }
  }
}

function pypiRecord(r, seq, name, fixed, modified) {
  const cve = `CVE-${2015 + (seq % 11)}-${String(70000 + (seq % 29999)).padStart(5, '0')}`;
  return {
    id: `PYSEC-${2015 + (seq % 11)}-${seq}`,
    modified,
    published: '2025-01-01T00:00:00Z',
    aliases: [cve],
    summary: `issue in ${name}`,
    details: `A generated advisory for ${name}.`,
    severity: [{ type: 'CVSS_V3', score: CVSS[seq % CVSS.length] }],
    affected: [
      {
        package: { ecosystem: 'PyPI', name, purl: `pkg:pypi/${name}` },
        ranges: [
          { type: 'ECOSYSTEM', events: fixed ? [{ introduced: '0' }, { fixed }] : [{ introduced: '0' }] },
        ],
      },
    ],
    references: [{ type: 'ADVISORY', url: `https://nvd.nist.gov/vuln/detail/${cve}` }],
  };
}

/** One advisory of an ecosystem for a package, fixed somewhere around the installed versions. */
function record(r, seq, eco, name) {
  const x = r();
  if (eco === 'deb') {
    const { base } = debVersions(name);
    const prev = base.replace(/-(\d+)$/, (_, n) => `-${Number(n) - 1}`);
    const fixed =
      x < 0.88 ? prev : x < 0.93 ? `${base}+deb12u${int(r, 1, 3)}` : x < 0.96 ? `${base}+deb12u9` : undefined;
    return debianRecord(r, seq, name, fixed, { detailsMean: 300 });
  }
  if (eco === 'apk') {
    const { base } = apkVersions(name);
    const fixed =
      x < 0.85
        ? `${base.replace(/\.(\d+)$/, (_, n) => `.${Math.max(0, Number(n) - 1)}`)}-r0`
        : x < 0.95
          ? `${base}-r${int(r, 1, 3)}`
          : `${base}-r9`;
    return alpineRecord(r, seq, name, fixed, { detailsMean: 300 });
  }
  if (eco === 'npm') {
    const { maj, min } = npmVersions(name);
    const fixMin = min + int(r, -6, 1);
    const ranges =
      r() < 0.2
        ? [['0', `${maj - 1}.9.9`]]
        : [[`${maj}.0.0`, `${maj}.${Math.max(0, fixMin)}.${int(r, 0, 5)}`]];
    return npmRecord(r, seq, name, ranges, { detailsMean: 300 });
  }
  const { maj, min } = pypiVersions(name);
  const fixed = x < 0.95 ? `${maj}.${min + int(r, -6, 1)}.${int(r, 0, 4)}` : undefined;
  return pypiRecord(r, seq, name, fixed, `2025-0${int(r, 1, 9)}-01T00:00:00Z`);
}

/** How many advisories a package has: a few names have hundreds, most have none or a handful. */
function advisoryCount(r, rank) {
  if (rank < 5) return int(r, 60, 200);
  if (rank < 30) return int(r, 10, 40);
  return r() < 0.5 ? 0 : Math.floor(8 * r() ** 2) + 1;
}

/**
 * Writes the base database (`basePath`) and the update (`updatePath`): `update` records, 70% new
 * ones for packages drawn by popularity and 30% newer versions of stored records.
 */
export function writeAdvisories(basePath, updatePath, { update = 1000 } = {}) {
  const u = universe();
  const r = rng(4242);
  const stored = [];
  let seq = 100000;
  const base = new ZipWriter(basePath);
  const counts = { deb: 0, apk: 0, npm: 0, pypi: 0 };
  for (const eco of ['deb', 'apk', 'npm', 'pypi']) {
    u[eco].forEach((name, rank) => {
      const k = advisoryCount(r, rank);
      for (let j = 0; j < k; j++) {
        const rec = record(r, ++seq, eco, name);
        stored.push({ eco, name, id: rec.id });
        counts[eco]++;
        base.add(`${rec.id}.json`, Buffer.from(JSON.stringify(rec)));
      }
    });
  }
  const baseSummary = base.close();
  const up = new ZipWriter(updatePath);
  const upCounts = { new: 0, changed: 0, deb: 0, apk: 0, npm: 0, pypi: 0 };
  const ids = new Set();
  const newIds = [];
  while (upCounts.new + upCounts.changed < update) {
    let rec;
    let eco;
    if (r() < 0.3) {
      const s = pick(r, stored);
      if (ids.has(s.id)) continue;
      eco = s.eco;
      rec = record(r, ++seq, eco, s.name);
      rec.id = s.id;
      upCounts.changed++;
    } else {
      const x = r();
      eco = x < 0.3 ? 'deb' : x < 0.4 ? 'apk' : x < 0.75 ? 'npm' : 'pypi';
      rec = record(r, ++seq, eco, skew(r, u[eco], 1.5));
      if (ids.has(rec.id)) continue;
      upCounts.new++;
      newIds.push(rec.id);
    }
    ids.add(rec.id);
    rec.modified = '2026-12-01T00:00:00Z';
    upCounts[eco]++;
    up.add(`${rec.id}.json`, Buffer.from(JSON.stringify(rec)));
  }
  up.close();
  return { base: { records: stored.length, counts, zipBytes: baseSummary.bytes }, update: upCounts, newIds };
}
