import { connect } from 'node:net';

/** What became of a request whose body the client kept sending. */
export interface StreamedOutcome {
  status?: number;
  /** The answer's headers, names in lower case. */
  headers: Record<string, string>;
  /** The answer's body (as far as its Content-Length says). */
  body?: string;
  /** When the server ended its side of the connection (FIN), in ms after the request began. */
  endedAfterMs?: number;
  /** When the connection was gone, in ms after the request began; unset if not within `giveUpMs`. */
  closedAfterMs?: number;
  /** Body bytes the client handed to its socket, in all and once the answer had arrived. */
  sent: number;
  sentAfterAnswer: number;
}

export interface StreamedRequest {
  host: string;
  method: string;
  path: string;
  headers: Record<string, string>;
  /**
   * `endless`: 64 KiB chunks as fast as the socket takes them, for ever (chunked transfer unless
   * a Content-Length is given); `drip`: one byte every 50 ms, for ever.
   */
  body: 'endless' | 'drip';
  /** A first piece of the body, sent before the pattern starts (a manifest's `{`, say). */
  first?: Buffer;
  /** The outcome is returned this long after the start at the latest, the connection then destroyed. */
  giveUpMs?: number;
}

/**
 * A request whose body never ends, sent over a raw socket by a client that does not give up when
 * the server ends its side: it goes on sending until the server closes the connection, as a hostile
 * client would. Records the answer and when (if ever) the server closed the connection.
 */
export function streamedRequest(r: StreamedRequest): Promise<StreamedOutcome> {
  const [host, port] = r.host.split(':');
  const started = Date.now();
  const chunked = !Object.keys(r.headers).some((h) => h.toLowerCase() === 'content-length');
  const frame = (b: Buffer) => (chunked ? Buffer.concat([Buffer.from(`${b.length.toString(16)}\r\n`), b, Buffer.from('\r\n')]) : b);
  const piece = frame(Buffer.alloc(64 * 1024, 0x20));
  const drop = frame(Buffer.from(' '));
  return new Promise((resolve) => {
    const outcome: StreamedOutcome = { headers: {}, sent: 0, sentAfterAnswer: 0 };
    let over = false;
    let drip: NodeJS.Timeout | undefined;
    let received = Buffer.alloc(0);
    const socket = connect({ host, port: Number(port), allowHalfOpen: true });
    const finish = () => {
      if (over) return;
      over = true;
      clearInterval(drip);
      clearTimeout(giveUp);
      socket.destroy();
      resolve(outcome);
    };
    const giveUp = setTimeout(finish, r.giveUpMs ?? 8_000);
    socket.on('error', () => undefined);
    socket.on('close', () => {
      // Closed by the server, not by our giving up.
      if (over) return;
      outcome.closedAfterMs = Date.now() - started;
      finish();
    });
    socket.on('end', () => {
      outcome.endedAfterMs = Date.now() - started;
    });
    socket.on('data', (d: Buffer) => {
      received = Buffer.concat([received, d]);
      const headEnd = received.indexOf('\r\n\r\n');
      if (headEnd < 0) return;
      const [statusLine, ...lines] = received.subarray(0, headEnd).toString('latin1').split('\r\n');
      outcome.status = Number(statusLine!.split(' ')[1]);
      for (const line of lines) {
        const colon = line.indexOf(':');
        outcome.headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
      }
      const length = Number(outcome.headers['content-length'] ?? 0);
      outcome.body = received.subarray(headEnd + 4, headEnd + 4 + length).toString();
    });
    const write = (b: Buffer, bodyBytes: number) => {
      outcome.sent += bodyBytes;
      if (outcome.status !== undefined) outcome.sentAfterAnswer += bodyBytes;
      return socket.write(b);
    };
    const head = [`${r.method} ${r.path} HTTP/1.1`, `Host: ${r.host}`, ...Object.entries(r.headers).map(([k, v]) => `${k}: ${v}`)];
    if (chunked) head.push('Transfer-Encoding: chunked');
    socket.write(`${head.join('\r\n')}\r\n\r\n`);
    if (r.first) write(frame(r.first), r.first.length);
    if (r.body === 'drip') {
      drip = setInterval(() => {
        if (!over && socket.writable) write(drop, 1);
      }, 50);
      return;
    }
    const pump = () => {
      while (!over && socket.writable && write(piece, 64 * 1024));
    };
    socket.on('drain', pump);
    pump();
  });
}
