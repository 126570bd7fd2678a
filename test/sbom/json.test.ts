import { readFileSync } from 'node:fs';

import { describe, expect, it } from 'vitest';

import { toJson } from '../../src/sbom/json.js';
import { makeResult, makeSecretsResult, makeVulnResult, REDACTED } from './fixture.js';

describe('toJson', () => {
  const result = makeResult();
  const text = toJson(result);
  const parsed = JSON.parse(text) as Record<string, unknown> & { packages: Record<string, unknown>[] };

  it('uses a 2-space indent and the documented top-level key order', () => {
    expect(text.startsWith('{\n  "schemaVersion": 1,\n  "generator": {\n    "name": "portcullis",')).toBe(
      true,
    );
    expect(Object.keys(parsed)).toEqual([
      'schemaVersion',
      'generator',
      'scannedAt',
      'image',
      'os',
      'packages',
      'warnings',
    ]);
    expect(Object.keys(parsed.image as object)).toEqual([
      'reference',
      'manifestDigest',
      'configDigest',
      'platform',
      'repoTags',
      'created',
      'layers',
    ]);
  });

  it('writes package keys in order and leaves absent fields out', () => {
    const babel = parsed.packages.find((p) => p.name === 'core');
    expect(Object.keys(babel ?? {})).toEqual([
      'type',
      'namespace',
      'name',
      'version',
      'purl',
      'licenses',
      'layer',
      'paths',
      'foundBy',
      'properties',
    ]);
    expect(text).not.toContain('null,');
  });

  it('sorts packages by type then name, whatever the input order', () => {
    const order = parsed.packages.map((p) => `${String(p.type)}:${String(p.name)}`);
    expect(order).toEqual([
      'deb:libssl3',
      'deb:login',
      'golang:logrus',
      'maven:log4j-core',
      'npm:core',
      'npm:left-pad',
      'pypi:typing-extensions',
    ]);
    const shuffled = { ...result, packages: [...result.packages].reverse() };
    expect(toJson(shuffled)).toBe(text);
  });

  it('round-trips the data', () => {
    expect(parsed.scannedAt).toBe(result.scannedAt);
    expect(parsed.os).toEqual(result.os);
    expect(parsed.packages).toHaveLength(result.packages.length);
    expect(toJson({ ...result, os: null })).toContain('"os": null');
  });
});

describe('toJson with vulnerabilities', () => {
  const result = makeVulnResult();
  const text = toJson(result);
  type Entry = Record<string, unknown> & { id: string; package: Record<string, unknown> };
  const parsed = JSON.parse(text) as Record<string, unknown> & {
    vulnerabilities: Entry[];
    suppressed: { finding: Entry; reason: string; source: string }[];
  };

  it('writes vulnerabilities and suppressed between packages and warnings', () => {
    expect(Object.keys(parsed)).toEqual([
      'schemaVersion',
      'generator',
      'scannedAt',
      'image',
      'os',
      'packages',
      'vulnerabilities',
      'suppressed',
      'warnings',
    ]);
    expect(Object.keys(JSON.parse(toJson(makeResult())) as object)).not.toContain('vulnerabilities');
  });

  it('writes finding keys in the documented order, leaving absent ones out', () => {
    const full = parsed.vulnerabilities.find((v) => v.id === 'CVE-2024-0001');
    expect(Object.keys(full ?? {})).toEqual([
      'id',
      'aliases',
      'severity',
      'score',
      'cvssVector',
      'severitySource',
      'summary',
      'package',
      'ecosystem',
      'matchedName',
      'installedVersion',
      'fixedVersions',
      'published',
      'modified',
      'references',
    ]);
    expect(Object.keys(full?.package ?? {})).toEqual([
      'type',
      'name',
      'version',
      'purl',
      'sourceName',
      'layer',
      'paths',
    ]);
    const bare = parsed.vulnerabilities.find((v) => v.id === 'OSV-2020-111');
    expect(Object.keys(bare ?? {})).toEqual([
      'id',
      'aliases',
      'severity',
      'package',
      'ecosystem',
      'matchedName',
      'installedVersion',
      'fixedVersions',
      'references',
    ]);
    expect(parsed.suppressed.map((s) => Object.keys(s))).toEqual([['finding', 'reason', 'source']]);
    expect(parsed.suppressed[0]?.finding.id).toBe('CVE-2023-29383');
  });

  it('sorts findings by package, then id, whatever the input order', () => {
    expect(parsed.vulnerabilities.map((v) => `${String(v.package.name)} ${v.id}`)).toEqual([
      'libssl3 CVE-2024-0001',
      'libssl3 CVE-2024-0002',
      'login CVE-2023-4641',
      'login CVE-2024-0002',
      'core GHSA-67hx-6x53-jw92',
      'left-pad OSV-2020-111',
    ]);
    const shuffled = { ...result, vulnerabilities: [...(result.vulnerabilities ?? [])].reverse() };
    expect(toJson(shuffled)).toBe(text);
  });

  it('documents every key it writes in docs/json-format.md', () => {
    const docs = readFileSync(new URL('../../docs/json-format.md', import.meta.url), 'utf8');
    const documented = (key: string): boolean => docs.includes(`| \`${key}\``);
    const keys = new Set<string>([
      ...Object.keys(parsed),
      ...parsed.vulnerabilities.flatMap((v) => [...Object.keys(v), ...Object.keys(v.package)]),
      ...parsed.suppressed.flatMap((s) => Object.keys(s)),
    ]);
    for (const key of keys) expect(documented(key), key).toBe(true);
  });
});

describe('toJson with secrets and misconfigurations', () => {
  const result = makeSecretsResult();
  const text = toJson(result);
  type Entry = Record<string, unknown>;
  const parsed = JSON.parse(text) as Record<string, unknown> & {
    secrets: Entry[];
    misconfigurations: Entry[];
  };

  it('writes secrets and misconfigurations after suppressed, before warnings', () => {
    expect(Object.keys(parsed)).toEqual([
      'schemaVersion',
      'generator',
      'scannedAt',
      'image',
      'os',
      'packages',
      'vulnerabilities',
      'suppressed',
      'secrets',
      'misconfigurations',
      'warnings',
    ]);
    const { secrets: _s, misconfigurations: _m, ...plain } = result;
    expect(toJson(plain)).toBe(toJson(makeVulnResult()));
  });

  it('writes secret keys in the documented order and sorts file, config, history', () => {
    expect(parsed.secrets.map((s) => Object.keys(s))).toEqual([
      ['ruleId', 'title', 'severity', 'location', 'target', 'line', 'layer', 'redacted'],
      ['ruleId', 'title', 'severity', 'location', 'target', 'line', 'layer', 'deleted', 'redacted'],
      ['ruleId', 'title', 'severity', 'location', 'target', 'redacted'],
      ['ruleId', 'title', 'severity', 'location', 'target', 'redacted'],
    ]);
    expect(parsed.secrets.map((s) => `${String(s.location)} ${String(s.target)}`)).toEqual([
      'file /app/config/settings.py',
      'file /root/.ssh/id_rsa',
      'config Env[2]',
      'history history[3].created_by',
    ]);
    expect(parsed.secrets[1]).toMatchObject({ deleted: true, redacted: REDACTED.key });
    for (const value of Object.values(REDACTED)) expect(text).toContain(JSON.stringify(value));
  });

  it('writes misconfiguration keys in the documented order, sorted by target', () => {
    expect(parsed.misconfigurations.map((m) => Object.keys(m))).toEqual([
      ['id', 'title', 'severity', 'target', 'message', 'remedy', 'cis'],
      ['id', 'title', 'severity', 'target', 'line', 'message', 'remedy', 'pss'],
      ['id', 'title', 'severity', 'target', 'message', 'remedy'],
      ['id', 'title', 'severity', 'target', 'message', 'remedy', 'cis'],
    ]);
    expect(parsed.misconfigurations.map((m) => m.id)).toEqual([
      'PC-IMG-001',
      'PC-K8S-002',
      'PC-IMG-011',
      'PC-IMG-009',
    ]);
    const shuffled = {
      ...result,
      secrets: [...(result.secrets ?? [])].reverse(),
      misconfigurations: [...(result.misconfigurations ?? [])].reverse(),
    };
    expect(toJson(shuffled)).toBe(text);
  });

  it('documents every key it writes in docs/json-format.md', () => {
    const docs = readFileSync(new URL('../../docs/json-format.md', import.meta.url), 'utf8');
    const documented = (key: string): boolean => docs.includes(`| \`${key}\``);
    const keys = new Set<string>([
      ...Object.keys(parsed),
      ...parsed.secrets.flatMap((s) => Object.keys(s)),
      ...parsed.misconfigurations.flatMap((m) => Object.keys(m)),
    ]);
    for (const key of keys) expect(documented(key), key).toBe(true);
    expect(docs).toContain('## Secret\n');
    expect(docs).toContain('## Misconfiguration\n');
  });
});
