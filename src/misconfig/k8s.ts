import type { Misconfiguration } from '../sbom/finding.js';
import { misconfig, sortFindings, type CheckDef } from './check.js';
import { K8S_CHECKS as K } from './checks-k8s.js';
import { parseYamlDocuments, type YamlDoc, type YamlPath } from './yaml-docs.js';
import { MisconfigError } from './errors.js';

type Obj = Record<string, unknown>;

/** Where each workload kind keeps its pod spec. */
const POD_SPEC_PATH: Record<string, YamlPath> = {
  Pod: ['spec'],
  Deployment: ['spec', 'template', 'spec'],
  StatefulSet: ['spec', 'template', 'spec'],
  DaemonSet: ['spec', 'template', 'spec'],
  ReplicaSet: ['spec', 'template', 'spec'],
  ReplicationController: ['spec', 'template', 'spec'],
  Job: ['spec', 'template', 'spec'],
  CronJob: ['spec', 'jobTemplate', 'spec', 'template', 'spec'],
};

/** Capabilities PSS baseline allows to be added. */
const BASELINE_CAPS = new Set([
  'AUDIT_WRITE',
  'CHOWN',
  'DAC_OVERRIDE',
  'FOWNER',
  'FSETID',
  'KILL',
  'MKNOD',
  'NET_BIND_SERVICE',
  'SETFCAP',
  'SETGID',
  'SETPCAP',
  'SETUID',
  'SYS_CHROOT',
]);
/** Sysctls PSS baseline allows (as of Kubernetes 1.29). */
const SAFE_SYSCTLS = new Set([
  'kernel.shm_rmid_forced',
  'net.ipv4.ip_local_port_range',
  'net.ipv4.ip_unprivileged_port_start',
  'net.ipv4.tcp_syncookies',
  'net.ipv4.ping_group_range',
  'net.ipv4.ip_local_reserved_ports',
  'net.ipv4.tcp_keepalive_time',
  'net.ipv4.tcp_fin_timeout',
  'net.ipv4.tcp_keepalive_intvl',
  'net.ipv4.tcp_keepalive_probes',
]);
const SELINUX_TYPES = new Set([
  '',
  'container_t',
  'container_init_t',
  'container_kvm_t',
  'container_engine_t',
]);
const APPARMOR_ANNOTATION = 'container.apparmor.security.beta.kubernetes.io/';

/** A namespace key for objects without metadata.namespace: they land in whatever namespace they are applied to. */
const UNSET_NS = '';

export interface ConfigFile {
  path: string;
  text: string;
}

/** Checks the Kubernetes objects in one YAML file (see scanKubernetesFiles). */
export function scanKubernetes(text: string, path: string): Misconfiguration[] {
  return scanKubernetesFiles([{ text, path }]);
}

/**
 * Checks the Kubernetes objects in a set of YAML files. Per-object checks look at one object at a
 * time; the default-deny NetworkPolicy check (PC-K8S-022) looks across all files, because the
 * policy for a namespace is often in a different file from its workloads. Documents that are not
 * Kubernetes objects (no apiVersion/kind) are ignored. Findings are grouped by file in the order
 * given, then by line.
 */
export function scanKubernetesFiles(
  files: readonly ConfigFile[],
  /** Given a file that is not valid YAML, the file is skipped; without it, the error is thrown. */
  onInvalidFile?: (err: MisconfigError) => void,
): Misconfiguration[] {
  const perFile = new Map<string, Misconfiguration[]>();
  const namespaces = new Map<string, { path: string; line: number; declared: boolean; what: string }>();
  const policies = new Map<string, { ingress: boolean; egress: boolean }>();

  for (const file of files) {
    let docs: YamlDoc[];
    try {
      docs = parseYamlDocuments(file.text, file.path);
    } catch (err) {
      if (!onInvalidFile || !(err instanceof MisconfigError)) throw err;
      onInvalidFile(err);
      continue;
    }
    const out: Misconfiguration[] = [];
    perFile.set(file.path, out);
    for (const doc of docs) {
      for (const { obj, base } of objectsIn(doc.value, [])) {
        const kind = obj.kind as string;
        const meta = record(obj.metadata) ?? {};
        const name = typeof meta.name === 'string' ? meta.name : '?';
        const ns = typeof meta.namespace === 'string' ? meta.namespace : UNSET_NS;
        const line = doc.lineOf(base);
        if (kind === 'Namespace') {
          // A declared Namespace is the better place to point at than the first workload in it.
          const prev = namespaces.get(name);
          if (!prev?.declared)
            namespaces.set(name, { path: file.path, line, declared: true, what: `Namespace/${name}` });
        } else if (kind === 'NetworkPolicy') {
          const deny = defaultDeny(record(obj.spec));
          const p = policies.get(ns) ?? { ingress: false, egress: false };
          policies.set(ns, { ingress: p.ingress || deny.ingress, egress: p.egress || deny.egress });
        }
        const specPath = POD_SPEC_PATH[kind];
        if (specPath === undefined) continue;
        if (!namespaces.has(ns))
          namespaces.set(ns, { path: file.path, line, declared: false, what: `${kind}/${name}` });
        const podPath = [...base, ...specPath];
        const pod = record(getIn(obj, specPath));
        if (pod === undefined) continue;
        const label = `${kind}/${name}${ns === UNSET_NS ? '' : ` in namespace ${ns}`}`;
        // Pod annotations live beside the pod spec: the Pod's own metadata or the template's.
        const annotations =
          record(record(getIn(obj, [...specPath.slice(0, -1), 'metadata']))?.annotations) ?? {};
        new PodCheck(out, file.path, doc, label, podPath, pod, annotations).run();
      }
    }
  }

  for (const [ns, where] of namespaces) {
    const deny = policies.get(ns) ?? { ingress: false, egress: false };
    if (deny.ingress && deny.egress) continue;
    const subject =
      ns === UNSET_NS
        ? `the namespace ${where.what} is applied to (no metadata.namespace)`
        : `namespace ${ns}`;
    const missing = deny.ingress
      ? 'denies ingress by default but not egress'
      : 'has no default-deny NetworkPolicy';
    perFile
      .get(where.path)
      ?.push(misconfig(K.noDefaultDeny, `${subject} ${missing}`, where.path, where.line));
  }
  return [...perFile.values()].flatMap((list) => sortFindings(list));
}

/** The Kubernetes objects in a document: the document itself, or the items of a List. */
function objectsIn(value: unknown, base: YamlPath): { obj: Obj; base: YamlPath }[] {
  const obj = record(value);
  if (obj === undefined || typeof obj.kind !== 'string' || typeof obj.apiVersion !== 'string') return [];
  if (obj.kind.endsWith('List') && Array.isArray(obj.items)) {
    return obj.items.flatMap((item, i) => objectsIn(item, [...base, 'items', i]));
  }
  return [{ obj, base }];
}

/**
 * Whether a NetworkPolicy isolates every pod of its namespace: an empty podSelector, the direction
 * listed in policyTypes (Ingress is implied when policyTypes is absent; Egress when egress rules
 * exist) and no rules for that direction — one empty rule `{}` would allow everything.
 */
function defaultDeny(spec: Obj | undefined): { ingress: boolean; egress: boolean } {
  const none = { ingress: false, egress: false };
  if (spec === undefined) return none;
  const sel = record(spec.podSelector) ?? (spec.podSelector == null ? {} : undefined);
  if (sel === undefined) return none;
  const emptySel = Object.values(sel).every(
    (v) => v == null || (Array.isArray(v) ? v.length === 0 : Object.keys(record(v) ?? {}).length === 0),
  );
  if (!emptySel) return none;
  const types = Array.isArray(spec.policyTypes)
    ? spec.policyTypes.filter((t): t is string => typeof t === 'string')
    : ['Ingress', ...(spec.egress !== undefined ? ['Egress'] : [])];
  const noRules = (r: unknown): boolean => r == null || (Array.isArray(r) && r.length === 0);
  return {
    ingress: types.includes('Ingress') && noRules(spec.ingress),
    egress: types.includes('Egress') && noRules(spec.egress),
  };
}

class PodCheck {
  private readonly podSc: Obj;

  constructor(
    private readonly out: Misconfiguration[],
    private readonly path: string,
    private readonly doc: YamlDoc,
    private readonly label: string,
    private readonly podPath: YamlPath,
    private readonly pod: Obj,
    private readonly annotations: Obj,
  ) {
    this.podSc = record(pod.securityContext) ?? {};
  }

  private add(def: CheckDef, message: string, at: YamlPath): void {
    this.out.push(misconfig(def, message, this.path, this.doc.lineOf([...this.podPath, ...at])));
  }

  run(): void {
    for (const field of ['hostNetwork', 'hostPID', 'hostIPC']) {
      if (this.pod[field] === true) this.add(K.hostNamespaces, `${this.label} sets ${field}: true`, [field]);
    }
    arrayOf(this.pod.volumes).forEach((v, i) => {
      const vol = record(v);
      if (vol?.hostPath !== undefined) {
        const p = record(vol.hostPath)?.path;
        this.add(
          K.hostPath,
          `${this.label} mounts hostPath ${typeof p === 'string' ? p : '?'} (volume ${String(vol.name)})`,
          ['volumes', i],
        );
      }
    });
    arrayOf(this.podSc.sysctls).forEach((s, i) => {
      const name = record(s)?.name;
      if (typeof name === 'string' && !SAFE_SYSCTLS.has(name)) {
        this.add(K.unsafeIsolation, `${this.label} sets unsafe sysctl ${name}`, [
          'securityContext',
          'sysctls',
          i,
        ]);
      }
    });
    this.checkSeLinux(this.podSc, this.label, ['securityContext']);
    this.checkAppArmor(this.podSc, undefined, this.label, ['securityContext']);

    for (const group of ['initContainers', 'containers', 'ephemeralContainers'] as const) {
      arrayOf(this.pod[group]).forEach((c, i) => {
        const container = record(c);
        if (container !== undefined)
          this.checkContainer(container, [group, i], group === 'ephemeralContainers');
      });
    }
  }

  private checkContainer(c: Obj, at: YamlPath, ephemeral: boolean): void {
    const name = typeof c.name === 'string' ? c.name : String(at[1]);
    const who = `${this.label}, container ${name}`;
    const sc = record(c.securityContext) ?? {};
    const scPath = [...at, 'securityContext'];
    const caps = record(sc.capabilities) ?? {};

    if (sc.privileged === true) this.add(K.privileged, `${who} is privileged`, [...scPath, 'privileged']);
    const added = arrayOf(caps.add).filter((x): x is string => typeof x === 'string');
    const extra = added.filter((cap) => !BASELINE_CAPS.has(cap.toUpperCase().replace(/^CAP_/, '')));
    if (extra.length > 0)
      this.add(K.addedCapabilities, `${who} adds ${extra.join(', ')}`, [...scPath, 'capabilities', 'add']);
    arrayOf(c.ports).forEach((p, i) => {
      const hostPort = record(p)?.hostPort;
      if (typeof hostPort === 'number' && hostPort !== 0)
        this.add(K.hostPort, `${who} binds hostPort ${hostPort}`, [...at, 'ports', i, 'hostPort']);
    });
    if (sc.procMount !== undefined && sc.procMount !== 'Default') {
      this.add(K.unsafeIsolation, `${who} sets procMount: ${String(sc.procMount)}`, [...scPath, 'procMount']);
    }
    this.checkSeLinux(sc, who, scPath);
    this.checkAppArmor(sc, name, who, scPath);

    // Restricted: container settings override the pod's, so the effective value is container ?? pod.
    if (sc.allowPrivilegeEscalation !== false) {
      this.add(K.privilegeEscalation, `${who} does not set allowPrivilegeEscalation: false`, [
        ...scPath,
        'allowPrivilegeEscalation',
      ]);
    }
    const nonRoot = sc.runAsNonRoot ?? this.podSc.runAsNonRoot;
    if (nonRoot !== true) {
      const where =
        sc.runAsNonRoot !== undefined
          ? [...scPath, 'runAsNonRoot']
          : this.podSc.runAsNonRoot !== undefined
            ? ['securityContext', 'runAsNonRoot']
            : scPath;
      this.add(K.runAsNonRoot, `${who} does not set runAsNonRoot: true`, where);
    }
    const user = sc.runAsUser ?? this.podSc.runAsUser;
    if (user === 0) {
      this.add(
        K.runAsRootUser,
        `${who} runs as UID 0`,
        sc.runAsUser !== undefined ? [...scPath, 'runAsUser'] : ['securityContext', 'runAsUser'],
      );
    }
    const seccomp = record(sc.seccompProfile) ?? record(this.podSc.seccompProfile);
    const seccompType = seccomp?.type;
    if (seccompType !== 'RuntimeDefault' && seccompType !== 'Localhost') {
      const at2 =
        sc.seccompProfile !== undefined
          ? [...scPath, 'seccompProfile']
          : this.podSc.seccompProfile !== undefined
            ? ['securityContext', 'seccompProfile']
            : scPath;
      this.add(
        K.seccomp,
        `${who} has seccomp profile ${typeof seccompType === 'string' ? seccompType : 'unset'}`,
        at2,
      );
    }
    const drop = arrayOf(caps.drop).filter((x): x is string => typeof x === 'string');
    if (!drop.some((d) => d.toUpperCase() === 'ALL'))
      this.add(K.dropAll, `${who} does not drop ALL capabilities`, [...scPath, 'capabilities']);
    if (sc.readOnlyRootFilesystem !== true) {
      this.add(K.readOnlyRoot, `${who} has a writable root filesystem`, [
        ...scPath,
        'readOnlyRootFilesystem',
      ]);
    }

    const image = typeof c.image === 'string' ? c.image : '';
    if (!/@sha256:[0-9a-f]{64}$/i.test(image))
      this.add(K.imageNotPinned, `${who} image ${image || '(none)'} is not pinned by digest`, [
        ...at,
        'image',
      ]);
    // Ephemeral (debug) containers cannot have resources, so limits are not asked of them.
    if (!ephemeral) {
      const limits = record(record(c.resources)?.limits) ?? {};
      const missing = ['cpu', 'memory'].filter((r) => limits[r] === undefined || limits[r] === null);
      if (missing.length > 0)
        this.add(K.noLimits, `${who} has no ${missing.join(' or ')} limit`, [...at, 'resources']);
    }
  }

  private checkSeLinux(sc: Obj, who: string, at: YamlPath): void {
    const se = record(sc.seLinuxOptions);
    if (se === undefined) return;
    const type = se.type ?? '';
    if (typeof type !== 'string' || !SELINUX_TYPES.has(type)) {
      this.add(K.unsafeIsolation, `${who} sets SELinux type ${String(type)}`, [
        ...at,
        'seLinuxOptions',
        'type',
      ]);
    }
    for (const f of ['user', 'role']) {
      if (se[f] !== undefined && se[f] !== '')
        this.add(K.unsafeIsolation, `${who} sets SELinux ${f}`, [...at, 'seLinuxOptions', f]);
    }
  }

  /** AppArmor: the securityContext field (1.30+) or the older per-container annotation. */
  private checkAppArmor(sc: Obj, container: string | undefined, who: string, at: YamlPath): void {
    if (record(sc.appArmorProfile)?.type === 'Unconfined') {
      this.add(K.unsafeIsolation, `${who} runs with AppArmor Unconfined`, [...at, 'appArmorProfile']);
    }
    if (container === undefined) return;
    const ann = this.annotations[APPARMOR_ANNOTATION + container];
    if (typeof ann === 'string' && ann !== 'runtime/default' && !ann.startsWith('localhost/')) {
      // The annotation sits in the pod template metadata, the sibling of the pod spec.
      this.out.push(
        misconfig(
          K.unsafeIsolation,
          `${who} has AppArmor profile ${ann}`,
          this.path,
          this.doc.lineOf([...this.podPath.slice(0, -1), 'metadata', 'annotations']),
        ),
      );
    }
  }
}

function record(v: unknown): Obj | undefined {
  return typeof v === 'object' && v !== null && !Array.isArray(v) ? (v as Obj) : undefined;
}

function arrayOf(v: unknown): unknown[] {
  return Array.isArray(v) ? v : [];
}

function getIn(obj: Obj, path: YamlPath): unknown {
  let cur: unknown = obj;
  for (const key of path) {
    if (typeof key === 'number') cur = Array.isArray(cur) ? cur[key] : undefined;
    else cur = record(cur)?.[key];
  }
  return cur;
}
