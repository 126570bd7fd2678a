import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { validateSarif } from '../../src/sbom/index.js';
import { run } from '../helpers/docker-registry.js';
import { FIXTURE_SKIP_REASON, HAVE_FIXTURES, REPO_ROOT, fixtureImage } from '../helpers/fixtures.js';

const CLI = join(REPO_ROOT, 'bin', 'portcullis.js');
const tmp = mkdtempSync(join(tmpdir(), 'portcullis-cfg-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));
const portcullis = (...args: string[]) => run('node', [CLI, ...args, '--data', join(tmp, 'data')]);

describe('scan dockerfile: and k8s:', () => {
  it('reports Dockerfile checks with lines, as a table, JSON and SARIF, and sets the exit code', async () => {
    const dir = join(tmp, 'app');
    mkdirSync(dir);
    writeFileSync(join(dir, 'Dockerfile'), 'FROM debian:latest\nRUN apt-get update && apt-get install -y curl\nEXPOSE 22\nCMD ["sh"]\n');
    const json = await portcullis('scan', `dockerfile:${dir}`, '--format', 'json');
    expect(json.code, json.stderr).toBe(0);
    const found = JSON.parse(json.stdout).misconfigurations.map((m: { id: string; line?: number }) => `${m.id}@${m.line ?? '-'}`);
    expect(found).toEqual(expect.arrayContaining(['PC-IMG-001@1', 'PC-IMG-002@3', 'PC-IMG-012@1', 'PC-DF-001@1', 'PC-DF-002@2']));
    const sarif = await portcullis('scan', `dockerfile:${join(dir, 'Dockerfile')}`, '--format', 'sarif');
    expect(validateSarif(sarif.stdout)).toBeNull();
    expect((await portcullis('scan', `dockerfile:${dir}`, '--fail-on', 'high')).code).toBe(1);
    const table = await portcullis('scan', `dockerfile:${dir}`);
    expect(table.stdout).toMatch(/Misconfigurations: \d+/);
    expect(table.stdout).toMatch(/Remedy:/);
  });

  it('reports Pod Security Standards findings for a Kubernetes manifest and a missing path clearly', async () => {
    const file = join(tmp, 'pod.yaml');
    writeFileSync(
      file,
      '# Source: chart/templates/pod.yaml\napiVersion: v1\nkind: Pod\nmetadata:\n  name: web\n  namespace: shop\nspec:\n  hostNetwork: true\n  containers:\n    - name: app\n      image: nginx:1.27\n      securityContext:\n        privileged: true\n',
    );
    const r = await portcullis('scan', `k8s:${file}`, '--format', 'json');
    expect(r.code, r.stderr).toBe(0);
    const ids = JSON.parse(r.stdout).misconfigurations.map((m: { id: string }) => m.id);
    expect(ids).toEqual(expect.arrayContaining(['PC-K8S-001', 'PC-K8S-002', 'PC-K8S-020', 'PC-K8S-021', 'PC-K8S-022']));
    const missing = await portcullis('scan', `k8s:${join(tmp, 'nope')}`);
    expect(missing.code).toBe(2);
    expect(missing.stderr.trim().split('\n')).toHaveLength(1);
  });

  it('checks the rest of a folder when one file is over the bound, with a warning; that file given directly still fails', async () => {
    const dir = join(tmp, 'mixed');
    mkdirSync(join(dir, 'huge'), { recursive: true });
    writeFileSync(join(dir, 'Dockerfile'), 'FROM debian:latest\n');
    writeFileSync(join(dir, 'huge', 'Dockerfile'), `FROM alpine:3.20\nRUN ${'x'.repeat(300_000)}\n`);
    const r = await portcullis('scan', `dockerfile:${dir}`, '--format', 'json');
    expect(r.code, r.stderr).toBe(0);
    const out = JSON.parse(r.stdout) as { misconfigurations: Array<{ target: string }>; warnings: string[] };
    expect(out.misconfigurations.map((m) => m.target)).toContain(join(dir, 'Dockerfile'));
    expect(out.warnings).toEqual([`${join(dir, 'huge', 'Dockerfile')}: over 262144 bytes; a Dockerfile this large is not checked`]);
    expect(r.stderr).toContain(`warning: ${join(dir, 'huge', 'Dockerfile')}: over 262144 bytes`);
    const direct = await portcullis('scan', `dockerfile:${join(dir, 'huge', 'Dockerfile')}`);
    expect(direct.code).toBe(2);
    expect(direct.stderr.trim().split('\n')).toHaveLength(1);
    // As a gate it does not pass a folder it could not check whole, even with no finding left.
    const gate = await portcullis('scan', `dockerfile:${dir}`, '--format', 'json', '--fail-on', 'critical');
    expect(gate.code).toBe(2);
    expect(gate.stderr).toContain('1 file(s) or folder(s) could not be checked');
    const k8s = join(tmp, 'k8s-mixed');
    mkdirSync(k8s, { recursive: true });
    writeFileSync(join(k8s, 'pod.yaml'), 'apiVersion: v1\nkind: Pod\nmetadata: {name: x\n  bad: [\n');
    expect((await portcullis('scan', `k8s:${k8s}`, '--exit-code', '1')).code).toBe(2);
    expect((await portcullis('scan', `k8s:${k8s}`)).code).toBe(0);
  });
});

describe.skipIf(!HAVE_FIXTURES)(`secrets through the CLI${FIXTURE_SKIP_REASON}`, () => {
  it('node-app: the table shows only redacted secrets and marks the deleted one', async () => {
    const r = await portcullis('scan', `oci-archive:${fixtureImage('node-app.tar')}`, '--scanners', 'secret,misconfig', '--no-cache');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/Secrets: 5 /);
    expect(r.stdout).toContain('deleted in a later layer');
    expect(r.stdout).not.toContain('AKIAIOSFODNN7EXAMPLE');
    expect(r.stdout).toMatch(/PC-IMG-002/);
  });
});
