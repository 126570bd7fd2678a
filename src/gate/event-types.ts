/**
 * Every event the gate publishes. Kept free of imports: the config schema and the API's schemas
 * read it without loading the gate.
 */
export const GATE_EVENT_TYPES = [
  'pushed',
  'analysed',
  'verdict_changed',
  'pull_denied',
  'push_denied',
  'blocked_pull_allowed',
  'new_advisory_affects',
] as const;
export type GateEventType = (typeof GATE_EVENT_TYPES)[number];
