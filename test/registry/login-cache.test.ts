import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AccessControl, type AuditLog } from '../../src/registry/access/index.js';
import { hashPassword, hashRobotSecret } from '../../src/registry/basic-auth.js';
import { SqliteRegistryMetadata } from '../../src/store/index.js';

// Counts the real scrypt checks, so a test can tell a cache hit from a fresh verification.
const checks = vi.hoisted(() => ({ n: 0 }));
vi.mock('../../src/registry/basic-auth.js', async (importOriginal) => {
  const real = await importOriginal<typeof import('../../src/registry/basic-auth.js')>();
  return {
    ...real,
    verifyPassword: async (password: string, stored: string) => {
      checks.n++;
      return real.verifyPassword(password, stored);
    },
  };
});

let data: string;
let meta: SqliteRegistryMetadata;
let clock: number;
let access: AccessControl;

beforeEach(async () => {
  data = await mkdtemp(join(tmpdir(), 'portcullis-login-cache-'));
  meta = await SqliteRegistryMetadata.open(data);
  await meta.putUser({ name: 'alice', passwordHash: await hashPassword('first-pw'), admin: false });
  clock = Date.now();
  access = await AccessControl.create(meta, { now: () => clock });
  checks.n = 0;
});

afterEach(async () => {
  await access.close();
  await meta.close();
  await rm(data, { recursive: true, force: true });
});

describe('the login cache', () => {
  it('verifies a password once, then answers from the cache while the account is unchanged', async () => {
    expect(await access.verifyCredentials('alice', 'first-pw', 'token')).toMatchObject({ name: 'alice', kind: 'user' });
    expect(await access.verifyCredentials('alice', 'first-pw', 'token')).toMatchObject({ name: 'alice' });
    expect(checks.n).toBe(1);
    // Access data changing for other reasons (a new project) does not cost another scrypt.
    await meta.createProject({ name: 'team', public: false, createdBy: 'alice' }, 'alice');
    expect(await access.verifyCredentials('alice', 'first-pw', 'basic')).toMatchObject({ name: 'alice' });
    expect(checks.n).toBe(1);
  });

  it('never lets a wrong password through because a right one is cached', async () => {
    await access.verifyCredentials('alice', 'first-pw', 'token');
    expect(await access.verifyCredentials('alice', 'first-pw!', 'token')).toBeNull();
    expect(await access.verifyCredentials('alice', 'First-pw', 'token')).toBeNull();
  });

  it('drops the entry when the password changes, from another process too', async () => {
    await access.verifyCredentials('alice', 'first-pw', 'token');
    const cli = await SqliteRegistryMetadata.open(data);
    await cli.putUser({ name: 'alice', passwordHash: await hashPassword('second-pw'), admin: false });
    await cli.close();
    expect(await access.verifyCredentials('alice', 'first-pw', 'token')).toBeNull();
    expect(await access.verifyCredentials('alice', 'second-pw', 'token')).toMatchObject({ name: 'alice' });
  });

  it('refuses a removed user at once, and a re-created one only with the new password', async () => {
    await access.verifyCredentials('alice', 'first-pw', 'basic');
    await meta.deleteUser('alice');
    expect(await access.verifyCredentials('alice', 'first-pw', 'basic')).toBeNull();
    await meta.putUser({ name: 'alice', passwordHash: await hashPassword('other-pw'), admin: false });
    expect(await access.verifyCredentials('alice', 'first-pw', 'basic')).toBeNull();
  });

  it('follows the admin flag as stored now', async () => {
    const hash = await hashPassword('boss-pw');
    await meta.putUser({ name: 'boss', passwordHash: hash, admin: true });
    expect(await access.verifyCredentials('boss', 'boss-pw', 'token')).toMatchObject({ admin: true });
    await meta.putUser({ name: 'boss', passwordHash: hash, admin: false });
    expect(await access.verifyCredentials('boss', 'boss-pw', 'token')).toMatchObject({ admin: false });
  });

  it('refuses a revoked or re-created robot', async () => {
    await meta.createProject({ name: 'team', public: false, createdBy: 'alice' }, 'alice');
    const robot = { name: 'robot$team+ci', project: 'team', actions: ['pull'], expiresAt: null, createdBy: 'alice' };
    await meta.createRobot({ ...robot, secretHash: await hashPassword('robot-secret') });
    expect(await access.verifyCredentials('robot$team+ci', 'robot-secret', 'token')).toMatchObject({ kind: 'robot' });
    await meta.revokeRobot('robot$team+ci');
    expect(await access.verifyCredentials('robot$team+ci', 'robot-secret', 'token')).toBeNull();
  });

  it('checks robot secrets by SHA-256, and still accepts robots hashed with scrypt before that', async () => {
    await meta.createProject({ name: 'team', public: false, createdBy: 'alice' }, 'alice');
    const robot = { project: 'team', actions: ['pull'], expiresAt: null, createdBy: 'alice' };
    await meta.createRobot({ ...robot, name: 'robot$team+new', secretHash: hashRobotSecret('new-secret') });
    await meta.createRobot({ ...robot, name: 'robot$team+old', secretHash: await hashPassword('old-secret') });
    expect(await access.verifyCredentials('robot$team+new', 'new-secret', 'token')).toMatchObject({ kind: 'robot', name: 'robot$team+new' });
    expect(await access.verifyCredentials('robot$team+new', 'new-secreT', 'token')).toBeNull();
    expect(await access.verifyCredentials('robot$team+new', 'old-secret', 'token')).toBeNull();
    expect(await access.verifyCredentials('robot$team+old', 'old-secret', 'token')).toMatchObject({ kind: 'robot', name: 'robot$team+old' });
    expect(await access.verifyCredentials('robot$team+old', 'new-secret', 'token')).toBeNull();
    expect(await access.verifyCredentials('robot$team+none', 'new-secret', 'token')).toBeNull();
    // A user's password is never checked against the robot form, even if a row held one.
    await meta.putUser({ name: 'odd', passwordHash: hashRobotSecret('odd-pw'), admin: false });
    expect(await access.verifyCredentials('odd', 'odd-pw', 'token')).toBeNull();
  });

  it('forgets an entry after five minutes', async () => {
    await access.verifyCredentials('alice', 'first-pw', 'token');
    clock += 4 * 60_000;
    await access.verifyCredentials('alice', 'first-pw', 'token');
    expect(checks.n).toBe(1);
    clock += 61_000;
    expect(await access.verifyCredentials('alice', 'first-pw', 'token')).toMatchObject({ name: 'alice' });
    expect(checks.n).toBe(2);
  });
});

describe('logins checked at the same time', () => {
  it('share one password check for the same name and password; other passwords are checked alone', async () => {
    await meta.putUser({ name: 'ci', passwordHash: await hashPassword('ci-password'), admin: false });
    const rows: { action: string; principal: string }[] = [];
    const audit = { record: (r: { action: string; principal: string }) => rows.push(r), close: async () => {} } as unknown as AuditLog;
    const audited = await AccessControl.create(meta, { audit });
    // Basic logins are audited once per real check: twenty parallel requests with the same
    // credentials, before any is cached, make one check and one row.
    const same = await Promise.all(Array.from({ length: 20 }, () => audited.verifyCredentials('ci', 'ci-password', 'basic')));
    expect(same.every((p) => p?.name === 'ci')).toBe(true);
    expect(rows.filter((r) => r.action === 'login')).toHaveLength(1);
    // Different wrong passwords are not shared: each is checked and audited.
    const wrong = await Promise.all(['a-wrong-one', 'b-wrong-one', 'c-wrong-one'].map((pw) => audited.verifyCredentials('ci', pw, 'basic')));
    expect(wrong).toEqual([null, null, null]);
    expect(rows.filter((r) => r.action === 'login_failed')).toHaveLength(3);
    await audited.close();
  });
});
