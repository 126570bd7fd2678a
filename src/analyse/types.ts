import type { Severity } from '../sbom/finding.js';
import type { OsInfo, PackageRecord } from '../sbom/model.js';

/** A file handed to an analyser: its normalised path (no leading slash) and full content. */
export interface AnalyserFile {
  /** Path inside the image, normalised: no leading `/` or `./`, no `..`, e.g. `var/lib/dpkg/status`. */
  path: string;
  size: number;
  /** Unix permission bits (e.g. 0o755). */
  mode: number;
  /**
   * The whole file. Valid only until analyse() returns (or its promise settles): the walker reuses
   * the memory of large files for the next one, so copy out anything kept (strings already are).
   */
  content: Buffer;
}

export interface FileInfo {
  size: number;
  mode: number;
}

/** Files one OS package installed, so language packages found in them can be marked as owned. */
export interface OwnedFiles {
  owner: { type: 'deb' | 'apk' | 'rpm'; name: string };
  /**
   * Normalised paths (no leading slash), each followed by a newline: one string rather than an
   * array, since a database may list hundreds of thousands of them (an array of strings cost
   * about three times the text, and as much again in the layer cache). Read with ownedPaths().
   */
  files: string;
}

/** The paths of OwnedFiles.files, in order. */
export function* ownedPaths(files: string): Generator<string> {
  for (let from = 0; from < files.length; ) {
    const nl = files.indexOf('\n', from);
    const end = nl < 0 ? files.length : nl;
    yield files.slice(from, end);
    from = end + 1;
  }
}

/** What an analyser learned from one file. Everything here is plain JSON: it is cached per layer. */
export interface FileFacts {
  packages?: PackageRecord[];
  os?: OsInfo;
  owned?: OwnedFiles[];
  /** Licences an OS package declares in a separate file (Debian's usr/share/doc/PKG/copyright). */
  licenses?: Array<{ owner: OwnedFiles['owner']; licenses: string[] }>;
  /** Secrets in this file, already redacted: the cache never holds a secret. */
  secrets?: Array<{ ruleId: string; title: string; severity: Severity; line?: number; redacted: string }>;
  /** Risky file properties seen by the walker (setuid, setgid, world-writable, pm-cache). */
  attributes?: FileAttribute[];
  warnings?: string[];
}

export type FileAttribute = 'setuid' | 'setgid' | 'world-writable' | 'pm-cache';

export interface AnalyserContext {
  /**
   * A folder the analyser may write scratch files to (e.g. to open an SQLite database). The scanner
   * creates it when this property is first read, so read it only when about to write there.
   */
  readonly scratchDir: string;
}

/**
 * An analyser registers the paths it wants; the layer walker reads each file once and hands it only
 * to the analysers that asked. Bump `version` whenever output for the same input changes: it is part
 * of the per-layer cache key.
 */
export interface Analyser {
  readonly name: string;
  readonly version: number;
  /** Largest file this analyser will read; bigger files are skipped with a warning. */
  readonly maxFileSize: number;
  /** Cheap decision from the path and metadata alone; called for every regular file. */
  wants(path: string, info: FileInfo): boolean;
  /**
   * Optional check on the first bytes (at least 64 when the file is that large) before the whole
   * file is buffered, e.g. to keep only ELF binaries. Returning false skips the file.
   */
  sniff?(head: Buffer): boolean;
  /**
   * Optional byte strings of which at least one occurs in every file this analyser can find
   * anything in. The walker looks for them in the chunks as they pass and drops the analyser from a
   * file that has none, so that most binaries are never joined into one buffer and parsed.
   */
  readonly markers?: readonly Buffer[];
  analyse(file: AnalyserFile, ctx: AnalyserContext): Promise<FileFacts> | FileFacts;
  /**
   * Optional: read this file as its bytes arrive instead of whole, for a file that may be large
   * (a dpkg status of up to 128 MiB was held whole). Undefined hands the file to analyse() as
   * usual. Not asked of an analyser with sniff() or markers.
   */
  stream?(path: string, info: FileInfo): FileStream | undefined;
}

/** An analyser's reader of one file as it arrives (see Analyser.stream). */
export interface FileStream {
  /** The file's next bytes, in order. Valid only during the call: copy anything kept. */
  write(chunk: Buffer): void;
  /** The file has ended: what was found in it. */
  end(): FileFacts;
}

/** Helper for analysers: the file name (last path segment). */
export function baseName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? path : path.slice(i + 1);
}

/** Helper for analysers: the parent folder (no trailing slash; '' for the root). */
export function dirName(path: string): string {
  const i = path.lastIndexOf('/');
  return i < 0 ? '' : path.slice(0, i);
}
