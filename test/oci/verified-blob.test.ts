import { createHash, randomBytes } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifiedBlob } from '../../src/oci/digest.js';

let dir = '';
let file = '';
let digest = '';
const bytes = randomBytes(4 << 20);
beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'portcullis-verified-'));
  file = join(dir, 'blob');
  await writeFile(file, bytes);
  digest = `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('verifiedBlob', () => {
  it('closes the file under it when the consumer stops early', async () => {
    const source = createReadStream(file, { highWaterMark: 64 * 1024 });
    const blob = verifiedBlob(source, digest, bytes.length, 'test');
    for await (const chunk of blob) {
      expect((chunk as Buffer).length).toBeGreaterThan(0);
      break; // what a walk that has what it needs does: the verifier is destroyed
    }
    source.on('error', () => undefined); // destroyed with the consumer's premature close
    if (!source.closed) {
      await Promise.race([new Promise((resolve) => source.once('close', resolve)), new Promise((resolve) => setTimeout(resolve, 3_000))]);
    }
    expect(source.destroyed).toBe(true);
  });

  it('passes the whole blob through when it matches, and refuses one that does not', async () => {
    const chunks: Buffer[] = [];
    for await (const c of verifiedBlob(createReadStream(file), digest, bytes.length, 'test')) chunks.push(c as Buffer);
    expect(Buffer.concat(chunks).equals(bytes)).toBe(true);
    const wrong = `sha256:${'0'.repeat(64)}`;
    await expect(async () => {
      for await (const _ of verifiedBlob(createReadStream(file), wrong, bytes.length, 'img')) void _;
    }).rejects.toMatchObject({ code: 'DIGEST_MISMATCH' });
  });

  it("hands the source's error to the consumer", async () => {
    const failing = new Readable({
      read() {
        this.destroy(new Error('disk went away'));
      },
    });
    await expect(async () => {
      for await (const _ of verifiedBlob(failing, digest, undefined, 'img')) void _;
    }).rejects.toThrow('disk went away');
  });
});
