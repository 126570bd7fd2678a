import { describe, expect, it } from 'vitest';
import { checkImage, type ImageFacts } from '../../src/misconfig/image.js';
import type { ImageConfig } from '../../src/oci/schemas.js';
import type { Package } from '../../src/sbom/model.js';

const layer = { index: 0, digest: `sha256:${'c'.repeat(64)}` };
const pkg = (type: Package['type'], name: string): Package => ({
  type,
  name,
  version: '1.0',
  purl: `pkg:${type}/${name}@1.0`,
  paths: ['var/lib/dpkg/status'],
  licenses: [],
  layer,
  foundBy: 'test',
});

/** A well-configured image: non-root, a healthcheck, nothing risky. */
function good(): ImageFacts {
  const config: ImageConfig = {
    rootfs: { type: 'layers', diff_ids: [] },
    config: { User: '10001:10001', Healthcheck: { Test: ['CMD', '/bin/true'] }, Env: ['PATH=/usr/bin', 'PASSWORD_FILE=/run/secrets/pw'], ExposedPorts: { '8080/tcp': {} } },
    history: [{ created_by: 'RUN apk add --no-cache curl' }],
  };
  return { config, packages: [pkg('apk', 'curl')], attributes: [], configSecrets: [] };
}

const ids = (f: ImageFacts) => checkImage(f).map((m) => m.id);

describe('image misconfiguration checks', () => {
  it('a well-configured image passes every check', () => {
    expect(ids(good())).toEqual([]);
  });

  const cases: Array<[string, (f: ImageFacts) => void]> = [
    ['PC-IMG-001', (f) => (f.config.config!.User = '0:0')],
    ['PC-IMG-002', (f) => (f.config.config!.ExposedPorts = { '22/tcp': {} })],
    ['PC-IMG-003', (f) => f.packages.push(pkg('deb', 'openssh-server'))],
    ['PC-IMG-004', (f) => f.attributes.push({ path: 'usr/bin/passwd', attribute: 'setuid' })],
    ['PC-IMG-005', (f) => (f.config.config!.Healthcheck = { Test: ['NONE'] })],
    ['PC-IMG-006', (f) => f.config.history!.push({ created_by: 'ADD https://example.com/tool.tgz /opt/ # buildkit' })],
    ['PC-IMG-007', (f) => f.config.config!.Env!.push('DB_PASSWORD=s3cr3t-Value')],
    ['PC-IMG-008', (f) => f.packages.push(pkg('apk', 'sudo'))],
    ['PC-IMG-009', (f) => f.attributes.push({ path: 'var/cache/apt/archives/curl_8.0_amd64.deb', attribute: 'pm-cache' })],
    ['PC-IMG-010', (f) => f.config.history!.push({ created_by: '/bin/sh -c curl -fsSL https://get.example.com | sh' })],
    ['PC-IMG-011', (f) => f.attributes.push({ path: 'usr/local/bin/tool', attribute: 'world-writable' })],
    ['PC-IMG-012', (f) => (f.config.config!.Labels = { 'org.opencontainers.image.base.name': 'docker.io/library/alpine:latest' })],
  ];
  it.each(cases)('%s fires on its bad example and only then', (id, spoil) => {
    const facts = good();
    spoil(facts);
    expect(ids(facts)).toEqual([id]);
    const finding = checkImage(facts)[0]!;
    expect(finding.remedy.length).toBeGreaterThan(10);
    expect(finding.message.length).toBeGreaterThan(5);
  });

  it('no USER at all is root; a named non-root user is not', () => {
    const f = good();
    delete f.config.config!.User;
    expect(ids(f)).toEqual(['PC-IMG-001']);
    f.config.config!.User = 'app';
    expect(ids(f)).toEqual([]);
  });

  it('maps to CIS Docker Benchmark sections where they correspond', () => {
    const f = good();
    f.config.config!.User = 'root';
    f.attributes.push({ path: 'usr/bin/su', attribute: 'setuid' });
    const cis = Object.fromEntries(checkImage(f).map((m) => [m.id, m.cis]));
    expect(cis).toEqual({ 'PC-IMG-001': '4.1', 'PC-IMG-004': '4.8' });
  });

  it('a base image pinned by digest or tag is fine; placeholders in secret-named variables are fine', () => {
    const f = good();
    f.config.config!.Labels = { 'org.opencontainers.image.base.name': 'docker.io/library/alpine:3.20' };
    f.config.config!.Env!.push('API_TOKEN=', 'DB_PASSWORD=${DB_PASSWORD}', 'SECRET_KEY=changeme');
    expect(ids(f)).toEqual([]);
  });
});
