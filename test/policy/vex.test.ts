import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { describe, expect, it } from 'vitest';

import {
  PolicyError,
  applySuppressions,
  loadVex,
  parseVex,
  purlMatches,
  vexDecision,
} from '../../src/policy/index.js';
import { finding } from './helpers.js';

const DIGEST = 'sha256:' + 'd'.repeat(64);
const IMAGE = { reference: 'ghcr.io/acme/app:1.0', manifestDigest: DIGEST };

function doc(statements: unknown[], extra: Record<string, unknown> = {}): string {
  return JSON.stringify({
    '@context': 'https://openvex.dev/ns/v0.2.0',
    '@id': 'https://example.com/vex/1',
    author: 'Acme Security',
    timestamp: '2024-01-01T00:00:00Z',
    version: 1,
    statements,
    ...extra,
  });
}

const notAffected = (
  products: unknown[],
  vulnerability: unknown = { name: 'CVE-2024-0001' },
  extra = {},
) => ({
  vulnerability,
  products,
  status: 'not_affected',
  justification: 'vulnerable_code_not_in_execute_path',
  impact_statement: 'TLS renegotiation is disabled at build time',
  ...extra,
});

const LIBSSL = 'pkg:deb/debian/libssl3@3.0.11-1?arch=amd64&distro=debian-12';

describe('parseVex', () => {
  it('reads statements, inheriting the document timestamp', () => {
    const [s] = parseVex(
      doc([notAffected([{ '@id': LIBSSL, subcomponents: [{ '@id': 'pkg:deb/debian/openssl' }] }])]),
      'v.json',
    );
    expect(s).toEqual({
      vulnerability: { name: 'CVE-2024-0001', aliases: [] },
      products: [{ id: LIBSSL, subcomponents: ['pkg:deb/debian/openssl'] }],
      status: 'not_affected',
      justification: 'vulnerable_code_not_in_execute_path',
      impactStatement: 'TLS renegotiation is disabled at build time',
      timestamp: '2024-01-01T00:00:00Z',
      source: 'v.json',
      documentId: 'https://example.com/vex/1',
      index: 1,
    });
  });

  it('accepts a string vulnerability and identifiers.purl products', () => {
    const [s] = parseVex(
      doc([
        { vulnerability: 'CVE-2024-0001', products: [{ identifiers: { purl: LIBSSL } }], status: 'fixed' },
      ]),
      'v',
    );
    expect(s?.vulnerability).toEqual({ name: 'CVE-2024-0001', aliases: [] });
    expect(s?.products[0]?.id).toBe(LIBSSL);
  });

  it.each([
    ['not JSON', '{', /v\.json: not valid JSON/],
    [
      'no context',
      JSON.stringify({ '@id': 'x', author: 'a', timestamp: '2024-01-01T00:00:00Z', statements: [] }),
      /not an OpenVEX document: @context is required/,
    ],
    [
      'foreign context',
      doc([], { '@context': 'https://example.com' }),
      /must be an https:\/\/openvex\.dev\/ns URL/,
    ],
    [
      'bad status',
      doc([{ ...notAffected([{ '@id': LIBSSL }]), status: 'maybe' }]),
      /v\.json: statement 1: status must be one of not_affected, affected/,
    ],
    [
      'bad justification',
      doc([{ ...notAffected([{ '@id': LIBSSL }]), justification: 'trust_me' }]),
      /justification must be one of component_not_present/,
    ],
    [
      'not_affected without reason',
      doc([{ vulnerability: { name: 'CVE-1' }, products: [{ '@id': LIBSSL }], status: 'not_affected' }]),
      /statement 1: a not_affected statement needs a "justification" or an "impact_statement"/,
    ],
    [
      'no products',
      doc([{ vulnerability: { name: 'CVE-1' }, status: 'fixed' }]),
      /statement 1: products is required/,
    ],
    [
      'anonymous product',
      doc([{ vulnerability: { name: 'CVE-1' }, products: [{}], status: 'fixed' }]),
      /needs an "@id" or "identifiers.purl"/,
    ],
    [
      'bad purl',
      doc([{ vulnerability: { name: 'CVE-1' }, products: [{ '@id': 'pkg:deb' }], status: 'fixed' }]),
      /statement 1: "pkg:deb" is not a valid purl/,
    ],
    [
      'bad timestamp',
      doc([{ ...notAffected([{ '@id': LIBSSL }]), timestamp: 'yesterday' }]),
      /statement timestamp must be an ISO 8601/,
    ],
  ])('rejects %s with a message naming the file', (_n, text, message) => {
    expect(() => parseVex(text, 'v.json')).toThrow(PolicyError);
    expect(() => parseVex(text, 'v.json')).toThrow(message);
  });

  it('loadVex names the file it could not read or parse', () => {
    const dir = mkdtempSync(join(tmpdir(), 'portcullis-vex-'));
    const path = join(dir, 'app.openvex.json');
    writeFileSync(
      path,
      doc([{ vulnerability: { name: 'CVE-1' }, products: [{ '@id': LIBSSL }], status: 'nope' }]),
    );
    expect(() => loadVex(path)).toThrow(`${path}: statement 1: status must be one of`);
    expect(() => loadVex(join(dir, 'missing.json'))).toThrow(
      /cannot read VEX document .*missing\.json: it does not exist/,
    );
    writeFileSync(path, doc([notAffected([{ '@id': LIBSSL }])]));
    expect(loadVex(path)[0]?.source).toBe(path);
  });
});

describe('purlMatches', () => {
  it('ignores qualifiers and version only when the statement omits them', () => {
    expect(purlMatches('pkg:deb/debian/libssl3', LIBSSL)).toBe(true);
    expect(purlMatches('pkg:deb/debian/libssl3@3.0.11-1', LIBSSL)).toBe(true);
    expect(purlMatches('pkg:deb/debian/libssl3@3.0.10-1', LIBSSL)).toBe(false);
    expect(purlMatches('pkg:deb/debian/libssl3@3.0.11-1?arch=amd64', LIBSSL)).toBe(true);
    expect(purlMatches('pkg:deb/debian/libssl3@3.0.11-1?arch=arm64', LIBSSL)).toBe(false);
    expect(purlMatches('pkg:deb/debian/libssl', LIBSSL)).toBe(false);
    expect(purlMatches('pkg:npm/%40babel/core', 'pkg:npm/%40babel/core@7.0.0')).toBe(true);
  });
});

describe('VEX in applySuppressions', () => {
  const f = finding({ id: 'DSA-5000-1', aliases: ['CVE-2024-0001'] });
  // `null` runs without an image identity (a default parameter would swallow `undefined`).
  const run = (statements: unknown[], findings = [f], image: typeof IMAGE | null = IMAGE) =>
    applySuppressions(findings, { vex: parseVex(doc(statements), 'vex.json'), ...(image ? { image } : {}) });

  it('not_affected with a justification suppresses by alias, showing justification and impact', () => {
    const r = run([notAffected([{ '@id': 'pkg:deb/debian/libssl3@3.0.11-1' }])]);
    expect(r.kept).toEqual([]);
    expect(r.suppressed).toEqual([
      {
        finding: f,
        reason:
          'VEX not_affected (vulnerable_code_not_in_execute_path): TLS renegotiation is disabled at build time',
        source: 'vex.json statement 1',
      },
    ]);
  });

  it('matches by the finding id and by the statement aliases', () => {
    expect(run([notAffected([{ '@id': 'pkg:deb/debian/libssl3' }], { name: 'DSA-5000-1' })]).kept).toEqual(
      [],
    );
    expect(
      run([
        notAffected([{ '@id': 'pkg:deb/debian/libssl3' }], { name: 'GHSA-x', aliases: ['CVE-2024-0001'] }),
      ]).kept,
    ).toEqual([]);
    expect(
      run([
        notAffected([{ '@id': 'pkg:deb/debian/libssl3' }], {
          '@id': 'https://nvd.nist.gov/vuln/detail/CVE-2024-0001',
        }),
      ]).kept,
    ).toEqual([]);
    expect(run([notAffected([{ '@id': 'pkg:deb/debian/libssl3' }], { name: 'CVE-2024-9999' })]).kept).toEqual(
      [f],
    );
  });

  it('product purl without a version covers every version; with one, only that version', () => {
    expect(run([notAffected([{ '@id': 'pkg:deb/debian/libssl3' }])]).kept).toEqual([]);
    expect(run([notAffected([{ '@id': 'pkg:deb/debian/libssl3@3.0.11-1' }])]).kept).toEqual([]);
    expect(run([notAffected([{ '@id': 'pkg:deb/debian/libssl3@3.0.9-1' }])]).kept).toEqual([f]);
    expect(run([notAffected([{ '@id': 'pkg:deb/debian/zlib1g' }])]).kept).toEqual([f]);
  });

  it('a subcomponent purl under an application product matches the package', () => {
    expect(
      run([
        notAffected([
          { '@id': 'pkg:golang/example.com/app', subcomponents: [{ '@id': 'pkg:deb/debian/libssl3' }] },
        ]),
      ]).kept,
    ).toEqual([]);
  });

  it('an image-level product applies to all packages of that image only', () => {
    const zlib = finding({
      aliases: ['CVE-2024-0001'],
      package: { name: 'zlib1g', purl: 'pkg:deb/debian/zlib1g@1.2.13' },
    });
    const both = [f, zlib];
    const oci = `pkg:oci/app@${encodeURIComponent(DIGEST)}?repository_url=ghcr.io/acme/app`;
    expect(run([notAffected([{ '@id': 'ghcr.io/acme/app:1.0' }])], both).kept).toEqual([]);
    expect(run([notAffected([{ '@id': oci }])], both).kept).toEqual([]);
    expect(run([notAffected([{ '@id': `ghcr.io/acme/app@${DIGEST}` }])], both).kept).toEqual([]);
    // Another image, or no image identity to compare with: nothing applies.
    expect(run([notAffected([{ '@id': 'ghcr.io/acme/app:2.0' }])], both).kept).toEqual(both);
    expect(run([notAffected([{ '@id': `pkg:oci/app@sha256%3A${'e'.repeat(64)}` }])], both).kept).toEqual(
      both,
    );
    expect(run([notAffected([{ '@id': oci }])], both, null).kept).toEqual(both);
    // Image product with subcomponents: only those packages.
    expect(
      run([notAffected([{ '@id': oci, subcomponents: [{ '@id': 'pkg:deb/debian/zlib1g' }] }])], both).kept,
    ).toEqual([f]);
    // A subcomponent under some other image does not apply to this one.
    expect(
      run(
        [
          notAffected([
            { '@id': 'ghcr.io/acme/other:1', subcomponents: [{ '@id': 'pkg:deb/debian/zlib1g' }] },
          ]),
        ],
        both,
      ).kept,
    ).toEqual(both);
  });

  it('affected and under_investigation do not suppress; fixed does', () => {
    const base = {
      vulnerability: { name: 'CVE-2024-0001' },
      products: [{ '@id': 'pkg:deb/debian/libssl3' }],
    };
    expect(run([{ ...base, status: 'affected', action_statement: 'upgrade' }]).kept).toEqual([f]);
    expect(run([{ ...base, status: 'under_investigation' }]).kept).toEqual([f]);
    const fixed = run([{ ...base, status: 'fixed' }]);
    expect(fixed.kept).toEqual([]);
    expect(fixed.suppressed[0]?.reason).toBe('VEX fixed');
  });

  it('the latest statement by timestamp decides, regardless of order', () => {
    const product = [{ '@id': 'pkg:deb/debian/libssl3' }];
    const affectedLater = {
      vulnerability: { name: 'CVE-2024-0001' },
      products: product,
      status: 'affected',
      timestamp: '2024-03-01T00:00:00Z',
    };
    const notAffectedEarlier = notAffected(product, undefined, { timestamp: '2024-02-01T00:00:00Z' });
    expect(run([affectedLater, notAffectedEarlier]).kept).toEqual([f]);
    const notAffectedLatest = notAffected(product, undefined, { timestamp: '2024-04-01T00:00:00Z' });
    expect(run([affectedLater, notAffectedLatest]).kept).toEqual([]);
    // Same timestamp (both inherit the document's): the later one in the list wins.
    const stmts = parseVex(
      doc([
        notAffected(product),
        { vulnerability: 'CVE-2024-0001', products: product, status: 'under_investigation' },
      ]),
      'v',
    );
    expect(vexDecision(f, stmts)?.status).toBe('under_investigation');
  });

  it('ignore rules still apply to findings VEX leaves alone', () => {
    const r = applySuppressions([f], {
      vex: parseVex(
        doc([
          {
            vulnerability: 'CVE-2024-0001',
            products: [{ '@id': 'pkg:deb/debian/libssl3' }],
            status: 'affected',
          },
        ]),
        'v',
      ),
      ignore: [{ id: 'CVE-2024-0001', reason: 'accepted', source: 'i', line: 1 }],
      now: new Date('2024-01-01T00:00:00Z'),
    });
    expect(r.suppressed).toEqual([{ finding: f, reason: 'ignored: accepted', source: 'i:1' }]);
  });
});
