import { randomBytes } from 'node:crypto';
import { userInfo } from 'node:os';
import type { Command } from 'commander';
import { UsageError } from '../errors.js';
import { passwordWeakness } from '../registry/basic-auth.js';
import type { ProjectRole, RegistryMetadata } from '../store/index.js';
import { printable } from '../terminal-text.js';
import { loadConfig } from './config.js';

interface DataFlags {
  data?: string;
  config?: string;
}

const USER_RE = /^[A-Za-z0-9][A-Za-z0-9._@-]{0,63}$/;
const ROLES: readonly string[] = ['admin', 'maintainer', 'developer', 'reader'];

/**
 * Opens the registry metadata of the data folder, runs `fn` and closes it. The server may be
 * running on the same file: SQLite in WAL mode lets both write, and the server notices access
 * changes through the access version the tables' triggers bump.
 */
async function withMetadata<T>(flags: DataFlags, fn: (metadata: RegistryMetadata) => Promise<T>): Promise<T> {
  const dataDir = flags.data ?? loadConfig(flags.config).data;
  // Loaded here so commands that never touch the registry do not pay for SQLite.
  const { SqliteRegistryMetadata } = await import('../store/index.js');
  const metadata = await SqliteRegistryMetadata.open(dataDir);
  try {
    return await fn(metadata);
  } finally {
    await metadata.close();
  }
}

/**
 * Writes an administration change to the audit log, as the registry does for pushes and logins.
 * The CLI has no registry login: the row names the operating-system account that ran it
 * (`cli:NAME`). Never a password or a secret.
 */
async function auditChange(
  metadata: RegistryMetadata,
  action: string,
  target: string,
  change: { project?: string; detail?: string } = {},
): Promise<void> {
  let account: string;
  try {
    account = userInfo().username;
  } catch {
    account = String(process.getuid?.() ?? 'unknown');
  }
  await metadata.appendAudit([
    {
      time: new Date().toISOString(),
      principal: `cli:${account}`,
      action,
      repository: change.project ?? null,
      reference: target,
      digest: null,
      clientIp: null,
      outcome: 'success',
      detail: change.detail ?? null,
    },
  ]);
}

function dataOptions(cmd: Command): Command {
  return cmd
    .option('--data <dir>', 'data folder (env PORTCULLIS_DATA; default ./data)')
    .option('--config <file>', 'configuration file (default ./portcullis.yaml when present)');
}

async function readStdinSecret(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
  // One trailing newline is what `echo` and here-strings add; anything else is part of the password.
  const text = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  if (text === '') throw new UsageError('FLAG_INVALID', '--password-stdin: standard input was empty');
  return text;
}

function checkPassword(name: string, password: string): void {
  const weakness = passwordWeakness(name, password);
  if (weakness) throw new UsageError('PASSWORD_WEAK', weakness);
}

/** Names the audit log and events already use for callers that are not users. */
const RESERVED_USER_NAMES = new Set(['anonymous']);

function checkUserName(name: string): void {
  if (RESERVED_USER_NAMES.has(name.toLowerCase())) {
    throw new UsageError('FLAG_INVALID', `user name "${name}" is reserved: the audit log uses it for requests without credentials`);
  }
  if (!USER_RE.test(name)) {
    throw new UsageError('FLAG_INVALID', `user name "${name}" must start with a letter or digit and use only letters, digits, ".", "_", "@" or "-" (at most 64)`);
  }
}

/**
 * One row per line, cells split by tabs. A cell can hold what a stranger sent (the user name of a
 * failed login in the audit log), so control characters, tabs and newlines in it are shown as
 * escapes: they can neither drive the reader's terminal nor break the columns.
 */
function print(rows: string[][]): void {
  for (const r of rows) process.stdout.write(`${r.map(printable).join('\t')}\n`);
}

function json(value: unknown): void {
  process.stdout.write(`${JSON.stringify(value, null, 2)}\n`);
}

/** `user`, `project`, `robot` and `audit`: registry administration on the data folder's database. */
export function addAdminCommands(program: Command): void {
  const registry = () => import('../registry/index.js');
  const access = () => import('../registry/access/index.js');

  const user = program.command('user').description('registry users');
  dataOptions(user.command('add <name>').description('add a user; prints a generated password once unless --password-stdin'))
    .option('--admin', 'system administrator (every project, every action)')
    .option('--can-create-projects', 'may create a project by pushing to it')
    .option('--password-stdin', 'read the password from standard input')
    .action(async (name: string, flags: DataFlags & { admin?: boolean; canCreateProjects?: boolean; passwordStdin?: boolean }) => {
      checkUserName(name);
      const password = flags.passwordStdin ? await readStdinSecret() : randomBytes(18).toString('base64url');
      checkPassword(name, password);
      const { hashPassword } = await registry();
      await withMetadata(flags, async (metadata) => {
        if (await metadata.getUser(name)) throw new UsageError('FLAG_INVALID', `user ${name} already exists; use \`portcullis user passwd\``);
        await metadata.putUser({ name, passwordHash: await hashPassword(password), admin: flags.admin === true });
        if (flags.canCreateProjects) await metadata.setUserCanCreateProjects(name, true);
        await auditChange(metadata, 'user_add', name, { detail: `admin=${flags.admin === true} can_create_projects=${flags.canCreateProjects === true}` });
      });
      process.stderr.write(`added user ${name}${flags.admin ? ' (admin)' : ''}\n`);
      // Printed once, on stdout only, so a script can capture it; never logged.
      if (!flags.passwordStdin) process.stdout.write(`password: ${password}\n`);
    });
  dataOptions(user.command('passwd <name>').description('set a user\'s password'))
    .requiredOption('--password-stdin', 'read the new password from standard input')
    .action(async (name: string, flags: DataFlags) => {
      const password = await readStdinSecret();
      checkPassword(name, password);
      const { hashPassword } = await registry();
      await withMetadata(flags, async (metadata) => {
        const existing = await metadata.getUser(name);
        if (!existing) throw new UsageError('FLAG_INVALID', `no user ${name}`);
        await metadata.putUser({ ...existing, passwordHash: await hashPassword(password) });
        await auditChange(metadata, 'user_passwd', name);
      });
      process.stderr.write(`password of ${name} changed\n`);
    });
  dataOptions(user.command('rm <name>').description('remove a user and their project memberships')).action(async (name: string, flags: DataFlags) => {
    await withMetadata(flags, async (metadata) => {
      if (!(await metadata.deleteUser(name))) throw new UsageError('FLAG_INVALID', `no user ${name}`);
      await auditChange(metadata, 'user_rm', name);
    });
    process.stderr.write(`removed user ${name}\n`);
  });
  dataOptions(user.command('set <name>').description('change a user: system admin or not, may create projects or not'))
    .option('--admin', 'make the user a system administrator')
    .option('--no-admin', 'make the user an ordinary user (never the only admin)')
    .option('--can-create-projects', 'may create a project by pushing to it')
    .option('--no-can-create-projects', 'may not create projects')
    .action(async (name: string, flags: DataFlags & { admin?: boolean; canCreateProjects?: boolean }) => {
      if (flags.admin === undefined && flags.canCreateProjects === undefined) {
        throw new UsageError('FLAG_INVALID', 'nothing to change: give --admin, --no-admin, --can-create-projects or --no-can-create-projects');
      }
      await withMetadata(flags, async (metadata) => {
        if (!(await metadata.getUser(name))) throw new UsageError('FLAG_INVALID', `no user ${name}`);
        const changes: string[] = [];
        if (flags.admin !== undefined) {
          await metadata.setUserAdmin(name, flags.admin);
          changes.push(`admin=${flags.admin}`);
        }
        if (flags.canCreateProjects !== undefined) {
          await metadata.setUserCanCreateProjects(name, flags.canCreateProjects);
          changes.push(`can_create_projects=${flags.canCreateProjects}`);
        }
        await auditChange(metadata, 'user_set', name, { detail: changes.join(' ') });
        process.stderr.write(`user ${name}: ${changes.join(', ')}\n`);
      });
    });
  dataOptions(user.command('list').description('list users'))
    .option('--json', 'JSON output')
    .action(async (flags: DataFlags & { json?: boolean }) => {
      const users = await withMetadata(flags, (m) => m.listUsers());
      if (flags.json) return json(users);
      print(users.map((u) => [u.name, u.admin ? 'admin' : 'user', u.canCreateProjects ? 'can-create-projects' : '-', u.createdAt]));
    });

  const project = program.command('project').description('registry projects (the first segment of repository names)');
  dataOptions(project.command('create <name>').description('create a project (private unless --public)'))
    .option('--public', 'anyone, even anonymous, may pull')
    .option('--owner <user>', 'make this user the project admin')
    .action(async (name: string, flags: DataFlags & { public?: boolean; owner?: string }) => {
      const { PROJECT_NAME_RE } = await access();
      if (!PROJECT_NAME_RE.test(name)) throw new UsageError('FLAG_INVALID', `project name "${name}" must be one lowercase repository name component`);
      await withMetadata(flags, async (metadata) => {
        if (flags.owner !== undefined && !(await metadata.getUser(flags.owner))) throw new UsageError('FLAG_INVALID', `no user ${flags.owner}`);
        const created = await metadata.createProject({ name, public: flags.public === true, createdBy: flags.owner ?? 'cli' }, flags.owner);
        if (!created) throw new UsageError('FLAG_INVALID', `project ${name} already exists`);
        await auditChange(metadata, 'project_create', name, { project: name, detail: `public=${flags.public === true}${flags.owner ? ` owner=${flags.owner}` : ''}` });
      });
      process.stderr.write(`created ${flags.public ? 'public' : 'private'} project ${name}\n`);
    });
  dataOptions(project.command('list').description('list projects with their storage use, quota and immutable tag rules'))
    .option('--json', 'JSON output')
    .action(async (flags: DataFlags & { json?: boolean }) => {
      const { formatSize } = await registry();
      const projects = await withMetadata(flags, async (m) =>
        Promise.all((await m.listProjects()).map(async (p) => ({ ...p, usedBytes: await m.projectUsage(p.name) }))),
      );
      if (flags.json) return json(projects);
      print(
        projects.map((p) => [
          p.name,
          p.public ? 'public' : 'private',
          `${formatSize(p.usedBytes)} of ${p.quotaBytes === null ? 'unlimited' : formatSize(p.quotaBytes)}`,
          p.immutableTags.length ? `immutable: ${p.immutableTags.join(' ')}` : '-',
          p.createdBy,
          p.createdAt,
        ]),
      );
    });
  dataOptions(project.command('set <name>').description('change a project: visibility, immutable tag rules, storage quota'))
    .option('--public', 'anyone, even anonymous, may pull')
    .option('--private', 'only members (and admins) may pull')
    .option('--immutable-tags <patterns>', 'comma-separated TAG_GLOB or REPO_GLOB:TAG_GLOB rules (e.g. "v*,release-*"); "none" clears them')
    .option('--quota <size>', 'storage quota (e.g. 10GiB, 500MiB); "none" removes it')
    .action(async (name: string, flags: DataFlags & { public?: boolean; private?: boolean; immutableTags?: string; quota?: string }) => {
      if (flags.public && flags.private) throw new UsageError('FLAG_INVALID', '--public and --private contradict each other');
      const { parseImmutableTagRule, parseSize, formatSize } = await registry();
      const settings: { public?: boolean; immutableTags?: string[]; quotaBytes?: number | null } = {};
      if (flags.public || flags.private) settings.public = flags.public === true;
      if (flags.immutableTags !== undefined) {
        const rules = flags.immutableTags === 'none' ? [] : flags.immutableTags.split(',').map((r) => r.trim()).filter((r) => r !== '');
        for (const rule of rules) {
          try {
            parseImmutableTagRule(rule);
          } catch (err) {
            throw new UsageError('FLAG_INVALID', (err as Error).message);
          }
        }
        settings.immutableTags = rules;
      }
      if (flags.quota !== undefined) {
        try {
          settings.quotaBytes = flags.quota === 'none' ? null : parseSize(flags.quota);
        } catch (err) {
          throw new UsageError('FLAG_INVALID', `--quota: ${(err as Error).message}`);
        }
      }
      if (Object.keys(settings).length === 0) throw new UsageError('FLAG_INVALID', 'nothing to change: give --public, --private, --immutable-tags or --quota');
      await withMetadata(flags, async (metadata) => {
        if (!(await metadata.updateProject(name, settings))) throw new UsageError('FLAG_INVALID', `no project ${name}`);
        await auditChange(metadata, 'project_set', name, { project: name, detail: JSON.stringify(settings) });
      });
      const said: string[] = [];
      if (settings.public !== undefined) said.push(settings.public ? 'public' : 'private');
      if (settings.immutableTags !== undefined) said.push(settings.immutableTags.length ? `immutable tags ${settings.immutableTags.join(', ')}` : 'no immutable tags');
      if (settings.quotaBytes !== undefined) said.push(settings.quotaBytes === null ? 'no quota' : `quota ${formatSize(settings.quotaBytes)}`);
      process.stderr.write(`project ${name}: ${said.join('; ')}\n`);
    });
  dataOptions(project.command('member <project> <user> <role>').description('set a member\'s role: admin, maintainer, developer, reader, or none to remove'))
    .action(async (name: string, userName: string, role: string, flags: DataFlags) => {
      if (role !== 'none' && !ROLES.includes(role)) throw new UsageError('FLAG_INVALID', `role "${role}" is not one of ${ROLES.join(', ')}, none`);
      await withMetadata(flags, async (metadata) => {
        if (!(await metadata.getProject(name))) throw new UsageError('FLAG_INVALID', `no project ${name}`);
        if (role === 'none') {
          if (!(await metadata.removeProjectMember(name, userName))) throw new UsageError('FLAG_INVALID', `${userName} is not a member of ${name}`);
          await auditChange(metadata, 'project_member', userName, { project: name, detail: 'role=none' });
          return;
        }
        if (!(await metadata.getUser(userName))) throw new UsageError('FLAG_INVALID', `no user ${userName}`);
        await metadata.putProjectMember(name, userName, role as ProjectRole);
        await auditChange(metadata, 'project_member', userName, { project: name, detail: `role=${role}` });
      });
      process.stderr.write(role === 'none' ? `removed ${userName} from ${name}\n` : `${userName} is ${role} of ${name}\n`);
    });
  dataOptions(project.command('members <project>').description('list a project\'s members'))
    .option('--json', 'JSON output')
    .action(async (name: string, flags: DataFlags & { json?: boolean }) => {
      const members = await withMetadata(flags, (m) => m.listProjectMembers(name));
      if (flags.json) return json(members);
      print(members.map((m) => [m.user, m.role]));
    });

  const robot = program.command('robot').description('robot accounts for CI: robot$<project>+<name> with a secret');
  dataOptions(robot.command('create <project> <name>').description('create a robot; prints its secret once'))
    .requiredOption('--actions <list>', 'allowed actions: pull, push, delete (comma-separated)')
    .option('--expires <when>', 'a duration (30d, 12h) or a date; default never')
    .action(async (projectName: string, name: string, flags: DataFlags & { actions: string; expires?: string }) => {
      const { robotName, parseActions, parseExpiry, generateSecret } = await access();
      const { hashRobotSecret } = await registry();
      const full = robotName(projectName, name);
      const actions = parseActions(flags.actions);
      const expiresAt = flags.expires !== undefined ? parseExpiry(flags.expires) : null;
      const secret = generateSecret();
      await withMetadata(flags, async (metadata) => {
        if (!(await metadata.getProject(projectName))) throw new UsageError('FLAG_INVALID', `no project ${projectName}`);
        if (await metadata.getRobot(full)) throw new UsageError('FLAG_INVALID', `robot ${full} already exists`);
        await metadata.createRobot({ name: full, project: projectName, secretHash: hashRobotSecret(secret), actions, expiresAt, createdBy: 'cli' });
        await auditChange(metadata, 'robot_create', full, { project: projectName, detail: `actions=${actions.join(',')} expires=${expiresAt ?? 'never'}` });
      });
      process.stderr.write(`created ${full} (${actions.join(',')}${expiresAt ? `, expires ${expiresAt}` : ''}); the secret is not shown again\n`);
      process.stdout.write(`name: ${full}\nsecret: ${secret}\n`);
    });
  dataOptions(robot.command('refresh <name>').description('give a robot a new secret, printed once; the old one stops working'))
    .option('--expires <when>', 'also set a new expiry: a duration (30d, 12h), a date, or never')
    .action(async (name: string, flags: DataFlags & { expires?: string }) => {
      const { parseExpiry, generateSecret } = await access();
      const { hashRobotSecret } = await registry();
      const expiresAt = flags.expires === undefined ? undefined : flags.expires === 'never' ? null : parseExpiry(flags.expires);
      const secret = generateSecret();
      await withMetadata(flags, async (metadata) => {
        const existing = await metadata.getRobot(name);
        if (!existing) throw new UsageError('FLAG_INVALID', `no robot ${name}`);
        if (existing.revoked) throw new UsageError('FLAG_INVALID', `robot ${name} is revoked; remove it with \`portcullis robot rm\` and create it again`);
        // A new secret for an account that cannot log in would look like a fix and not be one.
        if (expiresAt === undefined && existing.expiresAt !== null && Date.parse(existing.expiresAt) <= Date.now()) {
          throw new UsageError('FLAG_INVALID', `robot ${name} expired on ${existing.expiresAt}; give --expires (a duration, a date or never) with the new secret`);
        }
        await metadata.refreshRobotSecret(name, hashRobotSecret(secret), expiresAt);
        await auditChange(metadata, 'robot_refresh', name, { project: existing.project, ...(expiresAt !== undefined ? { detail: `expires=${expiresAt ?? 'never'}` } : {}) });
      });
      process.stderr.write(`new secret for ${name}; the old one no longer works, and this one is not shown again\n`);
      process.stdout.write(`name: ${name}\nsecret: ${secret}\n`);
    });
  dataOptions(robot.command('rm <name>').description('delete a robot (refused from the next request on); its name can be used again')).action(
    async (name: string, flags: DataFlags) => {
      await withMetadata(flags, async (metadata) => {
        const existing = await metadata.getRobot(name);
        if (!existing || !(await metadata.deleteRobot(name))) throw new UsageError('FLAG_INVALID', `no robot ${name}`);
        await auditChange(metadata, 'robot_rm', name, { project: existing.project });
      });
      process.stderr.write(`removed ${name}\n`);
    },
  );
  dataOptions(robot.command('list [project]').description('list robots'))
    .option('--json', 'JSON output')
    .action(async (projectName: string | undefined, flags: DataFlags & { json?: boolean }) => {
      const robots = await withMetadata(flags, (m) => m.listRobots(projectName));
      // The secret hash stays in the database; listings never show it.
      const rows = robots.map(({ secretHash: _hash, ...r }) => r);
      if (flags.json) return json(rows);
      const now = Date.now();
      print(rows.map((r) => [r.name, r.actions.join(','), r.revoked ? 'revoked' : r.expiresAt && Date.parse(r.expiresAt) <= now ? 'expired' : 'active', r.expiresAt ?? 'never']));
    });
  dataOptions(robot.command('revoke <name>').description('revoke a robot; it is refused from the next request on')).action(
    async (name: string, flags: DataFlags) => {
      await withMetadata(flags, async (metadata) => {
        if (!(await metadata.revokeRobot(name))) throw new UsageError('FLAG_INVALID', `no robot ${name}`);
        await auditChange(metadata, 'robot_revoke', name);
      });
      process.stderr.write(`revoked ${name}\n`);
    },
  );

  dataOptions(program.command('audit').description('read the registry audit log, newest first'))
    .option('--since <when>', 'a duration back from now (1h, 7d) or a date')
    .option('--limit <n>', 'at most this many rows', '100')
    .option('--json', 'JSON output')
    .action(async (flags: DataFlags & { since?: string; limit: string; json?: boolean }) => {
      if (!/^\d+$/.test(flags.limit) || Number(flags.limit) === 0) throw new UsageError('FLAG_INVALID', `--limit must be a positive whole number, got "${flags.limit}"`);
      const { parseSince } = await access();
      const since = flags.since !== undefined ? parseSince(flags.since) : undefined;
      const rows = await withMetadata(flags, (m) => m.listAudit({ limit: Number(flags.limit), ...(since !== undefined ? { since } : {}) }));
      if (flags.json) return json(rows);
      print(
        rows.map((r) => [
          r.time,
          r.principal,
          r.action,
          r.repository ?? '-',
          r.reference ?? '-',
          r.digest ?? '-',
          r.clientIp ?? '-',
          r.outcome,
          r.detail ?? '',
        ]),
      );
    });
}
