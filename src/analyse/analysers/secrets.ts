import { createHash } from 'node:crypto';
import { PathMatcher, shouldScanPath, type Allowlist } from '../../secrets/allowlist.js';
import { defaultRuleSet, isProbablyBinary, scanContent, type FindingBound, type RuleSet } from '../../secrets/engine.js';
import type { Analyser, AnalyserFile, FileFacts } from '../types.js';

/** Text files bigger than this are not searched: real credentials live in small config files. */
export const SECRET_MAX_FILE_BYTES = 2 * 1024 * 1024;

/**
 * Most findings reported for one file. A file of credentials holds a handful; a 2 MB file of
 * 95,000 AWS key ids gave 95,000 findings, a 29 MB report and a 350 MB scan. The first ones are
 * kept, in file order, with a warning that says how many more there were.
 */
export const MAX_SECRETS_PER_FILE = 1_000;

/**
 * Trees the OS package manager owns (documentation, interpreters' standard libraries, package
 * databases): searching them costs most of the time and finds only documentation examples.
 */
const OS_OWNED_PREFIXES = [
  'usr/share/',
  'usr/include/',
  'usr/lib/python2',
  'usr/lib/python3',
  'usr/lib/jvm/',
  'usr/lib/x86_64-linux-gnu/perl',
  'usr/lib/aarch64-linux-gnu/perl',
  'usr/lib/x86_64-linux-gnu/perl-base/',
  'usr/lib/ruby/',
  'usr/lib/node_modules/npm/',
  'usr/local/lib/node_modules/npm/',
  'var/lib/dpkg/',
  'var/lib/apt/',
  'var/lib/rpm/',
  'var/cache/',
  'lib/apk/db/',
  'etc/ssl/certs/',
];

const NO_PATHS = new PathMatcher([]);

/** Third-party code shipped by language package managers: strong rules only, no generic guesses. */
const THIRD_PARTY = /(^|\/)(node_modules|site-packages|dist-packages|vendor|gems|\.cargo\/registry|go\/pkg\/mod)\//;

function wantsPath(path: string): boolean {
  for (const p of OS_OWNED_PREFIXES) if (path.startsWith(p)) return false;
  return shouldScanPath(path);
}

/** A stable number for the rule set, so user rules and allowlists are part of the cache key. */
function ruleSetVersion(set: RuleSet): number {
  const h = createHash('sha256');
  for (const r of set.rules) h.update(`${r.id}\u0000${r.regex.source}\u0000${r.keywords.join(',')}\u0000${r.entropy ?? ''}\n`);
  h.update(JSON.stringify(set.allow, (_k, v: unknown) => (v instanceof RegExp ? v.source : v instanceof Set ? [...v] : v)) ?? '');
  return parseInt(h.digest('hex').slice(0, 8), 16);
}

/**
 * One analyser per rule set, since every scan asks for one. Deriving the third-party subset again
 * each time gave the engine new rule lists, and with them a new keyword automaton and a new
 * WebAssembly walker per scan, and hashed the rules again for the version.
 */
const analysers = new WeakMap<RuleSet, Analyser>();

/**
 * Searches every small text file of every layer. Binaries are dropped after their first bytes by
 * sniff(), and the engine's keyword prefilter keeps the common case to a few indexOf calls. Only
 * redacted findings leave the analyser, so the layer cache never holds a secret.
 */
export function createSecretAnalyser(set: RuleSet = defaultRuleSet()): Analyser {
  let analyser = analysers.get(set);
  if (analyser === undefined) {
    analyser = buildSecretAnalyser(set);
    analysers.set(set, analyser);
  }
  return analyser;
}

function buildSecretAnalyser(set: RuleSet): Analyser {
  // Allowed paths are refused in wants(), before their content is buffered and sniffed (116
  // Markdown files of node-app's node_modules); the engine then need not check the path again.
  const checkedPaths: Allowlist = { ...set.allow, paths: NO_PATHS };
  const all: RuleSet = { rules: set.rules, allow: checkedPaths };
  const strongOnly: RuleSet = { rules: set.rules.filter((r) => !r.fallback), allow: checkedPaths };
  return {
    name: 'secrets',
    // The +4 marks the path policy above, the bound on findings and the depth bound on a JWT's
    // JSON (text.ts); change it when they change.
    version: ruleSetVersion(set) + 4,
    maxFileSize: SECRET_MAX_FILE_BYTES,
    wants: (path, info) =>
      info.size > 0 && info.size <= SECRET_MAX_FILE_BYTES && wantsPath(path) && !set.allow.paths.matches(path),
    sniff: (head) => !isProbablyBinary(head),
    analyse(file: AnalyserFile): FileFacts {
      const rules = THIRD_PARTY.test(file.path) ? strongOnly : all;
      // The engine makes findings of the first MAX_SECRETS_PER_FILE only, and counts the rest.
      const bound: FindingBound = { max: MAX_SECRETS_PER_FILE, total: 0 };
      const kept = scanContent(file.content, { path: file.path }, rules, bound);
      if (kept.length === 0) return {};
      const facts: FileFacts = { secrets: kept.map((s) => ({ ruleId: s.ruleId, title: s.title, severity: s.severity, line: s.line, redacted: s.redacted })) };
      if (bound.total > kept.length) {
        facts.warnings = [`${file.path}: ${bound.total - kept.length} more secrets past the first ${MAX_SECRETS_PER_FILE} not reported`];
      }
      return facts;
    },
  };
}
