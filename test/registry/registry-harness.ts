import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { basicAuth, buildRegistry, ensureAdminUser } from '../../src/registry/index.js';

export interface TestRegistry {
  app: FastifyInstance;
  dataDir: string;
  base: string;
  host: string;
  password: string;
  stop(): Promise<void>;
}

/** A registry with Basic auth on a loopback port and a known admin password, in a temp data folder. */
export async function startTestRegistry(password = 'test-admin-pw', idleTimeoutMs?: number): Promise<TestRegistry> {
  const dataDir = await mkdtemp(join(tmpdir(), 'portcullis-registry-'));
  const app = await buildRegistry({
    dataDir,
    idleTimeoutMs,
    auth: async ({ metadata }) => {
      await ensureAdminUser(metadata, { PORTCULLIS_ADMIN_PASSWORD: password });
      return basicAuth(metadata);
    },
  });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const { port } = app.server.address() as AddressInfo;
  const host = `127.0.0.1:${port}`;
  return {
    app,
    dataDir,
    host,
    base: `http://${host}`,
    password,
    async stop() {
      await app.close();
      await rm(dataDir, { recursive: true, force: true });
    },
  };
}
