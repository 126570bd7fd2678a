import type { Analyser } from '../types.js';
import { apkAnalyser } from './apk.js';
import { cargoLockAnalyser } from './cargo-lock.js';
import { dotnetAnalyser } from './dotnet.js';
import { dpkgAnalyser } from './dpkg.js';
import { goBinaryAnalyser } from './go-binary.js';
import { javaAnalyser } from './java.js';
import { npmAnalyser } from './npm.js';
import { osReleaseAnalyser } from './os-release.js';
import { phpAnalyser } from './php.js';
import { pythonAnalyser } from './python.js';
import { rpmAnalyser } from './rpm.js';
import { rubyAnalyser } from './ruby.js';
import { rustBinaryAnalyser } from './rust-binary.js';

/**
 * Every analyser Portcullis runs, in no particular order. Adding one here is all it takes: the
 * layer walker asks each for the paths it wants, and the cache key includes each name and version.
 */
export const ALL_ANALYSERS: readonly Analyser[] = [
  osReleaseAnalyser,
  apkAnalyser,
  dpkgAnalyser,
  rpmAnalyser,
  npmAnalyser,
  pythonAnalyser,
  javaAnalyser,
  goBinaryAnalyser,
  rustBinaryAnalyser,
  rubyAnalyser,
  phpAnalyser,
  dotnetAnalyser,
  cargoLockAnalyser,
];
