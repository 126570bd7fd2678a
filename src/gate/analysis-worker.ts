/**
 * The analysis of a pushed image, in a child process of the server (see analysis-process.ts):
 * decompressing and walking layers is seconds of CPU for a large image, which on the server's
 * event loop would stall every request meanwhile. The process reads blobs from the filesystem
 * blob store itself and answers with the facts.
 */
import { PortcullisError } from '../errors.js';
import { FsBlobStore } from '../store/blob-store.js';
import { analyseStoredImage } from './facts.js';
import type { AnalysisReply, AnalysisRequest } from './analysis-process.js';

function reply(message: AnalysisReply): void {
  // The server may be gone by the time an analysis ends; then there is no one to tell.
  if (process.connected) process.send!(message);
}

process.on('message', (req: AnalysisRequest) => {
  const blobs = new FsBlobStore(req.blobRoot);
  analyseStoredImage(
    { repository: req.repository, digest: req.digest, mediaType: req.mediaType, manifest: Buffer.from(req.manifest), openBlob: (d) => blobs.open(d) },
    req.dataDir,
  ).then(
    (result) => reply({ id: req.id, ok: true, result }),
    (err: unknown) =>
      reply({
        id: req.id,
        ok: false,
        error: {
          message: err instanceof Error ? err.message : String(err),
          ...(err instanceof PortcullisError ? { code: err.code } : {}),
        },
      }),
  );
});

// The server closed its end (it stopped, or was killed): nothing more will come.
process.on('disconnect', () => process.exit(0));
