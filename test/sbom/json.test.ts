import { describe, expect, it } from 'vitest';

import { toJson } from '../../src/sbom/json.js';
import { makeResult } from './fixture.js';

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
