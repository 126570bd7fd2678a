import { CvssError } from './errors.js';

/** Allowed values per metric abbreviation, e.g. `{ AV: ['N', 'A', 'L', 'P'] }`. */
export type MetricDefinitions = Readonly<Record<string, readonly string[]>>;

/**
 * Splits `CVSS:x.y/K:V/K:V...` into its version and metric map, shared by v3 and v4 because both
 * specifications use the same grammar. Metrics are accepted in any order (the v3.1 specification
 * requires readers to accept any order; v4.0 vectors in the wild are sometimes reordered by tools),
 * but each may appear only once, must be known, and must carry one of its defined values — a vector
 * we silently half-understood would produce a confident but wrong score.
 */
export function splitVector(
  vector: string,
  label: string,
  versions: readonly string[],
  definitions: MetricDefinitions,
  required: readonly string[],
): { version: string; metrics: Map<string, string> } {
  // Annotated (not inferred) so TypeScript treats calls as assertions and narrows after them.
  const fail: (why: string) => never = (why) => {
    throw new CvssError(`invalid ${label} vector "${vector}": ${why}`, vector);
  };
  if (typeof vector !== 'string' || vector.length === 0) fail('the vector is empty');
  const parts = vector.split('/');
  const head = parts[0] ?? '';
  const match = /^CVSS:(\d+\.\d+)$/.exec(head);
  if (!match) fail(`it must start with ${versions.map((v) => `"CVSS:${v}/"`).join(' or ')}`);
  const version = match[1] ?? '';
  if (!versions.includes(version)) {
    fail(`version ${version} is not supported here (expected ${versions.join(' or ')})`);
  }
  const metrics = new Map<string, string>();
  for (const part of parts.slice(1)) {
    if (part.length === 0) fail('it has an empty component (a doubled or trailing "/")');
    const pair = /^([A-Za-z]+):([A-Za-z]+)$/.exec(part);
    if (!pair) fail(`component "${part}" is not of the form METRIC:VALUE`);
    const key = pair[1] ?? '';
    const value = pair[2] ?? '';
    const allowed = Object.hasOwn(definitions, key) ? definitions[key] : undefined;
    if (!allowed) fail(`unknown metric "${key}"`);
    if (metrics.has(key)) fail(`metric "${key}" appears more than once`);
    if (!allowed.includes(value)) {
      fail(`metric "${key}" has value "${value}"; allowed: ${allowed.join(', ')}`);
    }
    metrics.set(key, value);
  }
  const missing = required.filter((key) => !metrics.has(key));
  if (missing.length > 0) fail(`missing required base metric(s) ${missing.join(', ')}`);
  return { version, metrics };
}
