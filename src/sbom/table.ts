/**
 * The human-readable listing: a short header about the image, then one aligned row per package.
 *
 *   Image:    docker.io/library/debian:12
 *   Digest:   sha256:...
 *   Platform: linux/amd64
 *   OS:       Debian GNU/Linux 12 (bookworm)
 *   Packages: 3 (deb 2, npm 1)
 *
 *   TYPE  NAME     VERSION  SOURCE   LAYER  PATH
 *   deb   libssl3  3.0.11-1 openssl  0      /var/lib/dpkg/status
 *
 * Rows are sorted by type, then name. Columns are separated by two spaces; empty cells show `-`.
 * ANSI colours are used only when `color` is true (callers pass `process.stdout.isTTY`).
 *
 * When the result carries vulnerabilities (a `scan`, not an `sbom`), the package rows give way to
 * the findings, grouped by package; the `Packages:` summary line stays:
 *
 *   libssl3 3.0.11-1~deb12u2 (deb, layer 0, /var/lib/dpkg/status)
 *     ID             SEVERITY  FIXED IN          TITLE
 *     CVE-2024-0001  critical  3.0.13-1~deb12u1  Buffer overflow in ...
 *
 *   Vulnerabilities: 1 (critical 1, high 0, medium 0, low 0, unknown 0)
 *   Suppressed: 1
 *     - CVE-2023-9999 (login 1:4.13+dfsg1-1+b1): not reachable [.portcullisignore]
 *
 * Packages are ordered by their worst finding, then name; findings by severity, then id. The
 * finding columns are aligned across all packages.
 *
 * Secrets and misconfigurations, when the scan looked for them, follow in sections of their own,
 * each ending with a totals line. A secret is shown only by its redacted form; one whose file a
 * later layer deleted is marked, since it still ships inside the image:
 *
 *   Secrets
 *     SEVERITY  RULE               WHERE                LAYER  SECRET
 *     critical  github-pat         config Env[2]        -      ghp_…(40 chars)
 *     high      private-key        /root/.ssh/id_rsa:1  1      ----…(1679 chars) (deleted in a later layer)
 *
 *   Secrets: 2 (critical 1, high 1, medium 0, low 0, unknown 0)
 *
 *   Misconfigurations
 *     ID          SEVERITY  TITLE               WHERE        REF      MESSAGE
 *     PC-IMG-001  medium    Image runs as root  config.User  CIS 4.1  the image sets no USER, so it runs as root
 *       Remedy: Add a USER instruction naming an unprivileged user
 *
 *   Misconfigurations: 1 (critical 0, high 0, medium 1, low 0, unknown 0)
 *
 * Both are sorted by severity, worst first, then by rule id and where. A config-only result (a
 * Dockerfile or a folder of manifests: no packages and no manifest digest) keeps only the
 * `Image:` line of the header.
 */
import type { Finding, Misconfiguration, SecretFinding, Severity } from './finding.js';
import { severityRank } from './finding.js';
import type { OsInfo, Package } from './model.js';
import { comparePackages } from './json.js';
import { packageDisplayName } from './purl.js';
import type { ScanResult } from './result.js';
import { byCodeUnits as cmp } from '../text-order.js';
import { printable } from '../terminal-text.js';

export interface TableOptions {
  /** Use ANSI colours and bold. Pass false when the output is not a terminal. */
  color: boolean;
}

const ANSI = {
  bold: '\u001b[1m',
  dim: '\u001b[2m',
  cyan: '\u001b[36m',
  red: '\u001b[31m',
  yellow: '\u001b[33m',
  blue: '\u001b[34m',
  reset: '\u001b[0m',
};

/** How each severity is painted when colours are on. */
const SEVERITY_STYLE: Record<Severity, string> = {
  critical: ANSI.bold + ANSI.red,
  high: ANSI.red,
  medium: ANSI.yellow,
  low: ANSI.blue,
  none: ANSI.dim,
  unknown: ANSI.dim,
};

/** Longest title shown in the vulnerability table, in characters (longer ones end with `...`). */
export const TITLE_WIDTH = 60;

const FINDING_HEADERS = ['ID', 'SEVERITY', 'FIXED IN', 'TITLE'] as const;

const HEADERS = ['TYPE', 'NAME', 'VERSION', 'SOURCE', 'LAYER', 'PATH'] as const;

function describeOs(os: OsInfo | null): string {
  if (!os) return 'unknown';
  return os.name ?? [os.family, os.version, os.codename ? `(${os.codename})` : ''].filter(Boolean).join(' ');
}

function countByType(packages: Package[]): string {
  const counts = new Map<string, number>();
  for (const pkg of packages) counts.set(pkg.type, (counts.get(pkg.type) ?? 0) + 1);
  const parts = [...counts.entries()].sort(([a], [b]) => cmp(a, b)).map(([t, n]) => `${t} ${n}`);
  return parts.length > 0 ? `${packages.length} (${parts.join(', ')})` : '0';
}

function sourceCell(pkg: Package): string {
  if (pkg.sourceName === undefined) return '-';
  if (pkg.sourceVersion !== undefined && pkg.sourceVersion !== pkg.version)
    return `${pkg.sourceName}@${pkg.sourceVersion}`;
  return pkg.sourceName;
}

function pathCell(pkg: Package): string {
  const [first, ...rest] = pkg.paths;
  if (first === undefined) return '-';
  return rest.length > 0 ? `${first} (+${rest.length} more)` : first;
}

function row(pkg: Package): string[] {
  return [
    pkg.type,
    packageDisplayName(pkg),
    pkg.version || '-',
    sourceCell(pkg),
    String(pkg.layer.index),
    pathCell(pkg),
  ];
}

function truncate(text: string, width: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= width ? flat : `${flat.slice(0, width - 3).trimEnd()}...`;
}

/** Findings of one installed package (same purl, first path and layer). */
interface FindingGroup {
  pkg: Finding['package'];
  findings: Finding[];
  worst: number;
}

function groupFindings(findings: readonly Finding[]): FindingGroup[] {
  const groups = new Map<string, FindingGroup>();
  for (const f of findings) {
    const key = [f.package.purl, f.package.paths[0] ?? '', f.package.layer.index].join('\u0000');
    let group = groups.get(key);
    if (!group) {
      group = { pkg: f.package, findings: [], worst: -1 };
      groups.set(key, group);
    }
    group.findings.push(f);
    group.worst = Math.max(group.worst, severityRank(f.severity));
  }
  const bySeverityThenId = (a: Finding, b: Finding): number =>
    severityRank(b.severity) - severityRank(a.severity) || cmp(a.id, b.id);
  for (const g of groups.values()) g.findings.sort(bySeverityThenId);
  return [...groups.values()].sort(
    (a, b) =>
      b.worst - a.worst ||
      cmp(packageDisplayName(a.pkg), packageDisplayName(b.pkg)) ||
      cmp(a.pkg.version, b.pkg.version) ||
      cmp(a.pkg.purl, b.pkg.purl) ||
      cmp(a.pkg.paths[0] ?? '', b.pkg.paths[0] ?? ''),
  );
}

/** `critical 1, high 0, medium 0, low 0, unknown 0`; `none` is listed only when some finding has it. */
function severityCounts(findings: readonly { severity: Severity }[]): string {
  const counts = new Map<Severity, number>();
  for (const f of findings) counts.set(f.severity, (counts.get(f.severity) ?? 0) + 1);
  const shown: Severity[] = ['critical', 'high', 'medium', 'low'];
  if (counts.has('none')) shown.push('none');
  shown.push('unknown');
  return shown.map((s) => `${s} ${counts.get(s) ?? 0}`).join(', ');
}

function findingRow(f: Finding): string[] {
  return [
    f.id,
    f.severity,
    f.fixedVersions.length > 0 ? f.fixedVersions.join(', ') : 'no fix',
    truncate(f.summary ?? (f.aliases.join(', ') || '-'), TITLE_WIDTH),
  ];
}

function vulnerabilityLines(
  result: ScanResult,
  findings: readonly Finding[],
  paint: (code: string, text: string) => string,
): string[] {
  const lines: string[] = [];
  const groups = groupFindings(findings);
  const rows = groups.flatMap((g) => g.findings.map(findingRow));
  const widths = FINDING_HEADERS.map((h, col) =>
    Math.max(h.length, ...rows.map((r) => (r[col] ?? '').length)),
  );
  const format = (cells: readonly string[], style?: (col: number, text: string) => string): string =>
    '  ' +
    cells
      .map((cell, col) => {
        const padded = col === cells.length - 1 ? cell : cell.padEnd(widths[col] ?? 0);
        return style ? style(col, padded) : padded;
      })
      .join('  ');

  for (const g of groups) {
    const where = [g.pkg.type, `layer ${g.pkg.layer.index}`, ...g.pkg.paths.slice(0, 1)].join(', ');
    lines.push(
      '',
      `${paint(ANSI.bold, `${packageDisplayName(g.pkg)} ${g.pkg.version || '-'}`)} ${paint(ANSI.dim, `(${where})`)}`,
      format(FINDING_HEADERS, (_col, text) => paint(ANSI.bold, text)),
    );
    for (const f of g.findings) {
      lines.push(
        format(findingRow(f), (col, text) =>
          col === 1
            ? paint(SEVERITY_STYLE[f.severity], text)
            : col === 2 && f.fixedVersions.length === 0
              ? paint(ANSI.dim, text)
              : text,
        ),
      );
    }
  }

  lines.push('', `${paint(ANSI.bold, 'Vulnerabilities:')} ${findings.length} (${severityCounts(findings)})`);
  const suppressed = result.suppressed ?? [];
  if (suppressed.length > 0) {
    lines.push(`${paint(ANSI.bold, 'Suppressed:')} ${suppressed.length}`);
    const sorted = [...suppressed].sort(
      (a, b) =>
        cmp(a.finding.id, b.finding.id) ||
        cmp(packageDisplayName(a.finding.package), packageDisplayName(b.finding.package)) ||
        cmp(a.finding.package.purl, b.finding.package.purl),
    );
    for (const s of sorted) {
      const p = s.finding.package;
      lines.push(`  - ${s.finding.id} (${packageDisplayName(p)} ${p.version}): ${s.reason} [${s.source}]`);
    }
  }
  return lines;
}

const SECRET_HEADERS = ['SEVERITY', 'RULE', 'WHERE', 'LAYER', 'SECRET'] as const;

const MISCONFIG_HEADERS = ['ID', 'SEVERITY', 'TITLE', 'WHERE', 'REF', 'MESSAGE'] as const;

/** Shown after the redacted value of a secret whose file a later layer removed. */
export const DELETED_MARKER = '(deleted in a later layer)';

type Paint = (code: string, text: string) => string;

/** Formats rows of cells into aligned lines indented by two spaces; the last column is not padded. */
function alignedLines(
  headers: readonly string[],
  rows: readonly string[][],
  paint: Paint,
  style: (row: number, col: number, text: string) => string,
): string[] {
  const widths = headers.map((h, col) => Math.max(h.length, ...rows.map((r) => (r[col] ?? '').length)));
  const format = (cells: readonly string[], paintCell: (col: number, text: string) => string): string =>
    '  ' +
    cells
      .map((cell, col) => paintCell(col, col === cells.length - 1 ? cell : cell.padEnd(widths[col] ?? 0)))
      .join('  ');
  return [
    format(headers, (_col, text) => paint(ANSI.bold, text)),
    ...rows.map((r, i) => format(r, (col, text) => style(i, col, text))),
  ];
}

function secretWhere(s: SecretFinding): string {
  if (s.location === 'file') return s.line !== undefined ? `${s.target}:${s.line}` : s.target;
  if (s.location === 'config') return `config ${s.target}`;
  return s.target;
}

function compareSecretsBySeverity(a: SecretFinding, b: SecretFinding): number {
  return (
    severityRank(b.severity) - severityRank(a.severity) ||
    cmp(a.ruleId, b.ruleId) ||
    cmp(a.location, b.location) ||
    cmp(a.target, b.target) ||
    (a.line ?? 0) - (b.line ?? 0) ||
    (a.layer?.index ?? -1) - (b.layer?.index ?? -1) ||
    cmp(a.redacted, b.redacted)
  );
}

function secretLines(secrets: readonly SecretFinding[], paint: Paint): string[] {
  const sorted = [...secrets].sort(compareSecretsBySeverity);
  const lines: string[] = [];
  if (sorted.length > 0) {
    const rows = sorted.map((s) => [
      s.severity,
      s.ruleId,
      secretWhere(s),
      s.layer ? String(s.layer.index) : '-',
      s.deleted === true ? `${s.redacted} ${DELETED_MARKER}` : s.redacted,
    ]);
    lines.push(
      '',
      paint(ANSI.bold, 'Secrets'),
      ...alignedLines(SECRET_HEADERS, rows, paint, (i, col, text) => {
        const s = sorted[i];
        if (!s) return text;
        if (col === 0) return paint(SEVERITY_STYLE[s.severity], text);
        if (col === 3) return paint(ANSI.dim, text);
        if (col === 4 && s.deleted === true) {
          return `${text.slice(0, -DELETED_MARKER.length)}${paint(ANSI.yellow, DELETED_MARKER)}`;
        }
        return text;
      }),
    );
  }
  lines.push('', `${paint(ANSI.bold, 'Secrets:')} ${secrets.length} (${severityCounts(secrets)})`);
  return lines;
}

function misconfigWhere(m: Misconfiguration): string {
  return m.line !== undefined ? `${m.target}:${m.line}` : m.target;
}

function misconfigRef(m: Misconfiguration): string {
  const refs = [m.cis !== undefined ? `CIS ${m.cis}` : '', m.pss !== undefined ? `PSS ${m.pss}` : ''];
  return refs.filter(Boolean).join(', ') || '-';
}

function misconfigurationLines(misconfigurations: readonly Misconfiguration[], paint: Paint): string[] {
  const sorted = [...misconfigurations].sort(
    (a, b) =>
      severityRank(b.severity) - severityRank(a.severity) ||
      cmp(a.id, b.id) ||
      cmp(a.target, b.target) ||
      (a.line ?? 0) - (b.line ?? 0) ||
      cmp(a.message, b.message),
  );
  const lines: string[] = [];
  if (sorted.length > 0) {
    const rows = sorted.map((m) => [
      m.id,
      m.severity,
      truncate(m.title, TITLE_WIDTH),
      misconfigWhere(m),
      misconfigRef(m),
      m.message.replace(/\s+/g, ' ').trim(),
    ]);
    const [header = '', ...body] = alignedLines(MISCONFIG_HEADERS, rows, paint, (i, col, text) =>
      col === 1 ? paint(SEVERITY_STYLE[sorted[i]?.severity ?? 'unknown'], text) : text,
    );
    lines.push('', paint(ANSI.bold, 'Misconfigurations'), header);
    body.forEach((line, i) => {
      lines.push(line);
      const remedy = sorted[i]?.remedy.replace(/\s+/g, ' ').trim();
      if (remedy) lines.push(`    ${paint(ANSI.dim, 'Remedy:')} ${remedy}`);
    });
  }
  lines.push(
    '',
    `${paint(ANSI.bold, 'Misconfigurations:')} ${misconfigurations.length} (${severityCounts(misconfigurations)})`,
  );
  return lines;
}

/** A scan of a Dockerfile or a folder of manifests: no image, so no digest, OS or packages to report. */
function isConfigOnly(result: ScanResult): boolean {
  return result.image.manifestDigest === '' && result.image.layers.length === 0;
}

/**
 * A copy of a result with control characters in every string shown as escapes: package names,
 * versions, paths, the OS name and warnings come from the image, and the table goes to a
 * terminal (where `\x1b[2J` would clear the screen). The table's own colours are added after.
 */
function printableCopy<T>(value: T): T {
  if (typeof value === 'string') return printable(value) as T;
  if (Array.isArray(value)) return value.map((v: unknown) => printableCopy(v)) as T;
  if (value !== null && typeof value === 'object' && Object.getPrototypeOf(value) === Object.prototype) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, printableCopy(v)])) as T;
  }
  return value;
}

/** Renders the scan as a text table (lines joined with `\n`, no trailing newline). */
export function toTable(result: ScanResult, options: TableOptions = { color: false }): string {
  return renderTable(printableCopy(result), options);
}

function renderTable(result: ScanResult, options: TableOptions): string {
  const paint = (code: string, text: string): string =>
    options.color ? `${code}${text}${ANSI.reset}` : text;

  const label = (name: string): string => paint(ANSI.bold, `${name}:`.padEnd(10));
  const lines: string[] = [`${label('Image')}${result.image.reference}`];
  if (!isConfigOnly(result)) {
    // A root filesystem folder has no digest; an image says which platform of an index it is.
    if (result.image.manifestDigest !== '') lines.push(`${label('Digest')}${result.image.manifestDigest}`);
    const p = result.image.platform;
    if (p) lines.push(`${label('Platform')}${[p.os, p.architecture, p.variant].filter(Boolean).join('/')}`);
    lines.push(
      `${label('OS')}${describeOs(result.os)}`,
      `${label('Packages')}${countByType(result.packages)}`,
    );
  }

  const rows = result.vulnerabilities ? [] : [...result.packages].sort(comparePackages).map(row);
  if (result.vulnerabilities) lines.push(...vulnerabilityLines(result, result.vulnerabilities, paint));
  if (rows.length > 0) {
    const widths = HEADERS.map((h, col) => Math.max(h.length, ...rows.map((r) => (r[col] ?? '').length)));
    const format = (cells: readonly string[], style?: (col: number, text: string) => string): string =>
      cells
        .map((cell, col) => {
          // The last column is not padded, so lines carry no trailing spaces.
          const padded = col === cells.length - 1 ? cell : cell.padEnd(widths[col] ?? 0);
          return style ? style(col, padded) : padded;
        })
        .join('  ');
    lines.push(
      '',
      format(HEADERS, (_col, text) => paint(ANSI.bold, text)),
    );
    for (const r of rows) {
      lines.push(
        format(r, (col, text) =>
          col === 0 ? paint(ANSI.cyan, text) : col === 4 ? paint(ANSI.dim, text) : text,
        ),
      );
    }
  }

  if (result.secrets) lines.push(...secretLines(result.secrets, paint));
  if (result.misconfigurations) lines.push(...misconfigurationLines(result.misconfigurations, paint));

  if (result.warnings.length > 0) {
    lines.push('', paint(ANSI.yellow, 'Warnings:'));
    for (const w of result.warnings) lines.push(`  - ${w}`);
  }
  return lines.join('\n');
}
