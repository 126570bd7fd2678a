import { createHash, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { FileDispatcher, emptyLayerFacts } from '../../src/analyse/dispatch.js';
import type { Analyser, AnalyserContext } from '../../src/analyse/types.js';

// A large wanted file is copied into one buffer of its size as it arrives, not held as chunks and
// joined at the end (which briefly needed twice its size). The analyser must still get exactly
// the bytes that were written, whatever the header said the size was.

const CTX = {
  get scratchDir(): string {
    throw new Error('not used');
  },
} as AnalyserContext;

function recordingAnalyser() {
  const seen: string[] = [];
  const analyser: Analyser = {
    name: 'whole-file',
    version: 1,
    maxFileSize: 64 << 20,
    wants: () => true,
    analyse: (file) => {
      seen.push(`${file.content.length}:${createHash('sha256').update(file.content).digest('hex')}`);
      return {};
    },
  };
  return { analyser, seen };
}

/** Writes `content` in chunks of `chunk` bytes, scribbling over each chunk once it was written. */
async function push(content: Buffer, declaredSize: number, chunk: number): Promise<string[]> {
  const { analyser, seen } = recordingAnalyser();
  const sink = new FileDispatcher([analyser], CTX, emptyLayerFacts()).open('var/lib/big', { size: declaredSize, mode: 0o644 }, [analyser]);
  for (let at = 0; at < content.length; at += chunk) {
    // A copy per chunk, as a stream gives; filling it afterwards shows whether the sink kept it.
    const piece = Buffer.from(content.subarray(at, at + chunk));
    sink.write(piece);
    piece.fill(0x58);
  }
  await sink.end();
  return seen;
}

const digest = (b: Buffer): string => `${b.length}:${createHash('sha256').update(b).digest('hex')}`;

describe('large files on their way to an analyser', () => {
  it('hands over a 12 MiB file written in 1 MiB and odd-sized chunks unchanged, without keeping the chunks', async () => {
    const content = randomBytes(12 << 20);
    expect(await push(content, content.length, 1 << 20)).toEqual([digest(content)]);
    expect(await push(content, content.length, 65_537)).toEqual([digest(content)]);
  });

  it('hands over every byte of a file longer than its header said, and only the bytes of a shorter one', async () => {
    const content = randomBytes(10 << 20);
    expect(await push(content, 9 << 20, 1 << 20)).toEqual([digest(content)]);
    const shorter = content.subarray(0, (9 << 20) + 5);
    expect(await push(shorter, 10 << 20, 1 << 20)).toEqual([digest(shorter)]);
  });
});

describe('analysers that read a file as it arrives', () => {
  const streaming = (name: string, fail = false): Analyser & { chunks: number[] } => {
    const chunks: number[] = [];
    return {
      name,
      version: 1,
      maxFileSize: 64 << 20,
      chunks,
      wants: () => true,
      analyse: () => ({ warnings: ['read whole'] }),
      stream: () => ({
        write: (c) => {
          if (fail) throw new Error('bad bytes');
          chunks.push(c.length);
        },
        end: () => ({ warnings: [`${name}: ${chunks.reduce((a, b) => a + b, 0)} bytes`] }),
      }),
    };
  };

  it('get the chunks in order beside an analyser that reads it whole; one that throws is a warning', async () => {
    const { analyser: whole, seen } = recordingAnalyser();
    const ok = streaming('ok');
    const bad = streaming('bad', true);
    const facts = emptyLayerFacts();
    const content = randomBytes(3 << 20);
    const sink = new FileDispatcher([whole, ok, bad], CTX, facts).open('var/lib/x', { size: content.length, mode: 0o644 }, [whole, ok, bad]);
    for (let at = 0; at < content.length; at += 1 << 20) sink.write(content.subarray(at, at + (1 << 20)));
    await sink.end();
    expect(ok.chunks).toEqual([1 << 20, 1 << 20, 1 << 20]);
    expect(seen).toEqual([digest(content)]);
    expect(facts.files.map((f) => [f.analyser, f.facts.warnings])).toEqual([
      ['ok', [`ok: ${3 << 20} bytes`]],
      ['bad', ['var/lib/x: bad analyser failed: bad bytes']],
      ['whole-file', undefined],
    ]);
  });
});
