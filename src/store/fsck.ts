import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { parseDigest, type DigestAlgorithm } from '../oci/index.js';
import { FsBlobStore, STREAM_HWM } from './blob-store.js';
import { listAllRepositories, withStores, type StoreTarget } from './gc.js';

export type FsckProblemKind =
  | 'manifest-missing'
  | 'manifest-size'
  | 'manifest-digest'
  | 'manifest-unreadable'
  | 'blob-missing'
  | 'blob-size'
  | 'blob-unlinked'
  | 'child-missing'
  | 'tag-dangling'
  | 'link-dangling'
  | 'link-size'
  | 'blob-corrupt'
  | 'stray-file';

export interface FsckProblem {
  kind: FsckProblemKind;
  repository?: string;
  digest?: string;
  message: string;
}

export interface FsckOptions {
  /** Hash every stored blob and compare with its name (reads everything; slow on large stores). */
  verifyContent?: boolean;
}

export interface FsckResult {
  problems: FsckProblem[];
  checked: { repositories: number; manifests: number; tags: number; blobs: number };
}

/** Manifests are capped at 4 MiB on push; a larger stored one is itself a problem. */
const MAX_MANIFEST_READ = 4 * 1024 * 1024;
const HEX_LENGTH: Record<DigestAlgorithm, number> = { sha256: 64, sha512: 128 };

interface LooseDescriptor {
  digest?: unknown;
  size?: unknown;
  mediaType?: unknown;
  urls?: unknown;
}

async function readAll(stream: AsyncIterable<unknown>, max: number): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stream) {
    size += (chunk as Buffer).length;
    if (size > max) return null;
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

async function hashFile(path: string, algorithm: DigestAlgorithm): Promise<string> {
  const hash = createHash(algorithm);
  for await (const chunk of createReadStream(path, { highWaterMark: STREAM_HWM })) hash.update(chunk as Buffer);
  return hash.digest('hex');
}

/**
 * Read-only consistency check of a registry's stores: what every manifest and tag points at is
 * stored with the right size and linked where a pull needs it, and (with verifyContent) every
 * blob's bytes hash to its name. Blobs no manifest references are not problems: that is GC's job.
 */
export async function fsck(target: string | StoreTarget, options: FsckOptions = {}): Promise<FsckResult> {
  return withStores(target, async ({ metadata, blobs }) => {
    const problems: FsckProblem[] = [];
    const checked = { repositories: 0, manifests: 0, tags: 0, blobs: 0 };

    for (const repo of await listAllRepositories(metadata)) {
      checked.repositories++;
      const manifests = await metadata.listManifests(repo);
      const stored = new Set(manifests.map((m) => m.digest));
      const links = new Map((await metadata.listBlobLinks(repo)).map((l) => [l.digest, l]));
      for (const m of manifests) {
        checked.manifests++;
        const info = await blobs.stat(m.digest);
        if (!info) {
          problems.push({ kind: 'manifest-missing', repository: repo, digest: m.digest, message: `${repo}: manifest ${m.digest} is recorded but its bytes are not stored` });
          continue;
        }
        if (info.size !== m.size) {
          problems.push({ kind: 'manifest-size', repository: repo, digest: m.digest, message: `${repo}: manifest ${m.digest} is ${info.size} bytes, recorded as ${m.size}` });
          continue;
        }
        const bytes = await readAll(await blobs.open(m.digest), MAX_MANIFEST_READ);
        const { algorithm } = parseDigest(m.digest);
        if (!bytes || `${algorithm}:${createHash(algorithm).update(bytes).digest('hex')}` !== m.digest) {
          problems.push({ kind: 'manifest-digest', repository: repo, digest: m.digest, message: `${repo}: manifest ${m.digest} bytes do not match its digest` });
          continue;
        }
        let doc: { config?: LooseDescriptor; layers?: LooseDescriptor[]; manifests?: LooseDescriptor[] };
        try {
          doc = JSON.parse(bytes.toString('utf8')) as typeof doc;
        } catch {
          problems.push({ kind: 'manifest-unreadable', repository: repo, digest: m.digest, message: `${repo}: manifest ${m.digest} is not JSON` });
          continue;
        }
        for (const child of Array.isArray(doc.manifests) ? doc.manifests : []) {
          if (typeof child.digest === 'string' && !stored.has(child.digest)) {
            problems.push({ kind: 'child-missing', repository: repo, digest: child.digest, message: `${repo}: index ${m.digest} lists manifest ${child.digest}, which is not stored` });
          }
        }
        const descriptors = [...(doc.config ? [doc.config] : []), ...(Array.isArray(doc.layers) ? doc.layers : [])];
        for (const d of descriptors) {
          if (typeof d.digest !== 'string') continue;
          // Foreign layers live at their URLs; registries never hold them.
          if (Array.isArray(d.urls) && d.urls.length > 0 && typeof d.mediaType === 'string' && /nondistributable|foreign/.test(d.mediaType)) continue;
          const blob = await blobs.stat(d.digest).catch(() => null);
          if (!blob) {
            problems.push({ kind: 'blob-missing', repository: repo, digest: d.digest, message: `${repo}: manifest ${m.digest} references blob ${d.digest}, which is not stored` });
          } else if (typeof d.size === 'number' && blob.size !== d.size) {
            problems.push({ kind: 'blob-size', repository: repo, digest: d.digest, message: `${repo}: blob ${d.digest} is ${blob.size} bytes, manifest ${m.digest} says ${d.size}` });
          }
          if (!links.has(d.digest)) {
            problems.push({ kind: 'blob-unlinked', repository: repo, digest: d.digest, message: `${repo}: manifest ${m.digest} references blob ${d.digest}, which is not linked to the repository (pulls would get 404)` });
          }
        }
      }
      for (const t of await metadata.listTagTargets(repo)) {
        checked.tags++;
        if (!stored.has(t.digest)) {
          problems.push({ kind: 'tag-dangling', repository: repo, digest: t.digest, message: `${repo}:${t.tag} points at ${t.digest}, which is not stored` });
        }
      }
      for (const l of links.values()) {
        const blob = await blobs.stat(l.digest).catch(() => null);
        if (!blob) problems.push({ kind: 'link-dangling', repository: repo, digest: l.digest, message: `${repo}: blob link ${l.digest} has no stored blob` });
        else if (blob.size !== l.size) problems.push({ kind: 'link-size', repository: repo, digest: l.digest, message: `${repo}: blob ${l.digest} is ${blob.size} bytes, linked as ${l.size}` });
      }
    }

    if (blobs instanceof FsBlobStore) {
      // Walk the tree itself (not list(), which skips oddities) so stray or half-named files show.
      for (const algorithm of ['sha256', 'sha512'] as const) {
        const base = join(blobs.root, 'blobs', algorithm);
        for (const prefix of await readdir(base).catch(() => [] as string[])) {
          const dir = join(base, prefix);
          const names = await readdir(dir).catch(() => null);
          if (!names) {
            problems.push({ kind: 'stray-file', message: `unexpected file ${dir} in the blob store` });
            continue;
          }
          for (const hex of names) {
            const path = join(dir, hex);
            const s = await stat(path).catch(() => null);
            const wellNamed = new RegExp(`^[a-f0-9]{${HEX_LENGTH[algorithm]}}$`).test(hex) && hex.startsWith(prefix) && prefix.length === 2;
            if (!s?.isFile() || !wellNamed) {
              problems.push({ kind: 'stray-file', message: `unexpected ${s?.isDirectory() ? 'folder' : 'file'} ${path} in the blob store` });
              continue;
            }
            checked.blobs++;
            if (options.verifyContent && (await hashFile(path, algorithm)) !== hex) {
              problems.push({ kind: 'blob-corrupt', digest: `${algorithm}:${hex}`, message: `blob ${algorithm}:${hex} content does not match its digest` });
            }
          }
        }
      }
    } else {
      for await (const blob of blobs.list()) {
        checked.blobs++;
        if (!options.verifyContent) continue;
        const { algorithm } = parseDigest(blob.digest);
        const hash = createHash(algorithm);
        for await (const chunk of await blobs.open(blob.digest)) hash.update(chunk as Buffer);
        if (`${algorithm}:${hash.digest('hex')}` !== blob.digest) {
          problems.push({ kind: 'blob-corrupt', digest: blob.digest, message: `blob ${blob.digest} content does not match its digest` });
        }
      }
    }
    return { problems, checked };
  });
}
