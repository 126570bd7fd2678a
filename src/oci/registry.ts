import { maxHeaderSize } from 'node:http';
import { Readable, pipeline } from 'node:stream';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { OciError } from '../errors.js';
import { printable } from '../terminal-text.js';
import { DigestVerifier, digestOf, isDigest, parseDigest, verifyBytes } from './digest.js';
import { lookupDockerCredentials, type RegistryCredentials } from './docker-config.js';
import { MediaType, isSchema1 } from './media-types.js';
import { parseRegistryReference, type RegistryReference } from './registry-reference.js';
import { MAX_DOCUMENT_BYTES, type BlobRef, type ImageSource, type RootDocument } from './source.js';

export interface RegistrySourceOptions {
  /** Talk plain http instead of https. Never implied (not even for localhost): it must be asked for. */
  insecure?: boolean;
  username?: string;
  password?: string;
  /** Docker config to take credentials from when none are given; default `$DOCKER_CONFIG` or `~/.docker`. */
  dockerConfigPath?: string;
  userAgent?: string;
  /**
   * How long to wait for a connection, for response headers, and between body chunks; also how
   * long a whole manifest, config or token response may take once its headers came, and the
   * window over which a blob must average at least 1 KiB/s. Default 30 s.
   */
  timeoutMs?: number;
}

/** One challenge of a `WWW-Authenticate` header. The scheme is lowercased, as are parameter names. */
export interface AuthChallenge {
  scheme: string;
  params: Record<string, string>;
}

const DEFAULT_TIMEOUT_MS = 30_000;
// A server that sends a byte now and then never trips the idle timeout; a blob must also average
// this much per timeout window of waiting (curl's --speed-limit, in effect), or the scan hangs.
const MIN_BLOB_BYTES_PER_SECOND = 1024;
const MAX_REDIRECTS = 5;
const MAX_TOKEN_RESPONSE_BYTES = 1024 * 1024;
const MAX_ERROR_BODY_BYTES = 16 * 1024;
// A 429 is tried again, as skopeo does, after the Retry-After wait (or 1 s, 2 s, 4 s when none
// is given), but only a few times, and never after a wait longer than this: a registry that asks
// for minutes fails the scan at once, saying how long it asked for.
const MAX_RATE_LIMIT_RETRIES = 3;
const MAX_RATE_LIMIT_WAIT_MS = 10_000;
// The token spec says a token without expires_in lasts 60 seconds; renew a little before that.
const DEFAULT_TOKEN_SECONDS = 60;
const TOKEN_EXPIRY_MARGIN_SECONDS = 10;

// Everything we can read, plus schema 1 so that an old registry sends it (and we refuse it with a
// clear message) rather than answering 404 or converting on the fly.
const MANIFEST_ACCEPT = [
  MediaType.ociIndex,
  MediaType.ociManifest,
  MediaType.dockerManifestList,
  MediaType.dockerManifest,
  MediaType.dockerSchema1Signed,
  MediaType.dockerSchema1,
].join(', ');

const TCHAR = /[!#$%&'*+.^_`|~0-9A-Za-z-]/;

/**
 * Parses a `WWW-Authenticate` header (RFC 9110 §11.6.1) into its challenges. Handles quoted
 * values containing commas and escapes (`scope="repository:a:pull,push"`), several challenges
 * in one header, and bad input without throwing: unreadable parts are skipped.
 */
export function parseAuthChallenges(header: string): AuthChallenge[] {
  const out: AuthChallenge[] = [];
  let i = 0;
  const n = header.length;
  const skipWs = (): void => {
    while (i < n && (header[i] === ' ' || header[i] === '\t')) i++;
  };
  const readToken = (): string => {
    const start = i;
    while (i < n && TCHAR.test(header[i]!)) i++;
    return header.slice(start, i);
  };
  // True when the text at i is `token OWS = OWS value` (an auth-param), not the next challenge's
  // scheme nor a token68 such as `dGVzdA==` (whose `=` is followed by `=` or nothing).
  const atParam = (): boolean => {
    let j = i;
    while (j < n && TCHAR.test(header[j]!)) j++;
    if (j === i) return false;
    while (j < n && (header[j] === ' ' || header[j] === '\t')) j++;
    if (header[j] !== '=') return false;
    j++;
    while (j < n && (header[j] === ' ' || header[j] === '\t')) j++;
    return j < n && (header[j] === '"' || TCHAR.test(header[j]!));
  };

  while (i < n) {
    while (i < n && (header[i] === ',' || header[i] === ' ' || header[i] === '\t')) i++;
    if (i >= n) break;
    const scheme = readToken();
    if (scheme === '') {
      i++; // not a token character: skip it rather than loop forever
      continue;
    }
    const challenge: AuthChallenge = { scheme: scheme.toLowerCase(), params: {} };
    out.push(challenge);
    skipWs();
    for (;;) {
      if (!atParam()) {
        // token68 (`Basic dXNlcg==`) or nothing: skip to the next comma.
        if (i < n && header[i] !== ',') {
          while (i < n && header[i] !== ',') i++;
        }
        break;
      }
      const name = readToken().toLowerCase();
      skipWs();
      i++; // '='
      skipWs();
      let value = '';
      if (header[i] === '"') {
        i++;
        while (i < n && header[i] !== '"') {
          if (header[i] === '\\' && i + 1 < n) i++;
          value += header[i];
          i++;
        }
        i++; // closing quote (or end)
      } else {
        const start = i;
        while (i < n && header[i] !== ',' && header[i] !== ' ' && header[i] !== '\t') i++;
        value = header.slice(start, i);
      }
      challenge.params[name] = value;
      skipWs();
      if (header[i] !== ',') break;
      // A comma separates either this challenge's next param or the next challenge.
      const save = i;
      i++;
      skipWs();
      if (!atParam()) {
        i = save;
        break;
      }
    }
  }
  return out;
}

// Content codings Node's fetch (undici) undoes by itself. It undoes a chain only when it knows
// every coding in it, and otherwise passes the body through still encoded.
const UNDONE_CODINGS = new Set(['gzip', 'x-gzip', 'deflate', 'br']);

/**
 * A response's content codings as undici reads them (lowercased, split on commas): `decoded`
 * when fetch undid them, so the body we read is the representation and Content-Length, which
 * counts the encoded bytes, says nothing about its size; `unknown` when something other than
 * identity was left in place, so the body is not the bytes the server stores.
 */
function contentCodings(res: Response): { decoded: boolean; unknown?: string } {
  const header = res.headers.get('content-encoding');
  if (!header) return { decoded: false };
  const codings = header
    .toLowerCase()
    .split(',')
    .map((c) => c.trim());
  if (codings.every((c) => UNDONE_CODINGS.has(c))) return { decoded: true };
  if (codings.every((c) => c === 'identity')) return { decoded: false };
  const text = header.trim();
  return { decoded: false, unknown: printable(text.length > 40 ? `${text.slice(0, 40)}...` : text) };
}

/**
 * For a size or digest failure of a body whose coding fetch undid: a blob stored gzip and served
 * with a gzip label (cloud storage metadata, Apache's AddEncoding) is decoded one time too many.
 */
function codingNote(ex: { res: Response; url: URL }): string {
  if (!contentCodings(ex.res).decoded) return '';
  const coding = printable(ex.res.headers.get('content-encoding')!.trim().slice(0, 40));
  return `; ${ex.url.host} sent it with Content-Encoding ${coding}, which was undone first (a blob stored under that label fails so)`;
}

/** The body size the response declares, when that is the size of what we read. */
function declaredLength(res: Response): number | undefined {
  const length = res.headers.get('content-length');
  if (length === null || !/^\d+$/.test(length) || contentCodings(res).decoded) return undefined;
  return Number(length);
}

/**
 * How long a 429 asks to wait, in ms: Retry-After as seconds or as an HTTP date (a date already
 * past is no wait), or undefined when the header is missing or unreadable.
 */
function retryAfterMs(res: Response): number | undefined {
  const value = res.headers.get('retry-after')?.trim();
  if (!value) return undefined;
  if (/^\d+$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/** Why an exchange was cut short by us: no data for a while, too little data, or too late. */
type Stall = 'idle' | 'slow' | 'deadline';

/** One in-flight HTTP exchange: its response, final URL, and the timer guarding it. */
interface Exchange {
  res: Response;
  url: URL;
  /** Starts the timeout while we wait on the network (not while a consumer is slow). */
  arm(): void;
  disarm(): void;
  /**
   * Counts body bytes; when a timeout's worth of waiting brought fewer than the floor, aborts
   * the exchange (it is then `stalled()` as 'slow'). Call after disarm.
   */
  received(bytes: number): void;
  /** Aborts the exchange unless its body is read in full within the timeout from now. */
  startDeadline(): void;
  stalled(): Stall | undefined;
  /** Releases the exchange; aborts the connection if the body was not read to the end. */
  done(complete: boolean): void;
}

/** What a request fetches, for messages: `manifest 3.20`, `blob sha256:…`, `response token`. */
interface Subject {
  kind: 'manifest' | 'blob' | 'response';
  name: string;
}

function errorCode(err: unknown): string | undefined {
  // undici wraps socket errors as `TypeError: fetch failed` with the real error in `cause`,
  // and a failed happy-eyeballs connect as an AggregateError whose members carry the code.
  const seen = new Set<unknown>();
  let cur: unknown = err;
  while (cur && typeof cur === 'object' && !seen.has(cur)) {
    seen.add(cur);
    const code = (cur as { code?: unknown }).code;
    if (typeof code === 'string' && code !== 'ERR_INVALID_STATE') return code;
    const errors = (cur as { errors?: unknown }).errors;
    if (Array.isArray(errors)) {
      for (const e of errors) {
        const c = errorCode(e);
        if (c) return c;
      }
    }
    cur = (cur as { cause?: unknown }).cause;
  }
  return undefined;
}

function innermostMessage(err: unknown): string {
  let cur: unknown = err;
  let msg = err instanceof Error ? err.message : String(err);
  const seen = new Set<unknown>();
  while (cur instanceof Error && !seen.has(cur)) {
    seen.add(cur);
    if (cur.message) msg = cur.message;
    cur = cur.cause;
  }
  return printable(withoutUrls(msg.replace(/[\r\n]+/g, ' ')).slice(0, 200));
}

/**
 * Network errors sometimes quote the URL they failed on; a redirect's URL may be pre-signed or
 * carry credentials, so messages keep only its scheme and host.
 */
function withoutUrls(text: string): string {
  return text.replace(/\b[a-z][a-z0-9+.-]*:\/\/[^\s"'<>]+/gi, (u) => {
    try {
      const url = new URL(u);
      return `${url.protocol}//${url.host}/...`;
    } catch {
      return '(a URL)';
    }
  });
}

/** A response's reason phrase for a message: the server chose it, so shown escaped and short. */
function reason(res: Response): string {
  const text = res.statusText.trim();
  return text ? ` ${printable(text.length > 80 ? `${text.slice(0, 80)}...` : text)}` : '';
}

/**
 * An image in a registry, read over the OCI Distribution API. Tries anonymous access first and
 * answers Basic or Bearer (token) challenges with the given or docker-config credentials. Every
 * document and blob is checked against its digest; credentials and tokens are never put in
 * messages and are never sent to a host other than the registry (redirects drop them).
 */
export class RegistrySource implements ImageSource {
  readonly display: string;
  readonly reference: RegistryReference;
  private readonly origin: string;
  private readonly host: string;
  private readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly active = new Set<AbortController>();
  /** The Authorization header value that last worked (or was last obtained), if any. */
  private authorization: string | undefined;
  private authorizationExpiresAt = Infinity;
  private authInFlight: Promise<void> | undefined;
  private closed = false;
  private credentialsPromise: Promise<{ credentials?: RegistryCredentials; helper?: string }> | undefined;

  constructor(
    ref: string,
    private readonly options: RegistrySourceOptions = {},
  ) {
    this.display = ref.trim();
    this.reference = parseRegistryReference(ref);
    this.host = this.reference.registry;
    this.origin = new URL(`${options.insecure ? 'http' : 'https'}://${this.host}`).origin;
    this.timeoutMs =
      options.timeoutMs !== undefined && options.timeoutMs > 0 ? options.timeoutMs : DEFAULT_TIMEOUT_MS;
    this.userAgent = options.userAgent ?? 'portcullis';
    if ((options.username === undefined) !== (options.password === undefined)) {
      throw new OciError(
        'CREDENTIALS_INVALID',
        `${this.display}: give both a username and a password, or neither`,
        {
          subject: this.display,
        },
      );
    }
  }

  async root(): Promise<RootDocument> {
    const { repository, tag, digest } = this.reference;
    const target = digest ?? tag ?? 'latest';
    const subject: Subject = { kind: 'manifest', name: target };
    const ex = await this.get(`/v2/${repository}/manifests/${target}`, MANIFEST_ACCEPT, subject);
    const contentType = ex.res.headers.get('content-type')?.split(';')[0]?.trim().toLowerCase() || undefined;
    if (isSchema1(contentType)) {
      ex.done(false);
      throw this.schema1Error();
    }
    const bytes = await this.readCapped(ex, MAX_DOCUMENT_BYTES, subject);

    let declared: unknown;
    try {
      const parsed: unknown = JSON.parse(bytes.toString('utf8'));
      if (parsed && typeof parsed === 'object') {
        if ((parsed as { schemaVersion?: unknown }).schemaVersion === 1) throw this.schema1Error();
        declared = (parsed as { mediaType?: unknown }).mediaType;
      }
    } catch (err) {
      if (err instanceof OciError) throw err;
      // Not JSON: leave it to the caller's schema validation, which says so with context.
    }

    const subjectText = `${this.display} manifest`;
    if (digest !== undefined) verifyBytes(bytes, digest, subjectText);
    // The registry's claim is checked too: a mismatch means a broken or lying registry or proxy.
    const claimed = ex.res.headers.get('docker-content-digest')?.trim();
    if (claimed && isDigest(claimed)) verifyBytes(bytes, claimed, `${subjectText} (Docker-Content-Digest)`);

    const generic =
      contentType === undefined ||
      contentType === 'application/json' ||
      contentType === 'application/octet-stream' ||
      contentType === 'text/plain';
    const mediaType = !generic ? contentType : typeof declared === 'string' ? declared : undefined;
    return {
      bytes,
      digest: digest ?? digestOf(bytes, 'sha256'),
      ...(mediaType !== undefined ? { mediaType } : {}),
    };
  }

  async openBlob(ref: BlobRef): Promise<Readable> {
    const ex = await this.getBlob(ref);
    const body = ex.res.body;
    if (!body) {
      ex.done(true);
      return Readable.from([Buffer.alloc(0)]).pipe(new DigestVerifier(ref.digest, ref.size, this.display));
    }
    const source = Readable.fromWeb(body as unknown as WebReadableStream<Uint8Array>);
    const subject: Subject = { kind: 'blob', name: ref.digest };
    const map = (err: unknown): Error => this.transferError(err, ex, subject);
    async function* guarded(): AsyncGenerator<Buffer> {
      const it = source[Symbol.asyncIterator]();
      let complete = false;
      try {
        for (;;) {
          ex.arm();
          let step: IteratorResult<unknown>;
          try {
            step = await it.next();
          } finally {
            ex.disarm();
          }
          if (step.done) break;
          const chunk = step.value as Buffer;
          ex.received(chunk.length);
          if (ex.stalled()) throw new Error('too slow');
          yield chunk;
        }
        complete = true;
      } catch (err) {
        throw map(err);
      } finally {
        if (!complete) source.destroy();
        ex.done(complete);
      }
    }
    const verifier = new DigestVerifier(ref.digest, ref.size, this.display, codingNote(ex));
    // pipeline destroys every stage on error or early close, so a consumer that stops reading
    // also cancels the download, and a network error reaches the consumer through the verifier.
    pipeline(Readable.from(guarded(), { objectMode: false }), verifier, () => {});
    return verifier;
  }

  async readBlob(ref: BlobRef, maxBytes: number): Promise<Buffer> {
    this.checkDocumentSize(ref, maxBytes, 'blob');
    const ex = await this.getBlob(ref);
    return this.readDocument(ex, ref, maxBytes, { kind: 'blob', name: ref.digest });
  }

  /** A child manifest of an index, by digest: from /manifests/, where registries keep them. */
  async readManifest(ref: BlobRef, maxBytes: number): Promise<Buffer> {
    // Validating first also keeps anything but `algorithm:hex` out of the URL path.
    parseDigest(ref.digest, this.display);
    this.checkDocumentSize(ref, maxBytes, 'manifest');
    const subject: Subject = { kind: 'manifest', name: ref.digest };
    const ex = await this.get(
      `/v2/${this.reference.repository}/manifests/${ref.digest}`,
      MANIFEST_ACCEPT,
      subject,
    );
    return this.readDocument(ex, ref, maxBytes, subject);
  }

  private checkDocumentSize(ref: BlobRef, maxBytes: number, what: string): void {
    if (ref.size !== undefined && ref.size > maxBytes) {
      throw new OciError(
        'DOCUMENT_TOO_LARGE',
        `${this.display}: ${what} ${ref.digest} is ${ref.size} bytes, over the ${maxBytes}-byte limit`,
        {
          subject: this.display,
        },
      );
    }
  }

  /** The whole body, capped, then checked against the descriptor's size and digest. */
  private async readDocument(
    ex: Exchange,
    ref: BlobRef,
    maxBytes: number,
    subject: Subject,
  ): Promise<Buffer> {
    const bytes = await this.readCapped(ex, maxBytes, subject);
    const note = codingNote(ex);
    if (ref.size !== undefined && bytes.length !== ref.size) {
      throw new OciError(
        'SIZE_MISMATCH',
        `${this.display}: ${subject.kind} ${ref.digest} is ${bytes.length} bytes, its descriptor says ${ref.size}${note}`,
        {
          subject: this.display,
        },
      );
    }
    try {
      verifyBytes(bytes, ref.digest, this.display);
    } catch (err) {
      if (!note || !(err instanceof OciError)) throw err;
      throw new OciError(err.code, `${err.message}${note}`, { subject: this.display });
    }
    return bytes;
  }

  async close(): Promise<void> {
    this.closed = true;
    for (const controller of this.active) controller.abort();
    this.active.clear();
    this.authorization = undefined;
  }

  // ---------------------------------------------------------------------------------------------

  private schema1Error(): OciError {
    return new OciError(
      'MANIFEST_UNSUPPORTED',
      `${this.display}: ${this.host} serves a Docker schema 1 manifest, which is deprecated and not supported (re-push the image with a current docker, podman or skopeo)`,
      { subject: this.display },
    );
  }

  private async getBlob(ref: BlobRef): Promise<Exchange> {
    // Validating first also keeps anything but `algorithm:hex` out of the URL path.
    parseDigest(ref.digest, this.display);
    const subject: Subject = { kind: 'blob', name: ref.digest };
    const ex = await this.get(`/v2/${this.reference.repository}/blobs/${ref.digest}`, '*/*', subject);
    const length = declaredLength(ex.res);
    if (ref.size !== undefined && length !== undefined && length !== ref.size) {
      ex.done(false);
      throw new OciError(
        'SIZE_MISMATCH',
        `${this.display}: blob ${ref.digest} is ${length} bytes on ${ex.url.host}, its descriptor says ${ref.size}`,
        { subject: this.display },
      );
    }
    return ex;
  }

  /** GET a registry path: authenticates on demand, follows redirects, and maps failure statuses. */
  private async get(path: string, accept: string, subject: Subject): Promise<Exchange> {
    let answeredChallenge = false;
    for (let rateRetries = 0; ; ) {
      if (this.authorization !== undefined && Date.now() >= this.authorizationExpiresAt)
        this.authorization = undefined;
      const sent = this.authorization;
      const ex = await this.send(new URL(path, this.origin), accept, sent, subject);
      const { status } = ex.res;
      if (status === 401 && !answeredChallenge && ex.url.origin === this.origin) {
        answeredChallenge = true;
        const challenge = ex.res.headers.get('www-authenticate');
        ex.done(false);
        await this.authenticate(challenge, sent);
        continue;
      }
      if (status === 429) {
        const asked = retryAfterMs(ex.res);
        const wait = asked ?? 1000 * 2 ** rateRetries;
        if (wait > MAX_RATE_LIMIT_WAIT_MS) {
          ex.done(false);
          throw this.rateLimited(ex, subject, ` and asks to wait ${Math.ceil(wait / 1000)} s`);
        }
        if (rateRetries >= MAX_RATE_LIMIT_RETRIES) {
          ex.done(false);
          throw this.rateLimited(ex, subject, `, still after ${rateRetries + 1} tries`);
        }
        ex.done(false);
        rateRetries++;
        await this.pause(wait);
        if (this.closed) throw this.rateLimited(ex, subject, '');
        continue;
      }
      if (status === 200) {
        // A proxy may add a coding; fetch undoes the common ones. The digest names the bytes as
        // stored, so a body still encoded could only fail its check: say why instead.
        const { unknown } = contentCodings(ex.res);
        if (unknown !== undefined) {
          ex.done(false);
          throw new OciError(
            'REGISTRY_ERROR',
            `${this.display}: ${ex.url.host} sent ${subject.kind} ${subject.name} with Content-Encoding ${unknown}, which portcullis cannot undo`,
            { subject: this.display },
          );
        }
        return ex;
      }
      throw await this.statusError(ex, subject);
    }
  }

  /** One request and its redirects. Authorization goes only to the registry's own origin. */
  private async send(
    start: URL,
    accept: string,
    authorization: string | undefined,
    subject: Subject,
  ): Promise<Exchange> {
    let url = start;
    for (let hop = 0; ; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent, accept };
      if (authorization !== undefined && url.origin === this.origin) headers.authorization = authorization;
      const ex = await this.open(url, { headers, redirect: 'manual' }, subject);
      const { status } = ex.res;
      if (![301, 302, 303, 307, 308].includes(status)) return ex;
      const location = ex.res.headers.get('location');
      ex.done(false);
      if (hop >= MAX_REDIRECTS) {
        throw new OciError(
          'REGISTRY_ERROR',
          `${this.display}: more than ${MAX_REDIRECTS} redirects from ${this.host}`,
          { subject: this.display },
        );
      }
      if (!location) {
        throw new OciError(
          'REGISTRY_ERROR',
          `${this.display}: ${url.host} answered ${status} without a Location`,
          { subject: this.display },
        );
      }
      let next: URL;
      try {
        next = new URL(location, url);
      } catch {
        throw new OciError('REGISTRY_ERROR', `${this.display}: ${url.host} redirected to an invalid URL`, {
          subject: this.display,
        });
      }
      // Redirect URLs are often pre-signed: name only their host in messages, never the URL.
      if (next.protocol !== 'https:' && next.protocol !== 'http:') {
        throw new OciError(
          'REGISTRY_ERROR',
          `${this.display}: ${url.host} redirected to an unsupported ${next.protocol} URL`,
          { subject: this.display },
        );
      }
      // fetch refuses such a URL with an error that quotes it whole; say it without the secrets.
      if (next.username !== '' || next.password !== '') {
        throw new OciError(
          'REGISTRY_ERROR',
          `${this.display}: ${url.host} redirected to a URL with credentials in it, on ${next.host}; refusing`,
          { subject: this.display },
        );
      }
      // --insecure would not allow this: it makes the registry itself plain http. So no hint.
      if (next.protocol === 'http:' && url.protocol === 'https:' && !this.options.insecure) {
        throw new OciError(
          'REGISTRY_ERROR',
          `${this.display}: ${url.host} redirected ${subject.kind} ${subject.name} to plain http on ${next.host}; refusing to leave https`,
          { subject: this.display },
        );
      }
      url = next;
    }
  }

  /** fetch with a timeout that covers connecting and waiting for headers, mapped errors. */
  private async open(url: URL, init: RequestInit, subject: Subject): Promise<Exchange> {
    const controller = new AbortController();
    this.active.add(controller);
    let timer: ReturnType<typeof setTimeout> | undefined;
    let deadline: ReturnType<typeof setTimeout> | undefined;
    let stall: Stall | undefined;
    const stop = (why: Stall): void => {
      stall ??= why;
      controller.abort();
    };
    // Time spent waiting on the network in the current window, and the bytes it brought.
    let waitingSince: number | undefined;
    let windowWaitMs = 0;
    let windowBytes = 0;
    const minWindowBytes = Math.ceil((MIN_BLOB_BYTES_PER_SECOND * this.timeoutMs) / 1000);
    const arm = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = setTimeout(() => stop('idle'), this.timeoutMs);
      waitingSince = Date.now();
    };
    const disarm = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      timer = undefined;
      if (waitingSince !== undefined) windowWaitMs += Date.now() - waitingSince;
      waitingSince = undefined;
    };
    const received = (bytes: number): void => {
      windowBytes += bytes;
      if (windowWaitMs < this.timeoutMs) return;
      if (windowBytes < minWindowBytes) stop('slow');
      windowWaitMs = 0;
      windowBytes = 0;
    };
    const startDeadline = (): void => {
      if (deadline === undefined) deadline = setTimeout(() => stop('deadline'), this.timeoutMs);
    };
    let released = false;
    const done = (complete: boolean): void => {
      if (released) return;
      released = true;
      disarm();
      if (deadline !== undefined) clearTimeout(deadline);
      this.active.delete(controller);
      // An unread body holds its connection until it is consumed or the request is aborted.
      if (!complete) controller.abort();
    };
    arm();
    let res: Response;
    try {
      res = await fetch(url, { ...init, signal: controller.signal });
    } catch (err) {
      done(false);
      throw this.networkError(err, url, stall !== undefined, subject);
    } finally {
      disarm();
      // Waiting for the headers is not part of the body's pace.
      windowWaitMs = 0;
    }
    return { res, url, arm, disarm, received, startDeadline, stalled: () => stall, done };
  }

  private async authenticate(header: string | null, failed: string | undefined): Promise<void> {
    // Concurrent requests that hit the same 401 share one token fetch.
    if (this.authInFlight) {
      await this.authInFlight;
      return;
    }
    // Someone else already replaced the authorization that failed: just retry with theirs.
    if (this.authorization !== undefined && this.authorization !== failed) return;
    this.authInFlight = this.obtainAuthorization(header).finally(() => {
      this.authInFlight = undefined;
    });
    await this.authInFlight;
  }

  private async obtainAuthorization(header: string | null): Promise<void> {
    let challenges = header ? parseAuthChallenges(header) : [];
    // Some registries challenge only at the version check and answer resources with a bare 401;
    // docker and skopeo, which always ask /v2/ first, read them. Ask /v2/ when a 401 says nothing.
    if (challenges.length === 0) challenges = await this.versionCheckChallenges();
    const bearer = challenges.find((c) => c.scheme === 'bearer');
    const basic = challenges.find((c) => c.scheme === 'basic');
    if (bearer) {
      const { token, expiresIn } = await this.fetchToken(bearer);
      this.authorization = `Bearer ${token}`;
      this.authorizationExpiresAt = Date.now() + Math.max(expiresIn - TOKEN_EXPIRY_MARGIN_SECONDS, 1) * 1000;
      return;
    }
    if (basic) {
      const { credentials } = await this.credentials();
      if (!credentials) throw await this.unauthorized(this.host);
      this.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
      this.authorizationExpiresAt = Infinity;
      return;
    }
    const schemes = challenges.map((c) => c.scheme).join(', ');
    throw new OciError(
      'UNAUTHORIZED',
      schemes
        ? `${this.display}: ${this.host} asks for unsupported authentication (${schemes}); only Basic and Bearer are supported`
        : `${this.display}: access denied by ${this.host}, which sent no authentication challenge`,
      { subject: this.display },
    );
  }

  /** The challenges of an anonymous GET /v2/, or none when it does not answer 401. */
  private async versionCheckChallenges(): Promise<AuthChallenge[]> {
    const ex = await this.send(new URL('/v2/', this.origin), 'application/json', undefined, {
      kind: 'response',
      name: '/v2/',
    });
    // Like the 401 answered in get(), only the registry's own origin may say where credentials go.
    const ours = ex.res.status === 401 && ex.url.origin === this.origin;
    const header = ours ? ex.res.headers.get('www-authenticate') : null;
    ex.done(false);
    return header ? parseAuthChallenges(header) : [];
  }

  /**
   * The token flow of the distribution auth spec: GET realm?service=..&scope=repository:<repo>:pull,
   * or its OAuth2 form POST when the credentials are an identity token.
   */
  private async fetchToken(challenge: AuthChallenge): Promise<{ token: string; expiresIn: number }> {
    const realmText = challenge.params.realm;
    let realm: URL;
    try {
      if (!realmText) throw new Error('no realm');
      realm = new URL(realmText);
      if (realm.protocol !== 'https:' && realm.protocol !== 'http:') throw new Error('bad scheme');
      if (realm.username !== '' || realm.password !== '') throw new Error('credentials in the URL');
    } catch {
      throw new OciError(
        'REGISTRY_ERROR',
        `${this.display}: ${this.host} sent a Bearer challenge without a usable realm URL`,
        { subject: this.display },
      );
    }
    // Credentials (and the token) must not cross the network in clear unless http was asked for.
    // Only an https registry gets here, and --insecure would make it plain http: no hint.
    if (realm.protocol === 'http:' && !this.options.insecure) {
      throw new OciError(
        'REGISTRY_ERROR',
        `${this.display}: ${this.host} points to a plain-http token service at ${realm.host}; refusing to fetch a token outside https`,
        { subject: this.display },
      );
    }
    const scope = `repository:${this.reference.repository}:pull`;
    const { credentials } = await this.credentials();
    const headers: Record<string, string> = { 'user-agent': this.userAgent, accept: 'application/json' };
    const init: RequestInit = { headers, redirect: 'manual' };
    const identityToken = credentials?.identityToken;
    if (identityToken !== undefined) {
      // `docker login` keeps an OAuth2 refresh token, not a password, for some registries (Azure's):
      // it is traded at the realm with a form POST (the distribution spec's OAuth2 flow), as docker does.
      const form = new URLSearchParams({ grant_type: 'refresh_token', refresh_token: identityToken, client_id: 'portcullis' });
      if (challenge.params.service !== undefined) form.set('service', challenge.params.service);
      form.set('scope', scope);
      headers['content-type'] = 'application/x-www-form-urlencoded';
      init.method = 'POST';
      init.body = form.toString();
    } else {
      if (challenge.params.service !== undefined) realm.searchParams.set('service', challenge.params.service);
      realm.searchParams.append('scope', scope);
      if (credentials) {
        headers.authorization = `Basic ${Buffer.from(`${credentials.username}:${credentials.password}`, 'utf8').toString('base64')}`;
      }
    }
    // No redirects: the credentials above are meant for this realm only.
    const ex = await this.open(realm, init, { kind: 'response', name: 'token' });
    const { status } = ex.res;
    // OAuth2 refuses a stale refresh token with 400 invalid_grant.
    if (status === 401 || status === 403 || (status === 400 && identityToken !== undefined)) {
      ex.done(false);
      throw await this.unauthorized(realm.host);
    }
    if (status !== 200) {
      ex.done(false);
      throw new OciError(
        'REGISTRY_ERROR',
        `${this.display}: token service ${realm.host} answered ${status}${reason(ex.res)}`,
        { subject: this.display },
      );
    }
    const body = await this.readCapped(ex, MAX_TOKEN_RESPONSE_BYTES, { kind: 'response', name: 'token' });
    let json: unknown;
    try {
      json = JSON.parse(body.toString('utf8'));
    } catch {
      json = undefined;
    }
    const record = json && typeof json === 'object' ? (json as Record<string, unknown>) : {};
    const token =
      typeof record.token === 'string' && record.token !== '' ? record.token : record.access_token;
    // A token must be a valid header value; checking here keeps it out of any fetch error message.
    if (typeof token !== 'string' || !/^[\x21-\x7e]+$/.test(token)) {
      throw new OciError(
        'REGISTRY_ERROR',
        `${this.display}: token service ${realm.host} returned no usable token`,
        { subject: this.display },
      );
    }
    const expiresIn =
      typeof record.expires_in === 'number' && record.expires_in > 0
        ? record.expires_in
        : DEFAULT_TOKEN_SECONDS;
    return { token, expiresIn };
  }

  private credentials(): Promise<{ credentials?: RegistryCredentials; helper?: string }> {
    if (!this.credentialsPromise) {
      const { username, password, dockerConfigPath } = this.options;
      this.credentialsPromise =
        username !== undefined && password !== undefined
          ? Promise.resolve({ credentials: { username, password } })
          : lookupDockerCredentials(this.host, dockerConfigPath);
    }
    return this.credentialsPromise;
  }

  private async unauthorized(host: string): Promise<OciError> {
    let hint = '';
    try {
      const { credentials, helper } = await this.credentials();
      if (!credentials && helper)
        hint = `; the docker config leaves ${this.host} to ${helper}, which portcullis does not run`;
    } catch {
      // A broken docker config is reported where credentials are needed; here it only loses the hint.
    }
    return new OciError(
      'UNAUTHORIZED',
      `${this.display}: access denied by ${host} (check --username/--password-stdin or docker login)${hint}`,
      { subject: this.display },
    );
  }

  private async statusError(ex: Exchange, subject: Subject): Promise<OciError> {
    const { status } = ex.res;
    const host = ex.url.host;
    let codes: string[] = [];
    let text = '';
    if (status >= 400 && status < 500) ({ codes, text } = await this.errorBody(ex));
    else ex.done(false);
    const detail = codes.length ? ` [${codes.join(', ')}]` : '';
    const what = `${subject.kind} ${subject.name}`;
    // What Go's TLS servers (distribution, Harbor, zot) and nginx answer to plain http on a TLS
    // port: the user gave --insecure for an https registry.
    if (
      status === 400 &&
      ex.url.protocol === 'http:' &&
      /HTTP request to an HTTPS server|plain HTTP request was sent to HTTPS port/i.test(text)
    ) {
      return new OciError(
        'REGISTRY_TLS',
        `${this.display}: ${host} speaks https (it answered plain http with 400); leave out --insecure`,
        { subject: this.display },
      );
    }
    if ((status === 401 || status === 403) && ex.url.origin !== this.origin) {
      // Storage the registry redirected to (S3, GCS, a CDN) gets no credentials from us, so the
      // user's login is not the cause: an expired or skewed pre-signed URL usually is.
      return new OciError(
        'REGISTRY_ERROR',
        `${this.display}: ${host}, where ${this.host} redirected ${what}, answered ${status}${reason(ex.res)}${detail}`,
        { subject: this.display },
      );
    }
    if (status === 401 || status === 403) return this.unauthorized(host);
    if (status === 404) {
      if (subject.kind === 'manifest') {
        const where = codes.includes('NAME_UNKNOWN')
          ? `repository ${this.reference.repository} does not exist on ${host}`
          : `not found in ${this.reference.repository} on ${host}`;
        return new OciError(
          'MANIFEST_UNKNOWN',
          `${this.display}: manifest ${subject.name} ${where}${detail}`,
          { subject: this.display },
        );
      }
      return new OciError(
        'BLOB_UNKNOWN',
        `${this.display}: blob ${subject.name} not found on ${host}${detail}`,
        { subject: this.display },
      );
    }
    if (status === 429) return this.rateLimited(ex, subject, '');
    return new OciError(
      'REGISTRY_ERROR',
      `${this.display}: ${host} answered ${status}${reason(ex.res)} for ${what}${detail}`,
      {
        subject: this.display,
      },
    );
  }

  private rateLimited(ex: Exchange, subject: Subject, detail: string): OciError {
    return new OciError(
      'REGISTRY_ERROR',
      `${this.display}: ${ex.url.host} is rate limiting requests (429) for ${subject.kind} ${subject.name}${detail}; retry later or log in`,
      { subject: this.display },
    );
  }

  /** Waits `ms`, or less if the source is closed meanwhile. */
  private pause(ms: number): Promise<void> {
    const controller = new AbortController();
    this.active.add(controller);
    return new Promise<void>((resolve) => {
      const finish = (): void => {
        clearTimeout(timer);
        this.active.delete(controller);
        resolve();
      };
      const timer = setTimeout(finish, ms);
      controller.signal.addEventListener('abort', finish, { once: true });
    });
  }

  /**
   * An error body, capped: its text, to recognise (never to show), and the `errors[].code` values
   * of a registry error, which are safe to show.
   */
  private async errorBody(ex: Exchange): Promise<{ codes: string[]; text: string }> {
    let text = '';
    try {
      const body = await this.readCapped(ex, MAX_ERROR_BODY_BYTES, { kind: 'response', name: 'error body' });
      text = body.toString('utf8');
      // Object storage answers in XML: `<Error><Code>AccessDenied</Code>...` (S3, GCS, Azure).
      const xmlCode = /^\s*(?:<\?xml[^>]*\?>\s*)?<Error>\s*<Code>([A-Za-z]{1,40})<\/Code>/.exec(text)?.[1];
      if (xmlCode !== undefined) return { codes: [xmlCode], text };
      const json = JSON.parse(text) as { errors?: Array<{ code?: unknown }> };
      if (!Array.isArray(json.errors)) return { codes: [], text };
      const codes = [
        ...new Set(
          json.errors
            .map((e) => e?.code)
            .filter((c): c is string => typeof c === 'string' && /^[A-Z_]{1,40}$/.test(c)),
        ),
      ].slice(0, 5);
      return { codes, text };
    } catch {
      return { codes: [], text };
    } finally {
      ex.done(false);
    }
  }

  /** Reads a whole body, refusing more than `max` bytes (declared or actual). */
  private async readCapped(ex: Exchange, max: number, subject: Subject): Promise<Buffer> {
    const tooLarge = (size: string): OciError =>
      new OciError(
        'DOCUMENT_TOO_LARGE',
        `${this.display}: ${subject.kind} ${subject.name} from ${ex.url.host} is ${size} bytes, over the ${max}-byte limit`,
        {
          subject: this.display,
        },
      );
    const length = declaredLength(ex.res);
    if (length !== undefined && length > max) {
      ex.done(false);
      throw tooLarge(String(length));
    }
    const body = ex.res.body;
    if (!body) {
      ex.done(true);
      return Buffer.alloc(0);
    }
    const reader = body.getReader();
    const chunks: Buffer[] = [];
    let total = 0;
    let complete = false;
    // Documents are small: the whole body gets one timeout, so a byte now and then cannot hold
    // the scan for ever.
    ex.startDeadline();
    try {
      for (;;) {
        ex.arm();
        let step: ReadableStreamReadResult<Uint8Array>;
        try {
          step = await reader.read();
        } finally {
          ex.disarm();
        }
        if (step.done) break;
        total += step.value.byteLength;
        if (total > max) throw tooLarge(`more than ${max}`);
        chunks.push(Buffer.from(step.value.buffer, step.value.byteOffset, step.value.byteLength));
      }
      complete = true;
    } catch (err) {
      if (err instanceof OciError) throw err;
      throw this.transferError(err, ex, subject);
    } finally {
      if (!complete) reader.cancel().catch(() => {});
      ex.done(complete);
    }
    return Buffer.concat(chunks, total);
  }

  private transferError(err: unknown, ex: Exchange, subject: Subject): Error {
    if (err instanceof OciError) return err;
    const what = `${subject.kind} ${subject.name}`;
    const stall = ex.stalled();
    if (stall !== undefined) {
      const why =
        stall === 'idle'
          ? `stopped sending ${what} (no data for ${this.timeoutMs} ms)`
          : stall === 'slow'
            ? `is sending ${what} too slowly (under ${MIN_BLOB_BYTES_PER_SECOND} bytes/s over ${this.timeoutMs} ms)`
            : `did not send all of ${what} within ${this.timeoutMs} ms`;
      return new OciError('REGISTRY_TIMEOUT', `${this.display}: ${ex.url.host} ${why}`, {
        subject: this.display,
      });
    }
    // zlib's codes (Z_DATA_ERROR, ...) and brotli's (ERR__ERROR_...): the coding fetch undid is not
    // what the body is in. Not a network failure.
    const note = codingNote(ex);
    if (note && /^(Z_|ERR__ERROR)/.test(errorCode(err) ?? '')) {
      return new OciError(
        'REGISTRY_ERROR',
        `${this.display}: ${what} from ${ex.url.host} does not decode (${innermostMessage(err)})${note}`,
        { subject: this.display, cause: err },
      );
    }
    return new OciError(
      'REGISTRY_ERROR',
      `${this.display}: connection to ${ex.url.host} failed while reading ${what} (${innermostMessage(err)})`,
      {
        subject: this.display,
        cause: err,
      },
    );
  }

  /** Turns a failed connection into one line that says what to do. */
  private networkError(err: unknown, url: URL, timedOut: boolean, subject: Subject): OciError {
    const host = url.host;
    const opts = { subject: this.display, cause: err };
    if (timedOut) {
      return new OciError(
        'REGISTRY_TIMEOUT',
        `${this.display}: no answer from ${host} within ${this.timeoutMs} ms for ${subject.kind} ${subject.name}`,
        opts,
      );
    }
    const code = errorCode(err) ?? '';
    const message = innermostMessage(err);
    if (code === 'ECONNREFUSED') {
      return new OciError(
        'REGISTRY_UNREACHABLE',
        `${this.display}: cannot connect to ${host} (connection refused)`,
        opts,
      );
    }
    if (code === 'ENOTFOUND' || code === 'EAI_AGAIN') {
      return new OciError(
        'REGISTRY_UNREACHABLE',
        `${this.display}: cannot resolve host ${url.hostname}`,
        opts,
      );
    }
    if (
      code === 'ETIMEDOUT' ||
      code === 'UND_ERR_CONNECT_TIMEOUT' ||
      code === 'EHOSTUNREACH' ||
      code === 'ENETUNREACH'
    ) {
      return new OciError('REGISTRY_UNREACHABLE', `${this.display}: cannot reach ${host} (${code})`, opts);
    }
    if (code === 'UND_ERR_HEADERS_OVERFLOW') {
      return new OciError(
        'REGISTRY_ERROR',
        `${this.display}: ${host} answered ${subject.kind} ${subject.name} with headers over Node's ${maxHeaderSize}-byte limit (a broken registry or proxy?)`,
        opts,
      );
    }
    if (message === 'bad port') {
      // undici refuses the fetch standard's "bad ports" (1, 25, 6000, ...) before connecting.
      return new OciError(
        'REGISTRY_UNREACHABLE',
        `${this.display}: port ${url.port} is blocked for HTTP by Node's fetch; use another port`,
        opts,
      );
    }
    const plainHttpPeer =
      url.protocol === 'https:' &&
      (/WRONG_VERSION_NUMBER|PACKET_LENGTH_TOO_LONG|HTTP_REQUEST|UNKNOWN_PROTOCOL/i.test(code) ||
        /wrong version number|packet length too long|http request/i.test(message));
    if (plainHttpPeer) {
      return new OciError(
        'REGISTRY_TLS',
        `${this.display}: ${host} does not speak TLS on https (a plain-http registry? use --insecure to connect over http)`,
        opts,
      );
    }
    if (/CERT|ERR_TLS|ERR_SSL|SELF_SIGNED|UNABLE_TO_VERIFY|UNABLE_TO_GET_ISSUER/i.test(code)) {
      return new OciError(
        'REGISTRY_TLS',
        `${this.display}: TLS with ${host} failed (${code}: ${message}); if it uses a private CA, add it with NODE_EXTRA_CA_CERTS`,
        opts,
      );
    }
    if (url.protocol === 'http:' && (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET')) {
      // Node's TLS servers hang up on plain http; so may a broken plain-http registry.
      return new OciError(
        'REGISTRY_UNREACHABLE',
        `${this.display}: ${host} closed the connection on a plain-http request (${message}); if it is an https registry, leave out --insecure`,
        opts,
      );
    }
    if (url.protocol === 'https:' && (code === 'ECONNRESET' || code === 'UND_ERR_SOCKET')) {
      return new OciError(
        'REGISTRY_UNREACHABLE',
        `${this.display}: ${host} closed the connection during the request (${message}); if it is a plain-http registry, use --insecure`,
        opts,
      );
    }
    return new OciError(
      'REGISTRY_UNREACHABLE',
      `${this.display}: request to ${host} failed (${code ? `${code}: ` : ''}${message})`,
      opts,
    );
  }
}
