import type { ImageConfig } from '../oci/schemas.js';
import type { Misconfiguration, SecretFinding } from '../sbom/finding.js';
import type { Package } from '../sbom/model.js';
import { misconfig, type CheckDef } from './check.js';
import { IMAGE_CHECKS } from './checks-dockerfile.js';

/** Checks that only a built image can answer (file modes), beside the ones shared with Dockerfiles. */
export const BUILT_IMAGE_CHECKS = {
  setuidFiles: {
    id: 'PC-IMG-004',
    title: 'setuid or setgid files',
    severity: 'low',
    cis: '4.8',
    remedy: 'Remove the setuid/setgid bits you do not need: `RUN find / -xdev -perm /6000 -type f -exec chmod a-s {} +`.',
  },
  worldWritableInPath: {
    id: 'PC-IMG-011',
    title: 'World-writable file in a PATH folder',
    severity: 'high',
    remedy: 'Make executables in PATH folders writable by root only: `chmod o-w <file>`.',
  },
} as const satisfies Record<string, CheckDef>;

export interface ImageFacts {
  config: ImageConfig;
  packages: Package[];
  /** Risky attributes of files in the final filesystem. */
  attributes: Array<{ path: string; attribute: string }>;
  /** Secrets found in the config and history (their presence is CIS 4.10). */
  configSecrets: SecretFinding[];
}

const SSH_SERVERS = new Set(['openssh-server', 'dropbear', 'openssh-server-pam', 'tinyssh']);
const SECRET_NAME = /(passw(or)?d|secret|token|api_?key|access_?key|private_?key|credential)/i;
const PLACEHOLDER = /^(|\$\{?\w+\}?|<[^>]*>|changeme|example|none|null|false|true|\*+|x+)$/i;
// `PASSWORD_FILE=/run/secrets/db`: the variable says where the secret is, not what it is.
const NOT_A_SECRET_NAME = /_(FILE|PATH|DIR|URL|URI|HOST|PORT|NAME|USER|ENDPOINT)$/i;
const PIPE_TO_SHELL = /\b(curl|wget)\b[^|;&\n]*\|\s*(sudo\s+)?(\/\w+\/)*(ba|z|da|k)?sh\b/;
const ADD_REMOTE = /(^|\s|#\(nop\)\s*)ADD\s+(--\S+\s+)*(file:\S+\s+)?https?:\/\//;

function isRoot(user: string | undefined): boolean {
  const u = (user ?? '').trim();
  if (u === '') return true;
  const name = u.split(':')[0]!;
  return name === 'root' || name === '0';
}

function limited(paths: string[], n = 5): string {
  return paths.length <= n ? paths.join(', ') : `${paths.slice(0, n).join(', ')} and ${paths.length - n} more`;
}

/**
 * Misconfiguration checks on a built image: its config, its history, its packages and the file
 * modes the layer walker saw. Ids are shared with the Dockerfile checks for the same problems.
 */
export function checkImage(facts: ImageFacts): Misconfiguration[] {
  const out: Misconfiguration[] = [];
  const cfg = facts.config.config ?? {};
  const history = facts.config.history ?? [];
  const C = IMAGE_CHECKS;

  if (isRoot(cfg.User)) {
    out.push(misconfig(C.runsAsRoot, cfg.User ? `the image runs as user "${cfg.User}"` : 'the image sets no USER, so it runs as root', 'config.User'));
  }
  const ports = Object.keys(cfg.ExposedPorts ?? {});
  if (ports.some((p) => p === '22' || p.startsWith('22/'))) {
    out.push(misconfig(C.sshPortExposed, `port 22 is exposed (ExposedPorts: ${ports.join(', ')})`, 'config.ExposedPorts'));
  }
  const ssh = facts.packages.filter((p) => (p.type === 'deb' || p.type === 'apk' || p.type === 'rpm') && SSH_SERVERS.has(p.name));
  for (const p of ssh) {
    out.push(misconfig(C.sshServerInstalled, `${p.name} ${p.version} is installed (layer ${p.layer.index})`, p.paths[0] ?? p.name));
  }
  const special = (a: string) => facts.attributes.filter((x) => x.attribute === a).map((x) => x.path);
  const setid = [...new Set([...special('setuid'), ...special('setgid')])].sort();
  if (setid.length) {
    out.push(misconfig(BUILT_IMAGE_CHECKS.setuidFiles, `${setid.length} setuid/setgid files: ${limited(setid.map((p) => `/${p}`))}`, setid[0]!));
  }
  const health = cfg.Healthcheck as { Test?: string[] } | undefined;
  if (!health?.Test?.length || health.Test[0] === 'NONE') {
    out.push(misconfig(C.noHealthcheck, 'the image defines no HEALTHCHECK', 'config.Healthcheck'));
  }
  history.forEach((h, i) => {
    const by = h.created_by ?? '';
    if (ADD_REMOTE.test(by)) out.push(misconfig(C.addRemoteUrl, `history step ${i} ADDs a remote URL`, `history[${i}].created_by`));
    if (PIPE_TO_SHELL.test(by)) out.push(misconfig(C.curlPipeShell, `history step ${i} pipes a download into a shell`, `history[${i}].created_by`));
  });
  const envSecrets = new Set<string>();
  const secretTargets = new Set(facts.configSecrets.map((s) => s.target));
  (cfg.Env ?? []).forEach((entry, i) => {
    if (secretTargets.has(`Env[${i}]`)) return; // reported below with the rule that found it
    const eq = entry.indexOf('=');
    const name = eq < 0 ? entry : entry.slice(0, eq);
    const value = eq < 0 ? '' : entry.slice(eq + 1);
    if (SECRET_NAME.test(name) && !NOT_A_SECRET_NAME.test(name) && !PLACEHOLDER.test(value.trim()) && !value.startsWith('/')) {
      envSecrets.add(`Env[${i}] ${name}`);
    }
  });
  for (const s of facts.configSecrets) envSecrets.add(`${s.target} (${s.title})`);
  if (envSecrets.size) {
    out.push(misconfig(C.secretInEnv, `secrets set in the image config or build arguments: ${limited([...envSecrets])}`, 'config.Env'));
  }
  const sudo = facts.packages.find((p) => (p.type === 'deb' || p.type === 'apk' || p.type === 'rpm') && p.name === 'sudo');
  if (sudo) out.push(misconfig(C.sudoInstalled, `sudo ${sudo.version} is installed`, sudo.paths[0] ?? 'sudo'));
  const caches = special('pm-cache').sort();
  if (caches.length) out.push(misconfig(C.packageCacheLeft, `${caches.length} package manager cache files: ${limited(caches.map((p) => `/${p}`), 3)}`, caches[0]!));
  const writable = special('world-writable').sort();
  if (writable.length) {
    out.push(misconfig(BUILT_IMAGE_CHECKS.worldWritableInPath, `${writable.length} world-writable files in PATH folders: ${limited(writable.map((p) => `/${p}`))}`, writable[0]!));
  }
  const base = cfg.Labels?.['org.opencontainers.image.base.name'];
  if (base) {
    const last = base.split('/').pop() ?? base;
    if (!base.includes('@') && (!last.includes(':') || last.endsWith(':latest'))) {
      out.push(misconfig(C.latestTag, `the base image is ${base}`, 'config.Labels'));
    }
  }
  return out;
}
