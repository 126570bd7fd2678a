import type { Analyser } from '../types.js';
import { apkAnalyser } from './apk.js';
import { dpkgAnalyser } from './dpkg.js';
import { osReleaseAnalyser } from './os-release.js';

/**
 * Every analyser Portcullis runs, in no particular order. Adding one here is all it takes: the
 * layer walker asks each for the paths it wants, and the cache key includes each name and version.
 */
export const ALL_ANALYSERS: readonly Analyser[] = [osReleaseAnalyser, apkAnalyser, dpkgAnalyser];
