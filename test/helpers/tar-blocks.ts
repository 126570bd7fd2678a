/** Hand-made tar header blocks, for tests that need what no tar writer produces. */

/** Rewrites the checksum of the header block at `headerAt` after a test has edited it. */
export function fixChecksum(tar: Buffer, headerAt = 0): void {
  tar.fill(0x20, headerAt + 148, headerAt + 156);
  let sum = 0;
  for (let i = 0; i < 512; i++) sum += tar[headerAt + i]!;
  tar.write(`${sum.toString(8).padStart(6, '0')}\0 `, headerAt + 148, 'latin1');
}

/** A 512-byte POSIX ustar header with the given name, type flag and size, and a valid checksum. */
export function ustarHeader(name: string, type: string, size: number): Buffer {
  const h = Buffer.alloc(512);
  h.write(name, 0, 'utf8');
  h.write('0000644\0', 100, 'latin1');
  h.write(`${size.toString(8).padStart(11, '0')}\0`, 124, 'latin1');
  h.write(type, 156, 'latin1');
  h.write('ustar\x0000', 257, 'latin1');
  fixChecksum(h);
  return h;
}

/** PAX extended header records ("LENGTH KEY=VALUE\n", LENGTH in bytes, counting itself). */
export function paxRecords(records: string[]): Buffer {
  const text = records
    .map((r) => {
      let n = Buffer.byteLength(r) + 3;
      while (Buffer.byteLength(`${n} ${r}\n`) !== n) n++;
      return `${n} ${r}\n`;
    })
    .join('');
  return Buffer.from(text);
}

/** `body` followed by NULs up to a whole number of 512-byte blocks. */
export function padToBlock(body: Buffer): Buffer {
  return Buffer.concat([body, Buffer.alloc((512 - (body.length % 512)) % 512)]);
}
