import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { blockSum, blockSumJs, blockSumUsesWasm } from '../../src/oci/tar-header.js';

describe('tar header byte sum', () => {
  it('runs in WebAssembly on this Node', () => {
    expect(blockSumUsesWasm()).toBe(true);
  });

  it('agrees with the JavaScript sum on any block, at any offset in its buffer', () => {
    fc.assert(
      fc.property(fc.uint8Array({ minLength: 512, maxLength: 600 }), fc.nat(88), (bytes, shift) => {
        const at = Math.min(shift, bytes.length - 512);
        const block = bytes.subarray(at, at + 512);
        expect(blockSum(block)).toBe(blockSumJs(block));
      }),
      { numRuns: 2000 },
    );
    expect(blockSum(new Uint8Array(512).fill(255))).toBe(512 * 255);
    expect(blockSum(new Uint8Array(512))).toBe(0);
  });
});
