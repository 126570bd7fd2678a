import { createServer, type RequestListener, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

/**
 * A loopback HTTP server playing whatever registry a test needs: each test sets `handler` to the
 * answers it wants (a stall, a redirect, a hostile header), and the server stays up between tests.
 */
export interface ScriptedServer {
  handler: RequestListener;
  readonly port: number;
  close(): Promise<void>;
}

export async function startScriptedServer(): Promise<ScriptedServer> {
  const scripted = { handler: ((_req, res) => res.end()) as RequestListener } as ScriptedServer & { port: number };
  const server: Server = createServer((req, res) => scripted.handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scripted.port = (server.address() as AddressInfo).port;
  scripted.close = async () => {
    // Tests leave stalled answers behind on purpose; they must not hold the close.
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return scripted;
}
