import type { IncomingMessage } from 'node:http';
import type { Socket } from 'node:net';

/**
 * A request refused before its body was read (quota, full disk, 413, 429, a failed login...). Its
 * client is usually still sending, and may send for ever. Node's own answer to an unread body is to
 * read all of it after the response, however long it is: an endless body held its socket for good,
 * and a slow one for as long as it dripped. Closing at once is no better: a socket closed with
 * unread bytes sends a reset, and a client still writing loses the answer it had not read yet
 * (clients saw ECONNRESET instead of the 413 or 507 that said why).
 *
 * So: the answer says `Connection: close`; once it is sent, our side of the connection is shut
 * (FIN), and what the client goes on sending is read and dropped for at most `DRAIN_BYTES` or
 * `DRAIN_MS`, whichever comes first, which gives it time to read the answer; then the socket is
 * destroyed. Go's net/http does much the same (it closes its write side and waits before closing).
 */
export const DRAIN_BYTES = 4 * 1024 * 1024;
export const DRAIN_MS = 2_000;

/** Whether the request has a body that has not all been received (read or not). */
export function bodyUnfinished(req: IncomingMessage): boolean {
  if (req.complete) return false;
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

/**
 * Arranges for the connection of `req` to close after its answer, reading at most `maxBytes` more
 * of its body for at most `maxMs`. The caller sets `Connection: close` on the answer, which is what
 * makes Node call the socket's `destroySoon` once the answer is sent: that call is replaced, for
 * this socket only, by the bounded close.
 */
export function closeAfterAnswer(req: IncomingMessage, maxBytes: number = DRAIN_BYTES, maxMs: number = DRAIN_MS): void {
  const socket: Socket | null = req.socket;
  if (!socket || socket.destroyed || Object.hasOwn(socket, 'destroySoon')) return;
  // Whoever read the body so far has stopped; nothing is read until the answer is out.
  req.pause();
  socket.destroySoon = () => {
    // Back to Node's own for anything that follows (the `end` below).
    Reflect.deleteProperty(socket, 'destroySoon');
    if (req.complete) {
      socket.destroySoon();
      return;
    }
    // Our side is done: FIN after the answer. The client's side stays open (HTTP server sockets
    // allow half-open connections) so that its remaining bytes are read, not answered by a reset.
    socket.end();
    const timer = setTimeout(() => socket.destroy(), maxMs);
    timer.unref();
    // Counted on the socket, not by the request's `data` events: a body no route read is dumped
    // by Node before this runs, and a dumped body's bytes are dropped without any event.
    const limit = socket.bytesRead + maxBytes;
    const meter = setInterval(() => {
      if (socket.bytesRead > limit) socket.destroy();
    }, 20);
    meter.unref();
    socket.once('close', () => {
      clearTimeout(timer);
      clearInterval(meter);
    });
    req.removeAllListeners('data');
    req.on('data', () => undefined);
    // The whole body arrived: nothing is left to reset, the socket can go now.
    req.once('end', () => socket.destroySoon());
    req.on('error', () => undefined);
    req.resume();
  };
}
