import { createHash } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm, truncate, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Command } from 'commander';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { addMaintenanceCommands, parseDuration } from '../../src/cli/maintenance-commands.js';
import { scheduleGc, scheduleUploadPurge } from '../../src/cli/serve-command.js';
import { FsBlobStore, SqliteRegistryMetadata, blobRoot, writeBlobBytes } from '../../src/store/index.js';
import { fsck } from '../../src/store/fsck.js';
import { gc } from '../../src/store/gc.js';

const sha256 = (b: string | Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const HOUR = 3_600_000;
/** A clock two hours ahead: everything written by the test is then older than a 1 h grace period. */
const later = () => Date.now() + 2 * HOUR;

let dataDir: string;
let metadata: SqliteRegistryMetadata;
let blobs: FsBlobStore;

beforeEach(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'portcullis-gc-'));
  metadata = await SqliteRegistryMetadata.open(dataDir);
  blobs = new FsBlobStore(blobRoot(dataDir));
});
afterEach(async () => {
  await metadata.close();
  await rm(dataDir, { recursive: true, force: true });
});

async function blob(repo: string, content: string): Promise<{ digest: string; size: number }> {
  const bytes = Buffer.from(content);
  const digest = sha256(bytes);
  await writeBlobBytes(blobs, bytes, digest);
  await metadata.linkBlob(repo, digest, bytes.length);
  return { digest, size: bytes.length };
}

async function manifest(repo: string, tag: string | null, layers: { digest: string; size: number }[], extra: Record<string, unknown> = {}) {
  const config = await blob(repo, `config ${repo} ${tag} ${layers.map((l) => l.digest).join()} ${JSON.stringify(extra)}`);
  const doc = {
    schemaVersion: 2,
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
    layers: layers.map((l) => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', ...l })),
    ...extra,
  };
  const bytes = Buffer.from(JSON.stringify(doc));
  const digest = sha256(bytes);
  await writeBlobBytes(blobs, bytes, digest);
  const subject = (extra.subject as { digest: string } | undefined)?.digest ?? null;
  await metadata.putManifest(
    { repository: repo, digest, mediaType: doc.mediaType, artifactType: null, subjectDigest: subject, size: bytes.length, annotations: null },
    [config, ...layers].map((d) => ({ digest: d.digest, kind: 'blob' as const })),
  );
  if (tag) await metadata.putTag(repo, tag, digest);
  return { digest, size: bytes.length, config: config.digest };
}

async function index(repo: string, tag: string | null, children: { digest: string; size: number }[]) {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: children.map((c) => ({ mediaType: 'application/vnd.oci.image.manifest.v1+json', ...c })),
    }),
  );
  const digest = sha256(bytes);
  await writeBlobBytes(blobs, bytes, digest);
  await metadata.putManifest(
    { repository: repo, digest, mediaType: 'application/vnd.oci.image.index.v1+json', artifactType: null, subjectDigest: null, size: bytes.length, annotations: null },
    children.map((c) => ({ digest: c.digest, kind: 'manifest' as const })),
  );
  if (tag) await metadata.putTag(repo, tag, digest);
  return { digest, size: bytes.length };
}

const stored = async (digest: string) => (await blobs.stat(digest)) !== null;

describe('gc: mark and sweep', () => {
  it('sweeps an unreferenced blob older than the grace period and keeps a younger one', async () => {
    const old = await blob('lib/a', 'orphan');
    const young = await blob('lib/a', 'fresh orphan');
    // Only `old` is past the grace period: its link time is rewritten into the past.
    await metadata.unlinkBlob('lib/a', old.digest);
    const past = new Date(Date.now() - 2 * HOUR);
    await utimes(blobs.blobPath(old.digest), past, past);
    const r = await gc({ metadata, blobs }, { gracePeriodMs: HOUR });
    expect(r.blobsDeleted).toEqual([old.digest]);
    expect(r.bytesFreed).toBe(old.size);
    expect(await stored(old.digest)).toBe(false);
    expect(await stored(young.digest)).toBe(true);
    expect(await metadata.blobLinked('lib/a', young.digest)).toBe(true);
  });

  it('keeps everything within the grace period, then sweeps orphans and their links once it has passed', async () => {
    const orphan = await blob('lib/a', 'orphan');
    expect((await gc({ metadata, blobs })).blobsDeleted).toEqual([]);
    const r = await gc({ metadata, blobs }, { now: later });
    expect(r.blobsDeleted).toEqual([orphan.digest]);
    expect(r.linksRemoved).toBe(1);
    expect(await metadata.blobLinked('lib/a', orphan.digest)).toBe(false);
  });

  it('removes an untagged manifest with its unshared blobs and keeps shared layers', async () => {
    const shared = await blob('lib/app', 'shared base layer');
    const onlyOld = await blob('lib/app', 'layer only the old image has');
    const current = await manifest('lib/app', 'latest', [shared]);
    const old = await manifest('lib/app', null, [shared, onlyOld]);
    const r = await gc({ metadata, blobs }, { now: later });
    expect(r.manifestsDeleted).toEqual([{ repository: 'lib/app', digest: old.digest }]);
    expect(await metadata.getManifest('lib/app', old.digest)).toBeNull();
    expect(await stored(old.digest)).toBe(false);
    expect(await stored(onlyOld.digest)).toBe(false);
    expect(await stored(old.config)).toBe(false);
    expect(await stored(shared.digest)).toBe(true);
    expect(await stored(current.digest)).toBe(true);
    expect(await stored(current.config)).toBe(true);
    expect((await fsck({ metadata, blobs }, { verifyContent: true })).problems).toEqual([]);
  });

  it('forgets the analyses and verdicts of images it removes, and keeps those of images still held', async () => {
    const layer = await blob('lib/app', 'a layer');
    const current = await manifest('lib/app', 'latest', [layer]);
    const old = await manifest('lib/app', null, [layer, await blob('lib/app', 'old layer')]);
    const key = { ecosystem: 'npm', os: false, name: 'left-pad', version: '1.0.0' };
    const pkg = { type: 'npm', name: 'left-pad', version: '1.0.0', purl: 'pkg:npm/left-pad@1.0.0', sourceName: null };
    for (const m of [current, old]) {
      await metadata.artifacts.putFacts(m.digest, Buffer.from('{}'), [pkg], [key]);
      await metadata.artifacts.putVerdict({ repository: 'lib/app', digest: m.digest, status: 'pass', verdict: '{}', evaluatedAt: new Date().toISOString() });
    }
    const r = await gc({ metadata, blobs }, { now: later });
    expect(r.manifestsDeleted).toEqual([{ repository: 'lib/app', digest: old.digest }]);
    expect(r.analysesRemoved).toBe(1);
    expect(await metadata.artifacts.getFacts(old.digest)).toBeNull();
    expect(await metadata.artifacts.getVerdict('lib/app', old.digest)).toBeNull();
    expect(await metadata.artifacts.packagesOf(old.digest)).toEqual([]);
    expect((await metadata.artifacts.imageMatchKeys()).map((i) => i.digest)).toEqual([current.digest]);
    expect(await metadata.artifacts.getFacts(current.digest)).not.toBeNull();
    expect((await metadata.artifacts.getVerdict('lib/app', current.digest))?.status).toBe('pass');
  });

  it('keeps a layer shared with another repository when one repository drops it', async () => {
    const layer = await blob('lib/one', 'common layer');
    await metadata.linkBlob('lib/two', layer.digest, layer.size);
    await manifest('lib/one', null, [layer]);
    await manifest('lib/two', 'v1', [layer]);
    const r = await gc({ metadata, blobs }, { now: later });
    expect(r.manifestsDeleted).toHaveLength(1);
    expect(await stored(layer.digest)).toBe(true);
    expect(await metadata.blobLinked('lib/two', layer.digest)).toBe(true);
  });

  it("drops a repository's links to a layer another project still uses, so its quota frees; forgets empty repositories", async () => {
    const layer = await blob('alpha/app', 'base layer shared across projects');
    await metadata.linkBlob('beta/app', layer.digest, layer.size);
    const mine = await blob('alpha/app', 'a layer only alpha has');
    const dropped = await manifest('alpha/app', null, [layer, mine]);
    await manifest('beta/app', 'v1', [layer]);
    // A repository a refused push left with a link to nothing it holds.
    await metadata.linkBlob('beta/stray', layer.digest, layer.size);
    expect(await metadata.projectUsage('alpha')).toBeGreaterThan(0);

    const dry = await gc({ metadata, blobs }, { now: later, dryRun: true });
    expect(dry.linksRemoved).toBeGreaterThanOrEqual(2);
    expect(await metadata.blobLinked('alpha/app', layer.digest)).toBe(true);

    const r = await gc({ metadata, blobs }, { now: later });
    expect(r.manifestsDeleted).toEqual([{ repository: 'alpha/app', digest: dropped.digest }]);
    expect(await metadata.blobLinked('alpha/app', layer.digest)).toBe(false);
    expect(await metadata.blobLinked('beta/stray', layer.digest)).toBe(false);
    expect(await metadata.blobLinked('beta/app', layer.digest)).toBe(true);
    expect(await stored(layer.digest)).toBe(true);
    expect(await stored(mine.digest)).toBe(false);
    expect(await metadata.projectUsage('alpha')).toBe(0);
    expect(r.repositoriesRemoved).toBe(2);
    expect(await metadata.listRepositories()).toEqual(['beta/app']);
  });

  it('keeps a link and a repository younger than the grace period', async () => {
    const layer = await blob('fresh/app', 'just uploaded, manifest not pushed yet');
    await metadata.linkBlob('other/app', layer.digest, layer.size);
    await manifest('other/app', 'v1', [layer]);
    const r = await gc({ metadata, blobs });
    expect(r.linksRemoved).toBe(0);
    expect(r.repositoriesRemoved).toBe(0);
    expect(await metadata.blobLinked('fresh/app', layer.digest)).toBe(true);
    expect(await metadata.listRepositories()).toContain('fresh/app');
  });

  it('keeps index children and referrers of kept manifests; drops referrers of dropped ones', async () => {
    const l1 = await blob('lib/multi', 'amd64 layer');
    const l2 = await blob('lib/multi', 'arm64 layer');
    const amd = await manifest('lib/multi', null, [l1]);
    const arm = await manifest('lib/multi', null, [l2]);
    const idx = await index('lib/multi', 'v1', [amd, arm]);
    const sig = await manifest('lib/multi', null, [], { subject: { mediaType: 'application/vnd.oci.image.index.v1+json', ...idx } });
    const loose = await manifest('lib/multi', null, [await blob('lib/multi', 'loose layer')]);
    const looseSig = await manifest('lib/multi', null, [], { subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: loose.digest, size: loose.size } });
    const r = await gc({ metadata, blobs }, { now: later });
    expect(r.manifestsDeleted.map((m) => m.digest).sort()).toEqual([loose.digest, looseSig.digest].sort());
    for (const kept of [amd, arm, idx, sig]) expect(await metadata.getManifest('lib/multi', kept.digest)).not.toBeNull();
    expect((await fsck({ metadata, blobs })).problems).toEqual([]);
  });

  it('--keep-untagged and --dry-run delete nothing', async () => {
    const layer = await blob('lib/k', 'layer');
    const m = await manifest('lib/k', null, [layer]);
    const orphan = await blob('lib/k', 'orphan');
    const keep = await gc({ metadata, blobs }, { now: later, deleteUntagged: false });
    expect(keep.manifestsDeleted).toEqual([]);
    expect(keep.blobsDeleted).toEqual([orphan.digest]);
    const dry = await gc({ metadata, blobs }, { now: later, dryRun: true });
    expect(dry.manifestsDeleted).toEqual([{ repository: 'lib/k', digest: m.digest }]);
    expect(dry.blobsDeleted.sort()).toEqual([layer.digest, m.digest, m.config].sort());
    expect(await metadata.getManifest('lib/k', m.digest)).not.toBeNull();
    for (const d of dry.blobsDeleted) expect(await stored(d)).toBe(true);
  });

  it('does not delete a manifest a push touched after the collection started', async () => {
    const layer = await blob('lib/t', 'layer');
    const m = await manifest('lib/t', null, [layer]);
    await new Promise((r) => setTimeout(r, 50));
    // The collection "starts" right before the touch: the manifest is older, the touch is newer.
    const started = Date.now();
    await metadata.touchDigests([m.digest]);
    const r = await gc({ metadata, blobs }, { gracePeriodMs: 0, now: () => started });
    expect(r.manifestsDeleted).toEqual([]);
    expect(await stored(layer.digest)).toBe(true);
  });

  it('removes stale upload sessions and temp files, keeps live ones, and finishes an interrupted deletion', async () => {
    await mkdir(blobs.tmpDir, { recursive: true });
    const stale = await metadata.createUpload('stale-upload', 'lib/u');
    const live = await metadata.createUpload('live-upload', 'lib/u');
    for (const u of [stale, live]) await writeFile(join(blobs.tmpDir, u.uuid), 'partial');
    await writeFile(join(blobs.tmpDir, 'crashed-monolithic'), 'bytes');
    const past = new Date(Date.now() - 48 * HOUR);
    for (const f of ['stale-upload', 'crashed-monolithic']) await utimes(join(blobs.tmpDir, f), past, past);
    // Simulate a crashed GC: the decision was recorded, the file never deleted.
    const doomed = await blob('lib/u', 'doomed');
    expect(await metadata.beginBlobDeletion(doomed.digest, new Date(Date.now() + HOUR).toISOString())).toBe(1);
    expect(await metadata.linkBlobIfLive('lib/u', doomed.digest, doomed.size)).toBe(false);
    const r = await gc({ metadata, blobs }, { staleUploadMs: HOUR, now: () => Date.now() });
    expect(r.interruptedFinished).toBe(1);
    expect(await stored(doomed.digest)).toBe(false);
    expect(await metadata.pendingBlobDeletions()).toEqual([]);
    // `stale-upload`'s row is fresh (created now) so it stays; the crashed temp file goes.
    expect(r.tempFilesRemoved).toBe(1);
    expect(await metadata.getUpload('live-upload')).not.toBeNull();
    const r2 = await gc({ metadata, blobs }, { staleUploadMs: HOUR, now: () => Date.now() + 2 * HOUR });
    expect(r2.uploadsRemoved).toBe(2);
    expect(r2.tempFilesRemoved).toBe(2);
    expect(await metadata.listUploads()).toEqual([]);
  });
});

describe('the server removes abandoned uploads without a gc schedule', () => {
  it('forgets sessions idle past the limit and their temp files, and keeps fresh ones', async () => {
    await mkdir(blobs.tmpDir, { recursive: true });
    const abandoned = await metadata.createUpload('abandoned-upload', 'lib/u');
    await writeFile(join(blobs.tmpDir, abandoned.uuid), 'parked bytes');
    const past = new Date(Date.now() - 60_000);
    await utimes(join(blobs.tmpDir, abandoned.uuid), past, past);
    const logged: unknown[] = [];
    const logger = { info: (o: unknown) => logged.push(o), error: (o: unknown) => logged.push(o) } as unknown as Parameters<typeof scheduleUploadPurge>[1];
    // The session row is stamped now: it becomes stale only once `staleMs` has passed.
    await new Promise((r) => setTimeout(r, 2500));
    const fresh = await metadata.createUpload('fresh-upload', 'lib/u');
    await writeFile(join(blobs.tmpDir, fresh.uuid), 'still coming');
    const stop = scheduleUploadPurge({ metadata, blobs }, logger, { everyMs: 50, staleMs: 2000 });
    try {
      const deadline = Date.now() + 5000;
      while ((await metadata.getUpload('abandoned-upload')) && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    } finally {
      await stop();
    }
    expect(await metadata.getUpload('abandoned-upload')).toBeNull();
    expect(await readdir(blobs.tmpDir)).toEqual(['fresh-upload']);
    expect(await metadata.getUpload('fresh-upload')).not.toBeNull();
    expect(logged).toContainEqual(expect.objectContaining({ uploadsRemoved: 1, tempFilesRemoved: 1 }));
  });
});

describe('a scheduled collection when the server stops', () => {
  it('stops at its next step instead of sweeping to the end, leaves nothing half done, and the next run goes on', async () => {
    const layer = await blob('lib/kept', 'a layer a tagged image needs');
    const kept = await manifest('lib/kept', 'v1', [layer]);
    // Orphans from long ago: a sweep of them takes seconds, as a large store's takes minutes.
    const ORPHANS = 3000;
    const past = new Date(Date.now() - 2 * HOUR);
    for (let i = 0; i < ORPHANS; i++) {
      const bytes = Buffer.from(`orphan ${i}`);
      const path = blobs.blobPath(sha256(bytes));
      await mkdir(join(path, '..'), { recursive: true });
      await writeFile(path, bytes);
      await utimes(path, past, past);
    }
    const left = async () => {
      let n = 0;
      for (const dir of await readdir(join(blobRoot(dataDir), 'blobs', 'sha256'))) n += (await readdir(join(blobRoot(dataDir), 'blobs', 'sha256', dir))).length;
      return n - 3; // the kept layer, config and manifest
    };
    const logged: { msg: string; fields: unknown }[] = [];
    const logger = {
      info: (fields: unknown, msg: string) => logged.push({ msg, fields }),
      error: (fields: unknown, msg: string) => logged.push({ msg, fields }),
    } as unknown as Parameters<typeof scheduleGc>[2];
    const stop = scheduleGc({ metadata, blobs }, { everyMs: 50, graceMs: 0, keepUntagged: true }, logger);
    for (const deadline = Date.now() + 10_000; (await left()) > ORPHANS - 50 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 10));
    const stopping = Date.now();
    await stop();
    // The stop waited for one step, not for the rest of the sweep (before: all 3000 deletions).
    expect(Date.now() - stopping).toBeLessThan(1000);
    const remaining = await left();
    expect(remaining).toBeGreaterThan(ORPHANS / 3);
    expect(logged.map((l) => l.msg)).toContain('scheduled garbage collection stopped by the shutdown; the next run goes on from there');
    // Nothing half done: no deletion left pending, the kept image whole.
    expect(await metadata.pendingBlobDeletions()).toEqual([]);
    expect((await fsck({ metadata, blobs })).problems).toEqual([]);
    expect(await stored(kept.digest)).toBe(true);

    const next = await gc({ metadata, blobs }, { gracePeriodMs: 0, deleteUntagged: false });
    expect(next.stopped).toBe(false);
    expect(next.blobsDeleted.length).toBe(remaining);
    expect(await left()).toBe(0);
    expect((await fsck({ metadata, blobs })).problems).toEqual([]);
  });
});

describe('fsck', () => {
  it('reports missing and truncated blobs, dangling tags, corrupt content and stray files', async () => {
    const layer = await blob('lib/f', 'a layer with some content');
    const gone = await blob('lib/f', 'a layer that will vanish');
    const m = await manifest('lib/f', 'v1', [layer, gone]);
    expect((await fsck({ metadata, blobs }, { verifyContent: true })).problems).toEqual([]);
    await rm(blobs.blobPath(gone.digest));
    await truncate(blobs.blobPath(layer.digest), 3);
    await metadata.putTag('lib/f', 'broken', sha256('nothing'));
    await writeFile(join(blobs.root, 'blobs', 'sha256', 'zz'), 'junk');
    let r = await fsck({ metadata, blobs });
    expect(r.problems.map((p) => p.kind).sort()).toEqual(['blob-missing', 'blob-size', 'link-dangling', 'link-size', 'stray-file', 'tag-dangling']);
    expect(r.checked).toMatchObject({ repositories: 1, manifests: 1, tags: 2 });
    // Same size, other bytes: only --verify-content sees it.
    await writeFile(blobs.blobPath(m.config), Buffer.alloc((await blobs.stat(m.config))!.size, 120));
    r = await fsck({ metadata, blobs }, { verifyContent: true });
    expect(r.problems.filter((p) => p.kind === 'blob-corrupt').map((p) => p.digest)).toEqual(expect.arrayContaining([m.config, layer.digest]));
  });
});

describe('portcullis gc / fsck commands', () => {
  it('parses durations', () => {
    expect(parseDuration('0')).toBe(0);
    expect(parseDuration('1h')).toBe(HOUR);
    expect(parseDuration('1h30m')).toBe(1.5 * HOUR);
    expect(parseDuration('250ms')).toBe(250);
    expect(() => parseDuration('soon')).toThrow(/duration/);
    expect(() => parseDuration('10')).toThrow(/duration/);
  });

  it('runs gc --dry-run and fsck on a data folder, fsck setting exit code 1 on problems', async () => {
    await blob('lib/cli', 'orphan');
    await metadata.putTag('lib/cli', 'dangling', sha256('nothing'));
    // With --grace 0 the cutoff is "now": step past the millisecond the blob was written in.
    await new Promise((r) => setTimeout(r, 20));
    const codes: number[] = [];
    const program = new Command().exitOverride();
    addMaintenanceCommands(program, (c) => codes.push(c));
    const out: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    process.stdout.write = ((s: string) => {
      out.push(String(s));
      return true;
    }) as typeof process.stdout.write;
    try {
      await program.parseAsync(['node', 'portcullis', 'gc', '--data', dataDir, '--dry-run', '--grace', '0']);
      await program.parseAsync(['node', 'portcullis', 'fsck', '--data', dataDir]);
    } finally {
      process.stdout.write = write;
    }
    expect(out.join('')).toMatch(/would delete 0 manifest\(s\), 1 blob\(s\)/);
    expect(out.join('')).toMatch(/tag-dangling/);
    expect(codes).toEqual([1]);
    expect(await blobs.stat(sha256('orphan'))).not.toBeNull();
  });
});
