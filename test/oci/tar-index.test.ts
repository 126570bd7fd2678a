import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { OciError } from '../../src/errors.js';
import { indexTarFile } from '../../src/oci/tar-index.js';
import { tarOf } from '../helpers/image-builder.js';
import { ustarHeader } from '../helpers/tar-blocks.js';

const dir = mkdtempSync(join(tmpdir(), 'portcullis-tar-index-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function write(name: string, bytes: Buffer): string {
  const file = join(dir, name);
  writeFileSync(file, bytes);
  return file;
}

const header = ustarHeader;

describe('indexTarFile', () => {
  it('lists regular files with offsets that point at their content, long names included', async () => {
    const long = `blobs/sha256/${'a'.repeat(64)}/${'deep/'.repeat(20)}file.json`;
    const bytes = await tarOf([
      { name: 'oci-layout', content: '{"imageLayoutVersion":"1.0.0"}' },
      { name: 'blobs', type: 'directory' },
      { name: './index.json', content: '{"manifests":[]}' },
      { name: long, content: 'x'.repeat(1000) },
      { name: 'link', type: 'symlink', linkname: 'index.json' },
    ]);
    const members = await indexTarFile(write('plain.tar', bytes), 'plain.tar');
    expect([...members.keys()]).toEqual(['oci-layout', 'index.json', long]);
    const text = (path: string) => {
      const m = members.get(path)!;
      return bytes.toString('utf8', m.offset, m.offset + m.size);
    };
    expect(text('oci-layout')).toBe('{"imageLayoutVersion":"1.0.0"}');
    expect(text('index.json')).toBe('{"manifests":[]}');
    expect(text(long)).toBe('x'.repeat(1000));
  });

  it('refuses an archive whose last entry runs past the end', async () => {
    const bytes = await tarOf([{ name: 'big', content: Buffer.alloc(4096, 1) }]);
    const file = write('cut.tar', bytes.subarray(0, 2048));
    await expect(indexTarFile(file, 'cut.tar')).rejects.toMatchObject({ code: 'ARCHIVE_TRUNCATED' });
  });

  it('refuses a header whose checksum does not match', async () => {
    const bytes = Buffer.concat([header('index.json', '0', 2), Buffer.from('{}'), Buffer.alloc(510 + 1024)]);
    expect([...(await indexTarFile(write('good.tar', bytes), 'good.tar')).keys()]).toEqual(['index.json']);
    bytes[0] = 0x4a; // "index.json" becomes "Jndex.json" without a new checksum
    const err = await indexTarFile(write('bad.tar', bytes), 'bad.tar').catch((e: unknown) => e);
    expect(err).toMatchObject({
      code: 'ARCHIVE_CORRUPT',
      message: expect.stringMatching(/^bad\.tar: corrupt tar header at byte 0 .*bad checksum/),
    });
  });

  it('refuses a PAX record too large to be genuine, without reading it', async () => {
    const size = 2 * 1024 * 1024;
    const bytes = Buffer.concat([header('PaxHeader', 'x', size), Buffer.alloc(size), Buffer.alloc(1024)]);
    const err = await indexTarFile(write('pax.tar', bytes), 'pax.tar').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(OciError);
    expect((err as OciError).code).toBe('ARCHIVE_CORRUPT');
    expect((err as OciError).message).toMatch(/^pax\.tar: tar extended header at byte 0 is 2097152 bytes/);
  });

  it('names the archive when it cannot be opened', async () => {
    await expect(indexTarFile(join(dir, 'missing.tar'), 'missing.tar')).rejects.toMatchObject({
      code: 'ARCHIVE_UNREADABLE',
      message: expect.stringContaining('ENOENT'),
    });
  });
});
