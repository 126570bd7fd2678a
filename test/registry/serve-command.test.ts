import { spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { strToU8, zipSync } from 'fflate';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import { loadConfig } from '../../src/cli/config.js';
import { addServeCommand, checkDataFolder, checkTlsMaterial, logRequest, redactUrl, parseListen, resolveServeSettings, scheduleDbUpdate, scheduleGc, startServe } from '../../src/cli/serve-command.js';
import { FsBlobStore, SqliteRegistryMetadata, blobRoot, writeBlobBytes } from '../../src/store/index.js';

describe('portcullis serve', () => {
  it('parses --listen values', () => {
    expect(parseListen('127.0.0.1:5000')).toEqual({ host: '127.0.0.1', port: 5000 });
    expect(parseListen('[::1]:5001')).toEqual({ host: '::1', port: 5001 });
    expect(parseListen(':5002')).toEqual({ host: '0.0.0.0', port: 5002 });
    expect(() => parseListen('localhost')).toThrow(/HOST:PORT/);
    expect(() => parseListen('h:99999')).toThrow();
    expect(() => parseListen('::1:5000')).toThrow(/write an IPv6 address in brackets, e\.g\. \[::1\]:5000/);
    expect(() => parseListen(':abc')).toThrow(/^--listen ":abc" is not HOST:PORT \(e\.g\. 127\.0\.0\.1:5000\)$/);
  });

  it('registers the serve command with its defaults', () => {
    const program = new Command();
    addServeCommand(program);
    const serve = program.commands.find((c) => c.name() === 'serve')!;
    expect(serve).toBeDefined();
    // No commander default: the config file's serve.listen must be able to apply.
    expect(serve.opts().listen).toBeUndefined();
    expect(serve.helpInformation()).toMatch(/127\.0\.0\.1:5000/);
  });

  it('refuses a PORTCULLIS_ADMIN_PASSWORD below the password floor and creates no admin, then starts with a good one', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-serve-'));
    try {
      for (const weak of ['admin', 'short', 'ADMIN']) {
        await expect(startServe({ listen: '127.0.0.1:0', data }, { PORTCULLIS_ADMIN_PASSWORD: weak, PORTCULLIS_LOG_LEVEL: 'silent' })).rejects.toThrow(
          /PORTCULLIS_ADMIN_PASSWORD: a password (needs at least 8 characters|must not be the user name); the admin account was not created/,
        );
      }
      const server = await startServe({ listen: '127.0.0.1:0', data }, { PORTCULLIS_ADMIN_PASSWORD: 'long-enough', PORTCULLIS_LOG_LEVEL: 'silent' });
      try {
        const ok = await fetch(`http://${server.address}/v2/`, { headers: { authorization: `Basic ${Buffer.from('admin:long-enough').toString('base64')}` } });
        expect(ok.status).toBe(200);
      } finally {
        await server.close();
      }
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  it('says the port is taken and exits 2, with the gate on, instead of ending quietly with 0', async () => {
    // The CLI itself, built: the bug was the process ending before it could report (the gate's
    // analysis process, unreferenced, was what it waited for), which no in-process call can see.
    const taken = createServer();
    await new Promise<void>((resolve) => taken.listen(0, '127.0.0.1', resolve));
    const port = (taken.address() as AddressInfo).port;
    const data = await mkdtemp(join(tmpdir(), 'portcullis-serve-'));
    try {
      const run = spawnSync(process.execPath, ['bin/portcullis.js', '--data', data, 'serve', '--listen', `127.0.0.1:${port}`], {
        encoding: 'utf8',
        env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: 'long-enough', PORTCULLIS_LOG_LEVEL: 'silent' },
        timeout: 60_000,
      });
      expect(run.status).toBe(2);
      expect(run.stderr).toContain(`cannot listen on 127.0.0.1:${port}: the port is already in use`);
      expect(run.stderr).toContain('--listen HOST:PORT');
    } finally {
      await new Promise((resolve) => taken.close(resolve));
      await rm(data, { recursive: true, force: true });
    }
  });

  it('refuses, in one line, a data folder whose metadata database is missing or empty next to stored blobs', { timeout: 60_000 }, async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-serve-'));
    try {
      // A registry that holds an image, then loses its metadata file (a restore that failed,
      // a copy cut short). It started as new: a fresh admin, no image served, and its next gc
      // took every blob for garbage.
      const meta = await SqliteRegistryMetadata.open(data);
      const blobs = new FsBlobStore(blobRoot(data));
      const layer = Buffer.from('a layer of an image pushed before the metadata was lost');
      await writeBlobBytes(blobs, layer, `sha256:${createHash('sha256').update(layer).digest('hex')}`);
      await meta.close();
      const file = join(data, 'registry', 'meta.sqlite');
      for (const lose of ['truncate', 'delete'] as const) {
        if (lose === 'truncate') await writeFile(file, '');
        else await rm(file);
        const what = lose === 'truncate' ? 'empty' : 'missing';
        for (const args of [['serve', '--listen', '127.0.0.1:0'], ['gc', '--grace', '0']]) {
          const run = spawnSync(process.execPath, ['bin/portcullis.js', '--data', data, ...args], {
            encoding: 'utf8',
            env: { ...process.env, PORTCULLIS_ADMIN_PASSWORD: 'long-enough', PORTCULLIS_LOG_LEVEL: 'silent' },
            timeout: 30_000,
          });
          expect(run.status, run.stderr).toBe(2);
          expect(run.stderr.trim().split('\n')).toEqual([
            `portcullis: ${file} is ${what}, but ${join(data, 'registry', 'blobs')} holds blobs: the registry's metadata was lost. Restore meta.sqlite from a backup (starting without it would serve no image, and gc would delete every blob); to start an empty registry on purpose, move ${join(data, 'registry')} aside`,
          ]);
        }
        // Nothing was made or deleted meanwhile.
        expect(lose === 'truncate' ? statSync(file).size : existsSync(file)).toBe(lose === 'truncate' ? 0 : false);
        expect(await blobs.stat(`sha256:${createHash('sha256').update(layer).digest('hex')}`)).not.toBeNull();
      }
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  it('logs request URLs with the values of credential-like query parameters redacted', () => {
    expect(redactUrl('/v2/?access_token=eyJhbGci.payload.sig')).toBe('/v2/?access_token=[redacted]');
    expect(redactUrl('/token?service=r&scope=repository:a/b:pull&account=admin')).toBe('/token?service=r&scope=repository:a/b:pull&account=admin');
    expect(redactUrl('/v2/a/b/blobs/uploads/u?digest=sha256:ab&password=hunter22&X-Amz-Signature=f00&flag')).toBe('/v2/a/b/blobs/uploads/u?digest=sha256:ab&password=[redacted]&X-Amz-Signature=[redacted]&flag');
    expect(redactUrl('/v2/?client%5Fsecret=s3cr3t')).toBe('/v2/?client%5Fsecret=[redacted]');
    expect(redactUrl('/v2/library/app/manifests/v1')).toBe('/v2/library/app/manifests/v1');
    expect(logRequest({ method: 'GET', url: '/v2/?access_token=abc', host: 'h:1', ip: '127.0.0.1', socket: { remotePort: 5 } })).toEqual({
      method: 'GET',
      url: '/v2/?access_token=[redacted]',
      host: 'h:1',
      remoteAddress: '127.0.0.1',
      remotePort: 5,
    });
    // Node reads a Host header's bytes above ASCII as Latin-1; 0x9b is the C1 control sequence introducer.
    expect(logRequest({ method: 'GET', url: '/v2/', host: 'x\u009b2J', ip: '10.0.0.1\u001b[0m' })).toMatchObject({ host: 'x\\x9b2J', remoteAddress: '10.0.0.1\\x1b[0m' });
  });

  it('a data folder that is a file, or lies below one, is refused before anything opens it, naming the folder', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-serve-'));
    try {
      const file = join(dir, 'not-a-folder');
      await writeFile(file, 'x');
      for (const data of [file, join(file, 'below')]) {
        expect(() => checkDataFolder(data)).toThrow(`cannot use the data folder ${data}: it (or a folder above it) is a file, not a folder; choose another with --data or PORTCULLIS_DATA`);
      }
      // It said "Cannot read the token signing key .../registry/token-key.json." before.
      await expect(startServe({ listen: '127.0.0.1:0', data: file, gate: false }, { PORTCULLIS_ADMIN_PASSWORD: 'long-enough', PORTCULLIS_LOG_LEVEL: 'silent' })).rejects.toMatchObject({
        code: 'DATA_UNUSABLE',
      });
      // A folder that is usable gets its registry folder.
      checkDataFolder(join(dir, 'fresh'));
      expect(statSync(join(dir, 'fresh', 'registry')).isDirectory()).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a host name that does not resolve is a one-line usage error naming it, not a bare getaddrinfo code', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-serve-'));
    try {
      // .invalid never resolves (RFC 6761).
      const err = await startServe({ listen: 'registry.invalid:5000', data, gate: false }, { PORTCULLIS_ADMIN_PASSWORD: 'long-enough', PORTCULLIS_LOG_LEVEL: 'silent' }).then(
        () => undefined,
        (e: unknown) => e as Error & { code?: string },
      );
      expect(err?.code).toBe('LISTEN_FAILED');
      expect(err?.message).toMatch(/^cannot listen on registry\.invalid:5000: the host name (does not resolve to an address|could not be resolved \(DNS did not answer\)); choose another address with --listen/);
    } finally {
      await rm(data, { recursive: true, force: true });
    }
  });

  it('starts with the data folder, creates admin from PORTCULLIS_ADMIN_PASSWORD, and closes', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-serve-'));
    const server = await startServe(
      { listen: '127.0.0.1:0', data },
      { PORTCULLIS_ADMIN_PASSWORD: 'serve-admin-pw', PORTCULLIS_LOG_LEVEL: 'silent' },
    );
    try {
      const base = `http://${server.address}`;
      expect((await fetch(`${base}/v2/`)).status).toBe(401);
      const ok = await fetch(`${base}/v2/`, { headers: { authorization: `Basic ${Buffer.from('admin:serve-admin-pw').toString('base64')}` } });
      expect(ok.status).toBe(200);
      // Probes carry no credentials.
      const health = await fetch(`${base}/healthz`);
      expect(health.status).toBe(200);
      expect(await health.json()).toEqual({ status: 'ok' });
      const ready = await fetch(`${base}/readyz`);
      expect(ready.status).toBe(200);
      expect(await ready.json()).toEqual({ status: 'ready' });
    } finally {
      await server.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});

describe('portcullis serve settings', () => {
  it('takes flags over the config file over the defaults, and checks them together', () => {
    expect(resolveServeSettings({}, {})).toMatchObject({ listen: '127.0.0.1:5000', tls: undefined, trustProxy: [], gc: undefined });
    expect(resolveServeSettings({}, { listen: '0.0.0.0:6000', trustProxy: ['10.0.0.0/8'] })).toMatchObject({ listen: '0.0.0.0:6000', trustProxy: ['10.0.0.0/8'] });
    expect(resolveServeSettings({ listen: ':7000', trustProxy: 'loopback, 192.168.1.1' }, { listen: '0.0.0.0:6000' })).toMatchObject({
      listen: ':7000',
      trustProxy: ['loopback', '192.168.1.1'],
    });
    expect(resolveServeSettings({ gcEvery: '24h' }, { gc: { every: '1h', grace: '30m', keepUntagged: true } }).gc).toEqual({
      everyMs: 24 * 3_600_000,
      graceMs: 30 * 60_000,
      keepUntagged: true,
    });
    expect(resolveServeSettings({ gcEvery: '0' }, { gc: { every: '1h', grace: '1h', keepUntagged: false } }).gc).toBeUndefined();
    expect(() => resolveServeSettings({ tlsCert: 'c.pem' }, {})).toThrow(/both a certificate and a key/);
    expect(() => resolveServeSettings({ trustProxy: 'everyone' }, {})).toThrow(/not an IP address/);
    expect(() => resolveServeSettings({ trustProxy: '10.0.0.0/33' }, {})).toThrow(/not an IP address/);
    expect(() => resolveServeSettings({ gcEvery: '5s' }, {})).toThrow(/too often/);
    expect(() => resolveServeSettings({ gcEvery: 'daily' }, {})).toThrow('--gc-every: "daily" is not a duration');
    // From the config file, the error names the key the value came from.
    expect(() => resolveServeSettings({}, { gc: { every: 'daily', grace: '1h', keepUntagged: false } })).toThrow(
      'serve.gc.every in the config file: "daily" is not a duration',
    );
    expect(() => resolveServeSettings({}, { drainTimeout: 'soon' })).toThrow('serve.drainTimeout in the config file: "soon" is not a duration');
  });

  it('reads the serve section of portcullis.yaml, with TLS paths relative to the file, and refuses unknown keys', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-serve-config-'));
    try {
      const file = join(dir, 'portcullis.yaml');
      await writeFile(file, 'serve:\n  listen: 127.0.0.1:5123\n  tls: { cert: certs/c.pem, key: certs/k.pem }\n  trustProxy: [127.0.0.1]\n  gc: { every: 12h }\n');
      const config = loadConfig(file, {});
      expect(config.serve).toEqual({
        listen: '127.0.0.1:5123',
        tls: { cert: join(dir, 'certs/c.pem'), key: join(dir, 'certs/k.pem') },
        trustProxy: ['127.0.0.1'],
        gc: { every: '12h', grace: '1h', keepUntagged: false },
      });
      await writeFile(file, 'serve:\n  trustProxy: [everyone]\n');
      expect(() => loadConfig(file, {})).toThrow(/serve\.trustProxy\.0: not an IP address/);
      await writeFile(file, 'serve:\n  listne: 127.0.0.1:5000\n');
      expect(() => loadConfig(file, {})).toThrow(/serve/);
      // A JSON file is read by the same parser; a broken one is called JSON, as it is named.
      const json = join(dir, 'portcullis.json');
      await writeFile(json, '{"serve": {"listen": "127.0.0.1:5000",}');
      expect(() => loadConfig(json, {})).toThrow(`${json}: not valid JSON (`);
      await writeFile(file, 'serve: [\n');
      expect(() => loadConfig(file, {})).toThrow(`${file}: not valid YAML (`);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

const haveOpenssl = spawnSync('openssl', ['version']).status === 0;

describe.skipIf(!haveOpenssl)(`portcullis serve over TLS${haveOpenssl ? '' : ' [SKIPPED: openssl is not installed]'}`, () => {
  it('serves HTTPS with the given certificate and announces an https token realm', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-tls-'));
    const cert = join(dir, 'cert.pem');
    const key = join(dir, 'key.pem');
    const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1', '-keyout', key, '-out', cert], { encoding: 'utf8' });
    expect(made.status, made.stderr).toBe(0);
    const server = await startServe({ listen: '127.0.0.1:0', data: join(dir, 'data'), tlsCert: cert, tlsKey: key }, { PORTCULLIS_ADMIN_PASSWORD: 'tls-admin-pw', PORTCULLIS_LOG_LEVEL: 'silent' });
    try {
      const ca = await readFile(cert);
      const get = (headers: Record<string, string> = {}) =>
        new Promise<{ status: number; headers: Record<string, unknown> }>((resolve, reject) => {
          const req = httpsRequest(`https://${server.address}/v2/`, { ca, headers }, (res) => {
            res.resume();
            res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers }));
          });
          req.on('error', reject);
          req.end();
        });
      const anonymous = await get();
      expect(anonymous.status).toBe(401);
      expect(String(anonymous.headers['www-authenticate'])).toMatch(/^Bearer realm="https:\/\/127\.0\.0\.1:\d+\/token"/);
      expect((await get({ authorization: `Basic ${Buffer.from('admin:tls-admin-pw').toString('base64')}` })).status).toBe(200);
      // Plain HTTP to the TLS port gets no registry answer.
      await expect(fetch(`http://${server.address}/v2/`)).rejects.toThrow();
    } finally {
      await server.close();
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses to start with an unreadable certificate, naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-tls-'));
    try {
      await expect(
        startServe({ listen: '127.0.0.1:0', data: dir, tlsCert: join(dir, 'missing.pem'), tlsKey: join(dir, 'missing.key') }, { PORTCULLIS_LOG_LEVEL: 'silent' }),
      ).rejects.toThrow(/cannot read the TLS certificate .*missing\.pem: ENOENT/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('refuses a key of another certificate, files that are not PEM, an encrypted key and an expired certificate, naming the file', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'portcullis-tls-'));
    try {
      const pair = (name: string) => {
        const made = spawnSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:P-256', '-nodes', '-days', '2', '-subj', '/CN=127.0.0.1', '-keyout', join(dir, `${name}.key`), '-out', join(dir, `${name}.pem`)], { encoding: 'utf8' });
        expect(made.status, made.stderr).toBe(0);
      };
      pair('a');
      pair('b');
      const encrypted = spawnSync('openssl', ['pkey', '-in', join(dir, 'a.key'), '-aes-128-cbc', '-passout', 'pass:a-passphrase', '-out', join(dir, 'enc.key')], { encoding: 'utf8' });
      expect(encrypted.status, encrypted.stderr).toBe(0);
      await writeFile(join(dir, 'junk'), 'not a PEM file\n');
      const files = async (cert: string, key: string) => ({ cert: await readFile(join(dir, cert)), key: await readFile(join(dir, key)) });
      const names = (cert: string, key: string) => ({ cert: `/etc/certs/${cert}`, key: `/etc/certs/${key}` });
      const good = await files('a.pem', 'a.key');
      expect(() => checkTlsMaterial(good, names('a.pem', 'a.key'))).not.toThrow();
      const refusals: [string, string, RegExp][] = [
        ['a.pem', 'b.key', /^the TLS key \/etc\/certs\/b\.key does not belong to the certificate \/etc\/certs\/a\.pem; give the key the certificate was issued for$/],
        ['a.pem', 'junk', /^the TLS key \/etc\/certs\/junk is not a PEM private key/],
        ['junk', 'a.key', /^the TLS certificate \/etc\/certs\/junk is not a PEM certificate/],
        ['a.pem', 'enc.key', /^the TLS key \/etc\/certs\/enc\.key is encrypted; give the key without a passphrase/],
      ];
      for (const [cert, key, message] of refusals) {
        const material = await files(cert, key);
        expect(() => checkTlsMaterial(material, names(cert, key))).toThrow(message);
      }
      // Two days from now the two-day certificate has expired.
      const later = new Date(Date.now() + 3 * 86_400_000);
      expect(() => checkTlsMaterial(good, names('a.pem', 'a.key'), later)).toThrow(/^the TLS certificate \/etc\/certs\/a\.pem expired on \d{4}-\d\d-\d\dT[\d:.]+Z; renew it$/);
      // The server checks before it starts: nothing listens, the one-line message names the files.
      await expect(
        startServe({ listen: '127.0.0.1:0', data: join(dir, 'data'), tlsCert: join(dir, 'a.pem'), tlsKey: join(dir, 'b.key') }, { PORTCULLIS_ADMIN_PASSWORD: 'tls-admin-pw', PORTCULLIS_LOG_LEVEL: 'silent' }),
      ).rejects.toThrow(/the TLS key .*b\.key does not belong to the certificate .*a\.pem/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('portcullis serve behind a proxy', () => {
  async function failedLoginIp(trustProxy: string | undefined): Promise<string | null> {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-proxy-'));
    const server = await startServe(
      { listen: '127.0.0.1:0', data, ...(trustProxy !== undefined ? { trustProxy } : {}) },
      { PORTCULLIS_ADMIN_PASSWORD: 'proxy-admin-pw', PORTCULLIS_LOG_LEVEL: 'silent' },
    );
    try {
      const res = await fetch(`http://${server.address}/v2/`, {
        headers: { authorization: `Basic ${Buffer.from('admin:wrong').toString('base64')}`, 'x-forwarded-for': '203.0.113.7' },
      });
      expect(res.status).toBe(401);
    } finally {
      await server.close();
    }
    const meta = await SqliteRegistryMetadata.open(data);
    try {
      return (await meta.listAudit()).find((r) => r.action === 'login_failed')?.clientIp ?? null;
    } finally {
      await meta.close();
      await rm(data, { recursive: true, force: true });
    }
  }

  it('believes X-Forwarded-For only from a trusted proxy', async () => {
    expect(await failedLoginIp(undefined)).toBe('127.0.0.1');
    expect(await failedLoginIp('10.0.0.0/8')).toBe('127.0.0.1');
    expect(await failedLoginIp('127.0.0.1')).toBe('203.0.113.7');
  });
});

describe('scheduled garbage collection', () => {
  it('collects unreferenced blobs on its schedule inside the server, and stops cleanly', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-gc-schedule-'));
    const metadata = await SqliteRegistryMetadata.open(data);
    const blobs = new FsBlobStore(blobRoot(data));
    const orphan = Buffer.from('nobody references me');
    const digest = `sha256:${createHash('sha256').update(orphan).digest('hex')}`;
    await writeBlobBytes(blobs, orphan, digest);
    const logged: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(line) });
    const stop = scheduleGc({ metadata, blobs }, { everyMs: 50, graceMs: 0, keepUntagged: false }, logger);
    try {
      for (let i = 0; i < 100 && (await blobs.stat(digest)); i++) await new Promise((r) => setTimeout(r, 50));
      expect(await blobs.stat(digest)).toBeNull();
    } finally {
      await stop();
      await metadata.close();
      await rm(data, { recursive: true, force: true });
    }
    expect(logged.join('')).toMatch(/scheduled garbage collection finished/);
  });
});

describe('scheduled vulnerability database update', () => {
  it('downloads the configured ecosystems from a mirror on its schedule and keeps the old database when a download fails', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-db-schedule-'));
    const record = { id: 'ALPINE-CVE-2026-7', modified: '2026-01-01T00:00:00Z', affected: [{ package: { ecosystem: 'Alpine:v3.20', name: 'musl' }, ranges: [{ type: 'ECOSYSTEM', events: [{ introduced: '0' }, { fixed: '2' }] }] }] };
    let fail = false;
    const mirror = createServer((req, res) => {
      if (fail || req.url !== '/osv/Alpine/all.zip') {
        res.statusCode = 500;
        res.end();
        return;
      }
      res.end(Buffer.from(zipSync({ 'ALPINE-CVE-2026-7.json': strToU8(JSON.stringify(record)) })));
    });
    await new Promise<void>((r) => mirror.listen(0, '127.0.0.1', r));
    const logged: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => void logged.push(line) });
    const base = `http://127.0.0.1:${(mirror.address() as AddressInfo).port}/osv`;
    const stop = scheduleDbUpdate(data, { everyMs: 100, baseUrl: base, ecosystems: ['Alpine'] }, logger);
    try {
      await waitUntil(() => logged.some((l) => l.includes('scheduled vulnerability database update finished')));
      const { AdvisoryStore } = await import('../../src/vulndb/index.js');
      const store = AdvisoryStore.open(data);
      expect(store.advisoriesFor('Alpine:v3.20', 'musl').map((a) => a.record.id)).toEqual(['ALPINE-CVE-2026-7']);
      store.close();
      fail = true;
      await waitUntil(() => logged.some((l) => l.includes('the previous database stays in use')));
      const after = AdvisoryStore.open(data);
      expect(after.advisoriesFor('Alpine:v3.20', 'musl')).toHaveLength(1);
      after.close();
    } finally {
      await stop();
      mirror.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});

async function waitUntil(ok: () => boolean, ms = 10_000): Promise<void> {
  const until = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > until) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
