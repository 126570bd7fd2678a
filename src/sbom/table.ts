/**
 * The human-readable listing: a short header about the image, then one aligned row per package.
 *
 *   Image:    docker.io/library/debian:12
 *   Digest:   sha256:...
 *   OS:       Debian GNU/Linux 12 (bookworm)
 *   Packages: 3 (deb 2, npm 1)
 *
 *   TYPE  NAME     VERSION  SOURCE   LAYER  PATH
 *   deb   libssl3  3.0.11-1 openssl  0      /var/lib/dpkg/status
 *
 * Rows are sorted by type, then name. Columns are separated by two spaces; empty cells show `-`.
 * ANSI colours are used only when `color` is true (callers pass `process.stdout.isTTY`).
 */
import type { OsInfo, Package } from './model.js';
import { comparePackages } from './json.js';
import { packageDisplayName } from './purl.js';
import type { ScanResult } from './result.js';

export interface TableOptions {
  /** Use ANSI colours and bold. Pass false when the output is not a terminal. */
  color: boolean;
}

const ANSI = {
  bold: '\u001b[1m',
  dim: '\u001b[2m',
  cyan: '\u001b[36m',
  yellow: '\u001b[33m',
  reset: '\u001b[0m',
};

const HEADERS = ['TYPE', 'NAME', 'VERSION', 'SOURCE', 'LAYER', 'PATH'] as const;

function describeOs(os: OsInfo | null): string {
  if (!os) return 'unknown';
  return os.name ?? [os.family, os.version, os.codename ? `(${os.codename})` : ''].filter(Boolean).join(' ');
}

function countByType(packages: Package[]): string {
  const counts = new Map<string, number>();
  for (const pkg of packages) counts.set(pkg.type, (counts.get(pkg.type) ?? 0) + 1);
  const parts = [...counts.entries()]
    .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
    .map(([t, n]) => `${t} ${n}`);
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

/** Renders the scan as a text table (lines joined with `\n`, no trailing newline). */
export function toTable(result: ScanResult, options: TableOptions = { color: false }): string {
  const paint = (code: string, text: string): string =>
    options.color ? `${code}${text}${ANSI.reset}` : text;

  const label = (name: string): string => paint(ANSI.bold, `${name}:`.padEnd(10));
  const lines: string[] = [
    `${label('Image')}${result.image.reference}`,
    `${label('Digest')}${result.image.manifestDigest}`,
    `${label('OS')}${describeOs(result.os)}`,
    `${label('Packages')}${countByType(result.packages)}`,
  ];

  const rows = [...result.packages].sort(comparePackages).map(row);
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

  if (result.warnings.length > 0) {
    lines.push('', paint(ANSI.yellow, 'Warnings:'));
    for (const w of result.warnings) lines.push(`  - ${w}`);
  }
  return lines.join('\n');
}
