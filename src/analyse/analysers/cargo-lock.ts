import { parse as parseToml } from 'smol-toml';
import type { PackageRecord } from '../../sbom/model.js';
import type { Analyser, FileFacts } from '../types.js';
import { baseName } from '../types.js';
import { oneLine, tomlTooLarge } from './parse-helpers.js';

/**
 * Rust: Cargo.lock `[[package]]` entries. Crates without a `source` are the workspace's own (path)
 * crates; they are kept, marked `properties.local`, so consumers can tell them apart.
 */

export const cargoLockAnalyser: Analyser = {
  name: 'cargo-lock',
  version: 2,
  maxFileSize: 20 * 1024 * 1024,
  wants(path) {
    // Unpacked crates in CARGO_HOME (registry sources, git checkouts) ship their own lockfiles;
    // those are build inputs of the crates, not of anything in the image.
    return (
      path.endsWith('Cargo.lock') &&
      baseName(path) === 'Cargo.lock' &&
      !path.includes('cargo/registry/src/') &&
      !path.includes('cargo/git/checkouts/')
    );
  },
  analyse(file): FileFacts {
    const text = file.content.toString('utf8');
    const tooLarge = tomlTooLarge(file.path, text);
    if (tooLarge) return { warnings: [tooLarge] };
    let doc: Record<string, unknown>;
    try {
      doc = parseToml(text);
    } catch (e) {
      return { warnings: [`${file.path}: invalid TOML: ${oneLine(e)}`] };
    }
    const list = doc['package'];
    if (list === undefined) return { packages: [] };
    if (!Array.isArray(list)) return { warnings: [`${file.path}: "package" is not an array of tables`] };
    const packages: PackageRecord[] = [];
    for (const p of list) {
      if (typeof p !== 'object' || p === null || Array.isArray(p)) continue;
      const entry = p as Record<string, unknown>;
      const name = entry['name'];
      const version = entry['version'];
      if (typeof name !== 'string' || typeof version !== 'string' || name === '' || version === '') continue;
      const rec: PackageRecord = { type: 'cargo', name, version, paths: [file.path] };
      if (entry['source'] === undefined) rec.properties = { local: 'true' };
      packages.push(rec);
    }
    return { packages };
  },
};
