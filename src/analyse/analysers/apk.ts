import type { PackageRecord } from '../../sbom/model.js';
import { MAX_PACKAGES_PER_FILE } from '../dispatch.js';
import type { Analyser, AnalyserFile, FileFacts, OwnedFiles } from '../types.js';
import { LineStream, OwnedFilesBound, PathList } from './parse-helpers.js';

const INSTALLED = 'lib/apk/db/installed';

/**
 * Reads the installed database as its bytes arrive (LineStream), so that a database up to the
 * 64 MiB limit is never held whole (63 MiB of it was, on top of what was read out of it), and
 * gathers each package's files into one string (PathList).
 */
class InstalledReader extends LineStream {
  private readonly packages: PackageRecord[] = [];
  private readonly owned: OwnedFiles[] = [];
  private readonly warnings: string[] = [];
  private current: Partial<PackageRecord> & { dir?: string } = {};
  private files = new PathList();
  private hasFiles = false;
  // Files kept for `owned` so far, over all packages, and those past the bound left out.
  private readonly bound = new OwnedFilesBound();

  constructor(private readonly path: string) {
    super();
  }

  protected line(line: string): void {
    if (line.trim() === '') {
      this.flush();
      // One past the bound is enough for the dispatcher to say the file lists too many.
      if (this.packages.length > MAX_PACKAGES_PER_FILE) this.stopped = true;
      return;
    }
    if (line.length < 2 || line[1] !== ':') return;
    const value = line.slice(2);
    const current = this.current;
    switch (line[0]) {
      case 'P':
        current.name = value;
        break;
      case 'V':
        current.version = value;
        break;
      case 'o':
        current.sourceName = value;
        break;
      case 'A':
        current.arch = value;
        break;
      case 'L':
        current.licenses = value ? [value] : [];
        break;
      case 'F':
        current.dir = value;
        break;
      case 'R': {
        const path = current.dir ? `${current.dir}/${value}` : value;
        if (this.bound.admit(path)) {
          this.files.add(path);
          this.hasFiles = true;
        }
        break;
      }
    }
  }

  protected finish(): FileFacts {
    this.flush();
    const tooMany = this.bound.warning(this.path, 'database');
    if (tooMany) this.warnings.push(tooMany);
    return { packages: this.packages, owned: this.owned, warnings: this.warnings };
  }

  private flush(): void {
    const current = this.current;
    const files = this.files.take();
    const hasFiles = this.hasFiles;
    this.hasFiles = false;
    this.current = {};
    if (current.name && current.version) {
      this.packages.push({
        type: 'apk',
        name: current.name,
        version: current.version,
        sourceName: current.sourceName ?? current.name,
        sourceVersion: current.version,
        arch: current.arch,
        licenses: current.licenses ?? [],
        paths: [this.path],
      });
      if (hasFiles) this.owned.push({ owner: { type: 'apk', name: current.name }, files });
    } else if (current.name || current.version) {
      this.warnings.push(`${this.path}: a package record without ${current.name ? 'V:' : 'P:'} was skipped`);
    }
  }
}

/**
 * Alpine's installed database (`lib/apk/db/installed`): blank-line separated records of `X:value`
 * lines. P name, V version, o origin (source package), A arch, L licence, F folder, R file in the
 * last folder. The file records let us mark language packages apk installed.
 */
export const apkAnalyser: Analyser = {
  name: 'apk',
  // 3: read as it arrives; a line over MAX_LINE_BYTES keeps its first bytes only.
  version: 3,
  maxFileSize: 64 * 1024 * 1024,
  wants: (path) => path === INSTALLED,
  stream: (path) => new InstalledReader(path),
  analyse(file: AnalyserFile): FileFacts {
    return new InstalledReader(file.path).readAll(file.content);
  },
};
