import { describe, expect, it } from 'vitest';
import { OciError } from '../../src/errors.js';
import { formatRegistryReference, parseRegistryReference } from '../../src/oci/registry-reference.js';

const D = `sha256:${'ab'.repeat(32)}`;

describe('parseRegistryReference', () => {
  it.each([
    ['alpine', { registry: 'registry-1.docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['alpine:3.20', { registry: 'registry-1.docker.io', repository: 'library/alpine', tag: '3.20' }],
    ['docker.io/alpine', { registry: 'registry-1.docker.io', repository: 'library/alpine', tag: 'latest' }],
    [
      'index.docker.io/library/alpine:edge',
      { registry: 'registry-1.docker.io', repository: 'library/alpine', tag: 'edge' },
    ],
    ['bitnami/nginx:1.25', { registry: 'registry-1.docker.io', repository: 'bitnami/nginx', tag: '1.25' }],
    ['ghcr.io/owner/app:v1', { registry: 'ghcr.io', repository: 'owner/app', tag: 'v1' }],
    ['ghcr.io/app', { registry: 'ghcr.io', repository: 'app', tag: 'latest' }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['localhost:5000/a/b/c:t', { registry: 'localhost:5000', repository: 'a/b/c', tag: 't' }],
    [
      '127.0.0.1:5000/library/alpine:3.20.3',
      { registry: '127.0.0.1:5000', repository: 'library/alpine', tag: '3.20.3' },
    ],
    ['[::1]:5000/app:1', { registry: '[::1]:5000', repository: 'app', tag: '1' }],
    [`quay.io/org/app@${D}`, { registry: 'quay.io', repository: 'org/app', digest: D }],
    [`quay.io/org/app:v2@${D}`, { registry: 'quay.io', repository: 'org/app', tag: 'v2', digest: D }],
    [`alpine@${D}`, { registry: 'registry-1.docker.io', repository: 'library/alpine', digest: D }],
    [
      'reg.example.com/a.b_c__d---e/f-g:_T.x-1',
      { registry: 'reg.example.com', repository: 'a.b_c__d---e/f-g', tag: '_T.x-1' },
    ],
  ])('%s', (input, expected) => {
    expect(parseRegistryReference(input)).toEqual(expected);
  });

  it('treats a first segment without "." or ":" as a Docker Hub namespace', () => {
    expect(parseRegistryReference('myhost/app')).toEqual({
      registry: 'registry-1.docker.io',
      repository: 'myhost/app',
      tag: 'latest',
    });
  });

  it('accepts a 128-character tag and refuses a 129-character one', () => {
    expect(parseRegistryReference(`a:${'t'.repeat(128)}`).tag).toHaveLength(128);
    expect(() => parseRegistryReference(`a:${'t'.repeat(129)}`)).toThrow(/not a valid tag/);
  });

  it.each([
    ['', /empty/],
    ['   ', /empty/],
    ['Alpine', /lowercase/],
    ['ghcr.io/Owner/app', /lowercase/],
    ['a b', /whitespace/],
    ['https://ghcr.io/a/b', /URL scheme/],
    ['alpine:.bad', /not a valid tag/],
    ['alpine:-bad', /not a valid tag/],
    ['alpine:', /not a valid tag/],
    ['alpine@sha256:abc', /not a digest/],
    ['alpine@md5:' + 'a'.repeat(32), /not a digest/],
    ['ghcr.io/', /names no repository/],
    ['ghcr.io/a//b', /not a valid repository/],
    ['ghcr.io/a_/b', /not a valid repository/],
    ['ghcr.io/-a', /not a valid repository/],
    ['ghcr.io/a___b', /not a valid repository/],
    ['ghcr.io/a/', /not a valid repository/],
    ['bad_host.io/a', /not a valid registry host/],
    ['host:99999/a', /out of range/],
    [`ghcr.io/${'a'.repeat(300)}`, /longer than 255/],
  ])('refuses %j', (input, message) => {
    let err: unknown;
    try {
      parseRegistryReference(input);
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(OciError);
    expect((err as OciError).code).toBe('REFERENCE_INVALID');
    expect((err as OciError).message).toMatch(message);
  });

  it('formats back to a canonical reference', () => {
    expect(formatRegistryReference(parseRegistryReference('alpine'))).toBe(
      'registry-1.docker.io/library/alpine:latest',
    );
    expect(formatRegistryReference(parseRegistryReference(`q.io/a:v@${D}`))).toBe(`q.io/a:v@${D}`);
  });
});
