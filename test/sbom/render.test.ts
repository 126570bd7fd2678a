import { describe, expect, it } from 'vitest';
import { OUTPUT_FORMATS, formatResult } from '../../src/sbom/index.js';
import { renderResult } from '../../src/sbom/render.js';
import { makeResult, makeVulnResult } from './fixture.js';

// renderResult loads one writer per format; it must say exactly what formatResult says.
const volatile = (text: string) =>
  text
    .replace(/"urn:uuid:[0-9a-f-]+"/g, '"urn:uuid:…"')
    .replace(/"(timestamp|created)": "[^"]+"/g, '"$1": "…"');

describe('renderResult', () => {
  for (const format of OUTPUT_FORMATS) {
    it(`${format}: the same text as formatResult`, async () => {
      for (const result of [makeResult(), makeVulnResult()]) {
        const rendered = await renderResult(result, format, {
          spdx: { namespaceBase: 'https://example.test/spdx' },
        });
        const formatted = formatResult(result, format, {
          spdx: { namespaceBase: 'https://example.test/spdx' },
        });
        expect(rendered.length).toBeGreaterThan(100);
        expect(volatile(rendered)).toBe(volatile(formatted));
      }
    });
  }
});
