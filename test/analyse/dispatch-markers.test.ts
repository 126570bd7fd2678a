import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileDispatcher, emptyLayerFacts } from '../../src/analyse/dispatch.js';
import type { Analyser, AnalyserContext } from '../../src/analyse/types.js';

// An analyser with markers is dropped from a file in which none of them occurs, before the file is
// joined into one buffer; a marker may fall anywhere, across any chunk boundary.

const CTX = {
  get scratchDir(): string {
    throw new Error('not used');
  },
} as AnalyserContext;

const MARKER = Buffer.from('\xff Go buildinf:', 'latin1');

/** Records whether it was asked to analyse, and what it was given. */
function markedAnalyser(markers: Buffer[], sniff?: (head: Buffer) => boolean) {
  const seen: Buffer[] = [];
  const analyser: Analyser = {
    name: 'marked',
    version: 1,
    maxFileSize: 1 << 20,
    wants: () => true,
    sniff,
    markers,
    analyse: (file) => {
      seen.push(Buffer.from(file.content));
      return { warnings: ['analysed'] };
    },
  };
  return { analyser, seen };
}

/** Pushes `content` through a sink in chunks of the given sizes (cycled); returns the layer facts. */
async function push(analyser: Analyser, content: Buffer, sizes: number[]) {
  const facts = emptyLayerFacts();
  const dispatcher = new FileDispatcher([analyser], CTX, facts);
  const sink = dispatcher.open('usr/bin/app', { size: content.length, mode: 0o755 }, [analyser]);
  for (let at = 0, i = 0; at < content.length; i++) {
    const n = Math.max(1, sizes[i % sizes.length]!);
    sink.write(content.subarray(at, at + n));
    at += n;
  }
  await sink.end();
  return facts;
}

function fileWith(marker: Buffer | undefined, at: number, length: number): Buffer {
  const content = Buffer.alloc(length, 0x41);
  marker?.copy(content, at);
  return content;
}

describe('analyser markers', () => {
  it('hands over a file whose marker straddles two chunks, whole and unchanged', async () => {
    const { analyser, seen } = markedAnalyser([MARKER]);
    const content = fileWith(MARKER, 90, 200);
    const facts = await push(analyser, content, [100]);
    expect(seen).toHaveLength(1);
    expect(seen[0]!.equals(content)).toBe(true);
    expect(facts.files).toEqual([
      { path: 'usr/bin/app', analyser: 'marked', facts: { warnings: ['analysed'] } },
    ]);
  });

  it('drops the analyser from a file without any marker, but records that the file was there', async () => {
    const { analyser, seen } = markedAnalyser([MARKER, Buffer.from('.dep-v0')]);
    const facts = await push(analyser, fileWith(undefined, 0, 5000), [1024]);
    expect(seen).toHaveLength(0);
    expect(facts.files).toEqual([{ path: 'usr/bin/app', analyser: 'marked', facts: {} }]);
  });

  it('finds any one of several markers, and still honours the sniff', async () => {
    const dep = Buffer.from('.dep-v0');
    const withDep = markedAnalyser([MARKER, dep]);
    await push(withDep.analyser, fileWith(dep, 4990, 5000), [7, 3]);
    expect(withDep.seen).toHaveLength(1);
    const sniffedAway = markedAnalyser([MARKER], () => false);
    const facts = await push(sniffedAway.analyser, fileWith(MARKER, 10, 100), [64]);
    expect(sniffedAway.seen).toHaveLength(0);
    expect(facts.files).toEqual([{ path: 'usr/bin/app', analyser: 'marked', facts: {} }]);
  });

  it('decides the same whatever the chunking', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.integer({ min: 16, max: 600 }),
        fc.nat(),
        fc.boolean(),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 8 }),
        async (length, offset, hasMarker, sizes) => {
          const at = offset % (length - MARKER.length + 1);
          const { analyser, seen } = markedAnalyser([MARKER]);
          await push(analyser, fileWith(hasMarker ? MARKER : undefined, at, length), sizes);
          expect(seen.length).toBe(hasMarker ? 1 : 0);
        },
      ),
      { numRuns: 300 },
    );
  });
});
