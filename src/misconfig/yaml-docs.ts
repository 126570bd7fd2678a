import { isNode, LineCounter, parseAllDocuments, type Document } from 'yaml';
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
  const parsed = parseAllDocuments(text, { lineCounter: lc, prettyErrors: false });
  // An empty stream (only comments or nothing) is not an error: there is simply nothing to check.
  if (!Array.isArray(parsed)) return [];
  const docs: YamlDoc[] = [];
  for (const doc of parsed) {
    const err = doc.errors[0];
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
