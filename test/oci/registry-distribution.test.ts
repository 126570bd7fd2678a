import { existsSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { OciError } from '../../src/errors.js';
import { analyseInput } from '../../src/analyse/index.js';
import { parseImageInput, parsePlatform } from '../../src/oci/index.js';
import { RegistrySource } from '../../src/oci/registry.js';
import { ImageConfigSchema, ManifestSchema, parseJson } from '../../src/oci/schemas.js';
import { MAX_DOCUMENT_BYTES } from '../../src/oci/source.js';
import { registryToolsMissing, startDockerRegistry, type RunningRegistry } from '../helpers/docker-registry.js';

/**
 * A real peer: CNCF distribution 2.8 (Debian's docker-registry) filled by skopeo, read back through
 * RegistrySource. It checks what a fake cannot: real headers, error bodies and content negotiation.
 */

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const FIXTURE = resolve(repoRoot, '..', 'shared', 'fixtures', 'images', 'alpine-3.20.tar');
const MULTIARCH = resolve(repoRoot, '..', 'shared', 'fixtures', 'images', 'alpine-3.20-multiarch.tar');
const EXPECTED_DIGEST = 'sha256:f1a7fa83ec499f620a848cc2a5a0a0c9db0a260e69d54af5d87564a8538cc7f6';

const skipReason =
  registryToolsMissing() ?? [FIXTURE, MULTIARCH].filter((f) => !existsSync(f)).map((f) => `fixture ${f} absent`)[0];
if (skipReason) console.warn(`registry-distribution tests skipped: ${skipReason}`);

describe.skipIf(skipReason !== undefined)(
  `RegistrySource against distribution 2.8${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    let registry: RunningRegistry | undefined;
    let port: number;

    beforeAll(async () => {
      registry = await startDockerRegistry();
      port = registry.port;
      await registry.push(`oci-archive:${FIXTURE}`, 'library/alpine:3.20.3');
      await registry.push(`oci-archive:${MULTIARCH}`, 'library/alpine-multi:3.20.3', { all: true });
    });

    afterAll(async () => {
      await registry?.stop();
    });

    it('reads the manifest and streams and verifies every blob', async () => {
      const src = new RegistrySource(`127.0.0.1:${port}/library/alpine:3.20.3`, { insecure: true });
      try {
        const root = await src.root();
        expect(root.digest).toBe(EXPECTED_DIGEST);
        expect(root.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
        const manifest = parseJson(ManifestSchema, root.bytes, src.display);
        const config = parseJson(
          ImageConfigSchema,
          await src.readBlob(manifest.config, MAX_DOCUMENT_BYTES),
          src.display,
        );
        expect(config.rootfs.diff_ids).toHaveLength(manifest.layers.length);
        expect(manifest.layers.length).toBeGreaterThan(0);
        for (const layer of manifest.layers) {
          let bytes = 0;
          for await (const chunk of await src.openBlob(layer)) bytes += (chunk as Buffer).length;
          expect(bytes).toBe(layer.size);
        }
      } finally {
        await src.close();
      }
    });

    it('reads by digest and reports unknown tags and blobs with the registry codes', async () => {
      const byDigest = new RegistrySource(`127.0.0.1:${port}/library/alpine@${EXPECTED_DIGEST}`, {
        insecure: true,
      });
      expect((await byDigest.root()).digest).toBe(EXPECTED_DIGEST);

      const noTag = await new RegistrySource(`127.0.0.1:${port}/library/alpine:nope`, { insecure: true })
        .root()
        .catch((e: unknown) => e);
      expect(noTag).toBeInstanceOf(OciError);
      expect((noTag as OciError).code).toBe('MANIFEST_UNKNOWN');

      const noRepo = await new RegistrySource(`127.0.0.1:${port}/library/nothing:1`, { insecure: true })
        .root()
        .catch((e: unknown) => e);
      expect((noRepo as OciError).code).toBe('MANIFEST_UNKNOWN');
      // distribution 2.8 answers MANIFEST_UNKNOWN (not NAME_UNKNOWN) for a tag in a missing repository.
      expect((noRepo as OciError).message).toContain('manifest 1 not found in library/nothing');

      const noBlob = await byDigest.openBlob({ digest: `sha256:${'0'.repeat(64)}` }).catch((e: unknown) => e);
      expect((noBlob as OciError).code).toBe('BLOB_UNKNOWN');
    });

    it('a multi-arch image: each platform manifest is read from /manifests/, as distribution serves it', async () => {
      // distribution answers 404 for a manifest digest asked for under /blobs/.
      const scan = async (text: string, opts: { platform?: string; allPlatforms?: boolean }) =>
        analyseInput(parseImageInput(text), {
          cacheDir: null,
          insecure: true,
          platform: opts.platform ? parsePlatform(opts.platform) : undefined,
          allPlatforms: opts.allPlatforms,
        });
      const summary = (rs: Awaited<ReturnType<typeof scan>>) =>
        rs.map((r) => ({
          platform: r.image.platform,
          manifestDigest: r.image.manifestDigest,
          packages: r.packages.map((p) => `${p.name}@${p.version}`),
        }));
      const remote = `127.0.0.1:${port}/library/alpine-multi:3.20.3`;
      for (const opts of [{ platform: 'linux/arm64' }, { allPlatforms: true }]) {
        const fromRegistry = summary(await scan(remote, opts));
        expect(fromRegistry.length).toBeGreaterThan(0);
        expect(fromRegistry.every((r) => r.packages.length > 0)).toBe(true);
        expect(fromRegistry).toEqual(summary(await scan(`oci-archive:${MULTIARCH}`, opts)));
      }
    });

    it('without --insecure, says the registry does not speak TLS', async () => {
      const err = await new RegistrySource(`127.0.0.1:${port}/library/alpine:3.20.3`)
        .root()
        .catch((e: unknown) => e);
      expect((err as OciError).code).toBe('REGISTRY_TLS');
      expect((err as OciError).message).toMatch(/--insecure/);
    });
  },
);
