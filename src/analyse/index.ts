export { analyseInput, GENERATOR_VERSION, type AnalyseOptions, type LayerProgress } from './analyse-image.js';
export { ALL_ANALYSERS } from './analysers/index.js';
export { DEFAULT_LIMITS, type WalkLimits } from './limits.js';
export type { Analyser, AnalyserFile, FileFacts } from './types.js';
export { ANALYSIS_PROCESS_FLAGS, ALLOCATOR_TUNABLES, withAllocatorTunables } from './heap.js';
