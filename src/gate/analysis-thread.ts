import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { PortcullisError } from '../errors.js';
import type { ScanResult } from '../sbom/result.js';

export interface AnalysisRequest {
  id: number;
  repository: string;
  digest: string;
  mediaType: string;
  manifest: Uint8Array;
  blobRoot: string;
  dataDir: string;
}

export type AnalysisReply = { id: number; ok: true; result: ScanResult } | { id: number; ok: false; error: { message: string; code?: string } };

/** Content the analysis refused (a bomb, a corrupt layer): recorded, not retried. */
export class AnalysisRefused extends PortcullisError {}

/**
 * The compiled worker next to this module (`dist/gate/`, or the bundle's folder, where the
 * bundler emits it as its own entry); null when running from TypeScript sources, where the
 * analysis then runs in-process.
 */
export function analysisWorkerFile(): string | null {
  const file = fileURLToPath(new URL('./analysis-worker.js', import.meta.url));
  return existsSync(file) ? file : null;
}

/**
 * One worker thread that analyses images one at a time, started on first use. A worker that dies
 * (out of memory, a crash in a decompressor) fails the analyses it had, which the job queue
 * retries, and the next analysis starts a new one.
 */
export class AnalysisThread {
  private worker: Worker | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: ScanResult) => void; reject: (e: Error) => void }>();

  constructor(private readonly workerFile: string) {}

  analyse(req: Omit<AnalysisRequest, 'id'>): Promise<ScanResult> {
    const worker = this.start();
    const id = this.nextId++;
    return new Promise<ScanResult>((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      worker.postMessage({ ...req, id } satisfies AnalysisRequest);
    });
  }

  /** Starts the worker now, so the first push does not wait for it to load its modules. */
  warm(): void {
    this.start();
  }

  private start(): Worker {
    if (this.worker) return this.worker;
    const worker = new Worker(this.workerFile);
    worker.on('message', (reply: AnalysisReply) => {
      const waiting = this.pending.get(reply.id);
      if (!waiting) return;
      this.pending.delete(reply.id);
      if (reply.ok) waiting.resolve(reply.result);
      else if (reply.error.code !== undefined) waiting.reject(new AnalysisRefused(reply.error.code, reply.error.message));
      else waiting.reject(new Error(reply.error.message));
    });
    const fail = (err: Error) => {
      if (this.worker === worker) this.worker = undefined;
      for (const [id, waiting] of this.pending) {
        this.pending.delete(id);
        waiting.reject(err);
      }
    };
    worker.on('error', (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
    worker.on('exit', (code) => fail(new Error(`the analysis worker exited (code ${code})`)));
    // An idle worker must not keep the process alive.
    worker.unref();
    this.worker = worker;
    return worker;
  }

  async close(): Promise<void> {
    const worker = this.worker;
    this.worker = undefined;
    await worker?.terminate();
  }
}
