import { inflateSync } from 'node:zlib';
import { z } from 'zod';
import type { PackageRecord } from '../../sbom/model.js';
import { findSection, isElf, parseElfCached, sectionData, wantsBinary, type ElfFile } from '../elf.js';
import type { Analyser, AnalyserFile, FileFacts } from '../types.js';
import { jsonTooLarge } from './parse-helpers.js';

/**
 * Rust binaries built with cargo-auditable carry their dependency tree in an ELF section named
 * `.dep-v0`: zlib-compressed JSON `{"packages":[{name, version, source, kind?, dependencies?, root?}]}`.
 */

const SECTION = '.dep-v0';
const DEP_SECTION_NAME = Buffer.from(SECTION, 'latin1');
/** The real JSON is a few KiB to a few hundred KiB; this bounds a zlib bomb. */
const MAX_JSON_BYTES = 16 * 1024 * 1024;

const auditSchema = z.object({
  packages: z.array(
    z.object({
      name: z.string().min(1),
      version: z.string().min(1),
      source: z.string().optional(),
      kind: z.string().optional(),
      dependencies: z.array(z.number()).optional(),
      root: z.boolean().optional(),
    }),
  ),
});

export type CargoAuditInfo = z.infer<typeof auditSchema>;

/** Reads the cargo-auditable data; undefined when the binary has none. Throws on corrupt data. */
export function readCargoAudit(elf: ElfFile): CargoAuditInfo | undefined {
  const sec = findSection(elf, SECTION);
  if (!sec) return undefined;
  const raw = sectionData(elf, sec);
  if (!raw) throw new Error(`${SECTION} section lies outside the file`);
  const json = inflateSync(raw, { maxOutputLength: MAX_JSON_BYTES });
  const text = json.toString('utf8');
  const tooDeep = jsonTooLarge(`${SECTION} JSON`, text);
  if (tooDeep) throw new Error(tooDeep);
  const parsed = auditSchema.safeParse(JSON.parse(text));
  if (!parsed.success) throw new Error(`${SECTION} JSON has an unexpected shape`);
  return parsed.data;
}

export function cargoAuditPackages(info: CargoAuditInfo, filePath: string): PackageRecord[] {
  const out: PackageRecord[] = [];
  const seen = new Set<string>();
  for (const p of info.packages) {
    // Build-time dependencies (build scripts, proc macros) are not linked into the binary, so a
    // vulnerability in them does not ship with it; Trivy skips them for the same reason.
    if (p.kind === 'build') continue;
    const key = `${p.name}@${p.version}`;
    if (seen.has(key)) continue;
    seen.add(key);
    const properties: Record<string, string> = { source: 'cargo-auditable' };
    if (p.source) properties.crateSource = p.source;
    if (p.root) properties.root = 'true';
    out.push({ type: 'cargo', name: p.name, version: p.version, paths: [filePath], properties });
  }
  return out;
}

export const rustBinaryAnalyser: Analyser = {
  name: 'rust-binary',
  version: 2,
  maxFileSize: 512 * 1024 * 1024,
  wants: wantsBinary,
  sniff: isElf,
  // The audit data is found by its section's name, which the section name table holds.
  markers: [DEP_SECTION_NAME],
  analyse(file: AnalyserFile): FileFacts {
    let elf: ElfFile;
    try {
      elf = parseElfCached(file.content);
    } catch {
      // Malformed ELF files are reported once, by the Go binary analyser.
      return {};
    }
    try {
      const info = readCargoAudit(elf);
      if (!info) return {};
      return { packages: cargoAuditPackages(info, file.path) };
    } catch (e) {
      const msg = e instanceof Error ? e.message : String(e);
      return { warnings: [`${file.path}: cargo-auditable data not readable: ${msg}`] };
    }
  },
};
