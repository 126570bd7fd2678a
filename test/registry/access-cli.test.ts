import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SqliteRegistryMetadata } from '../../src/store/index.js';
import { verifyPassword, verifyRobotSecret } from '../../src/registry/index.js';
import { REPO_ROOT } from '../helpers/fixtures.js';

const BIN = join(REPO_ROOT, 'bin', 'portcullis.js');
const ADMIN_MODULE = join(REPO_ROOT, 'dist', 'cli', 'admin-commands.js');
const built = existsSync(ADMIN_MODULE);
// Until src/cli/index.ts registers addAdminCommands, the compiled module is driven through a
// two-line commander program instead of bin/portcullis.js; both run the built code in a new process.
const wired = built && /^\s+user\b/m.test(spawnSync(process.execPath, [BIN, '--help'], { encoding: 'utf8' }).stdout);
const skipReason = built ? undefined : 'dist/cli/admin-commands.js is missing: run `npm run build` first';

function cli(args: string[], input?: string): { code: number | null; stdout: string; stderr: string } {
  const argv = wired
    ? [BIN, ...args]
    : [
        '--input-type=module',
        '-e',
        `import { Command } from 'commander'; import { addAdminCommands } from ${JSON.stringify(ADMIN_MODULE)};
         const p = new Command().exitOverride(); addAdminCommands(p);
         p.parseAsync(process.argv).catch((e) => { process.stderr.write(String(e.message) + '\\n'); process.exitCode = 2; });`,
        'portcullis',
        ...args,
      ];
  const r = spawnSync(process.execPath, argv, { encoding: 'utf8', input: input ?? '', cwd: REPO_ROOT, env: { ...process.env, PORTCULLIS_LOG_LEVEL: 'silent' } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe.skipIf(skipReason !== undefined)(`portcullis user/project/robot/audit${skipReason ? ` [SKIPPED: ${skipReason}]` : wired ? '' : ' (via dist/cli/admin-commands.js: not yet wired into the CLI)'}`, () => {
  let data: string;
  beforeAll(async () => {
    data = await mkdtemp(join(tmpdir(), 'portcullis-access-cli-'));
  });
  afterAll(async () => {
    await rm(data, { recursive: true, force: true });
  });
  const d = () => ['--data', data];

  it('adds users with a printed or a piped password, changes and removes them', async () => {
    const added = cli(['user', 'add', 'alice', ...d()]);
    expect(added.code, added.stderr).toBe(0);
    const generated = /^password: (\S+)$/m.exec(added.stdout)?.[1];
    expect(generated).toBeDefined();
    // A chosen password needs 8 characters and must not be the user name (NIST SP 800-63B's floor).
    expect(cli(['user', 'add', 'bob', '--admin', '--password-stdin', ...d()], 'bob-pw\n').stderr.trim()).toBe(
      'portcullis: a password needs at least 8 characters',
    );
    expect(cli(['user', 'add', 'bobbybob', '--password-stdin', ...d()], 'BobbyBob\n').stderr.trim()).toBe('portcullis: a password must not be the user name');
    expect(cli(['user', 'passwd', 'alice', '--password-stdin', ...d()], 'short\n').code).toBe(2);
    // The audit log's name for callers without credentials is not a user name anyone can take.
    expect(cli(['user', 'add', 'Anonymous', '--password-stdin', ...d()], 'anonymous-pw\n').stderr.trim()).toMatch(/user name "Anonymous" is reserved/);
    expect(cli(['user', 'add', 'bob', '--admin', '--password-stdin', ...d()], 'bob-password\n').code).toBe(0);
    expect(cli(['user', 'add', 'bob', '--password-stdin', ...d()], 'other-password\n').code).toBe(2);
    expect(cli(['user', 'passwd', 'alice', '--password-stdin', ...d()], 'alice-new\n').code).toBe(0);
    const list = JSON.parse(cli(['user', 'list', '--json', ...d()]).stdout) as { name: string; admin: boolean }[];
    expect(list.map((u) => [u.name, u.admin])).toEqual([['alice', false], ['bob', true]]);

    const meta = await SqliteRegistryMetadata.open(data);
    try {
      expect(await verifyPassword('alice-new', (await meta.getUser('alice'))!.passwordHash)).toBe(true);
      expect(await verifyPassword('bob-password', (await meta.getUser('bob'))!.passwordHash)).toBe(true);
    } finally {
      await meta.close();
    }
    // bob is the only admin: removing him would leave nobody to administer the registry.
    const last = cli(['user', 'rm', 'bob', ...d()]);
    expect(last.code).toBe(2);
    expect(last.stderr.trim()).toBe('portcullis: bob is the only admin; make another user admin first (`portcullis user set NAME --admin`)');
    expect(cli(['user', 'add', 'carol', '--password-stdin', ...d()], 'carol-pw\n').code).toBe(0);
    const promoted = cli(['user', 'set', 'carol', '--admin', '--can-create-projects', ...d()]);
    expect(promoted.code, promoted.stderr).toBe(0);
    expect(promoted.stderr.trim()).toBe('user carol: admin=true, can_create_projects=true');
    expect(cli(['user', 'rm', 'bob', ...d()]).code).toBe(0);
    expect(cli(['user', 'list', ...d()]).stdout).not.toContain('bob');
    // Nor can the only admin left be demoted; an ordinary user can be changed back and forth.
    expect(cli(['user', 'set', 'carol', '--no-admin', ...d()]).stderr.trim()).toBe(
      'portcullis: carol is the only admin; make another user admin first',
    );
    expect(cli(['user', 'set', 'alice', '--can-create-projects', ...d()]).code).toBe(0);
    expect(cli(['user', 'set', 'alice', '--no-can-create-projects', ...d()]).code).toBe(0);
    expect(cli(['user', 'set', 'alice', ...d()]).code).toBe(2);
    expect(cli(['user', 'set', 'nobody', '--admin', ...d()]).code).toBe(2);
    const users = JSON.parse(cli(['user', 'list', '--json', ...d()]).stdout) as { name: string; admin: boolean; canCreateProjects: boolean }[];
    expect(users.map((u) => [u.name, u.admin, u.canCreateProjects])).toEqual([
      ['alice', false, false],
      ['carol', true, true],
    ]);
  });

  it('creates projects, sets members and lists them', async () => {
    expect(cli(['project', 'create', 'team', ...d()]).code).toBe(0);
    expect(cli(['project', 'create', 'pub', '--public', ...d()]).code).toBe(0);
    expect(cli(['project', 'create', 'Bad!', ...d()]).code).toBe(2);
    expect(cli(['project', 'member', 'team', 'alice', 'developer', ...d()]).code).toBe(0);
    expect(cli(['project', 'member', 'team', 'alice', 'owner', ...d()]).code).toBe(2);
    expect(cli(['project', 'member', 'team', 'nobody', 'reader', ...d()]).code).toBe(2);
    expect(cli(['project', 'list', ...d()]).stdout).toMatch(/^pub\tpublic/m);
    expect(JSON.parse(cli(['project', 'members', 'team', '--json', ...d()]).stdout)).toEqual([{ project: 'team', user: 'alice', role: 'developer' }]);
  });

  it('sets immutable tag rules, a quota and visibility, and lists them with the storage used', () => {
    const set = cli(['project', 'set', 'team', '--immutable-tags', 'v*, backend/**:stable', '--quota', '10GiB', '--public', ...d()]);
    expect(set.code, set.stderr).toBe(0);
    expect(set.stderr).toMatch(/project team: public; immutable tags v\*, backend\/\*\*:stable; quota 10\.0 GiB/);
    const listed = (JSON.parse(cli(['project', 'list', '--json', ...d()]).stdout) as { name: string; public: boolean; immutableTags: string[]; quotaBytes: number | null; usedBytes: number }[]).find((p) => p.name === 'team');
    expect(listed).toMatchObject({ public: true, immutableTags: ['v*', 'backend/**:stable'], quotaBytes: 10 * 1024 ** 3, usedBytes: 0 });
    expect(cli(['project', 'list', ...d()]).stdout).toMatch(/^team\tpublic\t0 B of 10\.0 GiB\timmutable: v\* backend\/\*\*:stable/m);
    expect(cli(['project', 'set', 'team', '--quota', 'lots', ...d()]).stderr).toMatch(/--quota: size "lots"/);
    expect(cli(['project', 'set', 'team', '--immutable-tags', 'a:b:c', ...d()]).code).toBe(2);
    expect(cli(['project', 'set', 'nope', '--quota', '1g', ...d()]).stderr).toMatch(/no project nope/);
    expect(cli(['project', 'set', 'team', ...d()]).code).toBe(2);
    expect(cli(['project', 'set', 'team', '--quota', 'none', '--immutable-tags', 'none', '--private', ...d()]).code).toBe(0);
    expect(cli(['project', 'list', ...d()]).stdout).toMatch(/^team\tprivate\t0 B of unlimited\t-/m);
  });

  it('creates robots with their secret shown once, lists them without it, and revokes them', async () => {
    const created = cli(['robot', 'create', 'team', 'ci', '--actions', 'pull', '--expires', '30d', ...d()]);
    expect(created.code, created.stderr).toBe(0);
    expect(created.stdout).toMatch(/^name: robot\$team\+ci$/m);
    const secret = /^secret: (\S+)$/m.exec(created.stdout)?.[1];
    expect(secret).toBeDefined();
    expect(cli(['robot', 'create', 'missing', 'ci', '--actions', 'pull', ...d()]).code).toBe(2);
    expect(cli(['robot', 'create', 'team', 'x', '--actions', 'pull,fly', ...d()]).code).toBe(2);
    const listed = cli(['robot', 'list', 'team', '--json', ...d()]).stdout;
    expect(listed).not.toContain(secret!);
    expect(listed).not.toContain('sha256$');
    // Stored as one SHA-256 of the server-made secret: no per-login KDF cost for CI jobs.
    const stored = await SqliteRegistryMetadata.open(data);
    try {
      const hash = (await stored.getRobot('robot$team+ci'))!.secretHash;
      expect(hash).toMatch(/^sha256\$/);
      expect(await verifyRobotSecret(secret!, hash)).toBe(true);
      expect(await verifyRobotSecret(`${secret!}x`, hash)).toBe(false);
    } finally {
      await stored.close();
    }
    expect(JSON.parse(listed)).toMatchObject([{ name: 'robot$team+ci', actions: ['pull'], revoked: false }]);
    // A new secret replaces the old one, which stops working; the expiry can change with it.
    const refreshed = cli(['robot', 'refresh', 'robot$team+ci', '--expires', 'never', ...d()]);
    expect(refreshed.code, refreshed.stderr).toBe(0);
    const newSecret = /^secret: (\S+)$/m.exec(refreshed.stdout)?.[1];
    expect(newSecret).toBeDefined();
    expect(newSecret).not.toBe(secret);
    const after = await SqliteRegistryMetadata.open(data);
    try {
      const robot = (await after.getRobot('robot$team+ci'))!;
      expect(await verifyRobotSecret(newSecret!, robot.secretHash)).toBe(true);
      expect(await verifyRobotSecret(secret!, robot.secretHash)).toBe(false);
      expect(robot.expiresAt).toBeNull();
    } finally {
      await after.close();
    }
    expect(cli(['robot', 'refresh', 'robot$team+none', ...d()]).code).toBe(2);
    // An expired robot gets a new secret only with a new expiry.
    expect(cli(['robot', 'create', 'team', 'old', '--actions', 'pull', '--expires', '2020-01-01', ...d()]).code).toBe(0);
    expect(cli(['robot', 'refresh', 'robot$team+old', ...d()]).stderr).toMatch(/expired on 2020-01-01T00:00:00.000Z; give --expires/);
    expect(cli(['robot', 'refresh', 'robot$team+old', '--expires', '30d', ...d()]).code).toBe(0);
    expect(cli(['robot', 'revoke', 'robot$team+ci', ...d()]).code).toBe(0);
    expect(cli(['robot', 'list', ...d()]).stdout).toMatch(/robot\$team\+ci\tpull\trevoked/);
    expect(cli(['robot', 'refresh', 'robot$team+ci', ...d()]).stderr).toMatch(/is revoked; remove it with `portcullis robot rm`/);
    // Removed, its name is free again.
    expect(cli(['robot', 'rm', 'robot$team+ci', ...d()]).code).toBe(0);
    expect(cli(['robot', 'rm', 'robot$team+ci', ...d()]).code).toBe(2);
    expect(cli(['robot', 'create', 'team', 'ci', '--actions', 'pull,push', ...d()]).code).toBe(0);
    expect(cli(['robot', 'list', 'team', ...d()]).stdout).toMatch(/robot\$team\+ci\tpull,push\tactive/);
  });

  it('reads the audit log with --since and --limit', async () => {
    const meta = await SqliteRegistryMetadata.open(data);
    try {
      const old = { principal: 'alice', repository: 'team/app', reference: 'v1', digest: null, clientIp: '10.0.0.1', outcome: 'success', detail: null };
      await meta.appendAudit([
        { ...old, time: '2020-01-01T00:00:00.000Z', action: 'pull' },
        { ...old, time: new Date().toISOString(), action: 'push' },
        { ...old, time: new Date().toISOString(), action: 'login', repository: null, reference: null },
      ]);
    } finally {
      await meta.close();
    }
    type Row = { action: string; principal: string; reference: string | null; repository: string | null; detail: string | null };
    const all = JSON.parse(cli(['audit', '--json', ...d()]).stdout) as Row[];
    const fromCli = (r: Row) => r.principal.startsWith('cli:');
    expect(all.filter((r) => !fromCli(r)).map((r) => r.action)).toEqual(['login', 'push', 'pull']);
    const recent = JSON.parse(cli(['audit', '--since', '1h', '--json', ...d()]).stdout) as Row[];
    expect(recent.filter((r) => !fromCli(r))).toHaveLength(2);
    // Every administration change the tests above made is there, named by the account that ran it.
    expect(all.filter(fromCli).map((r) => `${r.action} ${r.reference}`)).toEqual(
      expect.arrayContaining([
        'user_add alice',
        'user_passwd alice',
        'user_rm bob',
        'user_set carol',
        'project_create team',
        'project_member alice',
        'project_set team',
        'robot_create robot$team+ci',
        'robot_revoke robot$team+ci',
        'robot_refresh robot$team+ci',
        'robot_rm robot$team+ci',
      ]),
    );
    expect(all.find((r) => r.action === 'project_member' && r.reference === 'alice')).toMatchObject({ repository: 'team', detail: 'role=developer' });
    expect(all.find((r) => r.action === 'user_add' && r.reference === 'bob')?.detail).toBe('admin=true can_create_projects=false');
    // No password or secret reaches the log.
    expect(JSON.stringify(all)).not.toMatch(/bob-password|alice-new|carol-pw|secret/);
    expect(cli(['audit', '--limit', '1', ...d()]).stdout.trim().split('\n')).toHaveLength(1);
    expect(cli(['audit', '--limit', 'many', ...d()]).code).toBe(2);
  });

  it('shows control characters a stranger sent as escapes, one row per line', async () => {
    // A failed login records the user name as sent: any Unicode but C0 controls, so a C1 CSI,
    // a right-to-left override and a tab get this far.
    const meta = await SqliteRegistryMetadata.open(data);
    try {
      await meta.appendAudit([
        { time: new Date().toISOString(), action: 'login_failed', principal: 'ev\u009b2Jil\u202eresu\tx', repository: null, reference: null, digest: null, clientIp: '10.0.0.9', outcome: 'failure', detail: 'line one\nline two' },
      ]);
    } finally {
      await meta.close();
    }
    const out = cli(['audit', '--limit', '1', ...d()]);
    expect(out.code, out.stderr).toBe(0);
    expect(out.stdout).not.toMatch(/[\u0080-\u009f\u202e]/);
    const lines = out.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(1);
    const cells = lines[0]!.split('\t');
    expect(cells).toHaveLength(9);
    expect(cells[1]).toBe('ev\\x9b2Jil\\u202eresu\\x09x');
    expect(cells[8]).toBe('line one\\x0aline two');
    // The JSON output is for programs: it keeps the name exactly as recorded.
    expect((JSON.parse(cli(['audit', '--limit', '1', '--json', ...d()]).stdout) as { principal: string }[])[0]!.principal).toBe('ev\u009b2Jil\u202eresu\tx');
  });
});
