// The floor: the least work any scanner must do for an image — read every layer blob once,
// sha256 the compressed bytes and gunzip them — done sequentially in this process.
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { Writable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';

const MiB = 1 << 20;

/** Reads, hashes and gunzips the given layers; returns wall ms and the bytes seen. */
export async function floorOnce(layers) {
  let compressed = 0;
  let uncompressed = 0;
  const t0 = process.hrtime.bigint();
  for (const layer of layers) {
    const hash = createHash('sha256');
    const input = createReadStream(layer.path, { highWaterMark: MiB });
    input.on('data', (chunk) => {
      hash.update(chunk);
      compressed += chunk.length;
    });
    const sink = new Writable({
      highWaterMark: MiB,
      write(chunk, _enc, cb) {
        uncompressed += chunk.length;
        cb();
      },
    });
    await pipeline(input, createGunzip({ chunkSize: MiB }), sink);
    const digest = `sha256:${hash.digest('hex')}`;
    if (digest !== layer.digest)
      throw new Error(`floor: ${layer.path} hashes to ${digest}, not ${layer.digest}`);
  }
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  return { ms, compressed, uncompressed };
}

/** `runs` timed floors after `warmUp` untimed ones, all in this process. */
export async function floorRuns(layers, warmUp, runs) {
  for (let i = 0; i < warmUp; i++) await floorOnce(layers);
  const out = [];
  for (let i = 0; i < runs; i++) out.push(await floorOnce(layers));
  return out;
}
