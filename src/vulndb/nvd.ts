import type { StoredSeverity } from './store.js';

/**
 * NVD CVE API / feed format 2.0: `{format: "NVD_CVE", version: "2.0", vulnerabilities: [{cve}]}`.
 * Only the CVSS vectors are kept; descriptions and configurations are not used for matching.
 */

export interface NvdSeverity {
  cveId: string;
  vectors: StoredSeverity[];
  /** Base score of the vector the matcher is most likely to rank by (V3, else V4, else V2). */
  score?: number;
  modifiedMs: number;
}

interface CvssMetric {
  source?: unknown;
  type?: unknown;
  cvssData?: { vectorString?: unknown; baseScore?: unknown; version?: unknown };
}

// NVD has one list per CVSS version; within a list several sources may score the CVE.
const METRIC_KEYS: Array<{ key: string; type: string }> = [
  { key: 'cvssMetricV40', type: 'CVSS_V4' },
  { key: 'cvssMetricV31', type: 'CVSS_V3' },
  { key: 'cvssMetricV30', type: 'CVSS_V3' },
  { key: 'cvssMetricV2', type: 'CVSS_V2' },
];

/** The NVD-assigned (`Primary`) score when there is one, else the first secondary one. */
function pick(list: unknown): { vector: string; score?: number } | undefined {
  if (!Array.isArray(list)) return undefined;
  const usable = (list as CvssMetric[]).filter((m) => typeof m?.cvssData?.vectorString === 'string');
  const chosen = usable.find((m) => m.type === 'Primary') ?? usable[0];
  if (chosen === undefined) return undefined;
  const data = chosen.cvssData!;
  return {
    vector: data.vectorString as string,
    ...(typeof data.baseScore === 'number' ? { score: data.baseScore } : {}),
  };
}

/** One element of `vulnerabilities[]`; undefined when it is not a CVE with any CVSS vector. */
export function parseNvdItem(item: unknown): NvdSeverity | undefined {
  const cve = (item as { cve?: unknown } | null)?.cve as
    { id?: unknown; lastModified?: unknown; metrics?: Record<string, unknown> } | undefined;
  if (cve === undefined || cve === null || typeof cve.id !== 'string') return undefined;
  const metrics = cve.metrics ?? {};
  const byType = new Map<string, { vector: string; score?: number }>();
  for (const { key, type } of METRIC_KEYS) {
    if (byType.has(type)) continue; // V3.1 wins over V3.0
    const chosen = pick(metrics[key]);
    if (chosen !== undefined) byType.set(type, chosen);
  }
  if (byType.size === 0) return undefined;
  const vectors: StoredSeverity[] = [...byType].map(([type, v]) => ({ type, score: v.vector }));
  const scoreFrom = byType.get('CVSS_V3') ?? byType.get('CVSS_V4') ?? byType.get('CVSS_V2');
  // NVD timestamps have no zone ("2024-01-02T03:04:05.678"); they are UTC.
  const lm = typeof cve.lastModified === 'string' ? cve.lastModified : '';
  const parsed = Date.parse(/[zZ]|[+-]\d\d:?\d\d$/.test(lm) ? lm : `${lm}Z`);
  const out: NvdSeverity = {
    cveId: cve.id,
    vectors,
    modifiedMs: Number.isNaN(parsed) ? 0 : parsed,
  };
  if (scoreFrom?.score !== undefined) out.score = scoreFrom.score;
  return out;
}

/** Whether the first bytes of a JSON document look like an NVD 2.0 feed rather than OSV. */
export function looksLikeNvdFeed(head: string): boolean {
  if (/"format"\s*:\s*"NVD_CVE"/.test(head)) return true;
  return /"vulnerabilities"\s*:\s*\[/.test(head) && /"cve"\s*:\s*\{/.test(head);
}

/**
 * Incremental scanner that yields each object directly inside the top-level document's array
 * value (for an NVD feed: each element of `vulnerabilities`) without holding the whole feed, so
 * a multi-hundred-megabyte year feed is read in constant memory.
 */
export class ArrayElementScanner {
  private readonly stack: number[] = [];
  private inString = false;
  private escape = false;
  private parts: Buffer[] = [];
  private capturing = false;
  private capturedBytes = 0;
  private oversized = false;

  constructor(
    private readonly onElement: (json: string) => void,
    private readonly maxElementBytes: number,
    private readonly onOversized: (bytes: number) => void,
  ) {}

  write(chunk: Buffer): void {
    let start = this.capturing ? 0 : -1;
    for (let i = 0; i < chunk.length; i++) {
      const c = chunk[i]!;
      if (this.inString) {
        if (this.escape) this.escape = false;
        else if (c === 0x5c) this.escape = true;
        else if (c === 0x22) this.inString = false;
        continue;
      }
      if (c === 0x22) {
        this.inString = true;
      } else if (c === 0x7b || c === 0x5b) {
        // An object opening inside [top-level object, array] is one element.
        if (c === 0x7b && this.stack.length === 2 && this.stack[0] === 0x7b && this.stack[1] === 0x5b) {
          this.capturing = true;
          this.capturedBytes = 0;
          this.oversized = false;
          this.parts = [];
          start = i;
        }
        this.stack.push(c);
      } else if (c === 0x7d || c === 0x5d) {
        this.stack.pop();
        if (this.capturing && this.stack.length === 2) {
          this.take(chunk.subarray(start, i + 1));
          this.capturing = false;
          start = -1;
          if (this.oversized) this.onOversized(this.capturedBytes);
          else this.onElement(Buffer.concat(this.parts).toString('utf8'));
          this.parts = [];
        }
      }
    }
    if (this.capturing && start >= 0) this.take(chunk.subarray(start));
  }

  private take(piece: Buffer): void {
    this.capturedBytes += piece.length;
    if (this.oversized) return;
    if (this.capturedBytes > this.maxElementBytes) {
      this.oversized = true;
      this.parts = [];
      return;
    }
    // Copy: the chunk's backing buffer may be reused by the stream.
    this.parts.push(Buffer.from(piece));
  }
}
