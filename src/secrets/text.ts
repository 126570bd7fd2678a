/**
 * Small string helpers shared by the built-in rules and the engine: entropy, placeholder
 * detection and lenient decoders. None of them throws or logs, because their inputs are secrets.
 */
import { jsonPastBounds } from '../json-structure.js';

/** Shannon entropy in bits per character (UTF-16 code units; close enough for ASCII tokens). */
export function shannonEntropy(s: string): number {
  if (s.length === 0) return 0;
  const counts = new Map<number, number>();
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    counts.set(c, (counts.get(c) ?? 0) + 1);
  }
  let h = 0;
  for (const n of counts.values()) {
    const p = n / s.length;
    h -= p * Math.log2(p);
  }
  return h;
}

/** Values that are exactly a word people write where a secret should go. Compared lower-cased. */
const PLACEHOLDER_EXACT = new Set([
  'true',
  'false',
  'null',
  'nil',
  'none',
  'undefined',
  'empty',
  'default',
  'required',
  'optional',
  'secret',
  'password',
  'passwd',
  'token',
  'changeme',
  'change_me',
  'changeit',
  'example',
  'sample',
  'test',
  'testing',
  'dummy',
  'redacted',
  'hidden',
  'masked',
  'unset',
  'notset',
  'disabled',
  'enabled',
  'admin',
  'root',
  'guest',
  'user',
  'username',
  'string',
  'value',
  'yes',
  'no',
  'on',
  'off',
]);

/**
 * Fragments that mark a documentation or template value wherever they occur. Deliberately not
 * 'example' for the specific rules (see allowlist.ts): only the generic rule uses this list.
 */
const PLACEHOLDER_FRAGMENTS = [
  'changeme',
  'change_me',
  'change-me',
  'changeit',
  'example',
  'placeholder',
  'your_',
  'your-',
  'yourpass',
  'yoursecret',
  'yourtoken',
  'yourkey',
  'dummy',
  'redacted',
  'sample',
  'fixme',
  'todo',
  'replace_me',
  'replaceme',
  'replace-me',
  'insert_',
  'insert-',
  'notset',
  'not_set',
  'not-set',
  'password',
  'passwd',
  'xxxx',
  '****',
  '....',
  '////',
  '----',
  '____',
  'hunter2',
  'letmein',
  'qwerty',
  '123456',
  'abcdefgh',
  'fake',
  'secret_here',
  'token_here',
  'key_here',
  'here>',
  '<your',
  'dontuse',
  'do-not-use',
  'do_not_use',
  'lorem',
  'foobar',
];

/** Template and variable syntaxes: the value names a secret that lives elsewhere. */
const PLACEHOLDER_SHAPES: readonly RegExp[] = [
  /\$\{[^}]{0,200}\}/, // ${VAR}, ${VAR:-x}
  /^\$[A-Za-z_][A-Za-z0-9_]*$/, // $VAR
  /\$\([^)]{0,200}\)/, // $(command)
  /\{\{[^}]{0,200}\}\}/, // {{ template }}
  /\{%[^%]{0,200}%\}/, // {% jinja %}
  /#\{[^}]{0,200}\}/, // #{ruby}
  /^%[A-Za-z_][A-Za-z0-9_]*%$/, // %WINDOWS_VAR%
  /%\([A-Za-z_]+\)[sd]/, // python %(name)s
  /^<[^>]{0,200}>$/, // <password>
  /^\[[^\]]{0,200}\]$/, // [password]
  /^@[A-Za-z_][A-Za-z0-9_]*@$/, // @AUTOCONF@
  /^__[A-Za-z0-9_]+__$/, // __TOKEN__
];

const SEQUENCES = ['abcdefghijklmnopqrstuvwxyz', '0123456789', 'qwertyuiopasdfghjklzxcvbnm', '9876543210'];

/** True for values made of one short unit repeated (`aaaa`, `abab`, `1234123412`) or dominated by one character. */
export function isRepetitive(value: string): boolean {
  if (value.length === 0) return true;
  for (let unit = 1; unit <= 4 && unit * 2 <= value.length; unit++) {
    let ok = true;
    for (let i = unit; i < value.length; i++) {
      if (value.charCodeAt(i) !== value.charCodeAt(i % unit)) {
        ok = false;
        break;
      }
    }
    if (ok) return true;
  }
  const counts = new Map<number, number>();
  let max = 0;
  for (let i = 0; i < value.length; i++) {
    const n = (counts.get(value.charCodeAt(i)) ?? 0) + 1;
    counts.set(value.charCodeAt(i), n);
    if (n > max) max = n;
  }
  // A random token of 8+ characters almost never has one character in 40 % of its positions.
  return value.length >= 8 && max / value.length >= 0.4;
}

/** A value that stands in for a secret rather than being one (generic-rule filter). */
export function isPlaceholderValue(value: string): boolean {
  const lower = value.toLowerCase();
  if (PLACEHOLDER_EXACT.has(lower)) return true;
  if (PLACEHOLDER_FRAGMENTS.some((f) => lower.includes(f))) return true;
  if (PLACEHOLDER_SHAPES.some((re) => re.test(value))) return true;
  if (SEQUENCES.some((seq) => seq.includes(lower))) return true;
  return isRepetitive(lower);
}

/** A value that is a path or URL rather than a secret (`/run/secrets/db`, `https://vault/...`). */
export function isPathOrUrl(value: string): boolean {
  return (
    /^(?:\/|\.{1,2}\/|~\/|[A-Za-z]:[\\/]|\\\\)/.test(value) ||
    /^[A-Za-z][A-Za-z0-9+.-]{1,20}:\/\//.test(value)
  );
}

/**
 * A value that is program text naming a secret: `self.password`, `config.db.password`,
 * `DB_PASSWORD`, `db_password`, `getPassword(`, `userPassword`, `os.environ[...]`.
 */
export function isCodeReference(value: string): boolean {
  return (
    /^[A-Za-z_$][A-Za-z0-9_$]*(?:\.[A-Za-z_$][A-Za-z0-9_$]*)+(?:\(\)?|\[)?$/.test(value) ||
    /^[A-Z][A-Z0-9]*(?:_[A-Z0-9]+)+$/.test(value) ||
    /^[a-z][a-z0-9]*(?:_[a-z0-9]+)+$/.test(value) ||
    /^[a-z]{2,}(?:[A-Z][a-z]{2,})+$/.test(value) ||
    /^[A-Za-z_$][A-Za-z0-9_$.]*[([]/.test(value)
  );
}

/** Number of character classes (lower, upper, digit, other) present. */
export function characterClasses(value: string): number {
  let n = 0;
  if (/[a-z]/.test(value)) n++;
  if (/[A-Z]/.test(value)) n++;
  if (/[0-9]/.test(value)) n++;
  if (/[^A-Za-z0-9]/.test(value)) n++;
  return n;
}

/** Strict base64 (standard or URL alphabet) decode; undefined when the text is not canonical base64. */
export function decodeBase64(value: string, alphabet: 'std' | 'url'): Buffer | undefined {
  const re = alphabet === 'std' ? /^[A-Za-z0-9+/]*={0,2}$/ : /^[A-Za-z0-9_-]*={0,2}$/;
  if (!re.test(value)) return undefined;
  const buf = Buffer.from(value, alphabet === 'std' ? 'base64' : 'base64url');
  // Buffer.from is lenient; re-encoding proves every character carried data.
  const again = buf.toString(alphabet === 'std' ? 'base64' : 'base64url').replace(/=+$/, '');
  return again === value.replace(/=+$/, '') ? buf : undefined;
}

/**
 * Deepest JSON parseJsonQuietly accepts. What it reads (a JWT's header and payload) is a flat
 * object or nearly; deeper is not a token worth reporting.
 */
export const MAX_QUIET_JSON_DEPTH = 64;

/**
 * Parse JSON without letting the parser's message (which quotes its input) escape; undefined for
 * invalid JSON and for JSON nested deeper than MAX_QUIET_JSON_DEPTH, which is refused in one pass
 * before JSON.parse builds its stacks for it.
 */
export function parseJsonQuietly(text: string): unknown {
  if (jsonPastBounds(text, { maxDepth: MAX_QUIET_JSON_DEPTH }) !== undefined) return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    return undefined;
  }
}

/** Printable text: no control characters other than tab. */
export function isPrintable(text: string): boolean {
  return !/[\u0000-\u0008\u000a-\u001f\u007f\ufffd]/.test(text);
}
