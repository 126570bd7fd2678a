import { fork, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ANALYSIS_PROCESS_FLAGS, withAllocatorTunables } from '../analyse/heap.js';
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

/** How long close() lets the analysis process end on SIGTERM before it sends SIGKILL. */
const CLOSE_GRACE_MS = 3000;

function interrupted(): Error {
  return new Error('the analysis was interrupted: the server is stopping');
}

/** Content the analysis refused (a bomb, a corrupt layer): recorded, not retried. */
export class AnalysisRefused extends PortcullisError {}

/** The analysis process died (out of memory, a signal) with this analysis outstanding. */
export class AnalysisProcessDied extends Error {
  /** How its message starts, so a job's last error says whether the process died. */
  static readonly PREFIX = 'the analysis process exited';
}

/**
 * The compiled analysis entry next to this module (`dist/gate/`, or the bundle's folder, where the
 * bundler emits it as its own entry); null when running from TypeScript sources, where the
 * analysis then runs in-process.
 */
export function analysisWorkerFile(): string | null {
  const file = fileURLToPath(new URL('./analysis-worker.js', import.meta.url));
  return existsSync(file) ? file : null;
}

/**
 * Environment names that may hold credentials (a database URL may carry a password in its
 * value); the analysis process needs none of them. Defence in depth, not a boundary: the
 * process runs as the same user as the server.
 */
const SECRET_ENV = /PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|PRIVATE|DSN|DATABASE_URL|(^|_)KEY($|_)/i;

/** The server's environment without anything that looks like a credential. */
export function analysisEnvironment(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const kept: NodeJS.ProcessEnv = {};
  for (const [name, value] of Object.entries(env)) if (!SECRET_ENV.test(name)) kept[name] = value;
  return kept;
}

/**
 * One child process that analyses images one at a time, started on first use. A process rather
 * than a worker thread for two reasons: its V8 heap can be sized when it starts
 * (ANALYSIS_PROCESS_FLAGS, see analyse/heap.ts), which a worker thread's cannot without changing
 * V8 flags at run time; and a crash in a decompressor or an out-of-memory takes down only the
 * analysis, never the registry. A process that dies fails the analyses it had, which the job
 * queue retries, and the next analysis starts a new one. It does not inherit environment
 * variables that look like credentials, and exits when the server's end of the channel closes,
 * even after a SIGKILL of the server.
 */
export class AnalysisProcess {
  private child: ChildProcess | undefined;
  private nextId = 1;
  private readonly pending = new Map<number, { resolve: (r: ScanResult) => void; reject: (e: Error) => void }>();

  constructor(private readonly workerFile: string) {}

  /** The running process's id, if one is running. */
  get pid(): number | undefined {
    return this.child?.pid;
  }

  /**
   * Analyses in the child. `signal` gives up waiting (the server is stopping): the promise rejects
   * at once with an error that is not a PortcullisError, so nothing is recorded against the
   * image; the child goes on until close() ends it.
   */
  analyse(req: Omit<AnalysisRequest, 'id'>, signal?: AbortSignal): Promise<ScanResult> {
    if (signal?.aborted) return Promise.reject(interrupted());
    const child = this.start();
    const id = this.nextId++;
    return new Promise<ScanResult>((resolve, reject) => {
      const onAbort = () => this.settle(id)?.reject(interrupted());
      signal?.addEventListener('abort', onAbort, { once: true });
      const forget = () => signal?.removeEventListener('abort', onAbort);
      this.pending.set(id, {
        resolve: (r) => {
          forget();
          resolve(r);
        },
        reject: (e) => {
          forget();
          reject(e);
        },
      });
      // While an analysis is outstanding the channel keeps this process alive to hear the answer.
      if (this.pending.size === 1) child.channel?.ref();
      child.send({ ...req, id } satisfies AnalysisRequest, (err) => {
        if (err) this.settle(id)?.reject(err);
      });
    });
  }

  /** Starts the process now, so the first push does not wait for it to load its modules. */
  warm(): void {
    this.start();
  }

  private settle(id: number): { resolve: (r: ScanResult) => void; reject: (e: Error) => void } | undefined {
    const waiting = this.pending.get(id);
    if (!waiting) return undefined;
    this.pending.delete(id);
    if (this.pending.size === 0) this.child?.channel?.unref();
    return waiting;
  }

  private start(): ChildProcess {
    if (this.child) return this.child;
    const child = fork(this.workerFile, [], {
      execArgv: [...ANALYSIS_PROCESS_FLAGS],
      env: withAllocatorTunables(analysisEnvironment()),
      serialization: 'advanced',
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    child.on('message', (reply: AnalysisReply) => {
      const waiting = this.settle(reply.id);
      if (!waiting) return;
      if (reply.ok) waiting.resolve(reply.result);
      else if (reply.error.code !== undefined) waiting.reject(new AnalysisRefused(reply.error.code, reply.error.message));
      else waiting.reject(new Error(reply.error.message));
    });
    const fail = (err: Error) => {
      if (this.child === child) this.child = undefined;
      for (const id of [...this.pending.keys()]) this.settle(id)?.reject(err);
    };
    child.on('error', (err: unknown) => fail(err instanceof Error ? err : new Error(String(err))));
    child.on('exit', (code, signal) => fail(new AnalysisProcessDied(`${AnalysisProcessDied.PREFIX} (${signal ? `signal ${signal}` : `code ${code}`})`)));
    // An idle analysis process must not keep the server alive.
    child.unref();
    child.channel?.unref();
    this.child = child;
    return child;
  }

  async close(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    // Held while waiting: the child is unreferenced so that it never keeps the server alive, and
    // with nothing else left (a start that failed to listen) Node would exit, with code 0, before
    // its 'exit' event came, and the caller's error would never be reported.
    child.ref();
    child.kill();
    // A child that does not end on SIGTERM (stopped, or stuck where the signal waits) would hold
    // the server's shutdown for ever; an analysis left unfinished is simply run again.
    const escalate = setTimeout(() => child.kill('SIGKILL'), CLOSE_GRACE_MS);
    await exited;
    clearTimeout(escalate);
  }
}
