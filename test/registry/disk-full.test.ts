import { execFileSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, readdir, rm, stat } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startServe, type RunningServer } from '../../src/cli/serve-command.js';
import { freePort } from '../helpers/docker-registry.js';
import { DRAIN_MS } from '../../src/registry/refused-body.js';
import { streamedRequest } from './streaming-client.js';
import { PushClient } from './push-client.js';
import { startTestRegistry, type TestRegistry } from './registry-harness.js';

/**
 * A registry whose data folder fills up: the pusher is told so in words, and the bytes of the
 * failed upload are given back at once, so the registry (its database included) works again as
 * soon as the next request fits. Needs a small file system of its own: a tmpfs, which only root
 * may mount.
 */
const ADMIN_PW = 'disk-full-admin-pw';
const auth = { authorization: `Basic ${Buffer.from(`admin:${ADMIN_PW}`).toString('base64')}` };
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

function mountTmpfs(dir: string, size: string): string | undefined {
  if (process.getuid?.() !== 0) return 'not root: mounting a small tmpfs needs root';
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'pipe' });
    return undefined;
  } catch (err) {
    return `cannot mount a tmpfs here (${(err as Error).message.split('\n')[0]})`;
  }
}

let mountPoint = '';
let skipReason: string | undefined;
let server: RunningServer | undefined;
let base = '';

beforeAll(async () => {
  mountPoint = await mkdtemp(join(tmpdir(), 'portcullis-full-'));
  skipReason = mountTmpfs(mountPoint, '8m');
  if (skipReason) {
    console.warn(`disk-full tests skipped: ${skipReason}`);
    return;
  }
  server = await startServe(
    { listen: `127.0.0.1:${await freePort()}`, data: join(mountPoint, 'data'), gate: false },
    { PORTCULLIS_ADMIN_PASSWORD: ADMIN_PW, PORTCULLIS_LOG_LEVEL: 'silent' },
  );
  base = `http://${server.address}`;
});

afterAll(async () => {
  if (server) await Promise.race([server.close(), new Promise((res) => setTimeout(res, 10_000).unref())]);
  if (!skipReason) execFileSync('umount', [mountPoint]);
  await rm(mountPoint, { recursive: true, force: true });
});

describe('registry on a full disk', () => {
  it('answers 507 in words, gives the failed chunk back at once, and then works again', async (ctx) => {
    if (skipReason) ctx.skip();
    const start = await fetch(`${base}/v2/full/app/blobs/uploads/`, { method: 'POST', headers: auth });
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    const uuid = location.split('/').pop()!;

    // More than the 8 MiB file system holds.
    const tooBig = randomBytes(10 * 1024 * 1024);
    const patch = await fetch(`${base}${location}`, {
      method: 'PATCH',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: tooBig,
    });
    expect(patch.status).toBe(507);
    const error = ((await patch.json()) as { errors: { message: string }[] }).errors[0]!;
    expect(error.message).toContain("the registry's storage is full");
    expect(error.message).not.toContain('see the server log');

    // Nothing of the failed chunk stays on disk, and the session is where it was.
    const temp = join(mountPoint, 'data', 'registry', 'tmp');
    expect((await readdir(temp)).includes(uuid)).toBe(true);
    expect((await stat(join(temp, uuid))).size).toBe(0);
    const status = await fetch(`${base}${location}`, { headers: auth });
    expect(status.status).toBe(204);
    expect(status.headers.get('range')).toBe('0-0');

    // The space is back: the same session finishes with a blob that fits, and an image pushes.
    const small = randomBytes(64 * 1024);
    const done = await fetch(`${base}${location}?digest=${sha(small)}`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: small,
    });
    expect(done.status).toBe(201);
    const config = Buffer.from('{"architecture":"amd64","os":"linux"}');
    expect((await fetch(`${base}/v2/full/app/blobs/uploads/?digest=${sha(config)}`, { method: 'POST', headers: auth, body: config })).status).toBe(201);
    const manifest = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: sha(config), size: config.length },
      layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: sha(small), size: small.length }],
    });
    const put = await fetch(`${base}/v2/full/app/manifests/v1`, {
      method: 'PUT',
      headers: { ...auth, 'content-type': 'application/vnd.oci.image.manifest.v1+json' },
      body: manifest,
    });
    expect(put.status).toBe(201);
  });

  it('answers 507 to a body that never ends, then closes the connection instead of reading it for ever', async (ctx) => {
    if (skipReason) ctx.skip();
    const start = await fetch(`${base}/v2/full/endless/blobs/uploads/`, { method: 'POST', headers: auth });
    expect(start.status).toBe(202);
    const location = start.headers.get('location')!;
    const outcome = await streamedRequest({
      host: server!.address,
      method: 'PATCH',
      path: location,
      headers: { ...auth, 'content-type': 'application/octet-stream' },
      body: 'endless',
    });
    expect(outcome.status).toBe(507);
    expect(outcome.body).toContain("the registry's storage is full");
    expect(outcome.headers.connection).toBe('close');
    expect(outcome.closedAfterMs).toBeDefined();
    expect(outcome.closedAfterMs! - outcome.endedAfterMs!).toBeLessThanOrEqual(DRAIN_MS + 1_000);
    expect((await stat(join(mountPoint, 'data', 'registry', 'tmp', location.split('/').pop()!))).size).toBe(0);
  });
});

describe('a chunk whose offset cannot be recorded (the database is full)', () => {
  let reg: TestRegistry | undefined;
  afterAll(async () => {
    await reg?.stop();
  });

  it('is cut from the temp file at once, and the session resumes from its recorded offset', async () => {
    reg = await startTestRegistry('offset-full-pw');
    const client = PushClient.basic(reg.base, 'admin', reg.password);
    const start = await client.call('POST', '/v2/full/offset/blobs/uploads/');
    const location = start.headers.get('location')!;
    const temp = join(reg.dataDir, 'registry', 'tmp', location.split('/').pop()!);
    const first = randomBytes(1000);
    const second = randomBytes(3000);
    const patch = (body: Buffer, from: number) =>
      client.call('PATCH', location, body, { 'content-type': 'application/octet-stream', 'content-range': `${from}-${from + body.length - 1}` });
    expect((await patch(first, 0)).status).toBe(202);

    // The chunk's bytes land in the file; recording its offset fails as SQLite does on a full disk.
    const metadata = reg.app.registry.metadata;
    const setUploadOffset = metadata.setUploadOffset.bind(metadata);
    metadata.setUploadOffset = () => Promise.reject(Object.assign(new Error('database or disk is full'), { code: 'SQLITE_FULL' }));
    let refused;
    try {
      refused = await patch(second, 1000);
    } finally {
      metadata.setUploadOffset = setUploadOffset;
    }
    expect(refused.status).toBe(507);
    expect(refused.body.toString()).toContain("the registry's storage is full");
    // Its bytes are gone from the disk now (they stayed until the session's next request).
    expect((await stat(temp)).size).toBe(1000);
    expect((await client.call('GET', location)).headers.get('range')).toBe('0-999');

    // The client sends the chunk again, and the blob is what it pushed.
    expect((await patch(second, 1000)).status).toBe(202);
    const whole = Buffer.concat([first, second]);
    const done = await client.call('PUT', `${location}${location.includes('?') ? '&' : '?'}digest=${sha(whole)}`);
    expect(done.status, done.body.toString()).toBe(201);
    expect((await client.call('GET', `/v2/full/offset/blobs/${sha(whole)}`)).body.equals(whole)).toBe(true);
  });
});

/**
 * A data folder whose file system goes read-only under the running server: ext4 does that by
 * itself after an error when mounted with errors=remount-ro (here the error is triggered through
 * sysfs). Needs root, mkfs.ext4 and a loop device.
 */
describe('registry on a file system that turned read-only', () => {
  let dir = '';
  let image = '';
  let why: string | undefined;
  let reg: RunningServer | undefined;
  let url = '';

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'portcullis-ro-'));
    image = `${dir}.img`;
    try {
      if (process.getuid?.() !== 0) throw new Error('not root');
      execFileSync('truncate', ['-s', '32M', image]);
      execFileSync('mkfs.ext4', ['-q', '-F', image], { stdio: 'pipe' });
      execFileSync('mount', ['-o', 'loop,errors=remount-ro', image, dir], { stdio: 'pipe' });
    } catch (err) {
      why = `cannot mount an ext4 image here (${(err as Error).message.split('\n')[0]})`;
      console.warn(`read-only tests skipped: ${why}`);
      return;
    }
    reg = await startServe(
      { listen: `127.0.0.1:${await freePort()}`, data: join(dir, 'data'), gate: false },
      { PORTCULLIS_ADMIN_PASSWORD: ADMIN_PW, PORTCULLIS_LOG_LEVEL: 'silent' },
    );
    url = `http://${reg.address}`;
  });

  afterAll(async () => {
    if (reg) await Promise.race([reg.close(), new Promise((res) => setTimeout(res, 10_000).unref())]);
    if (!why) execFileSync('umount', [dir]);
    await rm(dir, { recursive: true, force: true });
    await rm(image, { force: true });
  });

  it('answers a push 503 in words, and pulls go on working', async (ctx) => {
    if (why) ctx.skip();
    const blob = randomBytes(4096);
    expect((await fetch(`${url}/v2/ro/app/blobs/uploads/?digest=${sha(blob)}`, { method: 'POST', headers: auth, body: blob })).status).toBe(201);
    const device = execFileSync('findmnt', ['-n', '-o', 'SOURCE', dir], { encoding: 'utf8' }).trim().replace('/dev/', '');
    try {
      execFileSync('sh', ['-c', `echo portcullis-test > /sys/fs/ext4/${device}/trigger_fs_error`], { stdio: 'pipe' });
    } catch {
      ctx.skip();
    }
    expect(execFileSync('findmnt', ['-n', '-o', 'OPTIONS', dir], { encoding: 'utf8' }).trim()).toMatch(/(^|,)(ro|emergency_ro)(,|$)/);

    const other = randomBytes(4096);
    for (const push of [
      fetch(`${url}/v2/ro/app/blobs/uploads/`, { method: 'POST', headers: auth }),
      fetch(`${url}/v2/ro/app/blobs/uploads/?digest=${sha(other)}`, { method: 'POST', headers: auth, body: other }),
    ]) {
      const res = await push;
      // It was a 500 "internal error; see the server log".
      expect(res.status).toBe(503);
      const error = ((await res.json()) as { errors: { message: string }[] }).errors[0]!;
      expect(error.message).toMatch(/^the registry's storage cannot be written \(read-only or failing: [A-Z_]+\); this request was not stored, pulls still work/);
    }
    const pulled = await fetch(`${url}/v2/ro/app/blobs/${sha(blob)}`, { headers: auth });
    expect(pulled.status).toBe(200);
    expect(Buffer.from(await pulled.arrayBuffer()).equals(blob)).toBe(true);
  });
});
