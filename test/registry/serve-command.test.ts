import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { describe, expect, it } from 'vitest';
import { addServeCommand, parseListen, startServe } from '../../src/cli/serve-command.js';

describe('portcullis serve', () => {
  it('parses --listen values', () => {
    expect(parseListen('127.0.0.1:5000')).toEqual({ host: '127.0.0.1', port: 5000 });
    expect(parseListen('[::1]:5001')).toEqual({ host: '::1', port: 5001 });
    expect(parseListen(':5002')).toEqual({ host: '0.0.0.0', port: 5002 });
    expect(() => parseListen('localhost')).toThrow(/HOST:PORT/);
    expect(() => parseListen('h:99999')).toThrow();
  });

  it('registers the serve command with its defaults', () => {
    const program = new Command();
    addServeCommand(program);
    const serve = program.commands.find((c) => c.name() === 'serve')!;
    expect(serve).toBeDefined();
    expect(serve.opts()).toMatchObject({ listen: '127.0.0.1:5000' });
  });

  it('starts with the data folder, creates admin from PORTCULLIS_ADMIN_PASSWORD, and closes', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-serve-'));
    const server = await startServe(
      { listen: '127.0.0.1:0', data },
      { PORTCULLIS_ADMIN_PASSWORD: 'serve-pw', PORTCULLIS_LOG_LEVEL: 'silent' },
    );
    try {
      const base = `http://${server.address}`;
      expect((await fetch(`${base}/v2/`)).status).toBe(401);
      const ok = await fetch(`${base}/v2/`, { headers: { authorization: `Basic ${Buffer.from('admin:serve-pw').toString('base64')}` } });
      expect(ok.status).toBe(200);
    } finally {
      await server.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});
