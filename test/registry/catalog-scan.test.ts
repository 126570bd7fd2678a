import { mkdtemp, rm } from 'node:fs/promises';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { FastifyInstance } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPOSITORY_SCAN_LIMIT, buildRegistry, scanRepositories, type RegistryAuth } from '../../src/registry/index.js';
import { listProjectRepositories } from '../../src/registry/repository-scan.js';
import { SqliteRegistryMetadata, type RegistryMetadata } from '../../src/store/index.js';

// 5,200 repositories the caller may not see, then one it may: more than one request examines.
const HIDDEN = REPOSITORY_SCAN_LIMIT + 200;
const VISIBLE = 'zz/visible';

let dataDir: string;
let meta: SqliteRegistryMetadata;
let app: FastifyInstance;
let base: string;
let listCalls = 0;

/** Everyone is `viewer`, who may pull VISIBLE only. */
const auth: RegistryAuth = {
  authenticate: async () => ({ name: 'viewer', kind: 'user' }),
  authorize: (_principal, repo) => repo === VISIBLE,
  challenge: () => 'Basic realm="test"',
};

async function catalog(query: string) {
  const res = await fetch(`${base}/v2/_catalog${query}`);
  const body = (await res.json()) as { repositories: string[] };
  return { status: res.status, link: res.headers.get('link'), repositories: body.repositories };
}

beforeAll(async () => {
  dataDir = await mkdtemp(join(tmpdir(), 'portcullis-catalog-'));
  meta = await SqliteRegistryMetadata.open(dataDir);
  for (let i = 0; i < HIDDEN; i++) await meta.ensureRepository(`hidden/r${String(i).padStart(5, '0')}`);
  await meta.ensureRepository(VISIBLE);
  // The registry's metadata, with its repository listings counted.
  const counted = new Proxy(meta, {
    get(target, prop, receiver) {
      const value = Reflect.get(target, prop, receiver) as unknown;
      if (prop === 'listRepositories') {
        return (...args: Parameters<RegistryMetadata['listRepositories']>) => {
          listCalls++;
          return target.listRepositories(...args);
        };
      }
      return typeof value === 'function' ? (value as (...a: unknown[]) => unknown).bind(target) : value;
    },
  });
  app = await buildRegistry({ dataDir, metadata: counted, auth });
  await app.listen({ host: '127.0.0.1', port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}, 60_000);

afterAll(async () => {
  await app?.close();
  await meta?.close();
  await rm(dataDir, { recursive: true, force: true });
});

describe('catalog for a caller who can see few of many repositories', () => {
  it('reads repository names in batches of hundreds, whatever n is', async () => {
    listCalls = 0;
    const r = await catalog('?n=1&last=hidden/r04999');
    expect(r.status).toBe(200);
    expect(r.repositories).toEqual([VISIBLE]);
    expect(r.link).toBeNull();
    // 202 names left: one query, where batches of n+1 took 101.
    expect(listCalls).toBe(1);
  });

  it('examines a bounded number of names per request, and its Link continues from there without naming it', async () => {
    listCalls = 0;
    const first = await catalog('?n=1');
    expect(first.status).toBe(200);
    expect(first.repositories).toEqual([]);
    // The scan stopped on a repository the caller may not see: the Link carries it sealed.
    expect(first.link).toMatch(/^<\/v2\/_catalog\?n=1&last=~[A-Za-z0-9_-]+>; rel="next"$/);
    expect(first.link).not.toMatch(/hidden/);
    expect(listCalls).toBeLessThanOrEqual(REPOSITORY_SCAN_LIMIT / 500);
    // Following the Link finds the rest; no repository is skipped or listed twice.
    const second = await catalog(first.link!.slice('</v2/_catalog'.length, first.link!.indexOf('>')));
    expect(second.repositories).toEqual([VISIBLE]);
    expect(second.link).toBeNull();
  });

  it('stops after the same number of names whatever n asks, and refuses a continuation it did not seal', async () => {
    // Were the bound max(limit, n + 1), a caller could choose n to place the page's end on any name.
    for (const n of [1, 6000, 10000]) {
      const page = await catalog(`?n=${n}`);
      expect(page.repositories, `n=${n}`).toEqual([]);
      expect(page.link, `n=${n}`).toMatch(/last=~/);
    }
    const forged = await catalog(`?n=1&last=~${Buffer.from('hidden/r00042 and some bytes').toString('base64url')}`);
    expect(forged.status).toBe(400);
  });

  it('a page that fills stops there, with a Link from its own last name', async () => {
    const r = await catalog(`?n=1&last=hidden/r${String(HIDDEN - 2).padStart(5, '0')}`);
    expect(r.repositories).toEqual([VISIBLE]);
    expect(r.link).toBeNull();
  });
});

describe('scanRepositories', () => {
  it('sees past a store that returns at most 10,000 names per query, as _catalog?n=10000 needs', async () => {
    const names = Array.from({ length: 12_000 }, (_, i) => `p/r${String(i).padStart(5, '0')}`);
    const store = {
      listRepositories: async (page?: { n?: number; last?: string }) => {
        const from = page?.last === undefined ? 0 : names.indexOf(page.last) + 1;
        return names.slice(from, from + Math.min(page?.n ?? 1000, 10_000));
      },
    };
    const scan = await scanRepositories(store, { want: 10_001, keep: () => true });
    // 10,001 found: the page of 10,000 gets its Link (batches of n+1 were cut to 10,000 and looked like the end).
    expect(scan.found.length).toBeGreaterThan(10_000);
  });
});

describe('tags/list', () => {
  it('a page of 10,000 tags has a Link when more follow', async () => {
    const digest = `sha256:${'7'.repeat(64)}`;
    await meta.putManifest(
      { repository: VISIBLE, digest, mediaType: 'application/vnd.oci.image.manifest.v1+json', artifactType: null, subjectDigest: null, size: 2, annotations: null },
      [],
    );
    for (let i = 0; i <= 10_000; i++) await meta.putTag(VISIBLE, `t${String(i).padStart(5, '0')}`, digest);
    const first = await fetch(`${base}/v2/${VISIBLE}/tags/list?n=10000`);
    expect(((await first.json()) as { tags: string[] }).tags).toHaveLength(10_000);
    const link = first.headers.get('link');
    expect(link).toBe(`</v2/${VISIBLE}/tags/list?n=10000&last=t09999>; rel="next"`);
    const rest = await fetch(`${base}${link!.slice(1, link!.indexOf('>'))}`);
    expect(((await rest.json()) as { tags: string[] }).tags).toEqual(['t10000']);
    expect(rest.headers.get('link')).toBeNull();
  }, 60_000);
});

describe('listProjectRepositories', () => {
  it("reads only the given projects' names, in name order across projects whose names prefix each other", async () => {
    const names = ['a', 'a-b', 'a-b/x', 'a/x', 'a/y', 'ab/z', 'b/hidden', 'c/one'].sort();
    const asked: { from?: string; before?: string }[] = [];
    const store = {
      listRepositories: async (page?: { n?: number; last?: string; from?: string; before?: string }) => {
        asked.push({ from: page?.from, before: page?.before });
        return names
          .filter((n) => (page?.last === undefined || n > page.last) && (page?.from === undefined || n >= page.from) && (page?.before === undefined || n < page.before))
          .slice(0, page?.n ?? 1000);
      },
    };
    expect(await listProjectRepositories(store, ['a', 'a-b', 'c'], { want: 100 })).toEqual(['a', 'a-b', 'a-b/x', 'a/x', 'a/y', 'c/one']);
    expect(await listProjectRepositories(store, ['a', 'a-b', 'c'], { after: 'a-b/x', want: 2 })).toEqual(['a/x', 'a/y']);
    // Every query stays inside a listed project's range: 'ab/z' and 'b/hidden' are never read.
    for (const q of asked) expect(['a', 'a/', 'a-b', 'a-b/', 'c', 'c/']).toContain(q.from);
  });
});
