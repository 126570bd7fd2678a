import { describe, expect, it, vi } from 'vitest';
import fc from 'fast-check';
import { PortcullisError } from '../../src/errors.js';
import { scanKubernetes } from '../../src/misconfig/k8s.js';

const DIGEST = `sha256:${'b'.repeat(64)}`;

/** A Deployment that passes every check, plus the default-deny policy for its namespace. */
const GOOD = `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
  namespace: shop
spec:
  template:
    metadata:
      labels: {app: web}
    spec:
      securityContext:
        runAsNonRoot: true
        seccompProfile:
          type: RuntimeDefault
      containers:
        - name: app
          image: registry.example.com/web:1.2@${DIGEST}
          securityContext:
            allowPrivilegeEscalation: false
            readOnlyRootFilesystem: true
            capabilities:
              drop: [ALL]
          resources:
            limits: {cpu: 500m, memory: 256Mi}
---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: default-deny, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`;

function lineOf(text: string, needle: string): number {
  const i = text.indexOf(needle);
  if (i < 0) throw new Error(`test bug: ${needle} not in text`);
  return text.slice(0, i).split('\n').length;
}

/** Replaces a line of GOOD (found by its content) with other lines, keeping the indentation given. */
function edit(from: string, to: string, text = GOOD): string {
  if (!text.includes(from)) throw new Error(`test bug: ${from} not in text`);
  return text.replace(from, to);
}

function hits(text: string): [string, number | undefined][] {
  return scanKubernetes(text, 'deploy.yaml').map((m) => [m.id, m.line]);
}

const C = '            allowPrivilegeEscalation: false\n';
const POD = '      securityContext:\n        runAsNonRoot: true\n';

interface Case {
  id: string;
  bad: { text: string; at: string }[];
  good: string;
}

const CASES: Case[] = [
  {
    id: 'PC-K8S-001',
    bad: [{ text: edit(C, `${C}            privileged: true\n`), at: 'privileged: true' }],
    good: edit(C, `${C}            privileged: false\n`),
  },
  {
    id: 'PC-K8S-002',
    bad: [
      { text: edit(POD, `      hostNetwork: true\n${POD}`), at: 'hostNetwork' },
      { text: edit(POD, `      hostPID: true\n${POD}`), at: 'hostPID' },
      { text: edit(POD, `      hostIPC: true\n${POD}`), at: 'hostIPC' },
    ],
    good: edit(POD, `      hostNetwork: false\n${POD}`),
  },
  {
    id: 'PC-K8S-003',
    bad: [
      {
        text: edit(
          POD,
          `      volumes:\n        - name: docker\n          hostPath: {path: /var/run/docker.sock}\n${POD}`,
        ),
        at: '- name: docker',
      },
    ],
    good: edit(POD, `      volumes:\n        - name: tmp\n          emptyDir: {}\n${POD}`),
  },
  {
    id: 'PC-K8S-004',
    bad: [
      {
        text: edit(
          '              drop: [ALL]\n',
          '              drop: [ALL]\n              add: [NET_BIND_SERVICE, SYS_ADMIN]\n',
        ),
        at: 'add: [',
      },
    ],
    good: edit(
      '              drop: [ALL]\n',
      '              drop: [ALL]\n              add: [NET_BIND_SERVICE]\n',
    ),
  },
  {
    id: 'PC-K8S-005',
    bad: [
      {
        text: edit(
          '          resources:',
          '          ports:\n            - containerPort: 8080\n              hostPort: 80\n          resources:',
        ),
        at: 'hostPort',
      },
    ],
    good: edit(
      '          resources:',
      '          ports:\n            - containerPort: 8080\n          resources:',
    ),
  },
  {
    id: 'PC-K8S-006',
    bad: [
      {
        text: edit(
          '          type: RuntimeDefault\n',
          '          type: RuntimeDefault\n        sysctls:\n          - name: kernel.msgmax\n            value: "65536"\n',
        ),
        at: '- name: kernel.msgmax',
      },
      { text: edit(C, `${C}            procMount: Unmasked\n`), at: 'procMount' },
      { text: edit(C, `${C}            seLinuxOptions: {type: spc_t}\n`), at: 'seLinuxOptions' },
      { text: edit(C, `${C}            appArmorProfile: {type: Unconfined}\n`), at: 'appArmorProfile' },
      {
        text: edit(
          '      labels: {app: web}\n',
          '      labels: {app: web}\n      annotations:\n        container.apparmor.security.beta.kubernetes.io/app: unconfined\n',
        ),
        at: 'container.apparmor',
      },
    ],
    good: edit(
      '          type: RuntimeDefault\n',
      '          type: RuntimeDefault\n        sysctls:\n          - name: net.ipv4.tcp_syncookies\n            value: "1"\n        seLinuxOptions: {level: "s0:c123,c456"}\n',
    ),
  },
  {
    id: 'PC-K8S-010',
    bad: [
      { text: edit(C, '            allowPrivilegeEscalation: true\n'), at: 'allowPrivilegeEscalation' },
      { text: edit(C, ''), at: 'readOnlyRootFilesystem' },
    ],
    good: GOOD,
  },
  {
    id: 'PC-K8S-011',
    bad: [
      { text: edit('        runAsNonRoot: true\n', '        runAsNonRoot: false\n'), at: 'runAsNonRoot' },
      { text: edit(C, `${C}            runAsNonRoot: false\n`), at: 'runAsNonRoot: false' },
    ],
    // Set on the container instead of the pod.
    good: edit(C, `${C}            runAsNonRoot: true\n`, edit('        runAsNonRoot: true\n', '')),
  },
  {
    id: 'PC-K8S-012',
    bad: [
      {
        text: edit('          type: RuntimeDefault\n', '          type: Unconfined\n'),
        at: 'type: Unconfined',
      },
      {
        text: edit('        seccompProfile:\n          type: RuntimeDefault\n', ''),
        at: 'allowPrivilegeEscalation',
      },
    ],
    good: edit(
      C,
      `${C}            seccompProfile: {type: Localhost, localhostProfile: p.json}\n`,
      edit('        seccompProfile:\n          type: RuntimeDefault\n', ''),
    ),
  },
  {
    id: 'PC-K8S-013',
    bad: [
      { text: edit('              drop: [ALL]\n', '              drop: [NET_RAW]\n'), at: 'drop: [NET_RAW]' },
    ],
    good: GOOD,
  },
  {
    id: 'PC-K8S-014',
    bad: [
      {
        text: edit('readOnlyRootFilesystem: true', 'readOnlyRootFilesystem: false'),
        at: 'readOnlyRootFilesystem',
      },
    ],
    good: GOOD,
  },
  {
    id: 'PC-K8S-015',
    bad: [
      { text: edit(POD, `${POD}        runAsUser: 0\n`), at: 'runAsUser: 0' },
      { text: edit(C, `${C}            runAsUser: 0\n`), at: 'runAsUser: 0' },
    ],
    good: edit(POD, `${POD}        runAsUser: 10001\n`),
  },
  {
    id: 'PC-K8S-020',
    bad: [{ text: edit(`@${DIGEST}`, ''), at: 'image:' }],
    good: GOOD,
  },
  {
    id: 'PC-K8S-021',
    bad: [
      {
        text: edit('limits: {cpu: 500m, memory: 256Mi}', 'requests: {cpu: 500m, memory: 256Mi}'),
        at: 'requests',
      },
      { text: edit('limits: {cpu: 500m, memory: 256Mi}', 'limits: {memory: 256Mi}'), at: 'limits' },
    ],
    good: GOOD,
  },
  {
    id: 'PC-K8S-022',
    bad: [
      { text: GOOD.split('---')[0] as string, at: 'kind: Deployment' },
      { text: edit('policyTypes: [Ingress, Egress]', 'policyTypes: [Ingress]'), at: 'kind: Deployment' },
      { text: edit('podSelector: {}', 'podSelector: {matchLabels: {app: web}}'), at: 'kind: Deployment' },
      {
        text: edit('  policyTypes: [Ingress, Egress]', '  policyTypes: [Ingress, Egress]\n  ingress: [{}]'),
        at: 'kind: Deployment',
      },
    ],
    good: GOOD,
  },
];

describe('scanKubernetes: every check', () => {
  for (const c of CASES) {
    it(`${c.id} fires on bad examples`, () => {
      for (const b of c.bad) {
        // `at` names the line; the document start is the line of `apiVersion` when it comes first.
        const line = b.at === 'kind: Deployment' ? 1 : lineOf(b.text, b.at);
        expect(hits(b.text), b.text).toEqual([[c.id, line]]);
      }
    });
    it(`${c.id} is silent on a good example`, () => {
      expect(hits(c.good), c.good).toEqual([]);
    });
  }

  it('names the object, namespace and container, and sets pss', () => {
    const [m] = scanKubernetes(edit(C, `${C}            privileged: true\n`), 'k/deploy.yaml');
    expect(m).toMatchObject({
      id: 'PC-K8S-001',
      pss: 'baseline',
      severity: 'high',
      target: 'k/deploy.yaml',
      message: 'Deployment/web in namespace shop, container app is privileged',
    });
    const [ro] = scanKubernetes(
      edit('readOnlyRootFilesystem: true', 'readOnlyRootFilesystem: false'),
      'x.yaml',
    );
    expect(ro?.pss).toBeUndefined();
  });
});

/** A minimal pod spec body (indent 0) that fails only hostPID, for checking each kind's spec path. */
function podSpec(indent: number): string {
  const pad = ' '.repeat(indent);
  return [
    'hostPID: true',
    'securityContext: {runAsNonRoot: true, seccompProfile: {type: RuntimeDefault}}',
    'containers:',
    '  - name: c',
    `    image: r/x@${DIGEST}`,
    '    securityContext: {allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: {drop: [ALL]}}',
    '    resources: {limits: {cpu: 1, memory: 1Gi}}',
  ]
    .map((l) => pad + l)
    .join('\n');
}

describe('scanKubernetes: multi-document and Helm output', () => {
  const helm = `# Source: chart/templates/ns.yaml
apiVersion: v1
kind: Namespace
metadata:
  name: shop
---
# Source: chart/templates/empty.yaml
---
# Source: chart/templates/values-only.yaml
replicaCount: 3
image: {repository: web}
---
# Source: chart/templates/cm.yaml
apiVersion: v1
kind: ConfigMap
metadata: {name: cfg, namespace: shop}
data: {a: b}
---
# Source: chart/templates/pod.yaml
apiVersion: v1
kind: Pod
metadata: {name: p, namespace: shop}
spec:
${podSpec(2)}
---
# Source: chart/templates/sts.yaml
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: s, namespace: shop}
spec:
  template:
    spec:
${podSpec(6)}
---
# Source: chart/templates/cron.yaml
apiVersion: batch/v1
kind: CronJob
metadata: {name: cj, namespace: shop}
spec:
  schedule: "* * * * *"
  jobTemplate:
    spec:
      template:
        spec:
${podSpec(10)}
---
apiVersion: v1
kind: List
items:
  - apiVersion: apps/v1
    kind: DaemonSet
    metadata: {name: ds, namespace: shop}
    spec:
      template:
        spec:
${podSpec(10)}
  - apiVersion: batch/v1
    kind: Job
    metadata: {name: j, namespace: shop}
    spec:
      template:
        spec:
${podSpec(10)}
  - apiVersion: apps/v1
    kind: ReplicaSet
    metadata: {name: rs, namespace: shop}
    spec:
      template:
        spec:
${podSpec(10)}
...
`;

  it('finds the pod spec of every workload kind, with the line of the field', () => {
    const found = scanKubernetes(helm, 'rendered.yaml');
    const hostPid = found.filter((m) => m.id === 'PC-K8S-002');
    expect(hostPid.map((m) => m.message.split(' ')[0])).toEqual([
      'Pod/p',
      'StatefulSet/s',
      'CronJob/cj',
      'DaemonSet/ds',
      'Job/j',
      'ReplicaSet/rs',
    ]);
    const lines = helm.split('\n');
    for (const m of hostPid) expect(lines[(m.line ?? 0) - 1]?.trim()).toBe('hostPID: true');
    // The namespace is declared, has no policy: reported once, at the Namespace document.
    expect(found.filter((m) => m.id === 'PC-K8S-022').map((m) => [m.message, m.line])).toEqual([
      ['namespace shop has no default-deny NetworkPolicy', 2],
    ]);
    expect(new Set(found.map((m) => m.id))).toEqual(new Set(['PC-K8S-002', 'PC-K8S-022']));
  });

  it('is satisfied by a default-deny policy for the namespace', () => {
    const policy = `---
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny-all, namespace: shop}
spec:
  podSelector: {}
  policyTypes: [Ingress, Egress]
`;
    const found = scanKubernetes(helm.replace(/\.\.\.\n$/, '') + policy, 'rendered.yaml');
    expect(found.filter((m) => m.id === 'PC-K8S-022')).toEqual([]);
  });

  it('groups workloads without metadata.namespace with policies without one', () => {
    const noNs = GOOD.replace(/ *namespace: shop\n/, '').replace(', namespace: shop', '');
    expect(hits(noNs)).toEqual([]);
    const alone = noNs.split('---')[0] as string;
    expect(scanKubernetes(alone, 'a.yaml').map((m) => m.message)).toEqual([
      'the namespace Deployment/web is applied to (no metadata.namespace) has no default-deny NetworkPolicy',
    ]);
  });

  it('ignores empty, comment-only and non-Kubernetes files', () => {
    expect(scanKubernetes('', 'a.yaml')).toEqual([]);
    expect(scanKubernetes('# nothing\n---\n---\n', 'a.yaml')).toEqual([]);
    expect(scanKubernetes('name: x\nlist: [1, 2]\n', 'a.yaml')).toEqual([]);
  });

  it('rejects malformed YAML with a PortcullisError naming the file and line', () => {
    const bad = 'apiVersion: v1\nkind: Pod\nmetadata:\n  name: [a, b\nspec: {}\n';
    expect(() => scanKubernetes(bad, 'bad.yaml')).toThrow(PortcullisError);
    expect(() => scanKubernetes(bad, 'bad.yaml')).toThrow(/^bad\.yaml:\d+: invalid YAML/);
    expect(() => scanKubernetes('a: 1\na: 2\n', 'dup.yaml')).toThrow(/^dup\.yaml:2: invalid YAML/);
    // Keys are compared by their resolved value, as the yaml package does: 0x1 is 1, "1" is not.
    expect(() => scanKubernetes('a:\n  1: x\n  "1": y\n  0x1: z\n', 'dup.yaml')).toThrow(
      /^dup\.yaml:4: invalid YAML: Map keys must be unique$/,
    );
    expect(() => scanKubernetes('- {a: 1, b: [{c: 1}], a: 2}\n', 'dup.yaml')).toThrow(
      /^dup\.yaml:1: invalid YAML: Map keys must be unique$/,
    );
    expect(scanKubernetes('.nan: 1\n.NaN: 2\n', 'nan.yaml')).toEqual([]);
  });

  it('checks a map with many keys for duplicates in linear time', () => {
    // The yaml package's own check compares each key with every earlier one: 40,000 keys took 9 s.
    const cm = (n: number): string =>
      'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: big\n  namespace: x\ndata:\n' +
      Array.from({ length: n }, (_, i) => `  k${i}: v${i}\n`).join('');
    const big = cm(40_000);
    const started = Date.now();
    expect(scanKubernetes(big, 'cm.yaml')).toEqual([]);
    expect(Date.now() - started).toBeLessThan(3_000);
    expect(() => scanKubernetes(`${cm(2_000)}  k1999: again\n`, 'cm.yaml')).toThrow(
      /^cm\.yaml:2007: invalid YAML: Map keys must be unique$/,
    );
  });
});

describe('scanKubernetes: robustness', () => {
  it('copes with any shape of spec in a workload without a TypeError', () => {
    const kinds = fc.constantFrom('Pod', 'Deployment', 'CronJob', 'List', 'NetworkPolicy', 'Namespace');
    fc.assert(
      fc.property(kinds, fc.jsonValue(), fc.jsonValue(), (kind, spec, items) => {
        const doc = JSON.stringify({ apiVersion: 'v1', kind, metadata: { name: 'x' }, spec, items });
        scanKubernetes(doc, 'f.yaml');
      }),
      { numRuns: 500 },
    );
  });

  it('loads a key that is a list or map without a warning on stderr', () => {
    const warn = vi.spyOn(process, 'emitWarning');
    try {
      const text = 'apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: x\ndata:\n  ? [a]\n  : b\n  ? {c: 1}\n  : d\n';
      expect(scanKubernetes(text, 'cm.yaml')).toEqual([]);
      expect(warn).not.toHaveBeenCalled();
    } finally {
      warn.mockRestore();
    }
  });
});
