import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { indexTarFile } from '../../src/oci/tar-index.js';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { gzipSync } from 'node:zlib';
import fc from 'fast-check';
import { afterAll, describe, expect, it } from 'vitest';
import { ALL_ANALYSERS } from '../../src/analyse/index.js';
import { LimitTracker, DEFAULT_LIMITS } from '../../src/analyse/limits.js';
import { walkTarLayer } from '../../src/analyse/tar-walker.js';
import { PortcullisError } from '../../src/errors.js';
import { digestOf, resolveImages, type ImageSource } from '../../src/oci/index.js';
import { tarOf } from '../helpers/image-builder.js';

const scratch = mkdtempSync(join(tmpdir(), 'portcullis-fuzz-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

/** Runs the walker on bytes and reports how it ended: never a crash, never a hang. */
async function walk(bytes: Buffer): Promise<'ok' | string> {
  const limits = new LimitTracker({ ...DEFAULT_LIMITS, maxTotalBytes: 64 * 1024 * 1024 });
  const run = walkTarLayer(Readable.from([bytes]), { analysers: ALL_ANALYSERS, ctx: { scratchDir: scratch }, limits, subject: 'fuzz' });
  const timeout = new Promise<never>((_, reject) => setTimeout(() => reject(new Error('walker hung')), 5000));
  try {
    await Promise.race([run, timeout]);
    return 'ok';
  } catch (err) {
    if (!(err instanceof PortcullisError)) throw err;
    expect(err.message).not.toContain('\n');
    return err.code;
  }
}

let seed: Buffer;
const getSeed = async () =>
  (seed ??= await tarOf([
    { name: 'etc/os-release', content: 'ID=alpine\nVERSION_ID=3.20.3\n' },
    { name: 'lib/apk/db/installed', content: 'P:musl\nV:1.2.5-r0\no:musl\n\nP:zlib\nV:1.3.1-r1\n' },
    { name: 'var/lib/dpkg/status', content: 'Package: a\nStatus: install ok installed\nVersion: 1\n' },
    { name: 'app/package-lock.json', content: '{"lockfileVersion":3,"packages":{"":{},"node_modules/x":{"version":"1.0.0"}}}' },
  ]));

describe('tar and layer readers under random and mutated input', () => {
  it('random bytes, raw or gzipped, give only clear errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.uint8Array({ maxLength: 4096 }), fc.boolean(), async (data, gz) => {
        const bytes = gz ? gzipSync(Buffer.from(data)) : Buffer.from(data);
        await walk(bytes);
      }),
      { numRuns: 150 },
    );
  });

  it('a real tar with flipped bytes, truncated or extended, never crashes or hangs', async () => {
    const base = await getSeed();
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 8 }),
        fc.nat({ max: base.length }),
        fc.boolean(),
        async (flips, cut, gz) => {
          const b = Buffer.from(base);
          for (const f of flips) b[f.at % b.length] = f.value;
          const mutated = b.subarray(0, cut === 0 ? b.length : cut);
          await walk(gz ? gzipSync(mutated) : mutated);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('a truncated gzip layer is reported as corrupt', async () => {
    const gz = gzipSync(await getSeed());
    expect(await walk(gz.subarray(0, gz.length - 20))).toBe('LAYER_CORRUPT');
  });

  it('an intact layer walks cleanly (the property above is not vacuous)', async () => {
    expect(await walk(gzipSync(await getSeed()))).toBe('ok');
  });
});

/** A source serving one root document and nothing else, to fuzz manifest resolution. */
function docSource(bytes: Buffer): ImageSource {
  return {
    display: 'fuzz-image',
    root: async () => ({ bytes, digest: digestOf(bytes) }),
    openBlob: async () => {
      throw new PortcullisError('BLOB_UNKNOWN', 'fuzz-image: no blobs');
    },
    readBlob: async () => {
      throw new PortcullisError('BLOB_UNKNOWN', 'fuzz-image: no blobs');
    },
    close: async () => {},
  };
}

describe('manifest readers under random and mutated input', () => {
  const manifest = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${'a'.repeat(64)}`, size: 2 },
    layers: [{ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'b'.repeat(64)}`, size: 3 }],
  };

  it('arbitrary JSON values and strings only give clear errors', async () => {
    await fc.assert(
      fc.asyncProperty(fc.oneof(fc.jsonValue().map((v) => JSON.stringify(v)), fc.string()), async (text) => {
        await expect(resolveImages(docSource(Buffer.from(text)))).rejects.toBeInstanceOf(PortcullisError);
      }),
      { numRuns: 300 },
    );
  });

  it('a valid manifest with one field replaced by junk only gives clear errors', async () => {
    const keys = ['schemaVersion', 'mediaType', 'config', 'layers'] as const;
    await fc.assert(
      fc.asyncProperty(fc.constantFrom(...keys), fc.jsonValue(), async (key, junk) => {
        const doc = { ...manifest, [key]: junk };
        await expect(resolveImages(docSource(Buffer.from(JSON.stringify(doc))))).rejects.toBeInstanceOf(PortcullisError);
      }),
      { numRuns: 300 },
    );
  });

  it('schema 1 manifests are refused with a clear message', async () => {
    const err = await resolveImages(docSource(Buffer.from('{"schemaVersion":1,"name":"x","fsLayers":[]}'))).catch((e) => e);
    expect(err.code).toBe('MANIFEST_UNSUPPORTED');
    expect(err.message).toMatch(/schema 1/);
  });
});

describe('index fan-out', () => {
  /** A source holding these documents by digest; the first is the root. */
  function docsSource(docs: Buffer[]): ImageSource & { reads: () => number } {
    const byDigest = new Map(docs.map((d) => [digestOf(d), d]));
    let reads = 0;
    const read = async (d: { digest: string }) => {
      reads++;
      const b = byDigest.get(d.digest);
      if (!b) throw new PortcullisError('BLOB_UNKNOWN', `fuzz-image: no ${d.digest}`);
      return b;
    };
    return {
      display: 'fuzz-image',
      root: async () => ({ bytes: docs[0]!, digest: digestOf(docs[0]!) }),
      openBlob: async () => {
        throw new PortcullisError('BLOB_UNKNOWN', 'fuzz-image: no blobs');
      },
      readBlob: read,
      close: async () => {},
      reads: () => reads,
    };
  }
  const json = (v: unknown) => Buffer.from(JSON.stringify(v));
  const config = json({ architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] } });
  const image = (salt: number) =>
    json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digestOf(config), size: config.length },
      layers: [],
      annotations: { salt: String(salt) },
    });
  const index = (children: Buffer[], mediaType: string) =>
    json({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: children.map((c) => ({ mediaType, digest: digestOf(c), size: c.length, platform: { os: 'linux', architecture: 'amd64' } })),
    });

  it('reads a document listed many times once', async () => {
    const m = image(0);
    const inner = index(Array<Buffer>(2000).fill(m), 'application/vnd.oci.image.manifest.v1+json');
    const outer = index(Array<Buffer>(2000).fill(inner), 'application/vnd.oci.image.index.v1+json');
    const source = docsSource([outer, inner, m, config]);
    const images = await resolveImages(source, { allPlatforms: true });
    expect(images.map((i) => i.manifestDigest)).toEqual([digestOf(m)]);
    expect(source.reads()).toBeLessThan(10);
  });

  it('refuses indexes that name more manifests than any real image has', async () => {
    const many = Array.from({ length: 600 }, (_, i) => image(i));
    const root = index(many, 'application/vnd.oci.image.manifest.v1+json');
    const err = await resolveImages(docsSource([root, ...many, config]), { allPlatforms: true }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(PortcullisError);
    expect((err as PortcullisError).message).toMatch(/fuzz-image: its indexes name more than 512 manifests/);
  });
});

describe('archive indexer under random and mutated input', () => {
  it('indexes or refuses mutated archives with a clear error', async () => {
    const base = await getSeed();
    const file = join(scratch, 'archive.tar');
    await fc.assert(
      fc.asyncProperty(fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), { maxLength: 6 }), fc.nat({ max: base.length }), async (flips, cut) => {
        const b = Buffer.from(base);
        for (const f of flips) b[f.at % b.length] = f.value;
        writeFileSync(file, b.subarray(0, cut === 0 ? b.length : cut));
        try {
          const members = await indexTarFile(file, 'fuzz.tar');
          for (const m of members.values()) expect(m.offset + m.size).toBeLessThanOrEqual(b.length);
        } catch (err) {
          expect(err).toBeInstanceOf(PortcullisError);
        }
      }),
      { numRuns: 200 },
    );
  });
});
