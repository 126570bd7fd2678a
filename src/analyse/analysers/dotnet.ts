import type { PackageRecord } from '../../sbom/model.js';
import type { Analyser, FileFacts } from '../types.js';
import { parseJsonFile } from './parse-helpers.js';

/**
 * .NET: the `*.deps.json` a published app carries. Only `package` libraries are NuGet packages;
 * `project` and `reference` entries are the app's own assemblies.
 */

export const dotnetAnalyser: Analyser = {
  name: 'dotnet',
  version: 2,
  maxFileSize: 20 * 1024 * 1024,
  wants(path) {
    return path.endsWith('.deps.json');
  },
  analyse(file): FileFacts {
    const parsed = parseJsonFile(file);
    if ('warning' in parsed) return { warnings: [parsed.warning] };
    const doc = parsed.doc;
    const libs =
      typeof doc === 'object' && doc !== null ? (doc as Record<string, unknown>)['libraries'] : undefined;
    if (typeof libs !== 'object' || libs === null || Array.isArray(libs)) {
      return { warnings: [`${file.path}: no "libraries" object`] };
    }
    const packages: PackageRecord[] = [];
    for (const [key, lib] of Object.entries(libs)) {
      if (typeof lib !== 'object' || lib === null || (lib as Record<string, unknown>)['type'] !== 'package')
        continue;
      const slash = key.indexOf('/');
      if (slash <= 0 || slash === key.length - 1) continue;
      packages.push({
        type: 'nuget',
        name: key.slice(0, slash),
        version: key.slice(slash + 1),
        paths: [file.path],
      });
    }
    return { packages };
  },
};
