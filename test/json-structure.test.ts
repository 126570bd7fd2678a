import { describe, expect, it } from 'vitest';
import { jsonPastBounds } from '../src/json-structure.js';
import { parseJson, ManifestSchema } from '../src/oci/schemas.js';

describe('jsonPastBounds', () => {
  it('measures nesting, not brackets inside strings or escaped quotes', () => {
    expect(jsonPastBounds('{"a":[[1]]}', { maxDepth: 3 })).toBeUndefined();
    expect(jsonPastBounds('{"a":[[[1]]]}', { maxDepth: 3 })).toBe('depth');
    expect(jsonPastBounds(JSON.stringify({ s: '[[[[[[', t: 'a\\"[[[[' }), { maxDepth: 1 })).toBeUndefined();
    // Siblings do not add up: depth returns to where it was.
    expect(jsonPastBounds('[[1],[2],[3],[[4]]]', { maxDepth: 3 })).toBeUndefined();
  });

  it('counts containers and every eighth comma against maxContainers', () => {
    expect(jsonPastBounds('[[],[],[]]', { maxDepth: 5, maxContainers: 4 })).toBeUndefined();
    expect(jsonPastBounds('[[],[],[],[]]', { maxDepth: 5, maxContainers: 4 })).toBe('containers');
    expect(jsonPastBounds(`[${Array(80).fill(1).join(',')}]`, { maxDepth: 5, maxContainers: 9 })).toBe('containers');
  });
});

describe('parseJson (manifests and configs read by the scanner)', () => {
  it('refuses a document nested deeper than 64 levels with a one-line error naming it', () => {
    const deep = `{"schemaVersion":2,"x":${'['.repeat(100)}${']'.repeat(100)}}`;
    expect(() => parseJson(ManifestSchema, deep, 'oci:img manifest')).toThrow(/^oci:img manifest: JSON nested deeper than 64 levels/);
  });
});
