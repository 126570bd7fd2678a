import { request as httpRequest } from 'node:http';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

let reg: TestRegistry;
beforeAll(async () => {
  reg = await startTestRegistry('idle-admin-pw', 1500);
});
afterAll(async () => {
  await reg?.stop();
});

describe('slow and stalled clients', () => {
  it('a client that stops sending in the middle of a body is disconnected after the idle timeout', async () => {
    const [hostname, port] = reg.host.split(':');
    const auth = `Basic ${Buffer.from('admin:idle-admin-pw').toString('base64')}`;
    const start = await fetch(`${reg.base}/v2/idle/app/blobs/uploads/`, { method: 'POST', headers: { authorization: auth } });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, reg.base);
    const started = Date.now();
    const closed = await new Promise<string>((resolve) => {
      const req = httpRequest({
        hostname,
        port: Number(port),
        path: `${location.pathname}${location.search}`,
        method: 'PATCH',
        headers: {
          authorization: auth,
          'content-type': 'application/octet-stream',
          'content-length': '100000',
          'content-range': '0-99999',
        },
      });
      req.on('error', (err) => resolve(`error ${(err as NodeJS.ErrnoException).code}`));
      req.on('response', (res) => {
        res.resume();
        res.on('end', () => resolve(`response ${res.statusCode}`));
      });
      req.write(Buffer.alloc(1000));
    });
    const waited = Date.now() - started;
    expect(closed).toMatch(/^error/);
    expect(waited).toBeGreaterThanOrEqual(1000);
    expect(waited).toBeLessThan(15_000);
    // The server is still healthy, and nothing of the partial chunk became a blob.
    expect((await fetch(`${reg.base}/v2/`, { headers: { authorization: auth } })).status).toBe(200);
  });
});
