import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { basicAuth, buildRegistry, ensureAdminUser, type BuildRegistryOptions } from '../../src/registry/index.js';

export interface TestRegistry {
  app: FastifyInstance;
  dataDir: string;
  base: string;
  host: string;
  password: string;
  stop(): Promise<void>;
}

/** A registry with Basic auth on a loopback port and a known admin password, in a temp data folder. */
export async function startTestRegistry(
  password = 'test-admin-pw',
  idleTimeoutMs?: number,
  more: Pick<BuildRegistryOptions, 'manifestBodyDeadlineMs'> = {},
): Promise<TestRegistry> {
  const dataDir = await mkdtemp(join(tmpdir(), 'portcullis-registry-'));
  const app = await buildRegistry({
    ...more,
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

export interface CallResult {
  status: number;
  headers: Headers;
  body: Buffer;
  json(): Record<string, unknown>;
}

export interface CallInit {
  body?: Uint8Array | string;
  headers?: Record<string, string>;
  /** An Authorization header; the default is admin's Basic, null sends none. */
  auth?: string | null;
}

/**
 * One request to a test registry with its whole body read. `registry` is a getter because tests
 * start the registry in `beforeAll`, after their helpers are declared.
 */
export function registryCaller(registry: () => TestRegistry) {
  return async (method: string, path: string, init: CallInit = {}): Promise<CallResult> => {
    const reg = registry();
    const headers: Record<string, string> = { ...(init.headers ?? {}) };
    if (init.auth !== null) headers.authorization = init.auth ?? `Basic ${Buffer.from(`admin:${reg.password}`).toString('base64')}`;
    const body = init.body === undefined ? undefined : typeof init.body === 'string' ? init.body : new Uint8Array(init.body);
    const res = await fetch(`${reg.base}${path}`, { method, headers, ...(body !== undefined ? { body } : {}) });
    const bytes = Buffer.from(await res.arrayBuffer());
    return { status: res.status, headers: res.headers, body: bytes, json: () => JSON.parse(bytes.toString('utf8')) as Record<string, unknown> };
  };
}

/** The first OCI error code of an error body ('' when there is none). */
export function errorCode(r: { json(): Record<string, unknown> }): string {
  return ((r.json().errors as { code: string }[])[0] ?? { code: '' }).code;
}
