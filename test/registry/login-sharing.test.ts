import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { AccessControl, type AuditLog } from '../../src/registry/access/index.js';
import { hashPassword } from '../../src/registry/index.js';
import { SqliteRegistryMetadata } from '../../src/store/index.js';

let dir: string;
let meta: SqliteRegistryMetadata;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-login-'));
  meta = await SqliteRegistryMetadata.open(dir);
  await meta.putUser({ name: 'ci', passwordHash: await hashPassword('ci-password'), admin: false });
});
afterEach(async () => {
  await meta.close();
  await rm(dir, { recursive: true, force: true });
});

describe('logins checked at the same time', () => {
  it('share one password check for the same name and password; other passwords are checked alone', async () => {
    const rows: { action: string; principal: string }[] = [];
    const audit = { record: (r: { action: string; principal: string }) => rows.push(r), close: async () => {} } as unknown as AuditLog;
    const access = await AccessControl.create(meta, { audit });
    // Basic logins are audited once per real check: twenty parallel requests with the same
    // credentials, before any is cached, make one check and one row.
    const same = await Promise.all(Array.from({ length: 20 }, () => access.verifyCredentials('ci', 'ci-password', 'basic')));
    expect(same.every((p) => p?.name === 'ci')).toBe(true);
    expect(rows.filter((r) => r.action === 'login')).toHaveLength(1);
    // Different wrong passwords are not shared: each is checked and audited.
    const wrong = await Promise.all(['a-wrong-one', 'b-wrong-one', 'c-wrong-one'].map((pw) => access.verifyCredentials('ci', pw, 'basic')));
    expect(wrong).toEqual([null, null, null]);
    expect(rows.filter((r) => r.action === 'login_failed')).toHaveLength(3);
    await access.close();
  });
});
