/**
 * The analysis of a pushed image, on a worker thread: decompressing and walking layers is seconds
 * of CPU for a large image, which on the server's event loop would stall every request meanwhile.
 * The worker reads blobs from the filesystem blob store itself and answers with the facts.
 */
import { parentPort } from 'node:worker_threads';
import { PortcullisError } from '../errors.js';
import { FsBlobStore } from '../store/blob-store.js';
import { analyseStoredImage } from './facts.js';
import type { AnalysisReply, AnalysisRequest } from './analysis-thread.js';

parentPort?.on('message', (req: AnalysisRequest) => {
  const blobs = new FsBlobStore(req.blobRoot);
  analyseStoredImage(
    { repository: req.repository, digest: req.digest, mediaType: req.mediaType, manifest: Buffer.from(req.manifest), openBlob: (d) => blobs.open(d) },
    req.dataDir,
  ).then(
    (result) => parentPort!.postMessage({ id: req.id, ok: true, result } satisfies AnalysisReply),
    (err: unknown) =>
      parentPort!.postMessage({
        id: req.id,
        ok: false,
        error: {
          message: err instanceof Error ? err.message : String(err),
          ...(err instanceof PortcullisError ? { code: err.code } : {}),
        },
      } satisfies AnalysisReply),
  );
});
