import type { PackageRecord } from '../../sbom/model.js';
import { MAX_OWNED_FILES_PER_FILE, MAX_PACKAGES_PER_FILE } from '../dispatch.js';
import type { Analyser, AnalyserFile, FileFacts, OwnedFiles } from '../types.js';
import { linesOf } from './parse-helpers.js';

/**
 * Alpine's installed database (`lib/apk/db/installed`): blank-line separated records of `X:value`
 * lines. P name, V version, o origin (source package), A arch, L licence, F folder, R file in the
 * last folder. The file records let us mark language packages apk installed.
 */
export const apkAnalyser: Analyser = {
  name: 'apk',
  version: 2,
  maxFileSize: 64 * 1024 * 1024,
  wants: (path) => path === 'lib/apk/db/installed',
  analyse(file: AnalyserFile): FileFacts {
    const packages: PackageRecord[] = [];
    const owned: OwnedFiles[] = [];
    const warnings: string[] = [];
    let current: Partial<PackageRecord> & { files?: string[]; dir?: string } = {};
    // Files kept for `owned` so far, over all packages, and those past the bound left out.
    let fileCount = 0;
    let dropped = 0;

    const done = (): FileFacts => {
      flush();
      if (dropped > 0) {
        warnings.push(
          `${file.path}: lists ${fileCount + dropped} installed files, more than any real database; kept the first ${MAX_OWNED_FILES_PER_FILE}`,
        );
      }
      return { packages, owned, warnings };
    };

    const flush = () => {
      if (current.name && current.version) {
        packages.push({
          type: 'apk',
          name: current.name,
          version: current.version,
          sourceName: current.sourceName ?? current.name,
          sourceVersion: current.version,
          arch: current.arch,
          licenses: current.licenses ?? [],
          paths: [file.path],
        });
        if (current.files?.length) owned.push({ owner: { type: 'apk', name: current.name }, files: current.files });
      } else if (current.name || current.version) {
        warnings.push(`${file.path}: a package record without ${current.name ? 'V:' : 'P:'} was skipped`);
      }
      current = {};
    };

    for (const line of linesOf(file.content)) {
      if (line.trim() === '') {
        flush();
        // One past the bound is enough for the dispatcher to say the file lists too many.
        if (packages.length > MAX_PACKAGES_PER_FILE) return done();
        continue;
      }
      if (line.length < 2 || line[1] !== ':') continue;
      const value = line.slice(2);
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
        case 'R':
          if (fileCount >= MAX_OWNED_FILES_PER_FILE) dropped++;
          else {
            fileCount++;
            (current.files ??= []).push(current.dir ? `${current.dir}/${value}` : value);
          }
          break;
      }
    }
    return done();
  },
};
