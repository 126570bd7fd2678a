/**
 * Node flags for a process whose main work is analysing images: the registry's analysis process,
 * and the benchmark's in-process figures, which measure that configuration.
 *
 * Why a larger first heap. A fresh V8 heap starts with an old-generation limit only a little
 * above what the loaded modules occupy (about 10 MB live here, limit about 25 MB). V8 counts the
 * ArrayBuffers a stream allocates (zlib's 1 MiB output chunks, file reads) against that limit
 * until they are swept, which V8 11 does on a helper thread after the minor GC that found them
 * dead has already checked the limit. Streaming a layer therefore starts a full, incremental
 * mark-compact every 10–30 MB: about once per small image, and over a hundred times for a 1 GiB
 * layer, each one
 * marking the whole heap on the same two cores that inflate the layer. A process holding little
 * but a decompressor (under V8's 8 MB threshold for incremental marking) never pays this, which is
 * why a bare gunzip loop is so much cheaper than the same loop in a process that has the scanner
 * loaded. An old generation configured at 64 MB from the start leaves room for that churn. The
 * registry's analysis of a stored image, measured against the former worker thread: alpine-3.20
 * 53 → 40 ms, go-app 35 → 22 ms, a 1 GiB layer 3.6 → 2.9 s; node-app, bound by its CPU, did not
 * change (BENCHMARKS.md, "The analysis heap"). 128 MB was no faster and raised peak RSS.
 *
 * These flags are set when the process starts (child_process.fork's execArgv), never changed at
 * run time: V8 reads them once, when it sizes the heap.
 */
export const ANALYSIS_PROCESS_FLAGS: readonly string[] = ['--initial-old-space-size=64'];
