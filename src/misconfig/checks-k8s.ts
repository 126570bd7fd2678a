import type { CheckDef } from './check.js';

/** Kubernetes checks. PSS = Pod Security Standards (https://kubernetes.io/docs/concepts/security/pod-security-standards/). */
export const K8S_CHECKS = {
  privileged: {
    id: 'PC-K8S-001',
    title: 'Privileged container',
    severity: 'high',
    pss: 'baseline',
    remedy: 'Remove `securityContext.privileged: true`; grant only the specific capabilities needed.',
  },
  hostNamespaces: {
    id: 'PC-K8S-002',
    title: 'Host namespaces shared',
    severity: 'high',
    pss: 'baseline',
    remedy: 'Remove `hostNetwork`, `hostPID` and `hostIPC` (or set them to false).',
  },
  hostPath: {
    id: 'PC-K8S-003',
    title: 'hostPath volume',
    severity: 'medium',
    pss: 'baseline',
    remedy: 'Use a persistentVolumeClaim, configMap, secret or emptyDir volume instead of hostPath.',
  },
  addedCapabilities: {
    id: 'PC-K8S-004',
    title: 'Capabilities added beyond the baseline set',
    severity: 'medium',
    pss: 'baseline',
    remedy:
      'Add only capabilities from the baseline set (AUDIT_WRITE, CHOWN, DAC_OVERRIDE, FOWNER, FSETID, KILL, MKNOD, NET_BIND_SERVICE, SETFCAP, SETGID, SETPCAP, SETUID, SYS_CHROOT).',
  },
  hostPort: {
    id: 'PC-K8S-005',
    title: 'hostPort used',
    severity: 'medium',
    pss: 'baseline',
    remedy: 'Remove `hostPort`; expose the container through a Service.',
  },
  unsafeIsolation: {
    id: 'PC-K8S-006',
    title: 'Unsafe sysctl, procMount, AppArmor or SELinux setting',
    severity: 'medium',
    pss: 'baseline',
    remedy:
      'Use only safe sysctls, `procMount: Default`, AppArmor `RuntimeDefault`/`Localhost`, and SELinux types container_t, container_init_t, container_kvm_t or container_engine_t without user/role.',
  },
  privilegeEscalation: {
    id: 'PC-K8S-010',
    title: 'allowPrivilegeEscalation not false',
    severity: 'medium',
    pss: 'restricted',
    remedy: 'Set `securityContext.allowPrivilegeEscalation: false` on every container.',
  },
  runAsNonRoot: {
    id: 'PC-K8S-011',
    title: 'runAsNonRoot not true',
    severity: 'medium',
    pss: 'restricted',
    remedy:
      'Set `securityContext.runAsNonRoot: true` on the pod (containers inherit it) or on every container.',
  },
  seccomp: {
    id: 'PC-K8S-012',
    title: 'seccomp profile not RuntimeDefault or Localhost',
    severity: 'low',
    pss: 'restricted',
    remedy: 'Set `securityContext.seccompProfile.type: RuntimeDefault` on the pod or on every container.',
  },
  dropAll: {
    id: 'PC-K8S-013',
    title: 'Capabilities do not drop ALL',
    severity: 'low',
    pss: 'restricted',
    remedy: 'Set `securityContext.capabilities.drop: ["ALL"]` and add back only NET_BIND_SERVICE if needed.',
  },
  readOnlyRoot: {
    id: 'PC-K8S-014',
    title: 'Root filesystem not read-only',
    severity: 'low',
    remedy:
      'Set `securityContext.readOnlyRootFilesystem: true`; mount emptyDir volumes where the app writes.',
  },
  runAsRootUser: {
    id: 'PC-K8S-015',
    title: 'runAsUser is 0 (root)',
    severity: 'medium',
    pss: 'restricted',
    remedy: 'Set `runAsUser` to a non-zero UID, or leave it unset and use an image with a non-root USER.',
  },
  imageNotPinned: {
    id: 'PC-K8S-020',
    title: 'Image not pinned by digest',
    severity: 'low',
    remedy: 'Reference images as `name:tag@sha256:<digest>` so every node runs the same bytes.',
  },
  noLimits: {
    id: 'PC-K8S-021',
    title: 'No CPU or memory limits',
    severity: 'low',
    remedy: 'Set `resources.limits.cpu` and `resources.limits.memory` on every container.',
  },
  noDefaultDeny: {
    id: 'PC-K8S-022',
    title: 'Namespace without a default-deny NetworkPolicy',
    severity: 'medium',
    remedy:
      'Add a NetworkPolicy with `podSelector: {}` and `policyTypes: [Ingress, Egress]` and no rules to the namespace, then allow the needed traffic explicitly.',
  },
} as const satisfies Record<string, CheckDef>;
