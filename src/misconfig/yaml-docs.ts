import {
  isMap,
  isNode,
  isPair,
  isScalar,
  isSeq,
  LineCounter,
  parseAllDocuments,
  YAMLParseError,
  type Document,
} from 'yaml';
import { MisconfigError } from './errors.js';

export type YamlPath = readonly (string | number)[];

/** One document of a multi-document YAML stream, with a way back from a value path to a line. */
export interface YamlDoc {
  /** The document as plain JavaScript (null for an empty document). */
  value: unknown;
  /** 1-based line where the document's content starts. */
  startLine: number;
  /**
   * 1-based line of the node at `path`; when that node is absent (a field that was never set), the
   * line of its nearest present ancestor, so a "missing field" finding points at the object.
   */
  lineOf(path: YamlPath): number;
}

/** Largest input we parse; manifests are small and a huge stream is more likely an attack. */
const MAX_BYTES = 32 * 1024 * 1024;

/**
 * Parses every document of a YAML stream (`---` separated, as `helm template` prints it). Empty
 * documents are kept as `null` values so callers can skip them. Syntax errors raise a
 * MisconfigError naming the file and line; no partial results, because a broken stream cannot be
 * trusted to have been split into the right documents.
 */
export function parseYamlDocuments(text: string, path: string): YamlDoc[] {
  if (text.length > MAX_BYTES) {
    throw new MisconfigError('YAML_TOO_LARGE', `${path}: YAML file larger than ${MAX_BYTES} bytes`, {
      subject: path,
    });
  }
  const lc = new LineCounter();
  // uniqueKeys: false because the yaml package checks each new key against every earlier key of
  // its map, which is quadratic (a 40,000-key ConfigMap took 9 s); firstDuplicateKey below makes
  // the same check with a set per map.
  // logLevel 'error': a key that is a list or map (`? [a]`) is loaded as its printed form, and the
  // yaml package would also warn about it through process.emitWarning, on the scan's stderr.
  const parsed = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false, logLevel: 'error' });
  // An empty stream (only comments or nothing) is not an error: there is simply nothing to check.
  if (!Array.isArray(parsed)) return [];
  const docs: YamlDoc[] = [];
  for (const doc of parsed) {
    // The package would have reported a duplicate key among its other errors, roughly in document
    // order: report the one that starts first (the same error the package would have put first,
    // except in a few documents that have both a duplicate key and a syntax error).
    let err = doc.errors[0];
    const dup = firstDuplicateKey(doc.contents);
    if (dup !== null && (err === undefined || dup < err.pos[0])) {
      err = new YAMLParseError([dup, dup + 1], 'DUPLICATE_KEY', 'Map keys must be unique');
    }
    if (err) {
      const line = lc.linePos(err.pos[0]).line;
      throw new MisconfigError('YAML_PARSE', `${path}:${line}: invalid YAML: ${firstLine(err.message)}`, {
        subject: path,
        cause: err,
      });
    }
    let value: unknown;
    try {
      // maxAliasCount guards against alias expansion bombs ("billion laughs").
      value = doc.toJS({ maxAliasCount: 100 });
    } catch (e) {
      const line = lc.linePos(doc.range[0]).line;
      throw new MisconfigError(
        'YAML_PARSE',
        `${path}:${line}: cannot load YAML document: ${(e as Error).message}`,
        {
          subject: path,
          cause: e,
        },
      );
    }
    const start = isNode(doc.contents) && doc.contents.range ? doc.contents.range[0] : doc.range[0];
    const startLine = lc.linePos(start).line;
    docs.push({ value, startLine, lineOf: (p) => lineOfPath(doc, lc, p, startLine) });
  }
  return docs;
}

/**
 * Offset of the first map key that repeats an earlier key of the same map, in the order the yaml
 * package would have reported it (a key's own contents first, then the key, then its value), or
 * null. Keys are equal as the package's default `uniqueKeys` has them: two scalars with the same
 * (===) resolved value. A collection or alias key never equals another node there, so it is only
 * searched for maps inside it. An explicit stack, not recursion, so nesting depth is no risk.
 */
function firstDuplicateKey(root: unknown): number | null {
  const stack: unknown[] = [root];
  while (stack.length > 0) {
    const node = stack.pop();
    if (isMap(node)) {
      const seen = new Set<unknown>();
      // Visited in reverse so the stack pops them in document order; the duplicate check of a key
      // is queued between its key's and its value's contents.
      const work: unknown[] = [];
      for (const pair of node.items) {
        const key = pair.key;
        work.push(key);
        if (isScalar(key) && !Number.isNaN(key.value)) {
          // NaN !== NaN, so the package never calls two .nan keys equal; a Set would.
          if (seen.has(key.value)) work.push({ dupAt: key.range?.[0] ?? 0 });
          else seen.add(key.value);
        }
        work.push(pair.value);
      }
      for (let i = work.length - 1; i >= 0; i--) stack.push(work[i]);
    } else if (isSeq(node)) {
      for (let i = node.items.length - 1; i >= 0; i--) stack.push(node.items[i]);
    } else if (isPair(node)) {
      stack.push(node.value, node.key);
    } else if (typeof node === 'object' && node !== null && 'dupAt' in node) {
      return (node as { dupAt: number }).dupAt;
    }
  }
  return null;
}

function lineOfPath(doc: Document, lc: LineCounter, path: YamlPath, fallback: number): number {
  for (let n = path.length; n >= 0; n--) {
    const node = n === 0 ? doc.contents : doc.getIn(path.slice(0, n), true);
    if (isNode(node) && node.range) return lc.linePos(node.range[0]).line;
  }
  return fallback;
}

function firstLine(s: string): string {
  return s.split('\n')[0] ?? s;
}
