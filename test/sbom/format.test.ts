import { describe, expect, it } from 'vitest';

import {
  formatResult,
  OUTPUT_FORMATS,
  toJson,
  validateCycloneDx,
  validateSpdx,
} from '../../src/sbom/index.js';
import { makeResult } from './fixture.js';

describe('formatResult', () => {
  const result = makeResult();

  it('renders every format', async () => {
    for (const format of OUTPUT_FORMATS)
      expect(formatResult(result, format, {}).length, format).toBeGreaterThan(0);
    expect(formatResult(result, 'json', {})).toBe(toJson(result));
    expect(await validateCycloneDx(formatResult(result, 'cyclonedx', {}))).toBeNull();
    expect(validateSpdx(formatResult(result, 'spdx', {}))).toBeNull();
    expect(formatResult(result, 'table', { color: true })).toContain('\u001b[');
  });

  it('passes SPDX options through', () => {
    const doc = JSON.parse(
      formatResult(result, 'spdx', { spdx: { namespaceBase: 'https://sbom.example.org/docs' } }),
    ) as {
      documentNamespace: string;
    };
    expect(doc.documentNamespace.startsWith('https://sbom.example.org/docs/')).toBe(true);
  });

  it('refuses unknown formats', () => {
    expect(() => formatResult(result, 'xml' as never, {})).toThrow(/unknown output format/);
  });
});
