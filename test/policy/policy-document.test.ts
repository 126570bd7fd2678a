import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import {
  BUILTIN_POLICY_YAML,
  PolicyError,
  builtinPolicy,
  loadPolicyFile,
  parsePolicyText,
  resolvePolicy,
} from '../../src/policy/index.js';

const tmp = mkdtempSync(join(tmpdir(), 'portcullis-policydoc-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const parse = (text: string) => parsePolicyText(text, 'policy.yaml');
const errorOf = (text: string): PolicyError => {
  try {
    parse(text);
  } catch (err) {
    expect(err).toBeInstanceOf(PolicyError);
    return err as PolicyError;
  }
  throw new Error('expected the policy to be rejected');
};

describe('policy document schema', () => {
  it('accepts every rule kind and fills in the defaults', () => {
    const p = parse(`version: 1
rules:
  - { id: v, action: fail, vulnerability: { severity: high, fixAvailable: true, olderThanDays: 30 } }
  - { id: s, action: fail, secret: { rules: [aws-*] } }
  - { id: m, action: warn, misconfiguration: { ids: [PC-IMG-001] } }
  - { id: p, action: fail, package: { names: [openssh-server, sudo], types: [deb, apk] } }
  - { id: b, action: fail, baseImage: { allowed: [alpine], whenUnknown: warn } }
  - { id: g, action: warn, signature: { whenUnverifiable: ignore } }
  - { id: l, action: warn, license: { denied: [AGPL-3.0-only] } }
`);
    expect(p.defaultAction).toBe('warn');
    expect(p.exceptions).toEqual([]);
    expect(p.projects).toEqual({});
    expect(p.rules.map((r) => r.id)).toEqual(['v', 's', 'm', 'p', 'b', 'g', 'l']);
    // The American spelling is stored under the one name the evaluator reads.
    expect(p.rules[6]).toEqual({ id: 'l', action: 'warn', licence: { denied: ['AGPL-3.0-only'] } });
  });

  it('the built-in policy parses with the same schema and is secure by default', () => {
    const p = builtinPolicy();
    expect(p.defaultAction).toBe('warn');
    expect(p.rules.map((r) => [r.id, r.action])).toEqual([
      ['critical-fixable', 'fail'],
      ['no-secrets', 'fail'],
      ['no-ssh-server', 'fail'],
    ]);
    expect(p.rules[0]!.vulnerability).toEqual({ severity: 'critical', fixAvailable: true });
    expect(BUILTIN_POLICY_YAML).toMatch(/^# The built-in Portcullis policy/);
  });

  it.each([
    ['missing version', 'rules: []\n', /policy\.yaml:1: version: version must be 1/],
    ['wrong version', 'version: 2\n', /version must be 1/],
    ['empty document', '', /policy\.yaml: the policy is empty/],
    ['a list instead of a mapping', '- a\n', /a policy must be a mapping/],
    ['bad YAML', 'version: 1\nrules: [\n', /policy\.yaml:\d+:\d+: not valid YAML/],
    ['unknown top-level key with a hint', 'version: 1\ndefaultaction: fail\n', /unknown key "defaultaction" \(did you mean "defaultAction"\?\)/],
    [
      'a rule with no condition',
      'version: 1\nrules:\n  - id: x\n    action: fail\n',
      /policy\.yaml:3: rules\[0\]: rule "x" needs one condition/,
    ],
    [
      'a rule with two conditions',
      'version: 1\nrules:\n  - id: x\n    action: fail\n    secret: {}\n    package: { names: [sudo] }\n',
      /has secret and package; give each condition its own rule/,
    ],
    ['a bad action', 'version: 1\nrules:\n  - { id: x, action: block, secret: {} }\n', /rules\[0\]\.action: action must be fail or warn/],
    [
      'a bad severity',
      'version: 1\nrules:\n  - id: x\n    action: fail\n    vulnerability:\n      severity: severe\n',
      /policy\.yaml:6: rules\[0\]\.vulnerability\.severity: must be one of critical, high, medium, low, none, unknown, any/,
    ],
    [
      'a typo inside a condition',
      'version: 1\nrules:\n  - id: x\n    action: fail\n    vulnerability: { fixavailable: true }\n',
      /unknown key "fixavailable" \(did you mean "fixAvailable"\?\)/,
    ],
    ['duplicate rule ids', 'version: 1\nrules:\n  - { id: x, action: fail, secret: {} }\n  - { id: x, action: warn, secret: {} }\n', /rule id "x" is used twice/],
    ['the reserved id', 'version: 1\nrules:\n  - { id: default, action: fail, secret: {} }\n', /"default" is reserved/],
    ['an empty denied list', 'version: 1\nrules:\n  - { id: x, action: fail, package: { names: [] } }\n', /names: list at least one package name/],
    [
      'an exception without a reason',
      'version: 1\nexceptions:\n  - id: CVE-1\n    scope: global\n',
      /policy\.yaml:3: exceptions\[0\]\.reason: is required/,
    ],
    ['an exception with an empty reason', 'version: 1\nexceptions:\n  - { id: CVE-1, scope: global, reason: "  " }\n', /reason \(why the risk is accepted\) must not be empty/],
    ['an exception without a scope', 'version: 1\nexceptions:\n  - { id: CVE-1, reason: ok }\n', /exceptions\[0\]\.scope: is required; scope must be global or a mapping/],
    ['an empty scope', 'version: 1\nexceptions:\n  - { id: CVE-1, reason: ok, scope: {} }\n', /scope needs project, repository or digest/],
    ['a bad digest scope', 'version: 1\nexceptions:\n  - { id: CVE-1, reason: ok, scope: { digest: sha256:abc } }\n', /scope\.digest must be sha256:<64 hex>/],
    ['an impossible expiry', 'version: 1\nexceptions:\n  - { id: CVE-1, reason: ok, scope: global, expires: 2025-02-30 }\n', /expires must be a real date/],
    ['a typo in expires', 'version: 1\nexceptions:\n  - { id: CVE-1, reason: ok, scope: global, expire: 2025-01-01 }\n', /unknown key "expire" \(did you mean "expires"\?\)/],
    [
      'a key of rules used in an exception',
      'version: 1\nexceptions:\n  - { ids: [CVE-1], reason: ok, scope: global }\n',
      /unknown key "ids" \(did you mean "id"\?\)/,
    ],
    ['a bad override mode', 'version: 1\nprojects:\n  web:\n    mode: merge\n', /projects\.web\.mode: mode must be extend or replace/],
  ])('rejects %s with the file, line and path', (_name, text, message) => {
    const err = errorOf(text);
    expect(err.code).toBe('POLICY_INVALID');
    expect(err.message).toMatch(message);
  });

  it('accepts ISO date-times with a zone as expiry, and scopes combined', () => {
    const p = parse(`version: 1
exceptions:
  - id: CVE-1
    reason: vendor says not reachable
    author: alice
    expires: 2030-01-01T12:00:00Z
    scope: { project: web, repository: web/api }
`);
    expect(p.exceptions[0]).toMatchObject({ expires: '2030-01-01T12:00:00Z', scope: { project: 'web', repository: 'web/api' } });
  });

  it('reads files and names them in errors', () => {
    const good = join(tmp, 'good.yaml');
    writeFileSync(good, 'version: 1\nrules:\n  - { id: x, action: fail, secret: {} }\n');
    expect(loadPolicyFile(good).rules).toHaveLength(1);
    const bad = join(tmp, 'bad.yaml');
    writeFileSync(bad, 'version: 1\nrules:\n  - { id: x, action: fail }\n');
    expect(() => loadPolicyFile(bad)).toThrow(new RegExp(`${bad.replace(/[/.]/g, '\\$&')}:3: rules\\[0\\]`));
    expect(() => loadPolicyFile(join(tmp, 'absent.yaml'))).toThrow(/cannot read policy file .*absent\.yaml: it does not exist/);
  });
});

describe('per-project overrides', () => {
  const policy = parse(`version: 1
defaultAction: warn
rules:
  - { id: crit, action: fail, vulnerability: { severity: critical } }
  - { id: secrets, action: fail, secret: {} }
exceptions:
  - { id: CVE-1, reason: global, scope: global }
projects:
  "team-*":
    rules:
      - { id: crit, action: warn, vulnerability: { severity: critical } }
      - { id: sudo, action: fail, package: { names: [sudo] } }
    exceptions:
      - { id: CVE-2, reason: team accepts it }
  legacy:
    mode: replace
    defaultAction: ignore
    rules:
      - { id: secrets, action: warn, secret: {} }
`);

  it('without a project, or for a project no pattern matches, the base policy applies', () => {
    for (const project of [undefined, 'other']) {
      const e = resolvePolicy(policy, project);
      expect(e.rules.map((r) => `${r.id}:${r.action}`)).toEqual(['crit:fail', 'secrets:fail']);
      expect(e.appliedOverrides).toEqual([]);
      expect(e.exceptions.map((x) => x.id)).toEqual(['CVE-1']);
    }
  });

  it('extend replaces rules with the same id and appends new ones; override exceptions are scoped to the project', () => {
    const e = resolvePolicy(policy, 'team-web');
    expect(e.rules.map((r) => `${r.id}:${r.action}`)).toEqual(['crit:warn', 'secrets:fail', 'sudo:fail']);
    expect(e.appliedOverrides).toEqual(['team-*']);
    expect(e.exceptions.map((x) => [x.id, x.scope, x.origin])).toEqual([
      ['CVE-1', 'global', 'exceptions[0]'],
      ['CVE-2', { project: 'team-web' }, 'projects.team-*.exceptions[0]'],
    ]);
  });

  it('replace swaps the whole rules list and can change the default action', () => {
    const e = resolvePolicy(policy, 'legacy');
    expect(e.rules.map((r) => `${r.id}:${r.action}`)).toEqual(['secrets:warn']);
    expect(e.defaultAction).toBe('ignore');
  });
});
