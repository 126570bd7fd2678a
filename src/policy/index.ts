/** Policy: what the user accepts (ignore file, VEX), what they want to see, and when to fail. */
export {
  PolicyError,
  detectFormat,
  ignoreRuleMatches,
  isIgnoreExpired,
  isValidDate,
  loadIgnoreFile,
  parseIgnoreText,
  purlHasPrefix,
  type IgnoreFormat,
  type IgnoreRule,
} from './ignore.js';
export {
  VEX_JUSTIFICATIONS,
  VEX_STATUSES,
  describeVexStatement,
  loadVex,
  parseVex,
  purlMatches,
  vexDecision,
  vexStatementApplies,
  vexSuppresses,
  type ImageIdentity,
  type VexJustification,
  type VexProduct,
  type VexStatement,
  type VexStatus,
} from './vex.js';
export {
  applySuppressions,
  type SuppressOptions,
  type SuppressResult,
  type SuppressedFinding,
} from './suppress.js';
export {
  filterFindings,
  parseSeverity,
  parseSeverityList,
  shouldFail,
  type FilterOptions,
} from './filter.js';
