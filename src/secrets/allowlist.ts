/**
 * Where not to look and what not to report. Paths are image paths without a leading slash
 * (`usr/share/doc/...`); a leading `/` or `./` is ignored so callers may pass either form.
 */

/** Strip `/` and `./` prefixes so `/etc/x`, `./etc/x` and `etc/x` compare equal. */
export function normalizePath(path: string): string {
  let p = path.includes('\\') ? path.replace(/\\/g, '/') : path;
  while (p.startsWith('./') || p.startsWith('/')) p = p.startsWith('./') ? p.slice(2) : p.slice(1);
  return p;
}

function escapeRegex(s: string): string {
  return s.replace(/[.+^$()|[\]\\]/g, '\\$&');
}

/**
 * Glob to anchored RegExp: `**` spans folders, `*` and `?` stay inside one segment, `{a,b}` is an
 * alternation (not nested). A glob without `/` matches the base name anywhere, like .gitignore.
 */
export function globToRegExp(glob: string): RegExp {
  const g = normalizePath(glob.trim());
  const body = translate(g);
  if (!g.includes('/')) return new RegExp(`(?:^|/)${body}$`);
  // A leading `**/` only says where the rest may start: at the beginning or after any slash.
  const lead = '(?:.*/)?';
  return new RegExp(body.startsWith(lead) ? `(?:^|/)${body.slice(lead.length)}$` : `^${body}$`);
}

function translate(g: string): string {
  let out = '';
  for (let i = 0; i < g.length; i++) {
    const c = g.charAt(i);
    if (c === '*' && g.charAt(i + 1) === '*') {
      const atStart = i === 0 || g.charAt(i - 1) === '/';
      const slashAfter = g.charAt(i + 2) === '/';
      if (atStart && slashAfter) {
        // `**/`: zero or more whole folders, i.e. nothing or anything up to a slash. Written this
        // way rather than as repeated `[^/]*/` groups, which backtrack segment by segment.
        out += '(?:.*/)?';
        i += 2;
      } else {
        out += '.*';
        i += 1;
      }
    } else if (c === '*') {
      out += '[^/]*';
    } else if (c === '?') {
      out += '[^/]';
    } else if (c === '{') {
      const close = g.indexOf('}', i);
      if (close === -1) {
        out += '\\{';
        continue;
      }
      const parts = g.slice(i + 1, close).split(',');
      out += `(?:${parts.map(translate).join('|')})`;
      i = close;
    } else {
      out += escapeRegex(c);
    }
  }
  // `dir/**` also matches `dir` itself.
  return out.replace(/\/\.\*$/, '(?:/.*)?');
}

/**
 * The text that any path matching `glob` must contain: the glob's literal runs, outside wildcards
 * and `{...}` alternations, without the slashes at their ends (`dir/**` also matches `dir`).
 */
function requiredFragments(glob: string): string[] {
  const g = normalizePath(glob.trim());
  return g
    .replace(/\{[^}]*\}/g, '*')
    .split(/[*?{]/)
    .map((f) => f.replace(/^\/+|\/+$/g, ''))
    .filter((f) => f.length >= 2);
}

export class PathMatcher {
  private readonly rules: { fragments: string[]; re: RegExp }[];

  constructor(readonly globs: readonly string[]) {
    // Each glob's literal text is looked for first: an includes() is far cheaper than the
    // anchored, backtracking RegExp, and most paths lack some fragment of most globs.
    this.rules = globs.map((g) => ({ fragments: requiredFragments(g), re: globToRegExp(g) }));
  }

  matches(path: string): boolean {
    if (this.rules.length === 0) return false;
    const p = normalizePath(path);
    for (const { fragments, re } of this.rules) {
      if (fragments.every((f) => p.includes(f)) && re.test(p)) return true;
    }
    return false;
  }
}

/** Documentation, manuals, licences and third-party test data: secrets there are samples. */
export const BUILTIN_ALLOW_PATHS: readonly string[] = [
  'usr/share/doc/**',
  'usr/share/man/**',
  'usr/share/info/**',
  'usr/share/common-licenses/**',
  '**/node_modules/**/{test,tests,__tests__,example,examples,docs}/**',
  '**/node_modules/**/*.md',
  '**/site-packages/**/tests/**',
  '**/dist-packages/**/tests/**',
  '**/{site,dist}-packages/**/*.md',
  '**/go/src/**/testdata/**',
  '**/vendor/**/testdata/**',
];

/**
 * Exact secret values published in vendor documentation and SDK test suites. The AWS example pair
 * (AKIAIOSFODNN7EXAMPLE / wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY) is deliberately absent: it is
 * copied into real configs often enough that a hit means someone pasted docs into production.
 */
export const BUILTIN_ALLOW_VALUES: readonly string[] = [
  // Azurite / Azure Storage Emulator account key for devstoreaccount1, fixed and public.
  'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
  // Stripe API reference sample test keys.
  'sk_test_4eC39HqLyjWDarjtT1zdp7dc',
  'sk_test_BQokikJOvBiI2HlWgH4olfQ2',
  // The jwt.io debugger's default token.
  'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
];

/** Value patterns for documentation placeholders that slip past the per-rule checks. */
export const BUILTIN_ALLOW_VALUE_PATTERNS: readonly RegExp[] = [
  // Slack's documentation webhook: T00000000/B00000000/XXXXXXXX...
  /^T0{8}\/B0{8}\/X{24}$/,
];

const SKIP_EXTENSIONS = new Set([
  'png',
  'jpg',
  'jpeg',
  'gif',
  'ico',
  'bmp',
  'webp',
  'tif',
  'tiff',
  'icns',
  'woff',
  'woff2',
  'ttf',
  'otf',
  'eot',
  'pfb',
  'pcf',
  'so',
  'a',
  'o',
  'ko',
  'dll',
  'dylib',
  'exe',
  'node',
  'wasm',
  'pyc',
  'pyo',
  'class',
  'jar',
  'war',
  'ear',
  'whl',
  'egg',
  'zip',
  'gz',
  'tgz',
  'xz',
  'txz',
  'bz2',
  'tbz2',
  'zst',
  'lz4',
  'lzma',
  '7z',
  'rar',
  'deb',
  'udeb',
  'rpm',
  'apk',
  'mo',
  'gmo',
  'qm',
  'mp3',
  'mp4',
  'ogg',
  'wav',
  'flac',
  'avi',
  'mkv',
  'webm',
]);

const SKIP_PREFIXES = [
  'usr/share/zoneinfo/',
  'usr/share/i18n/',
  'usr/share/terminfo/',
  'usr/share/locale/',
  'usr/lib/locale/',
  'lib/terminfo/',
  'proc/',
  'sys/',
  'dev/',
];

/**
 * Cheap pre-read filter for the layer walker: false for paths that are never text worth
 * scanning (images, fonts, objects, archives, packages, message catalogues, zoneinfo, terminfo,
 * pseudo-filesystems), so their content is never buffered.
 */
export function shouldScanPath(path: string): boolean {
  const p = normalizePath(path);
  if (p === 'proc' || p === 'sys' || p === 'dev') return false;
  if (SKIP_PREFIXES.some((pre) => p.startsWith(pre))) return false;
  const base = p.slice(p.lastIndexOf('/') + 1).toLowerCase();
  if (base === 'locale-archive') return false;
  const dot = base.lastIndexOf('.');
  if (dot <= 0) return true;
  const ext = base.slice(dot + 1);
  // Versioned shared objects: libfoo.so.1.2.3
  if (/\.so(?:\.\d+)+$/.test(base)) return false;
  return !SKIP_EXTENSIONS.has(ext);
}

/** Compiled allowlists used by the engine. */
export interface Allowlist {
  readonly paths: PathMatcher;
  /** Exact values never reported. */
  readonly values: ReadonlySet<string>;
  /** Value patterns never reported (tested against the secret). */
  readonly valuePatterns: readonly RegExp[];
}

export function builtinAllowlist(): Allowlist {
  return {
    paths: new PathMatcher(BUILTIN_ALLOW_PATHS),
    values: new Set(BUILTIN_ALLOW_VALUES),
    valuePatterns: BUILTIN_ALLOW_VALUE_PATTERNS,
  };
}

export function isAllowedPath(path: string, allow: Allowlist = builtinAllowlist()): boolean {
  return allow.paths.matches(path);
}
