import type { PackageRecord } from '../../sbom/model.js';
import type { Analyser, AnalyserContext, AnalyserFile, FileFacts, OwnedFiles } from '../types.js';
import { isBdbHash, readBdbHeaderBlobs } from '../rpm/bdb.js';
import { type HeaderBlobs, parseSourceRpm, readRpmHeader, type RpmHeaderInfo } from '../rpm/header.js';
import { isNdb, readNdbHeaderBlobs } from '../rpm/ndb.js';
import { isSqlite, readSqliteHeaderBlobs } from '../rpm/sqlite.js';

/** Where rpm keeps its package database, per backend: sqlite (4.16+), BerkeleyDB (< 4.16), ndb (SUSE). */
export const RPM_DB_PATHS: ReadonlySet<string> = new Set([
  'var/lib/rpm/rpmdb.sqlite',
  'usr/lib/sysimage/rpm/rpmdb.sqlite',
  'var/lib/rpm/Packages',
  'var/lib/rpm/Packages.db',
  'usr/lib/sysimage/rpm/Packages.db',
]);

/** Imported signing keys are stored as fake packages named this; they are not software. */
const GPG_PUBKEY = 'gpg-pubkey';

/**
 * Turns the header blobs of one database into packages and file ownership. Headers that fail to
 * parse are counted and reported once, so one corrupt entry neither hides the rest nor floods
 * the warnings.
 */
export function factsFromHeaderBlobs(path: string, scan: HeaderBlobs): FileFacts {
  const packages: PackageRecord[] = [];
  const owned: OwnedFiles[] = [];
  const problems = [...scan.problems];
  for (const blob of scan.blobs) {
    let info: RpmHeaderInfo;
    try {
      info = readRpmHeader(blob);
    } catch (err) {
      problems.push(err instanceof Error ? err.message : String(err));
      continue;
    }
    if (info.name === GPG_PUBKEY) continue;
    packages.push(toPackageRecord(path, info));
    // A path with a newline in it cannot be one of OwnedFiles' lines; no package installs one.
    const files = info.files.map(normalisePath).filter((f) => f !== '' && !f.includes('\n'));
    if (files.length > 0) owned.push({ owner: { type: 'rpm', name: info.name }, files: `${files.join('\n')}\n` });
  }
  const facts: FileFacts = {};
  if (packages.length > 0) facts.packages = packages;
  if (owned.length > 0) facts.owned = owned;
  const warnings: string[] = [];
  // A limit reached is said first and on its own: the packages listed may be only some of them.
  if (scan.stopped !== undefined)
    warnings.push(`${path}: rpm database read only in part: ${oneLine(scan.stopped)}`);
  if (problems.length > 0) {
    const more = problems.length > 1 ? ` (and ${problems.length - 1} more)` : '';
    warnings.push(`${path}: skipped damaged rpm database entries: ${oneLine(problems[0] ?? '')}${more}`);
  }
  if (warnings.length > 0) facts.warnings = warnings;
  return facts;
}

function toPackageRecord(path: string, info: RpmHeaderInfo): PackageRecord {
  // Portcullis versions rpm packages as version-release; the epoch travels separately.
  const record: PackageRecord = { type: 'rpm', name: info.name, version: `${info.version}-${info.release}` };
  if (info.epoch !== undefined && info.epoch !== 0) record.epoch = info.epoch;
  if (info.arch) record.arch = info.arch;
  if (info.license) record.licenses = [info.license];
  if (info.sourceRpm) {
    const source = parseSourceRpm(info.sourceRpm);
    if (source) {
      record.sourceName = source.name;
      record.sourceVersion = source.version;
    }
  }
  record.paths = [path];
  return record;
}

/** rpm records absolute paths; the rest of Portcullis uses them without the leading slash. */
function normalisePath(p: string): string {
  return p.replace(/^\/+/, '').replace(/\/+$/, '');
}

function readBlobs(file: AnalyserFile, ctx: AnalyserContext): HeaderBlobs {
  // Decide by content, not name: the paths are fixed per backend, but a file of the wrong kind
  // under one of them should be reported, not misparsed.
  const content = file.content;
  if (isSqlite(content)) return readSqliteHeaderBlobs(content, ctx.scratchDir);
  if (isNdb(content)) return readNdbHeaderBlobs(content);
  if (isBdbHash(content)) return readBdbHeaderBlobs(content);
  throw new Error('not an rpm database (unknown file format)');
}

export const rpmAnalyser: Analyser = {
  name: 'rpm',
  version: 1,
  // Large Fedora/RHEL BerkeleyDB databases reach a few hundred MiB.
  maxFileSize: 1024 * 1024 * 1024,
  wants(path: string): boolean {
    return RPM_DB_PATHS.has(path);
  },
  analyse(file: AnalyserFile, ctx: AnalyserContext): FileFacts {
    // An empty file is an uninitialised database, e.g. a leftover after a backend migration.
    if (file.content.length === 0) return {};
    let scan: HeaderBlobs;
    try {
      scan = readBlobs(file, ctx);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      return { warnings: [`${file.path}: unreadable rpm database: ${oneLine(reason)}`] };
    }
    return factsFromHeaderBlobs(file.path, scan);
  },
};

function oneLine(s: string): string {
  return s.replace(/\s+/g, ' ').trim();
}
