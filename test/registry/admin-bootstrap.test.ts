import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureAdminUser, verifyPassword } from '../../src/registry/index.js';
import { SqliteRegistryMetadata } from '../../src/store/index.js';

let dir: string;
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-admin-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('PORTCULLIS_ADMIN_PASSWORD on a later start', () => {
  it('changes nothing, and says so when it differs from the admin password', async () => {
    const meta = await SqliteRegistryMetadata.open(dir);
    try {
      expect(await ensureAdminUser(meta, { PORTCULLIS_ADMIN_PASSWORD: 'change-me' })).toEqual({ created: true });
      // The README's registry section starts the server again with another password.
      expect(await ensureAdminUser(meta, { PORTCULLIS_ADMIN_PASSWORD: 'choose-one' })).toEqual({
        created: false,
        envPasswordIgnored: true,
      });
      expect(await verifyPassword('change-me', (await meta.getUser('admin'))!.passwordHash)).toBe(true);
      expect(await ensureAdminUser(meta, { PORTCULLIS_ADMIN_PASSWORD: 'change-me' })).toEqual({ created: false });
      expect(await ensureAdminUser(meta, {})).toEqual({ created: false });
    } finally {
      await meta.close();
    }
  });
});
