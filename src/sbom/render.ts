import type { FormatOptions, OutputFormat } from './index.js';
import type { ScanResult } from './result.js';

/**
 * Renders a result, loading only the writer the format needs. The CycloneDX library and the
 * schema validators cost hundreds of milliseconds to load; a table or JSON scan should not pay it.
 */
export async function renderResult(result: ScanResult, format: OutputFormat, opts: FormatOptions = {}): Promise<string> {
  switch (format) {
    case 'table':
      return (await import('./table.js')).toTable(result, { color: opts.color ?? false });
    case 'json':
      return (await import('./json.js')).toJson(result);
    default:
      return (await import('./index.js')).formatResult(result, format, opts);
  }
}
