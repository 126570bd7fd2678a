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

/**
 * glibc malloc settings for the same processes, passed as GLIBC_TUNABLES when they start (glibc
 * reads them once, before main; other C libraries ignore the variable).
 *
 * Why. Streaming a layer allocates a fresh 1 MiB buffer for every file read and every zlib output
 * chunk, and V8 frees them in batches when it collects. With glibc's defaults a freed batch at the
 * top of the heap is returned to the kernel (the trim threshold follows the largest freed mmap
 * chunk, a few MiB), so the next batch is fresh memory again, and every 4 KiB page of it is a page
 * fault. On virtual machines without hardware-assisted paging a fault costs about 10 µs: 2.8 ms for
 * each MiB, more than inflating that MiB. The 1 GiB layer's analysis faulted 67,000–70,000 pages
 * per call in a warm process. With freed memory kept (trim only above 32 MiB free) and 1 MiB
 * buffers served from the heap rather than by mmap (threshold fixed at 4 MiB, which also stops
 * glibc's self-adjusting thresholds), the same call faults 4,800–7,800 pages and takes 1.9–2.1 s
 * instead of 2.3–2.7 s (BENCHMARKS.md, "Page faults"). Both settings are needed: the mmap
 * threshold alone still faulted 16,000–72,000 pages. The cost is that up to 32 MiB of freed memory
 * stays with the process.
 */
export const ALLOCATOR_TUNABLES: Readonly<Record<string, string>> = {
  'glibc.malloc.mmap_threshold': String(4 << 20),
  'glibc.malloc.trim_threshold': String(32 << 20),
};

/**
 * `env` with ALLOCATOR_TUNABLES added to GLIBC_TUNABLES. Settings the caller already gives there
 * win: someone who tunes glibc by hand knows their machine.
 */
export function withAllocatorTunables(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const given = (env.GLIBC_TUNABLES ?? '').split(':').filter(Boolean);
  const named = new Set(given.map((t) => t.split('=')[0]));
  const added = Object.entries(ALLOCATOR_TUNABLES)
    .filter(([name]) => !named.has(name))
    .map(([name, value]) => `${name}=${value}`);
  return { ...env, GLIBC_TUNABLES: [...given, ...added].join(':') };
}
