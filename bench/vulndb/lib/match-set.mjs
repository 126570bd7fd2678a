// The matching workload: a Debian:12 + npm advisory set written as an OSV zip, and images of 500
// packages (350 deb binary packages from ~170 source packages, 150 npm packages) whose names and
// versions are chosen so that many of them are affected, as in a real Debian-based Node.js image.
import { ZipWriter } from './zip-writer.mjs';
import { debPackage, debianNames, debianRecord, hash, int, npmNames, npmPackage, npmRecord, pick, rng } from './osv-gen.mjs';

export const DEB_SOURCES = 1200;
export const NPM_NAMES = 1500;

/** Installed source version variants for a Debian source package (older and newer images). */
function debVersions(name) {
  const h = hash(name);
  const base = `${1 + (h % 9)}.${(h >>> 4) % 20}.${(h >>> 9) % 10}-${2 + ((h >>> 13) % 5)}`;
  return { base, installed: [base, `${base}+deb12u1`, `${base}+deb12u2`] };
}

function npmVersions(name) {
  const h = hash(name);
  const maj = 1 + (h % 6);
  const min = (h >>> 5) % 15;
  return { maj, min, installed: [`${maj}.${min}.1`, `${maj}.${min}.4`, `${maj}.${min + 1}.0`] };
}

/**
 * Advisories per source package, shaped like Debian's tracker: a handful of sources with hundreds
 * (linux, glibc, imagemagick...), a few dozen with tens, most with 0-15.
 */
function debCount(r, i) {
  if (i < 5) return int(r, 100, 300);
  if (i < 25) return int(r, 15, 60);
  return r() < 0.15 ? 0 : Math.floor(15 * r() ** 2) + 1;
}
const npmCount = (r) => (r() < 0.3 ? 0 : Math.floor(12 * r() ** 2) + 1);

export function writeMatchZip(path) {
  const r = rng(99);
  const zip = new ZipWriter(path);
  const debAdvised = [];
  const npmAdvised = [];
  let seq = 500000;
  const deb = debianNames(DEB_SOURCES, 21);
  deb.forEach((name, i) => {
    const k = debCount(r, i);
    if (k > 0) debAdvised.push(name);
    const { base } = debVersions(name);
    const prev = base.replace(/-(\d+)$/, (_, n) => `-${Number(n) - 1}`);
    for (let j = 0; j < k; j++) {
      // Most advisories were fixed before the installed version; some are fixed by a later point
      // release (so older images are affected), some are not fixed at all.
      const x = r();
      const fixed =
        x < 0.7
          ? prev
          : x < 0.82
            ? `${base}+deb12u${int(r, 1, 4)}`
            : x < 0.88
              ? `${base}+deb12u9`
              : undefined;
      const rec = debianRecord(r, ++seq, name, fixed, { detailsMean: 400 });
      zip.add(`${rec.id}.json`, Buffer.from(JSON.stringify(rec)));
    }
  });
  const npm = npmNames(NPM_NAMES, 22);
  for (const name of npm) {
    const k = npmCount(r);
    if (k > 0) npmAdvised.push(name);
    const { maj, min } = npmVersions(name);
    for (let j = 0; j < k; j++) {
      const fixMin = min + int(r, -4, 1);
      const ranges =
        r() < 0.2
          ? [['0', `${maj - 1}.9.9`]]
          : [[`${maj}.0.0`, `${maj}.${Math.max(0, fixMin)}.${int(r, 0, 5)}`]];
      if (r() < 0.25) ranges.unshift(['0', `${Math.max(0, maj - 1)}.${int(r, 0, 9)}.0`]);
      const rec = npmRecord(r, ++seq, name, ranges, { detailsMean: 400 });
      zip.add(`${rec.id}.json`, Buffer.from(JSON.stringify(rec)));
    }
  }
  const summary = zip.close();
  return { ...summary, deb, npm, debAdvised, npmAdvised };
}

const LAYER = { index: 0, digest: 'sha256:' + '0'.repeat(64) };
const APP_LAYER = { index: 1, digest: 'sha256:' + '1'.repeat(64) };
const BIN_SUFFIX = ['', '-common', '-bin', '-dev', '-data', '-utils'];



/**
 * One image of exactly 500 packages. Image 0 is the single-image benchmark. Images share a common
 * base (the 25 most-advised sources, as every Debian image ships glibc, openssl, systemd...) and
 * draw the rest from a skewed popularity, so across 200 images names repeat heavily.
 */
export function imagePackages(set, index) {
  const r = rng(1000 + index);
  const skew = (arr) => arr[Math.floor(arr.length * r() ** 2)];
  const sources = new Set(set.deb.slice(0, 25).filter((n) => set.debAdvised.includes(n)));
  while (sources.size < 170) sources.add(r() < 0.85 ? skew(set.debAdvised) : pick(r, set.deb));
  const pkgs = [];
  const seen = new Set();
  const srcList = [...sources];
  let i = 0;
  while (pkgs.length < 350) {
    const src = srcList[i % srcList.length];
    const round = Math.floor(i / srcList.length);
    i++;
    if (round > 0 && r() < 0.4) continue;
    const bin =
      round === 0
        ? src
        : `${src}${BIN_SUFFIX[round % BIN_SUFFIX.length]}${round >= BIN_SUFFIX.length ? round : ''}`;
    if (seen.has(bin)) continue;
    seen.add(bin);
    const variant = (hash(src) + index) % 3;
    pkgs.push(debPackage(src, bin, debVersionsFor(src)[variant], LAYER));
  }
  const npmSeen = new Set();
  while (pkgs.length < 500) {
    const name = r() < 0.75 ? skew(set.npmAdvised) : pick(r, set.npm);
    if (npmSeen.has(name)) continue;
    npmSeen.add(name);
    pkgs.push(npmPackage(name, pick(r, npmVersions(name).installed), APP_LAYER));
  }
  return pkgs;
}

const debVersionsFor = (name) => debVersions(name).installed;
