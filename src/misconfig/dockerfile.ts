import {
  DockerfileParser,
  type Add,
  type Arg,
  type Env,
  type From,
  type Instruction,
  type Run,
} from 'dockerfile-ast';
import { jsonPastBounds } from '../json-structure.js';
import type { Misconfiguration } from '../sbom/finding.js';
import { misconfig, sortFindings, type CheckDef } from './check.js';
import { DOCKERFILE_CHECKS as DF, IMAGE_CHECKS as IMG } from './checks-dockerfile.js';
import { MisconfigError } from './errors.js';
import { joinContinuations, splitCommands, type MappedText, type SimpleCommand } from './shell.js';

/** One build stage: a FROM and the instructions up to the next FROM. */
interface Stage {
  from: From;
  /** The stage name after `AS`, lower-cased (stage references are case-insensitive). */
  name?: string;
  /** The base image with build args expanded, or null when FROM has no image. */
  base: string | null;
  /** Index of the earlier stage this one is built FROM, when it is one. */
  parent?: number;
  instructions: Instruction[];
}

/** Shells and interpreters that run a script read from stdin. */
const INTERPRETERS = new Set([
  'sh',
  'bash',
  'dash',
  'ash',
  'zsh',
  'ksh',
  'python',
  'python3',
  'perl',
  'ruby',
  'node',
]);
const SSH_SERVERS = new Set(['openssh-server', 'openssh', 'dropbear']);
const SECRET_NAME = /PASSWORD|PASSWD|SECRET|TOKEN|API_?KEY|ACCESS_?KEY|PRIVATE_?KEY/i;
/** Names that point at a secret rather than hold one (`POSTGRES_PASSWORD_FILE=/run/secrets/db`). */
const SECRET_POINTER = /_(FILE|PATH|DIR|URL|URI|ENDPOINT|HOST|PORT|NAME|TTL|LENGTH|HEADER|TYPE|EXPIRY)$/i;
const ARCHIVE = /\.(tar|tar\.gz|tgz|tar\.bz2|tbz2?|tar\.xz|txz|tar\.zst|tzst|gz|bz2|xz)$/i;
const REMOTE = /^(https?|ftp):\/\/|^git@|^git:\/\/|\.git(#.*)?$/i;

/**
 * Checks a Dockerfile against the PC-IMG and PC-DF checks. Findings are ordered by line.
 * Checks about what ends up in the image (root user, healthcheck, installed packages, caches,
 * exposed ports) look only at the final stage and the stages it is built FROM; builder stages whose
 * files are merely copied out do not ship their packages. Checks about how the build runs (secrets,
 * unpinned bases, remote downloads, piping scripts into a shell) apply to every stage.
 */
export function scanDockerfile(text: string, path: string): Misconfiguration[] {
  if (text.includes('\0')) {
    throw new MisconfigError('DOCKERFILE_BINARY', `${path}: binary content, not a Dockerfile`, {
      subject: path,
    });
  }
  let instructions: Instruction[];
  let escape: string;
  try {
    const df = DockerfileParser.parse(text);
    instructions = df.getInstructions();
    escape = df.getEscapeCharacter();
  } catch (err) {
    // The parser is lenient and should not throw; if it does, report the file, not a stack trace.
    throw new MisconfigError(
      'DOCKERFILE_PARSE',
      `${path}: cannot parse Dockerfile: ${(err as Error).message}`,
      {
        subject: path,
        cause: err,
      },
    );
  }
  const ctx = new Scan(text, path, escape);
  return ctx.run(instructions);
}

class Scan {
  private readonly out: Misconfiguration[] = [];
  private readonly lineStarts: number[] = [0];
  private readonly globalArgs = new Map<string, string>();

  constructor(
    private readonly text: string,
    private readonly path: string,
    private readonly escape: string,
  ) {
    for (let i = 0; i < text.length; i++) if (text[i] === '\n') this.lineStarts.push(i + 1);
  }

  run(instructions: Instruction[]): Misconfiguration[] {
    const stages: Stage[] = [];
    for (const ins of instructions) {
      const kw = ins.getKeyword();
      if (kw === 'FROM') {
        stages.push(this.stage(ins as From, stages));
      } else if (stages.length === 0) {
        // Before the first FROM only ARG is legal; its defaults may be used in FROM lines.
        if (kw === 'ARG') {
          this.secretsIn(ins as Arg, 'ARG');
          const p = (ins as Arg).getProperty();
          const v = p?.getValue();
          if (p && v) this.globalArgs.set(p.getName(), v);
        }
      } else {
        (stages[stages.length - 1] as Stage).instructions.push(ins);
      }
    }
    if (stages.length === 0) {
      throw new MisconfigError(
        'DOCKERFILE_NO_FROM',
        `${this.path}: no FROM instruction; is this a Dockerfile?`,
        {
          subject: this.path,
        },
      );
    }

    // The final stage and the stages it is built FROM make up the image; ordered base first.
    const shipping = new Set<number>();
    for (
      let i: number | undefined = stages.length - 1;
      i !== undefined && !shipping.has(i);
      i = stages[i]?.parent
    ) {
      shipping.add(i);
    }

    stages.forEach((s, i) => this.checkStage(s, shipping.has(i)));
    const chain = [...shipping].sort((a, b) => a - b).map((i) => stages[i] as Stage);
    this.checkUser(chain);
    this.checkHealthcheck(chain);
    return dedupe(sortFindings(this.out));
  }

  private stage(from: From, earlier: Stage[]): Stage {
    const name = from.getBuildStage()?.toLowerCase() ?? undefined;
    const image = from.getImage();
    const base = image === null ? null : this.expand(image);
    const stage: Stage = { from, base, instructions: [] };
    if (name) stage.name = name;
    if (base !== null) {
      const parent = earlier.findIndex((s) => s.name === base.toLowerCase());
      if (parent >= 0) stage.parent = parent;
    }
    return stage;
  }

  /** Expands `$X`, `${X}` and `${X:-default}` in a FROM line from the global ARG defaults. */
  private expand(s: string): string {
    return s.replace(
      /\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)/g,
      (m, a, def, b) => {
        const v = this.globalArgs.get((a ?? b) as string);
        return v ?? (def as string | undefined) ?? m;
      },
    );
  }

  private add(def: CheckDef, message: string, line: number): void {
    this.out.push(misconfig(def, message, this.path, line));
  }

  private checkStage(stage: Stage, ships: boolean): void {
    this.checkBase(stage);
    const env = new Set<string>();
    for (const ins of stage.instructions) {
      const line = lineOf(ins);
      switch (ins.getKeyword()) {
        case 'MAINTAINER':
          this.add(DF.maintainer, 'MAINTAINER instruction is deprecated', line);
          break;
        case 'ENV':
          this.secretsIn(ins as Env, 'ENV');
          for (const p of (ins as Env).getProperties()) env.add(p.getName());
          break;
        case 'ARG':
          this.secretsIn(ins as Arg, 'ARG');
          break;
        case 'ADD':
          this.checkAdd(ins as Add, line);
          break;
        case 'EXPOSE':
          if (ships) this.checkExpose(ins, line);
          break;
        case 'RUN':
          this.checkRun(ins as Run, ships, env);
          break;
      }
    }
  }

  private checkBase(stage: Stage): void {
    const base = stage.base;
    const line = lineOf(stage.from);
    // scratch is empty and stage references are built here; an unresolved variable cannot be judged.
    if (base === null || stage.parent !== undefined || base.toLowerCase() === 'scratch' || base.includes('$'))
      return;
    const at = base.indexOf('@');
    const digest = at >= 0 ? base.slice(at + 1) : undefined;
    const repo = at >= 0 ? base.slice(0, at) : base;
    const colon = repo.lastIndexOf(':');
    const tag = colon > repo.lastIndexOf('/') ? repo.slice(colon + 1) : undefined;
    if (digest === undefined) {
      this.add(DF.notPinnedByDigest, `FROM ${base} is not pinned by digest`, line);
      if (tag === undefined || tag === 'latest') {
        this.add(
          IMG.latestTag,
          `FROM ${base} uses ${tag === undefined ? 'no tag (latest)' : 'the latest tag'}`,
          line,
        );
      }
    }
  }

  private secretsIn(ins: Env | Arg, kind: 'ENV' | 'ARG'): void {
    for (const p of ins.getProperties()) {
      const name = p.getName();
      const value = p.getValue();
      if (!SECRET_NAME.test(name) || SECRET_POINTER.test(name)) continue;
      // No value, an empty value, or a value taken from another variable is not a literal secret.
      if (
        value === null ||
        value.trim() === '' ||
        /^\$\{?[A-Za-z_][A-Za-z0-9_]*(:?[-+][^}]*)?\}?$/.test(value)
      )
        continue;
      // Never echo the value: the finding must not leak the secret it reports.
      this.add(IMG.secretInEnv, `${kind} ${name} is set to a literal value`, p.getNameRange().start.line + 1);
    }
  }

  private checkAdd(ins: Add, line: number): void {
    const args = execForm(ins) ?? ins.getArguments().map((a) => a.getValue());
    if (args.length === 0) return;
    if (args[0]?.startsWith('<<')) {
      this.add(DF.addInsteadOfCopy, 'ADD with a heredoc; COPY does the same', line);
      return;
    }
    const sources = args.slice(0, -1);
    const checksum = ins.getFlags().some((f) => f.getName() === 'checksum');
    for (const src of sources) {
      if (REMOTE.test(src)) {
        if (!checksum) this.add(IMG.addRemoteUrl, `ADD downloads ${src} without a checksum`, line);
      } else if (!ARCHIVE.test(src) && !src.includes('$')) {
        this.add(DF.addInsteadOfCopy, `ADD ${src} copies a local file; use COPY`, line);
      }
    }
  }

  private checkExpose(ins: Instruction, line: number): void {
    for (const a of ins.getArguments()) {
      const [port = '', proto = 'tcp'] = a.getValue().split('/');
      if (proto.toLowerCase() !== 'tcp') continue;
      const [lo, hi = lo] = port.split('-').map(Number);
      if (lo !== undefined && hi !== undefined && lo <= 22 && 22 <= hi) {
        this.add(IMG.sshPortExposed, `EXPOSE ${a.getValue()} opens the SSH port`, line);
      }
    }
  }

  private checkUser(chain: Stage[]): void {
    const users = chain.flatMap((s) => s.instructions.filter((i) => i.getKeyword() === 'USER'));
    const last = users[users.length - 1];
    const final = chain[chain.length - 1] as Stage;
    if (last === undefined) {
      this.add(
        IMG.runsAsRoot,
        `final stage (FROM ${final.base ?? '?'}) sets no USER; the container runs as root`,
        lineOf(final.from),
      );
      return;
    }
    const value = last.getArgumentsContent()?.trim() ?? '';
    const user = value.split(':')[0] ?? '';
    if (user === 'root' || user === '0') {
      this.add(IMG.runsAsRoot, `the last USER of the final stage is ${value}`, lineOf(last));
    }
  }

  private checkHealthcheck(chain: Stage[]): void {
    const checks = chain.flatMap((s) => s.instructions.filter((i) => i.getKeyword() === 'HEALTHCHECK'));
    const last = checks[checks.length - 1];
    const final = chain[chain.length - 1] as Stage;
    if (last === undefined) {
      this.add(
        IMG.noHealthcheck,
        `final stage (FROM ${final.base ?? '?'}) has no HEALTHCHECK`,
        lineOf(final.from),
      );
    } else if (last.getArguments()[0]?.getValue().toUpperCase() === 'NONE') {
      this.add(IMG.noHealthcheck, 'HEALTHCHECK NONE disables the health check', lineOf(last));
    }
  }

  private checkRun(run: Run, ships: boolean, env: Set<string>): void {
    const script = this.runScript(run);
    const cmds = splitCommands(script);
    const cacheMounts = run
      .getFlags()
      .filter((f) => f.getName() === 'mount' && /(^|,)type=cache(,|$)/.test(f.getValue() ?? ''))
      .map((f) => /(?:^|,)(?:target|dst|destination)=([^,]+)/.exec(f.getValue() ?? '')?.[1] ?? '');
    const cached = (dir: string): boolean => cacheMounts.some((t) => t.startsWith(dir) || dir.startsWith(t));
    const removes = (dir: string): boolean =>
      cmds.some((c) => c.name === 'rm' && c.words.some((w) => w.startsWith(dir)));
    let sawCd = false;
    // piped[i]: the first interpreter along the pipe chain from command i on (i itself included),
    // or null. One backward pass; walking forward from every curl was quadratic for
    // `curl x | curl x | ... | cat` (64,000 pipes took 11.5 s).
    const piped: (string | null)[] = new Array<string | null>(cmds.length + 1).fill(null);
    for (let i = cmds.length - 1; i >= 0; i--) {
      const p = cmds[i] as SimpleCommand;
      piped[i] = INTERPRETERS.has(p.name) ? p.name : p.next === '|' ? (piped[i + 1] ?? null) : null;
    }

    cmds.forEach((c, idx) => {
      if (c.name === 'cd' && !sawCd) {
        sawCd = true;
        this.add(DF.cdInRun, 'RUN changes directory with cd; use WORKDIR', c.line);
      }
      const interpreter = piped[idx + 1];
      if ((c.name === 'curl' || c.name === 'wget') && c.next === '|' && interpreter) {
        this.add(IMG.curlPipeShell, `${c.name} output is piped into ${interpreter}`, c.line);
      }
      if (!ships) return;
      const pm = packageCommand(c);
      if (pm === null) return;
      const { manager, sub, options, packages } = pm;
      if (manager === 'apt' && ['upgrade', 'dist-upgrade', 'full-upgrade'].includes(sub)) {
        this.add(DF.aptUpgrade, `${c.name} ${sub} upgrades the whole distribution in the image`, c.line);
      }
      const installs = manager === 'apk' ? sub === 'add' : sub === 'install';
      if (!installs) return;
      const names = packages.map((p) => p.split(/[=<>~:]/)[0] as string);
      for (const n of names) {
        if (SSH_SERVERS.has(n)) this.add(IMG.sshServerInstalled, `${c.name} installs ${n}`, c.line);
        if (n === 'sudo') this.add(IMG.sudoInstalled, `${c.name} installs sudo`, c.line);
      }
      switch (manager) {
        case 'apt':
          if (
            !options.includes('--no-install-recommends') &&
            !options.some((o) => /Install-Recommends=(false|0)/i.test(o))
          ) {
            this.add(DF.installRecommends, `${c.name} install without --no-install-recommends`, c.line);
          }
          if (!removes('/var/lib/apt/lists') && !cached('/var/lib/apt')) {
            this.add(
              IMG.packageCacheLeft,
              `${c.name} install leaves /var/lib/apt/lists; remove it in the same RUN`,
              c.line,
            );
          }
          break;
        case 'apk':
          if (!options.includes('--no-cache') && !removes('/var/cache/apk') && !cached('/var/cache/apk')) {
            this.add(IMG.packageCacheLeft, 'apk add without --no-cache leaves /var/cache/apk', c.line);
          }
          break;
        case 'yum': {
          const cleaned = cmds.some(
            (k) =>
              packageCommand(k)?.manager === 'yum' && k.words.includes('clean') && k.words.includes('all'),
          );
          if (!cleaned && !removes(`/var/cache/${c.name}`) && !cached(`/var/cache/${c.name}`)) {
            this.add(
              IMG.packageCacheLeft,
              `${c.name} install without \`${c.name} clean all\` in the same RUN`,
              c.line,
            );
          }
          break;
        }
        case 'pip': {
          // PIP_NO_CACHE_DIR set by an earlier ENV turns the cache off for every pip in the stage.
          if (
            !options.includes('--no-cache-dir') &&
            !env.has('PIP_NO_CACHE_DIR') &&
            !cached('/root/.cache') &&
            !removes('/root/.cache')
          ) {
            this.add(
              IMG.packageCacheLeft,
              'pip install without --no-cache-dir leaves the wheel cache',
              c.line,
            );
          }
          break;
        }
      }
    });

    // `sh -c "$(curl ...)"` and `bash <(curl ...)` run a remote script without a visible pipe.
    const sub = shellOfDownloadSubstitution(script.text);
    if (sub >= 0)
      this.add(
        IMG.curlPipeShell,
        'a shell runs a downloaded script through command substitution',
        script.lines[sub] ?? lineOf(run),
      );
  }

  /** The shell text a RUN executes, with each character's source line. */
  private runScript(run: Run): MappedText {
    const line = lineOf(run);
    const json = execForm(run);
    if (json !== null && json.length > 0) {
      // Exec form: `["sh", "-c", "script"]` runs the script; anything else runs one command.
      const shell = INTERPRETERS.has(json[0]?.slice((json[0] ?? '').lastIndexOf('/') + 1) ?? '');
      const c = json.indexOf('-c');
      const text = shell && c >= 0 ? (json[c + 1] ?? '') : json.map(quote).join(' ');
      return { text, lines: Array.from({ length: text.length + 1 }, () => line) };
    }
    const flags = run.getFlags();
    const from =
      flags.length > 0
        ? (flags[flags.length - 1] as (typeof flags)[number]).getRange().end
        : run.getInstructionRange().end;
    const startOff = this.offset(from);
    let body = this.text.slice(startOff, this.offset(run.getRange().end));
    // A heredoc is the script only when it is the RUN body or fed to a shell; otherwise it is data
    // (a config file written with cat), so blank it out to keep its lines from being read as commands.
    for (const h of run.getHeredocs()) {
      const content = h.getContentRange();
      if (content === null) continue;
      const prefix = this.text.slice(startOff, this.offset(h.getStartRange().start));
      const lastLine = prefix.slice(prefix.lastIndexOf('\n') + 1);
      if (/^\s*$/.test(lastLine) || /(^|[\s;&|])(ba|da|z|a|k)?sh(\s+-\S+)*\s*$/.test(lastLine)) continue;
      const a = this.offset(content.start) - startOff;
      const b = this.offset(content.end) - startOff;
      body = body.slice(0, a) + body.slice(a, b).replace(/[^\n]/g, ' ') + body.slice(b);
    }
    return joinContinuations(body, from.line + 1, this.escape);
  }

  private offset(pos: { line: number; character: number }): number {
    return (this.lineStarts[pos.line] ?? this.text.length) + pos.character;
  }
}

interface PackageCommand {
  manager: 'apt' | 'apk' | 'yum' | 'pip';
  sub: string;
  options: string[];
  packages: string[];
}

/** Options of these managers that take the next word as their value. */
const SHELL_WORD = /\b(?:ba|da|z|a|k)?sh\b/g;
const DOWNLOAD_SUBSTITUTION = /(?:<\(|\$\(|`)\s*(?:curl|wget)\b/g;
const SEPARATORS = new Set(['\n', ';', '&', '|']);

/**
 * Index of the first shell word (sh, bash, ...) that is followed, in the same command segment (no
 * newline, `;`, `&` or `|` between them), by a `<(`, `$(` or backquote substitution running curl or
 * wget; -1 when there is none. The same match as
 * `/\b(?:ba|da|z|a|k)?sh\b[^\n;&|]*?(?:<\(|\$\(|`)\s*(?:curl|wget)\b/`, whose lazy gap is
 * retried from every shell word to the segment's end: quadratic for `RUN sh sh sh ...` (80,000
 * words took 12 s). Here each substitution looks back to the start of its segment, which only moves
 * forward, and the first shell word of a segment is searched for once.
 */
function shellOfDownloadSubstitution(text: string): number {
  let segment = 0; // start of the segment that holds the substitution being looked at
  let scanned = 0; // text before this has been searched for separators
  let shell = -1; // first shell word at or after `segment` (text.length when none)
  for (const m of text.matchAll(DOWNLOAD_SUBSTITUTION)) {
    for (; scanned < m.index; scanned++) if (SEPARATORS.has(text[scanned] as string)) segment = scanned + 1;
    if (shell < segment) {
      SHELL_WORD.lastIndex = segment;
      shell = SHELL_WORD.exec(text)?.index ?? text.length;
    }
    // A shell word is made of word characters and the substitution starts with a non-word one, so
    // a shell word that starts before the substitution also ends before it.
    if (shell < m.index) return shell;
  }
  return -1;
}

const VALUE_OPTIONS: Record<PackageCommand['manager'], Set<string>> = {
  apt: new Set(['-o', '-c', '-t', '--option', '--config-file', '--target-release']),
  apk: new Set(['-X', '--repository', '-p', '--root', '--virtual', '-t', '--arch']),
  yum: new Set([
    '-c',
    '--config',
    '--setopt',
    '--enablerepo',
    '--disablerepo',
    '--installroot',
    '--releasever',
  ]),
  pip: new Set([
    '-r',
    '--requirement',
    '-c',
    '--constraint',
    '-i',
    '--index-url',
    '--extra-index-url',
    '-t',
    '--target',
    '-e',
    '--editable',
    '--prefix',
    '--root',
  ]),
};

/** Recognises a package manager command and splits it into subcommand, options and packages. */
function packageCommand(c: SimpleCommand): PackageCommand | null {
  let manager: PackageCommand['manager'];
  let rest = c.words.slice(1);
  if (c.name === 'apt-get' || c.name === 'apt') manager = 'apt';
  else if (c.name === 'apk') manager = 'apk';
  else if (['yum', 'dnf', 'microdnf', 'tdnf'].includes(c.name)) manager = 'yum';
  else if (/^pip[0-9.]*$/.test(c.name)) manager = 'pip';
  else if (/^python[0-9.]*$/.test(c.name) && rest[0] === '-m' && /^pip[0-9.]*$/.test(rest[1] ?? '')) {
    manager = 'pip';
    rest = rest.slice(2);
  } else return null;
  const options: string[] = [];
  const words: string[] = [];
  for (let i = 0; i < rest.length; i++) {
    const w = rest[i] as string;
    if (w.startsWith('-')) {
      options.push(w);
      if (VALUE_OPTIONS[manager].has(w) && i + 1 < rest.length) options.push(rest[++i] as string);
    } else {
      words.push(w);
    }
  }
  const [sub = '', ...packages] = words;
  return { manager, sub, options, packages };
}

/**
 * The arguments of an exec-form (JSON array) instruction, or null for shell form. Parsed here with
 * JSON.parse because dockerfile-ast 0.7's getJSONValue() drops the spaces inside strings; like the
 * Docker builder, anything that is not a valid JSON array of strings is shell form.
 */
function execForm(ins: Instruction): string[] | null {
  const raw = ins.getArgumentsContent()?.trim() ?? '';
  if (!raw.startsWith('[')) return null;
  // An array of strings nests one level. Anything deeper is shell form whatever JSON.parse says,
  // and decided here in one pass: JSON.parse holds every open level on its own stacks, so a RUN
  // line of megabytes of `[[[[` cost it hundreds of megabytes before it was thrown away.
  if (jsonPastBounds(raw, { maxDepth: 1 }) !== undefined) return null;
  try {
    const v: unknown = JSON.parse(raw);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? (v as string[]) : null;
  } catch {
    return null;
  }
}

function lineOf(ins: Instruction): number {
  return ins.getRange().start.line + 1;
}

function quote(s: string): string {
  return /[\s|&;]/.test(s) ? `'${s}'` : s;
}

function dedupe(list: Misconfiguration[]): Misconfiguration[] {
  const seen = new Set<string>();
  return list.filter((m) => {
    const key = `${m.id}\0${m.line ?? ''}\0${m.message}`;
    if (seen.has(key)) return false;
    seen.add(key);
    return true;
  });
}
