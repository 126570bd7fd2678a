import type { CheckDef } from './check.js';

/**
 * Checks that apply to a container image however it was found. The ids are shared with the checks
 * the lead runs on built images (image.ts), so a Dockerfile finding and an image finding for the
 * same problem carry the same id.
 */
export const IMAGE_CHECKS = {
  runsAsRoot: {
    id: 'PC-IMG-001',
    title: 'Image runs as root',
    severity: 'high',
    cis: '4.1',
    remedy: 'Create an unprivileged user and switch to it with `USER <name or uid>` in the final stage.',
  },
  sshPortExposed: {
    id: 'PC-IMG-002',
    title: 'SSH port 22 exposed',
    severity: 'medium',
    cis: '4.3',
    remedy: 'Remove `EXPOSE 22`; use `docker exec`/`kubectl exec` to get a shell instead of SSH.',
  },
  sshServerInstalled: {
    id: 'PC-IMG-003',
    title: 'SSH server installed',
    severity: 'medium',
    cis: '4.3',
    remedy: 'Do not install openssh-server in the image; use `docker exec`/`kubectl exec` for access.',
  },
  noHealthcheck: {
    id: 'PC-IMG-005',
    title: 'No HEALTHCHECK',
    severity: 'low',
    cis: '4.6',
    remedy: 'Add a `HEALTHCHECK CMD ...` instruction that probes the service.',
  },
  addRemoteUrl: {
    id: 'PC-IMG-006',
    title: 'ADD fetches a remote URL',
    severity: 'medium',
    cis: '4.9',
    remedy: 'Download with curl/wget in a RUN and verify a checksum, or use `ADD --checksum=sha256:...`.',
  },
  secretInEnv: {
    id: 'PC-IMG-007',
    title: 'Secret in ENV or ARG',
    severity: 'high',
    cis: '4.10',
    remedy: 'Pass secrets at run time or with `RUN --mount=type=secret`; never bake them into ENV/ARG.',
  },
  sudoInstalled: {
    id: 'PC-IMG-008',
    title: 'sudo installed',
    severity: 'medium',
    cis: '4.3',
    remedy: 'Do not install sudo; run the build steps that need root before `USER`.',
  },
  packageCacheLeft: {
    id: 'PC-IMG-009',
    title: 'Package manager cache left in the image',
    severity: 'low',
    remedy:
      'Clean up in the same RUN: `rm -rf /var/lib/apt/lists/*`, `apk add --no-cache`, `pip install --no-cache-dir`, `yum/dnf clean all`.',
  },
  curlPipeShell: {
    id: 'PC-IMG-010',
    title: 'Remote script piped into a shell',
    severity: 'high',
    remedy: 'Download the script to a file, verify its checksum or signature, then run it.',
  },
  latestTag: {
    id: 'PC-IMG-012',
    title: 'Base image uses the latest tag',
    severity: 'medium',
    remedy: 'Use an explicit version tag (and preferably a digest) for the base image.',
  },
} as const satisfies Record<string, CheckDef>;

/** Checks that only make sense on the Dockerfile text. */
export const DOCKERFILE_CHECKS = {
  notPinnedByDigest: {
    id: 'PC-DF-001',
    title: 'Base image not pinned by digest',
    severity: 'low',
    remedy:
      'Pin the base image: `FROM image:tag@sha256:<digest>` and update it with a bot (Renovate, Dependabot).',
  },
  installRecommends: {
    id: 'PC-DF-002',
    title: 'apt-get install without --no-install-recommends',
    severity: 'low',
    remedy: 'Add `--no-install-recommends` to `apt-get install`.',
  },
  addInsteadOfCopy: {
    id: 'PC-DF-003',
    title: 'ADD used where COPY serves',
    severity: 'low',
    cis: '4.9',
    remedy: 'Use COPY for local files; ADD only for archives that must be extracted.',
  },
  aptUpgrade: {
    id: 'PC-DF-004',
    title: 'Distribution upgrade in the image',
    severity: 'low',
    remedy:
      'Use a newer base image instead of `apt-get upgrade`/`dist-upgrade`, or upgrade only named packages.',
  },
  cdInRun: {
    id: 'PC-DF-005',
    title: 'cd in RUN instead of WORKDIR',
    severity: 'low',
    remedy: 'Use `WORKDIR /path` to change the directory for later instructions.',
  },
  maintainer: {
    id: 'PC-DF-006',
    title: 'MAINTAINER is deprecated',
    severity: 'low',
    remedy: 'Use `LABEL org.opencontainers.image.authors="..."` instead of MAINTAINER.',
  },
} as const satisfies Record<string, CheckDef>;
