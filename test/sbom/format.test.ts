import { describe, expect, it } from 'vitest';

import {
  formatResult,
  OUTPUT_FORMATS,
  toJson,
  validateCycloneDx,
  validateSarif,
  validateSpdx,
} from '../../src/sbom/index.js';
import { makeResult, makeVulnResult } from './fixture.js';

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

  it('renders a scan with vulnerabilities in every format, SARIF included', async () => {
    const scanned = makeVulnResult();
    expect(OUTPUT_FORMATS).toContain('sarif');
    for (const format of OUTPUT_FORMATS)
      expect(formatResult(scanned, format, {}).length, format).toBeGreaterThan(0);
    const sarif = formatResult(scanned, 'sarif', { sarif: { informationUri: 'https://example.org/p' } });
    expect(validateSarif(sarif)).toBeNull();
    expect(sarif).toContain('"informationUri": "https://example.org/p"');
    expect(await validateCycloneDx(formatResult(scanned, 'cyclonedx', {}))).toBeNull();
    expect(validateSpdx(formatResult(scanned, 'spdx', {}))).toBeNull();
    expect(formatResult(scanned, 'table', {})).toContain('Vulnerabilities: 6 (');
    expect(formatResult(scanned, 'json', {})).toContain('"vulnerabilities": [');
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
