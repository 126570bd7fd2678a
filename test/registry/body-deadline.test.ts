import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_MANIFEST_BYTES } from '../../src/registry/index.js';
import { PushClient, imageOf, pushImage, randomLayer } from './push-client.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

// A manifest body that does not arrive within the deadline (shortened here from 30 s).
let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry('deadline-admin-pw', undefined, { manifestBodyDeadlineMs: 400 });
});
afterAll(async () => {
  await reg?.stop();
});

interface Outcome {
  status?: number;
  connection?: string;
  body?: string;
  error?: string;
  /** When the connection closed after the answer (ms after the request began). */
  closedAfterMs?: number;
  ms: number;
}

/** A manifest PUT that declares a 4 MiB body and sends a byte every 50 ms, for ever. */
function slowManifestPut(): Promise<Outcome> {
  const [hostname, port] = reg.host.split(':');
  const started = Date.now();
  return new Promise((resolve) => {
    const outcome: Partial<Outcome> = {};
    const req = httpRequest({
      hostname,
      port: Number(port),
      method: 'PUT',
      path: '/v2/deadline/app/manifests/v1',
      headers: {
        authorization: `Basic ${Buffer.from('admin:deadline-admin-pw').toString('base64')}`,
        'content-type': 'application/vnd.oci.image.manifest.v1+json',
        'content-length': String(MAX_MANIFEST_BYTES),
      },
    });
    req.write('{');
    const drip = setInterval(() => req.write(' '), 50);
    const done = () => {
      clearInterval(drip);
      resolve({ ...outcome, ms: Date.now() - started });
    };
    req.on('error', (err) => {
      outcome.error = (err as NodeJS.ErrnoException).code ?? err.message;
      done();
    });
    req.on('response', (res) => {
      outcome.status = res.statusCode;
      outcome.connection = res.headers.connection;
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        outcome.body = Buffer.concat(chunks).toString();
      });
      res.socket.on('close', () => {
        outcome.closedAfterMs = Date.now() - started;
        done();
      });
    });
  });
}

describe('a manifest body that does not arrive in time', () => {
  it('is answered 408 with an OCI error body, then the connection is closed', async () => {
    const outcome = await slowManifestPut();
    expect(outcome.error).toBeUndefined();
    expect(outcome.status).toBe(408);
    expect(outcome.connection).toBe('close');
    expect(JSON.parse(outcome.body!)).toEqual({
      errors: [{ code: 'MANIFEST_INVALID', message: 'the manifest body did not arrive within 0.4 s', detail: null }],
    });
    expect(outcome.ms).toBeGreaterThanOrEqual(400);
    expect(outcome.ms).toBeLessThan(5_000);
    // Its claim on the manifest budget is given back: the account pushes again at once.
    await pushImage(PushClient.basic(reg.base, 'admin', 'deadline-admin-pw'), 'deadline/app', 'v1', imageOf([randomLayer(256)], 'deadline'));
  });

  it('does the same for many at once', async () => {
    const outcomes = await Promise.all(Array.from({ length: 2 }, () => slowManifestPut()));
    expect(outcomes.map((o) => [o.status, o.error])).toEqual([
      [408, undefined],
      [408, undefined],
    ]);
  });
});
