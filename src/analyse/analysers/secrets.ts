import { createHash } from 'node:crypto';
import { shouldScanPath } from '../../secrets/allowlist.js';
import { defaultRuleSet, isProbablyBinary, scanText, type RuleSet } from '../../secrets/engine.js';
import type { Analyser, AnalyserFile, FileFacts } from '../types.js';

/** Text files bigger than this are not searched: real credentials live in small config files. */
export const SECRET_MAX_FILE_BYTES = 2 * 1024 * 1024;

/** A stable number for the rule set, so user rules and allowlists are part of the cache key. */
function ruleSetVersion(set: RuleSet): number {
  const h = createHash('sha256');
  for (const r of set.rules) h.update(`${r.id}\u0000${r.regex.source}\u0000${r.keywords.join(',')}\u0000${r.entropy ?? ''}\n`);
  h.update(JSON.stringify(set.allow, (_k, v: unknown) => (v instanceof RegExp ? v.source : v instanceof Set ? [...v] : v)) ?? '');
  return parseInt(h.digest('hex').slice(0, 8), 16);
}

/**
 * Searches every small text file of every layer. Binaries are dropped after their first bytes by
 * sniff(), and the engine's keyword prefilter keeps the common case to a few indexOf calls. Only
 * redacted findings leave the analyser, so the layer cache never holds a secret.
 */
export function createSecretAnalyser(set: RuleSet = defaultRuleSet()): Analyser {
  return {
    name: 'secrets',
    version: ruleSetVersion(set),
    maxFileSize: SECRET_MAX_FILE_BYTES,
    wants: (path, info) => info.size > 0 && info.size <= SECRET_MAX_FILE_BYTES && shouldScanPath(path),
    sniff: (head) => !isProbablyBinary(head),
    analyse(file: AnalyserFile): FileFacts {
      const found = scanText(file.content.toString('utf8'), { path: file.path }, set);
      return found.length ? { secrets: found.map((s) => ({ ruleId: s.ruleId, title: s.title, severity: s.severity, line: s.line, redacted: s.redacted })) } : {};
    },
  };
}
