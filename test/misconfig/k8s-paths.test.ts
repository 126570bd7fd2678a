import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { scanConfigPath } from '../../src/misconfig/config-files.js';

let dir: string;

const NS = 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n';
const DENY = `apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata: {name: deny, namespace: shop}
spec: {podSelector: {}, policyTypes: [Ingress, Egress]}
`;
const POD =
  'apiVersion: v1\nkind: Pod\nmetadata: {name: p, namespace: shop}\nspec:\n  containers: [{name: c, image: nginx}]\n';

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'pc-k8s-'));
  await mkdir(join(dir, 'base/policies'), { recursive: true });
  await mkdir(join(dir, 'node_modules'), { recursive: true });
  await writeFile(join(dir, 'base/ns.yaml'), NS);
  await writeFile(join(dir, 'base/pod.yml'), POD);
  await writeFile(join(dir, 'node_modules/broken.yaml'), 'a: [');
  await writeFile(join(dir, 'notes.txt'), 'a: [');
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('scanConfigPath(k8s)', () => {
  it('reports the namespace without a policy once, at the Namespace', async () => {
    const found = (await scanConfigPath(dir, 'k8s')).misconfigurations;
    expect(found.filter((m) => m.id === 'PC-K8S-022').map((m) => [m.target, m.line])).toEqual([
      [join(dir, 'base/ns.yaml'), 1],
    ]);
    expect(found.every((m) => m.target === join(dir, 'base/pod.yml') || m.id === 'PC-K8S-022')).toBe(true);
  });

  it('accepts a default-deny policy from another file in the folder', async () => {
    await writeFile(join(dir, 'base/policies/deny.yaml'), DENY);
    const found = (await scanConfigPath(dir, 'k8s')).misconfigurations;
    expect(found.filter((m) => m.id === 'PC-K8S-022')).toEqual([]);
    // Deterministic: the same input gives the same output.
    expect((await scanConfigPath(dir, 'k8s')).misconfigurations).toEqual(found);
  });

  it('names the file and line of malformed YAML: an error for that file, a warning under a folder', async () => {
    const bad = join(dir, 'base/zz-bad.yaml');
    await writeFile(bad, 'kind: Pod\nmetadata:\n  name: [x\n');
    await expect(scanConfigPath(bad, 'k8s')).rejects.toThrow(/zz-bad\.yaml:\d+: invalid YAML/);
    // The folder's other manifests are still checked, as without the broken file.
    await rm(bad);
    const clean = await scanConfigPath(dir, 'k8s');
    expect(clean.warnings).toEqual([]);
    await writeFile(bad, 'kind: Pod\nmetadata:\n  name: [x\n');
    const withBad = await scanConfigPath(dir, 'k8s');
    expect(withBad.warnings).toHaveLength(1);
    expect(withBad.warnings[0]).toMatch(/zz-bad\.yaml:\d+: invalid YAML/);
    expect(withBad.misconfigurations).toEqual(clean.misconfigurations);
    await rm(bad);
  });
});
