import type { FormatOptions, OutputFormat } from './index.js';
import type { ScanResult } from './result.js';

const indented = (doc: object): string => JSON.stringify(doc, null, 2);

/**
 * Renders a result as formatResult (index.ts) does, loading only the writer the format needs. The
 * CycloneDX library and the schema validators cost tens to hundreds of milliseconds to load; a
 * table or JSON scan should not pay for them, nor an SPDX or SARIF one for the CycloneDX writer.
 */
export async function renderResult(result: ScanResult, format: OutputFormat, opts: FormatOptions = {}): Promise<string> {
  switch (format) {
    case 'table':
      return (await import('./table.js')).toTable(result, { color: opts.color ?? false });
    case 'json':
      return (await import('./json.js')).toJson(result);
    case 'cyclonedx':
      return indented((await import('./cyclonedx.js')).toCycloneDx(result));
    case 'spdx':
      return indented((await import('./spdx.js')).toSpdx(result, opts.spdx));
    case 'sarif':
      return indented((await import('./sarif.js')).toSarif(result, opts.sarif));
    default: {
      const never: never = format;
      throw new RangeError(`unknown output format: ${String(never)}`);
    }
  }
}
