import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { createServer, type RequestListener, type Server } from 'node:http';
import { createServer as createTlsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * A loopback HTTP server playing whatever registry a test needs: each test sets `handler` to the
 * answers it wants (a stall, a redirect, a hostile header), and the server stays up between tests.
 */
export interface ScriptedServer {
  handler: RequestListener;
  readonly port: number;
  close(): Promise<void>;
}

/** A key and a self-signed certificate for 127.0.0.1, in PEM. */
export interface LoopbackCertificate {
  key: string;
  cert: string;
}

/**
 * Makes a throwaway certificate with openssl (valid two days, for IP 127.0.0.1), or returns
 * undefined when openssl is not installed. A child process trusts it through NODE_EXTRA_CA_CERTS.
 */
export function loopbackCertificate(): LoopbackCertificate | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'portcullis-cert-'));
  try {
    const made = spawnSync(
      'openssl',
      [
        'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
        '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2',
        '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
      ],
      { stdio: 'ignore' },
    );
    if (made.status !== 0) return undefined;
    return { key: readFileSync(join(dir, 'key.pem'), 'utf8'), cert: readFileSync(join(dir, 'cert.pem'), 'utf8') };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** Starts the server on a free loopback port; over TLS with `tls`. */
export async function startScriptedServer(tls?: LoopbackCertificate): Promise<ScriptedServer> {
  const scripted = { handler: ((_req, res) => res.end()) as RequestListener } as ScriptedServer & { port: number };
  const listener: RequestListener = (req, res) => scripted.handler(req, res);
  const server: Server = tls ? createTlsServer(tls, listener) : createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  scripted.port = (server.address() as AddressInfo).port;
  scripted.close = async () => {
    // Tests leave stalled answers behind on purpose; they must not hold the close.
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
  };
  return scripted;
}
