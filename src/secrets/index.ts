/**
 * Secret detection: built-in rules, allowlists, user configuration and the scanning engine.
 * Callers get RawSecret values (redacted) and turn them into SecretFinding with toSecretFinding.
 */
import type { LayerRef } from '../sbom/model.js';
import type { SecretFinding } from '../sbom/finding.js';
import type { RawSecret } from './engine.js';

export {
  scanText,
  isProbablyBinary,
  redact,
  defaultRuleSet,
  type RawSecret,
  type RuleSet,
} from './engine.js';
export { BUILTIN_RULES, BUILTIN_RULE_IDS, type SecretRule, type MatchContext } from './rules.js';
export {
  shouldScanPath,
  isAllowedPath,
  builtinAllowlist,
  globToRegExp,
  normalizePath,
  PathMatcher,
  BUILTIN_ALLOW_PATHS,
  BUILTIN_ALLOW_VALUES,
  type Allowlist,
} from './allowlist.js';
export { loadSecretConfig, parseSecretConfig, buildRuleSet, type SecretConfig } from './config.js';
export { shannonEntropy } from './text.js';

/** Attach where a RawSecret was found, giving the SecretFinding the result model stores. */
export function toSecretFinding(
  raw: RawSecret,
  where: { location: SecretFinding['location']; target: string; layer?: LayerRef; deleted?: boolean },
): SecretFinding {
  const finding: SecretFinding = {
    ruleId: raw.ruleId,
    title: raw.title,
    severity: raw.severity,
    location: where.location,
    target: where.target,
    line: raw.line,
    redacted: raw.redacted,
  };
  if (where.layer !== undefined) finding.layer = where.layer;
  if (where.deleted === true) finding.deleted = true;
  return finding;
}
