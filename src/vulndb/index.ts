export { findingsForKey, matchKeyOf, matchPackages, osEcosystem, evaluateRange, type AdvisorySource, type KeyFinding, type MatchKey, type MatchOptions } from './match.js';
export { withVulnerabilities } from './scan-match.js';
export { AdvisoryStore, VulnDbError, packageKey, vulnDbPath } from './store.js';
export { importOsv, type ImportSummary } from './import.js';
export { updateOsv, DEFAULT_OSV_BASE_URL, type UpdateProgress } from './update.js';
export { ALL_ECOSYSTEMS, DEFAULT_ECOSYSTEMS, ecosystemsToUpdate, readSeenEcosystems, recordSeenEcosystems } from './seen.js';
export { orderingFor } from './versions/index.js';
export { scoreVector, ratingFor } from './cvss/index.js';
