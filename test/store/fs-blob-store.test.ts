import { mkdtemp, readdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { FsBlobStore, blobRoot } from '../../src/store/index.js';
import { blobStoreSuite } from './blob-store-suite.js';

blobStoreSuite('FsBlobStore', async () => {
  const root = blobRoot(await mkdtemp(join(tmpdir(), 'portcullis-blobs-')));
  const store = new FsBlobStore(root);
  return {
    store,
    tempFiles: () => readdir(join(root, 'tmp')).catch(() => []),
    reopen: () => new FsBlobStore(root),
  };
});

describe('FsBlobStore layout', () => {
  it('stores blobs at registry/blobs/<alg>/<2 hex>/<hex>', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-blobs-'));
    const store = new FsBlobStore(blobRoot(data));
    const digest = 'sha256:2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824';
    expect(store.blobPath(digest)).toBe(join(data, 'registry', 'blobs', 'sha256', '2c', digest.slice(7)));
    expect(() => store.blobPath('sha256:../../etc')).toThrow();
  });
});
