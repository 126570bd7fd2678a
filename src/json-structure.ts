/**
 * How JSON text is built, read before JSON.parse is trusted with it. JSON.parse keeps every open
 * array and object on its own stacks, so memory follows nesting and container count, not size:
 * 4 MiB of `[[[[…]]]]` costs it some 230 MB, 16 MiB 880 MB. One linear pass that skips strings
 * (and their escapes) says whether a text goes past given bounds; it does not validate the JSON,
 * JSON.parse does that afterwards.
 */
export interface JsonBounds {
  /** Deepest nesting of arrays and objects allowed. */
  maxDepth: number;
  /**
   * Most arrays and objects allowed, with every eighth comma counted as one more (a plain array
   * element costs less than a container, but not nothing). Unbounded when absent.
   */
  maxContainers?: number;
}

/** 'depth' or 'containers' when `text` goes past that bound, else undefined. Stops at the first. */
export function jsonPastBounds(text: string, bounds: JsonBounds): 'depth' | 'containers' | undefined {
  const maxContainers = bounds.maxContainers ?? Number.POSITIVE_INFINITY;
  let depth = 0;
  let count = 0;
  let commas = 0;
  const n = text.length;
  for (let i = 0; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x5b /* [ */ || c === 0x7b /* { */) {
      if (++depth > bounds.maxDepth) return 'depth';
      if (++count > maxContainers) return 'containers';
    } else if (c === 0x5d /* ] */ || c === 0x7d /* } */) {
      depth--;
    } else if (c === 0x2c /* , */) {
      if ((++commas & 7) === 0 && ++count > maxContainers) return 'containers';
    } else if (c === 0x22 /* " */) {
      for (i++; i < n; i++) {
        const s = text.charCodeAt(i);
        if (s === 0x5c /* \ */) i++;
        else if (s === 0x22) break;
      }
    }
  }
  return undefined;
}

/**
 * Deepest nesting accepted in an image manifest, index or config. Real ones nest five or six
 * levels (an index's platform, a config's healthcheck); 64 leaves room for any extension.
 */
export const MAX_DOCUMENT_DEPTH = 64;
