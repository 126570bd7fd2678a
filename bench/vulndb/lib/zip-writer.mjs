// A minimal streaming zip writer: each entry is deflated with node:zlib (raw deflate, level 6 like
// Info-ZIP's default) and appended to the file at once, so memory holds one entry plus the central
// directory (about 80 bytes per entry). Writes ZIP64 end records when there are more than 65,535
// entries or offsets pass 4 GiB, as osv.dev's large all.zip files need.
import { closeSync, openSync, writeSync } from 'node:fs';
import { crc32, deflateRawSync } from 'node:zlib';

const U32 = 0xffffffff;

// 2024-10-01 00:00:00 in MS-DOS format.
const DOS_TIME = 0;
const DOS_DATE = ((2024 - 1980) << 9) | (10 << 5) | 1;

export class ZipWriter {
  constructor(path, { level = 6 } = {}) {
    this.fd = openSync(path, 'w');
    this.level = level;
    this.offset = 0;
    this.central = [];
    this.centralBytes = 0;
    this.entries = 0;
    this.uncompressed = 0;
  }

  #write(buf) {
    let done = 0;
    while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done);
    this.offset += buf.length;
  }

  add(name, data) {
    const nameBuf = Buffer.from(name, 'utf8');
    const body = deflateRawSync(data, { level: this.level });
    const crc = crc32(data);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4);
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(8, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(data.length, 22);
    local.writeUInt16LE(nameBuf.length, 26);
    local.writeUInt16LE(0, 28);
    const headerOffset = this.offset;
    this.#write(Buffer.concat([local, nameBuf]));
    this.#write(body);

    const zip64 = headerOffset >= U32;
    const extra = zip64 ? Buffer.alloc(12) : Buffer.alloc(0);
    if (zip64) {
      extra.writeUInt16LE(0x0001, 0);
      extra.writeUInt16LE(8, 2);
      extra.writeBigUInt64LE(BigInt(headerOffset), 4);
    }
    const cd = Buffer.alloc(46);
    cd.writeUInt32LE(0x02014b50, 0);
    cd.writeUInt16LE((3 << 8) | 45, 4);
    cd.writeUInt16LE(zip64 ? 45 : 20, 6);
    cd.writeUInt16LE(0x0800, 8);
    cd.writeUInt16LE(8, 10);
    cd.writeUInt16LE(DOS_TIME, 12);
    cd.writeUInt16LE(DOS_DATE, 14);
    cd.writeUInt32LE(crc, 16);
    cd.writeUInt32LE(body.length, 20);
    cd.writeUInt32LE(data.length, 24);
    cd.writeUInt16LE(nameBuf.length, 28);
    cd.writeUInt16LE(extra.length, 30);
    cd.writeUInt16LE(0, 32); // comment
    cd.writeUInt16LE(0, 34); // disk
    cd.writeUInt16LE(0, 36); // internal attributes
    cd.writeUInt32LE((0o100644 << 16) >>> 0, 38); // external: regular file 0644
    cd.writeUInt32LE(zip64 ? U32 : headerOffset, 42);
    const rec = Buffer.concat([cd, nameBuf, extra]);
    this.central.push(rec);
    this.centralBytes += rec.length;
    this.entries++;
    this.uncompressed += data.length;
  }

  close() {
    const cdOffset = this.offset;
    // Write the central directory in chunks of ~1 MiB.
    let chunk = [];
    let size = 0;
    for (const rec of this.central) {
      chunk.push(rec);
      size += rec.length;
      if (size > 1 << 20) {
        this.#write(Buffer.concat(chunk));
        chunk = [];
        size = 0;
      }
    }
    if (chunk.length) this.#write(Buffer.concat(chunk));
    this.central = [];
    const cdSize = this.offset - cdOffset;
    const needZip64 = this.entries >= 0xffff || cdOffset >= U32 || cdSize >= U32;
    if (needZip64) {
      const z64Offset = this.offset;
      const rec = Buffer.alloc(56);
      rec.writeUInt32LE(0x06064b50, 0);
      rec.writeBigUInt64LE(44n, 4);
      rec.writeUInt16LE((3 << 8) | 45, 12);
      rec.writeUInt16LE(45, 14);
      rec.writeUInt32LE(0, 16);
      rec.writeUInt32LE(0, 20);
      rec.writeBigUInt64LE(BigInt(this.entries), 24);
      rec.writeBigUInt64LE(BigInt(this.entries), 32);
      rec.writeBigUInt64LE(BigInt(cdSize), 40);
      rec.writeBigUInt64LE(BigInt(cdOffset), 48);
      const loc = Buffer.alloc(20);
      loc.writeUInt32LE(0x07064b50, 0);
      loc.writeUInt32LE(0, 4);
      loc.writeBigUInt64LE(BigInt(z64Offset), 8);
      loc.writeUInt32LE(1, 16);
      this.#write(Buffer.concat([rec, loc]));
    }
    const eocd = Buffer.alloc(22);
    eocd.writeUInt32LE(0x06054b50, 0);
    eocd.writeUInt16LE(0, 4);
    eocd.writeUInt16LE(0, 6);
    eocd.writeUInt16LE(needZip64 ? 0xffff : this.entries, 8);
    eocd.writeUInt16LE(needZip64 ? 0xffff : this.entries, 10);
    eocd.writeUInt32LE(needZip64 ? U32 : cdSize, 12);
    eocd.writeUInt32LE(needZip64 ? U32 : cdOffset, 16);
    eocd.writeUInt16LE(0, 20);
    this.#write(eocd);
    closeSync(this.fd);
    return { entries: this.entries, bytes: this.offset, uncompressed: this.uncompressed };
  }
}
