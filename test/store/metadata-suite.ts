import { describe, expect, it } from 'vitest';
import type { RegistryMetadata } from '../../src/store/index.js';

const d = (c: string) => `sha256:${c.repeat(64)}`;

export interface MetadataHarness {
  open(): Promise<RegistryMetadata>;
}

/** The shared RegistryMetadata contract; SQLite today, PostgreSQL later. */
export function metadataSuite(name: string, setup: () => Promise<MetadataHarness>): void {
  describe(`RegistryMetadata contract: ${name}`, () => {
    it('tags point at manifests, move, list in order with pagination, and vanish with their manifest', async () => {
      const m = await (await setup()).open();
      await m.putManifest(
        { repository: 'a/b', digest: d('1'), mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, subjectDigest: null, size: 10, annotations: null },
        [{ digest: d('c'), kind: 'blob' }],
      );
      await m.putManifest(
        { repository: 'a/b', digest: d('2'), mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, subjectDigest: null, size: 10, annotations: null },
        [],
      );
      for (const t of ['v3', 'v1', 'v2']) await m.putTag('a/b', t, d('1'));
      await m.putTag('a/b', 'v2', d('2'));
      expect(await m.getTag('a/b', 'v2')).toBe(d('2'));
      expect(await m.listTags('a/b')).toEqual(['v1', 'v2', 'v3']);
      expect(await m.listTags('a/b', { n: 1, last: 'v1' })).toEqual(['v2']);
      expect(await m.manifestRefs('a/b', d('1'))).toEqual([{ digest: d('c'), kind: 'blob' }]);
      const verdict = (repository: string) => ({ repository, digest: d('1'), status: 'fail' as const, verdict: '{}', evaluatedAt: '2026-01-01T00:00:00Z' });
      await m.artifacts.putVerdicts([verdict('a/b'), verdict('other/b')]);
      expect(await m.deleteManifest('a/b', d('1'))).toBe(true);
      expect(await m.listTags('a/b')).toEqual(['v2']);
      // Its verdict goes with it (a database update must not re-decide a deleted image); another repository's stays.
      expect(await m.artifacts.getVerdict('a/b', d('1'))).toBeNull();
      expect((await m.artifacts.getVerdict('other/b', d('1')))?.status).toBe('fail');
      expect(await m.deleteManifest('a/b', d('1'))).toBe(false);
      expect(await m.listRepositories()).toEqual(['a/b']);
      await m.close();
    });

    it('referrers by subject with an artifactType filter', async () => {
      const m = await (await setup()).open();
      const base = { repository: 'r', mediaType: 'application/vnd.oci.image.manifest.v1+json', size: 1, annotations: { k: 'v' } };
      await m.putManifest({ ...base, digest: d('a'), artifactType: 'x/sbom', subjectDigest: d('s') }, []);
      await m.putManifest({ ...base, digest: d('b'), artifactType: 'x/sig', subjectDigest: d('s') }, []);
      expect((await m.listReferrers('r', d('s'))).map((r) => r.digest)).toEqual([d('a'), d('b')]);
      const sbom = await m.listReferrers('r', d('s'), 'x/sbom');
      expect(sbom.map((r) => r.digest)).toEqual([d('a')]);
      expect(sbom[0]?.annotations).toEqual({ k: 'v' });
      await m.close();
    });

    it('blob links are per repository', async () => {
      const m = await (await setup()).open();
      await m.linkBlob('one', d('f'), 5);
      expect(await m.blobLinked('one', d('f'))).toBe(true);
      expect(await m.blobLinked('two', d('f'))).toBe(false);
      expect(await m.repositoriesWithBlob(d('f'))).toEqual(['one']);
      expect(await m.unlinkBlob('one', d('f'))).toBe(true);
      await m.close();
    });

    it('project settings change alone, and usage counts each digest once across the project only', async () => {
      const m = await (await setup()).open();
      expect(await m.createProject({ name: 'p', public: false, createdBy: 't' })).toBe(true);
      expect(await m.getProject('p')).toMatchObject({ immutableTags: [], quotaBytes: null });
      expect(await m.updateProject('p', { immutableTags: ['v*'], quotaBytes: 1000 })).toBe(true);
      expect(await m.updateProject('p', { public: true })).toBe(true);
      expect(await m.getProject('p')).toMatchObject({ public: true, immutableTags: ['v*'], quotaBytes: 1000 });
      expect(await m.updateProject('missing', { quotaBytes: 1 })).toBe(false);
      await m.linkBlob('p/a', d('1'), 100);
      await m.linkBlob('p/b', d('1'), 100);
      await m.linkBlob('p/b/c', d('2'), 30);
      await m.linkBlob('p', d('3'), 7);
      // Neighbours that share the prefix text but not the project.
      await m.linkBlob('pp/a', d('4'), 1000);
      await m.linkBlob('p0', d('5'), 1000);
      await m.putManifest({ repository: 'p/a', digest: d('6'), mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, subjectDigest: null, size: 5, annotations: null }, []);
      expect(await m.projectUsage('p')).toBe(100 + 30 + 7 + 5);
      expect(await m.projectUsage('pp')).toBe(1000);
      expect(await m.projectUsage('none')).toBe(0);
      await m.close();
    });

    it('starts an upload only within its caps, however many start at once', async () => {
      const m = await (await setup()).open();
      const caps = { project: 'p', perPrincipal: 3, perProject: 5 };
      const first = await Promise.all(Array.from({ length: 10 }, (_, i) => m.startUpload(`a-${i}`, 'p/r', 'alice', caps)));
      expect(first.filter((s) => 'started' in s).length).toBe(3);
      expect(first.filter((s) => 'refused' in s)).toEqual(Array.from({ length: 7 }, () => ({ refused: 'principal', open: 3 })));
      // Another account of the project gets the project's last two places; a name that only shares
      // the prefix (`p-other`) is another project.
      const second = await Promise.all(Array.from({ length: 10 }, (_, i) => m.startUpload(`b-${i}`, `p/r${i}`, 'bob', caps)));
      expect(second.filter((s) => 'started' in s).length).toBe(2);
      expect(second.filter((s) => 'refused' in s)).toEqual(Array.from({ length: 8 }, () => ({ refused: 'project', open: 5 })));
      expect('started' in (await m.startUpload('c-0', 'p-other/r', 'bob', { ...caps, project: 'p-other' }))).toBe(true);
      expect(await m.projectUploadCount('p')).toBe(5);
      expect(await m.principalUploadCount('alice')).toBe(3);
      await m.deleteUpload('a-0');
      expect(await m.startUpload('a-x', 'p/r', 'alice', caps)).toMatchObject({ started: { uuid: 'a-x', repository: 'p/r', offset: 0 } });
      await m.close();
    });

    it('uploads, tags and users survive closing and reopening', async () => {
      const h = await setup();
      const m = await h.open();
      await m.createUpload('u-1', 'repo');
      await m.setUploadOffset('u-1', 42);
      await m.putManifest(
        { repository: 'repo', digest: d('9'), mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: null, subjectDigest: null, size: 3, annotations: null },
        [],
      );
      await m.putTag('repo', 'latest', d('9'));
      await m.putUser({ name: 'admin', passwordHash: 'scrypt$x', admin: true });
      await m.close();
      const again = await h.open();
      expect(await again.getUpload('u-1')).toMatchObject({ uuid: 'u-1', repository: 'repo', offset: 42 });
      expect(await again.getTag('repo', 'latest')).toBe(d('9'));
      expect(await again.getUser('admin')).toEqual({ name: 'admin', passwordHash: 'scrypt$x', admin: true });
      expect(await again.countUsers()).toBe(1);
      await again.deleteUpload('u-1');
      expect(await again.getUpload('u-1')).toBeNull();
      await again.close();
    });

    it('the only admin cannot be removed; one of two can', async () => {
      const m = await (await setup()).open();
      await m.putUser({ name: 'root', passwordHash: 'scrypt$x', admin: true });
      await m.putUser({ name: 'dev', passwordHash: 'scrypt$y', admin: false });
      await expect(m.deleteUser('root')).rejects.toMatchObject({ code: 'LAST_ADMIN' });
      expect(await m.getUser('root')).not.toBeNull();
      expect(await m.deleteUser('dev')).toBe(true);
      await m.putUser({ name: 'second', passwordHash: 'scrypt$z', admin: true });
      expect(await m.deleteUser('root')).toBe(true);
      await expect(m.deleteUser('second')).rejects.toMatchObject({ code: 'LAST_ADMIN' });
      await expect(m.setUserAdmin('second', false)).rejects.toMatchObject({ code: 'LAST_ADMIN' });
      expect(await m.setUserAdmin('nobody', true)).toBe(false);
      await m.putUser({ name: 'third', passwordHash: 'scrypt$w', admin: false });
      expect(await m.setUserAdmin('third', true)).toBe(true);
      expect(await m.setUserAdmin('second', false)).toBe(true);
      expect((await m.getUser('second'))?.admin).toBe(false);
      await m.close();
    });
  });
}
