import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createRequire } from 'node:module';

import type { FormatsPlugin } from 'ajv-formats';

import { describe, expect, it } from 'vitest';

import {
  imagePathUri,
  SARIF_FINGERPRINT_KEY,
  SARIF_SCHEMA_URI,
  sarifLevel,
  toSarif,
  validateSarif,
} from '../../src/sbom/sarif.js';
import { REPO_ROOT } from '../helpers/fixtures.js';
import { makeConfigOnlyResult, makeResult, makeSecretsResult, makeVulnResult, REDACTED } from './fixture.js';

interface SarifRule {
  id: string;
  shortDescription: { text: string };
  fullDescription: { text: string };
  helpUri?: string;
  help: { text: string; markdown: string };
  defaultConfiguration: { level: string };
  properties: { 'security-severity'?: string; tags: string[] };
}

interface SarifResult {
  ruleId: string;
  ruleIndex: number;
  level: string;
  message: { text: string };
  locations: {
    physicalLocation: { artifactLocation: { uri: string }; region: { startLine: number } };
    message: { text: string };
  }[];
  partialFingerprints: Record<string, string>;
  properties: Record<string, unknown> & { purl?: string };
}

interface SarifLog {
  $schema: string;
  version: string;
  runs: { tool: { driver: { name: string; version: string; rules: SarifRule[] } }; results: SarifResult[] }[];
}

describe('toSarif', () => {
  const result = makeVulnResult();
  const log = toSarif(result) as SarifLog;
  const run = log.runs[0];
  const rules = run?.tool.driver.rules ?? [];
  const results = run?.results ?? [];
  const rule = (id: string) => rules.find((r) => r.id === id);
  const resultFor = (id: string, name: string) =>
    results.find((r) => r.ruleId === id && r.message.text.startsWith(`Package ${name} `));

  it('is a SARIF 2.1.0 log with one run that passes validateSarif', () => {
    expect(log.$schema).toBe(SARIF_SCHEMA_URI);
    expect(log.version).toBe('2.1.0');
    expect(log.runs).toHaveLength(1);
    expect(run?.tool.driver).toMatchObject({ name: 'portcullis', version: '0.1.0' });
    expect(validateSarif(JSON.stringify(log))).toBeNull();
  });

  it('has one rule per advisory id and one result per finding', () => {
    expect(rules.map((r) => r.id)).toEqual([
      'CVE-2023-4641',
      'CVE-2024-0001',
      'CVE-2024-0002',
      'GHSA-67hx-6x53-jw92',
      'OSV-2020-111',
    ]);
    expect(results).toHaveLength(result.vulnerabilities?.length ?? -1);
    for (const r of results) expect(rules[r.ruleIndex]?.id).toBe(r.ruleId);
    expect(results.filter((r) => r.ruleId === 'CVE-2024-0002')).toHaveLength(2);
    // Suppressed findings are not results.
    expect(results.some((r) => r.ruleId === 'CVE-2023-29383')).toBe(false);
  });

  it('maps severities to levels', () => {
    expect(resultFor('CVE-2024-0001', 'libssl3')?.level).toBe('error');
    expect(resultFor('CVE-2023-4641', 'login')?.level).toBe('error');
    expect(resultFor('CVE-2024-0002', 'login')?.level).toBe('warning');
    expect(resultFor('OSV-2020-111', 'left-pad')?.level).toBe('note');
    expect(sarifLevel('low')).toBe('note');
    expect(sarifLevel('none')).toBe('note');
  });

  it('locates each result at the package file inside the image', () => {
    const r = resultFor('CVE-2024-0001', 'libssl3');
    expect(r?.message.text).toBe(
      'Package libssl3 version 3.0.11-1~deb12u2 is vulnerable to CVE-2024-0001 (fixed in 3.0.13-1~deb12u1)',
    );
    expect(r?.locations).toEqual([
      {
        physicalLocation: { artifactLocation: { uri: 'var/lib/dpkg/status' }, region: { startLine: 1 } },
        message: { text: 'docker.io/library/example:1.0' },
      },
    ]);
    expect(
      resultFor('GHSA-67hx-6x53-jw92', '@babel/core')?.locations[0]?.physicalLocation.artifactLocation.uri,
    ).toBe('app/node_modules/@babel/core/package.json');
    expect(resultFor('CVE-2023-4641', 'login')?.message.text).toBe(
      'Package login version 1:4.13+dfsg1-1+b1 is vulnerable to CVE-2023-4641 (no fix available)',
    );
  });

  it('gives every finding a distinct, stable fingerprint', () => {
    const prints = results.map((r) => r.partialFingerprints[SARIF_FINGERPRINT_KEY]);
    for (const p of prints) expect(p).toMatch(/^[0-9a-f]{64}$/);
    expect(new Set(prints).size).toBe(prints.length);
    const again = (toSarif(makeVulnResult()) as SarifLog).runs[0]?.results ?? [];
    expect(again.map((r) => r.partialFingerprints[SARIF_FINGERPRINT_KEY])).toEqual(prints);
  });

  it('describes each rule with security-severity, tags, help and remedy', () => {
    expect(rule('CVE-2024-0001')).toMatchObject({
      shortDescription: {
        text: 'Heap buffer overflow in the certificate parser allows remote code execution',
      },
      helpUri: 'https://security-tracker.debian.org/tracker/CVE-2024-0001',
      defaultConfiguration: { level: 'error' },
      properties: { 'security-severity': '9.8', tags: ['vulnerability', 'security', 'critical'] },
    });
    expect(rule('CVE-2024-0001')?.fullDescription.text).toContain('Also known as DSA-5600-1.');
    expect(rule('CVE-2024-0001')?.help.text).toContain('Upgrade libssl3 to 3.0.13-1~deb12u1 or later.');
    expect(rule('CVE-2024-0001')?.help.markdown).toContain(
      '| libssl3 | 3.0.11-1~deb12u2 | 3.0.13-1~deb12u1 |',
    );
    // No score: the default for the severity band.
    expect(rule('CVE-2023-4641')?.properties['security-severity']).toBe('8.0');
    expect(rule('CVE-2023-4641')?.help.text).toContain('No fixed version of login is known yet');
    // Unknown severity: no security-severity, GitHub then goes by the level.
    expect(rule('OSV-2020-111')?.properties).toEqual({ tags: ['vulnerability', 'security', 'unknown'] });
    expect(rule('OSV-2020-111')?.shortDescription.text).toBe('OSV-2020-111');
    expect(rule('OSV-2020-111')?.helpUri).toBeUndefined();
    // One rule shared by two packages lists both.
    expect(rule('CVE-2024-0002')?.help.markdown).toMatch(/\| libssl3 \|[\s\S]*\| login \|/);
  });

  it('writes a valid log with no results for a clean image or an SBOM result', () => {
    for (const r of [{ ...result, vulnerabilities: [] }, makeResult()]) {
      const empty = toSarif(r) as SarifLog;
      expect(empty.runs[0]?.results).toEqual([]);
      expect(empty.runs[0]?.tool.driver.rules).toEqual([]);
      expect(validateSarif(JSON.stringify(empty))).toBeNull();
    }
  });

  it('uses the image reference when a package has no path', () => {
    const first = result.vulnerabilities?.[0];
    if (!first) throw new Error('fixture has no findings');
    const pathless = { ...first, package: { ...first.package, paths: [] } };
    const log2 = toSarif({
      ...result,
      image: { ...result.image, reference: 'alpine:3.19' },
      vulnerabilities: [pathless],
    });
    const uri = (log2 as SarifLog).runs[0]?.results[0]?.locations[0]?.physicalLocation.artifactLocation.uri;
    expect(uri).toBe('alpine%3A3.19');
    expect(validateSarif(JSON.stringify(log2))).toBeNull();
  });

  it('passes informationUri through', () => {
    const withUri = toSarif(result, { informationUri: 'https://example.org/portcullis' }) as {
      runs: { tool: { driver: { informationUri?: string } } }[];
    };
    expect(withUri.runs[0]?.tool.driver.informationUri).toBe('https://example.org/portcullis');
  });
});

describe('toSarif with secrets and misconfigurations', () => {
  const result = makeSecretsResult();
  const log = toSarif(result) as SarifLog;
  const text = JSON.stringify(log);
  const run = log.runs[0];
  const rules = run?.tool.driver.rules ?? [];
  const results = run?.results ?? [];
  const resultOf = (ruleId: string) => results.find((r) => r.ruleId === ruleId);
  const ruleOf = (id: string) => rules.find((r) => r.id === id);

  it('passes validateSarif', () => {
    expect(validateSarif(text)).toBeNull();
    expect(validateSarif(JSON.stringify(toSarif(makeConfigOnlyResult())))).toBeNull();
  });

  it('adds one rule per secret rule and per check id after the advisories, and one result each', () => {
    expect(rules.map((r) => r.id)).toEqual([
      'CVE-2023-4641',
      'CVE-2024-0001',
      'CVE-2024-0002',
      'GHSA-67hx-6x53-jw92',
      'OSV-2020-111',
      'secret/aws-access-key-id',
      'secret/github-pat',
      'secret/npm-access-token',
      'secret/private-key',
      'PC-IMG-001',
      'PC-IMG-009',
      'PC-IMG-011',
      'PC-K8S-002',
    ]);
    expect(results).toHaveLength(6 + 4 + 4);
    expect(results.filter((r) => r.ruleId.startsWith('secret/'))).toHaveLength(4);
    expect(results.filter((r) => r.ruleId.startsWith('PC-'))).toHaveLength(4);
    for (const r of results) expect(rules[r.ruleIndex]?.id).toBe(r.ruleId);
    const prints = results.map((r) => r.partialFingerprints[SARIF_FINGERPRINT_KEY]);
    expect(new Set(prints).size).toBe(prints.length);
  });

  it('maps severities to levels', () => {
    expect(resultOf('secret/aws-access-key-id')?.level).toBe('error');
    expect(resultOf('secret/npm-access-token')?.level).toBe('warning');
    expect(resultOf('PC-IMG-009')?.level).toBe('note');
    expect(resultOf('PC-K8S-002')?.level).toBe('error');
    expect(ruleOf('PC-IMG-001')?.defaultConfiguration.level).toBe('warning');
  });

  it('locates file secrets at the file and line, config and history ones at image-config', () => {
    expect(resultOf('secret/aws-access-key-id')?.locations[0]).toEqual({
      physicalLocation: { artifactLocation: { uri: 'app/config/settings.py' }, region: { startLine: 12 } },
      message: { text: 'docker.io/library/example:1.0' },
    });
    const pat = resultOf('secret/github-pat')?.locations[0];
    expect(pat?.physicalLocation.artifactLocation.uri).toBe('image-config');
    expect(pat?.message.text).toContain('Env[2]');
    const history = resultOf('secret/npm-access-token')?.locations[0];
    expect(history?.physicalLocation.artifactLocation.uri).toBe('image-config');
    expect(history?.message.text).toContain('history[3].created_by');
  });

  it('marks the deleted secret and tells to remove and rotate', () => {
    const deleted = resultOf('secret/private-key');
    expect(deleted?.message.text).toContain('deleted');
    expect(deleted?.properties).toMatchObject({ deleted: true, redacted: REDACTED.key });
    expect(resultOf('secret/aws-access-key-id')?.properties.deleted).toBeUndefined();
    for (const r of rules.filter((x) => x.id.startsWith('secret/'))) {
      expect(r.help.text).toContain(
        'Remove the secret from the image and rotate it; a secret deleted in a later layer still ships inside the image',
      );
      expect(r.properties.tags).toContain('secret');
    }
  });

  it('locates misconfigurations at their target and line, with the remedy as help', () => {
    expect(resultOf('PC-K8S-002')?.locations[0]?.physicalLocation).toEqual({
      artifactLocation: { uri: 'deploy/web.yaml' },
      region: { startLine: 27 },
    });
    expect(resultOf('PC-IMG-009')?.locations[0]?.physicalLocation.artifactLocation.uri).toBe(
      'usr/bin/passwd',
    );
    const root = resultOf('PC-IMG-001')?.locations[0];
    expect(root?.physicalLocation.artifactLocation.uri).toBe('image-config');
    expect(root?.message.text).toContain('config.User');
    expect(ruleOf('PC-IMG-001')?.help.text).toContain('Add a USER instruction naming an unprivileged user');
    expect(ruleOf('PC-IMG-001')?.fullDescription.text).toContain('CIS Docker Benchmark v1.6 section 4.1');
    expect(ruleOf('PC-K8S-002')?.fullDescription.text).toContain('Pod Security Standards (baseline)');
    expect(ruleOf('PC-K8S-002')?.properties).toMatchObject({ 'security-severity': '9.5', pss: 'baseline' });
    const dockerfile = (toSarif(makeConfigOnlyResult()) as SarifLog).runs[0]?.results[0];
    expect(dockerfile?.locations[0]?.physicalLocation).toEqual({
      artifactLocation: { uri: 'Dockerfile' },
      region: { startLine: 5 },
    });
  });

  it('writes each redacted value and nothing more of the secret', () => {
    for (const value of Object.values(REDACTED)) expect(text).toContain(JSON.stringify(value).slice(1, -1));
    // Every secret result's message ends with (or mentions) the redacted value, not a longer one.
    for (const s of result.secrets ?? []) {
      const r = results.find((x) => x.ruleId === `secret/${s.ruleId}`);
      expect(r?.message.text).toContain(`: ${s.redacted}`);
    }
  });

  it('writes nothing extra when the checks did not run', () => {
    const { secrets: _s, misconfigurations: _m, ...plain } = result;
    expect(toSarif(plain)).toEqual(toSarif(makeVulnResult()));
  });
});

describe('imagePathUri', () => {
  it('makes image paths relative URI references', () => {
    expect(imagePathUri('/lib/apk/db/installed')).toBe('lib/apk/db/installed');
    expect(imagePathUri('/usr/lib/my app/a+b@1.jar')).toBe('usr/lib/my%20app/a+b@1.jar');
    expect(imagePathUri('/opt/x:y/z')).toBe('opt/x%3Ay/z');
  });
});

describe('validateSarif', () => {
  const good = (): SarifLog => JSON.parse(JSON.stringify(toSarif(makeVulnResult()))) as SarifLog;
  const problems = (log: unknown): string[] =>
    (validateSarif(JSON.stringify(log)) ?? []).map((i) => `${i.path}: ${i.message}`);

  it('rejects text that is not JSON', () => {
    expect(validateSarif('{')).toEqual([{ path: '', message: expect.stringMatching(/^not JSON/) as string }]);
  });

  it('rejects a wrong version or schema', () => {
    expect(problems({ ...good(), version: '2.0.0' })).toEqual([expect.stringMatching(/^version: /)]);
    expect(problems({ ...good(), $schema: 'https://example.org/schema.json' })).toEqual([
      expect.stringMatching(/^\$schema: /),
    ]);
  });

  it('rejects results whose rule is not declared, or whose ruleIndex points elsewhere', () => {
    const log = good();
    const results = log.runs[0]?.results ?? [];
    if (results[0]) results[0].ruleId = 'CVE-0000-0000';
    if (results[1]) results[1].ruleIndex = 0;
    expect(problems(log)).toEqual([
      expect.stringMatching(/^runs\.0\.results\.0\.ruleId: ruleId CVE-0000-0000 is not among/),
      expect.stringMatching(/^runs\.0\.results\.1\.ruleIndex: /),
    ]);
  });

  it('rejects duplicate rules, bad levels, missing locations and out-of-range security-severity', () => {
    const log = good();
    const run = log.runs[0];
    if (!run) throw new Error('no run');
    const [r0, r1, r2] = run.results;
    const firstRule = run.tool.driver.rules[0];
    if (!r0 || !r1 || !r2 || !firstRule) throw new Error('fixture too small');
    r0.level = 'critical';
    r1.locations = [];
    (r2.locations[0]?.physicalLocation.artifactLocation as { uri?: string }).uri = undefined;
    firstRule.properties['security-severity'] = '11';
    const found = problems(log).join('\n');
    expect(found).toMatch(/rules\.0\.properties\.security-severity: /);
    expect(found).toMatch(/results\.0\.level: /);
    expect(found).toMatch(/results\.1\.locations: GitHub code scanning needs at least one location/);
    expect(found).toMatch(/results\.2\.locations\.0\.physicalLocation\.artifactLocation\.uri: /);
  });

  it('rejects duplicate rule ids', () => {
    const log = good();
    const rules = log.runs[0]?.tool.driver.rules ?? [];
    if (rules[0]) rules.push({ ...rules[0] });
    expect(problems(log)).toEqual([
      expect.stringMatching(/^runs\.0\.tool\.driver\.rules\.5\.id: duplicate rule id CVE-2023-4641$/),
    ]);
  });

  it('rejects unknown properties, as the official schema does', () => {
    expect(problems({ ...good(), extra: true })).toHaveLength(1);
  });

  // The official OASIS schema is not a dependency: scripts/install-test-deps.sh fetches it from the
  // npm package that ships it into .test-tools/ (gitignored), or PORTCULLIS_SARIF_SCHEMA names a copy.
  const officialSchema = process.env.PORTCULLIS_SARIF_SCHEMA ?? join(REPO_ROOT, '.test-tools', 'sarif-2.1.0.json');
  const haveSchema = existsSync(officialSchema);
  it.skipIf(!haveSchema)(`passes the official JSON schema${haveSchema ? '' : ' [SKIPPED: no copy of sarif-2.1.0.json; run scripts/install-test-deps.sh]'}`, async () => {
    const schema = JSON.parse(readFileSync(officialSchema, 'utf8')) as {
      $schema?: string;
    };
    const require = createRequire(import.meta.url);
    const { Ajv2020 } = require('ajv/dist/2020') as typeof import('ajv/dist/2020.js');
    const { Ajv } = require('ajv') as typeof import('ajv');
    const addFormats = require('ajv-formats') as FormatsPlugin;
    const ajv = schema.$schema?.includes('2020-12')
      ? new Ajv2020({ strict: false, allErrors: true })
      : new Ajv({ strict: false, allErrors: true });
    addFormats(ajv);
    const validate = ajv.compile(schema);
    for (const r of [makeVulnResult(), makeSecretsResult(), makeConfigOnlyResult()]) {
      const ok = validate(toSarif(r));
      expect(validate.errors ?? null).toBeNull();
      expect(ok).toBe(true);
    }
  });
});
