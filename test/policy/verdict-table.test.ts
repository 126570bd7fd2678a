import { describe, expect, it } from 'vitest';
import { renderVerdictTable } from '../../src/cli/policy-command.js';
import { evaluate, parsePolicyText } from '../../src/policy/index.js';
import type { ScanResult } from '../../src/sbom/result.js';
import { LAYER, finding } from './helpers.js';

describe('renderVerdictTable', () => {
  it('shows control characters that the image put in package names and versions as escapes', () => {
    const hostile = finding({
      id: 'CVE-2024-0001',
      severity: 'critical',
      installedVersion: '1.0\u001b[5m',
      fixedVersions: ['2.0'],
      package: { type: 'apk', namespace: 'alpine', name: 'evil\u001b]0;pwn\u0007', version: '1.0\u001b[5m', purl: 'pkg:apk/alpine/evil@1.0' },
    });
    const result: ScanResult = {
      schemaVersion: 1,
      generator: { name: 'portcullis', version: 'test' },
      scannedAt: '2025-06-01T12:00:00Z',
      image: { reference: 'reg.example/app:1', manifestDigest: `sha256:${'b'.repeat(64)}`, configDigest: '', layers: [LAYER] },
      os: null,
      packages: [],
      warnings: [],
      vulnerabilities: [hostile],
      secrets: [],
      misconfigurations: [],
    };
    const policy = parsePolicyText(
      'version: 1\ndefaultAction: ignore\nrules:\n  - { id: crit, action: fail, vulnerability: { severity: critical } }\n',
      'test.yaml',
    );
    const verdict = evaluate(result, policy, { now: new Date('2025-06-01T12:00:00Z') });
    const text = renderVerdictTable([{ result, verdict }], 'test.yaml');
    expect(text).toMatch(/^FAIL {2}reg\.example\/app:1$/m);
    expect(text).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f]/);
    expect(text).toContain('evil\\x1b]0;pwn\\x07');
    expect(text).toContain('1.0\\x1b[5m');
  });
});
