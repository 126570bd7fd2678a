/**
 * Built-in secret rules. Every regex starts with a literal (or a short literal alternation) and
 * uses only bounded or delimiter-separated repetitions, so a match attempt cannot backtrack
 * catastrophically; the keyword prefilter in the engine decides whether a regex runs at all.
 */
import type { Severity } from '../sbom/finding.js';
import {
  characterClasses,
  decodeBase64,
  isCodeReference,
  isPathOrUrl,
  isPlaceholderValue,
  isPrintable,
  isRepetitive,
  parseJsonQuietly,
  shannonEntropy,
} from './text.js';

/** What a validate function may look at besides the secret. */
export interface MatchContext {
  /** The whole scanned text and its lower-cased copy (for nearby-context checks). */
  readonly text: string;
  readonly lower: string;
  /** Offset of the secret in `text`. */
  readonly index: number;
  /** Named groups of the match. */
  readonly groups: Readonly<Record<string, string | undefined>>;
  /**
   * Sorted offsets of a lower-case literal in `lower`, computed once per scan. Validators use it
   * for "is X nearby" checks, because a backwards indexOf per match is quadratic on hostile input.
   */
  positionsOf(literal: string): readonly number[];
}

/** Offsets of `literal` within `window` characters of `index` (at most `max`, nearest first on each side). */
export function positionsNear(
  ctx: MatchContext,
  literal: string,
  index: number,
  window: number,
  max = 4,
): number[] {
  const pos = ctx.positionsOf(literal);
  // First occurrence at or after index - window.
  let lo = 0;
  let hi = pos.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((pos[mid] as number) < index - window) lo = mid + 1;
    else hi = mid;
  }
  const out: number[] = [];
  for (let i = lo; i < pos.length && out.length < max && (pos[i] as number) <= index + window; i++)
    out.push(pos[i] as number);
  return out;
}

/** Offset of the last occurrence of `literal` at or before `index` and no more than `window` away, or -1. */
export function nearestBefore(ctx: MatchContext, literal: string, index: number, window: number): number {
  const pos = ctx.positionsOf(literal);
  let lo = 0;
  let hi = pos.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if ((pos[mid] as number) <= index) lo = mid + 1;
    else hi = mid;
  }
  const best = lo > 0 ? (pos[lo - 1] as number) : -1;
  return best !== -1 && index - best <= window ? best : -1;
}

export interface SecretRule {
  /** Stable id reported as `ruleId`. */
  readonly id: string;
  readonly title: string;
  readonly severity: Severity;
  /** Lower-case literals; the regex runs only when the lower-cased text contains one of them. */
  readonly keywords: readonly string[];
  /** The pattern; the named group `secret` is the part redacted (the whole match when absent). */
  readonly regex: RegExp;
  /** Minimum Shannon entropy (bits/char) of the secret. */
  readonly entropy?: number;
  /** Extra check; false (or a throw) drops the match. */
  readonly validate?: (secret: string, context: MatchContext) => boolean;
  /** A catch-all rule: any specific rule matching an overlapping span wins over it. */
  readonly fallback?: boolean;
  /**
   * A promise about the regex that lets the engine try it only near keyword occurrences instead
   * of searching the whole text: every match starts at most this many characters before a place
   * where the lower-cased text holds one of `keywords` (0: every match starts with a keyword).
   * Only for built-in rules, each with the argument written next to it; a wrong value loses
   * findings.
   */
  readonly keywordLead?: number;
}

// Token boundaries: a token must not continue an identifier on either side, so `xghp_…` or a
// 37-character body is not a 36-character token.
const B62 = 'A-Za-z0-9';

/** The random tail after a literal prefix must look random, not `xxxx…` or `0000…`. */
function randomTail(prefixLength: number, minEntropy = 3): (secret: string) => boolean {
  return (secret) => {
    const tail = secret.slice(prefixLength);
    return !isRepetitive(tail) && shannonEntropy(tail) >= minEntropy;
  };
}

function lastSegmentRandom(minEntropy: number): (secret: string) => boolean {
  return (secret) => {
    const tail = secret.slice(secret.lastIndexOf('-') + 1);
    const slash = tail.lastIndexOf('/');
    const seg = slash === -1 ? tail : tail.slice(slash + 1);
    return !isRepetitive(seg) && shannonEntropy(seg) >= minEntropy;
  };
}

// ---------------------------------------------------------------------------------------------
// PEM private keys. A body is lines of base64, optionally preceded by RFC 1421 / OpenPGP armor
// headers (`Proc-Type: 4,ENCRYPTED`, `Version: …`) and blank lines. Lines end in a real newline
// or in an escaped `\n` (keys pasted into JSON or env values). Each line alternative starts with a
// different character set and must end in the newline, so a line parses one way only.
const NL = String.raw`(?:\r?\n|(?:\\r)?\\n)`;
const PEM_LINE = String.raw`(?:[A-Za-z0-9+/=]{1,4096}[ \t]*|[A-Za-z][A-Za-z0-9-]{0,40}: ?[^\r\n\\]{0,256}|[ \t]{0,16})${NL}`;
const PEM_LABEL = String.raw`(?:RSA |EC |DSA |OPENSSH |ENCRYPTED )?PRIVATE KEY|PGP PRIVATE KEY BLOCK`;
const PEM_RE = new RegExp(
  String.raw`(?<secret>-----BEGIN (?<label>${PEM_LABEL})-----${NL}(?<body>(?:${PEM_LINE}){1,400})-----END \k<label>-----)`,
  'g',
);

/** The body must hold a key's worth of base64 (64+ characters) that is not a pattern. */
function validPemBody(_secret: string, ctx: MatchContext): boolean {
  const body = ctx.groups.body ?? '';
  const b64 = body
    .split(/\r?\n|(?:\\r)?\\n/)
    .filter((l) => !/^[A-Za-z][A-Za-z0-9-]*:/.test(l))
    .join('')
    .replace(/[\s=]/g, '');
  return b64.length >= 64 && shannonEntropy(b64) >= 4 && !isRepetitive(b64);
}

// ---------------------------------------------------------------------------------------------
// Generic assignments. The key ends in one of the secret-ish words (optionally with a short
// `_suffix`), then an assignment operator, then an optionally quoted value without whitespace.
// The value is captured inside a lookahead and consumed by backreference: lookaheads are atomic,
// so a value that fails the boundary check is abandoned at once instead of being retried at every
// shorter length. Counting `=`-separated pieces (at most 4) keeps `password=password=…` from
// making every keyword occurrence scan the maximum value length.
const GENERIC_WORDS = String.raw`password|passwd|pwd|secret|token|api[_-]?key|access[_-]?key|client[_-]?secret`;
const GENERIC_RE = new RegExp(
  String.raw`(?<key>${GENERIC_WORDS})(?<suffix>(?:[_.-][A-Za-z0-9]{1,20}){0,3})["']?[ \t]{0,16}(?:=>|:=|=|:)[ \t]{0,16}(?<q>["'\`]?)(?=(?<secret>[^\s"'\`=]{1,128}(?:={1,2}[^\s"'\`=]{1,128}){0,3}={0,2}))\k<secret>\k<q>(?![^\s"'\`,;)}\]])`,
  'gi',
);

/** Key suffixes that say the value is about a secret, not the secret: `password_file`, `token_url`. */
const NON_SECRET_SUFFIX =
  /(?:^|[_.-])(?:file|path|dir|url|uri|endpoint|host|length|len|size|type|name|id|hash|hashed|digest|policy|header|param|field|env|var|prompt|hint|label|format|regex|pattern|expiry|expires|expiration|ttl|timeout|lifetime|count|min|max|enabled|required|reset|mode|version|method|algorithm|cmd|command|script|query|key_name|provider|store|manager|generator|validator|placeholder|example)$/i;

function genericMinEntropy(len: number): number {
  // Short values cannot reach 3.5 bits/char (8 distinct characters give 3.0), so below 16
  // characters the bar scales with length and rule out single-class words via characterClasses.
  return len >= 16 ? 3.5 : Math.max(2.5, Math.log2(len) - 0.7);
}

function validGeneric(secret: string, ctx: MatchContext): boolean {
  if (secret.length < 8 || secret.length > 200) return false;
  if (NON_SECRET_SUFFIX.test(ctx.groups.suffix ?? '')) return false;
  if (secret.length < 16 && characterClasses(secret) < 3) return false;
  if (shannonEntropy(secret) < genericMinEntropy(secret.length)) return false;
  return !isPlaceholderValue(secret) && !isPathOrUrl(secret) && !isCodeReference(secret) && !LOOKS_LIKE_CODE.test(secret);
}

// `$pwd = Win32::GetCwd();`, `token = getToken(req)`, `secret = $ENV{X}`: an expression, not a value.
const LOOKS_LIKE_CODE = /[()]|::|->|^[$@%&*]|;$|^\w+\[/;

// ---------------------------------------------------------------------------------------------

function validDockerAuth(secret: string, ctx: MatchContext): boolean {
  // Only inside a config.json-shaped document: an "auths" key earlier in the text, not too far.
  if (nearestBefore(ctx, '"auths"', ctx.index, 65_536) === -1) return false;
  const buf = decodeBase64(secret, 'std');
  if (buf === undefined) return false;
  const decoded = buf.toString('utf8');
  if (!isPrintable(decoded)) return false;
  const colon = decoded.indexOf(':');
  if (colon <= 0 || colon === decoded.length - 1) return false;
  const password = decoded.slice(colon + 1);
  return !isPlaceholderValue(password) || password.length >= 24;
}

function validJwt(secret: string): boolean {
  const [header, payload] = secret.split('.');
  if (header === undefined || payload === undefined) return false;
  const h = decodeBase64(header, 'url');
  const p = decodeBase64(payload, 'url');
  if (h === undefined || p === undefined) return false;
  const hj = parseJsonQuietly(h.toString('utf8'));
  const pj = parseJsonQuietly(p.toString('utf8'));
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === 'object' && v !== null && !Array.isArray(v);
  return isObject(hj) && typeof hj.alg === 'string' && isObject(pj);
}

function validGcp(_secret: string, ctx: MatchContext): boolean {
  // The private key must sit in the same JSON document as "type": "service_account": look for
  // the value near the key, then confirm the `"type":` before it on a small slice.
  const at = positionsNear(ctx, '"service_account"', ctx.index, 16_384);
  return at.some((p) => /"type"\s{0,16}:\s{0,16}$/.test(ctx.text.slice(Math.max(0, p - 48), p)));
}

function validGcpBody(secret: string): boolean {
  const body = secret.replace(/-----(?:BEGIN|END) (?:RSA )?PRIVATE KEY-----/g, '').replace(/\\n|\s/g, '');
  return body.length >= 64 && shannonEntropy(body) >= 4;
}

export const BUILTIN_RULES: readonly SecretRule[] = [
  // --- AWS -----------------------------------------------------------------------------------
  {
    id: 'aws-access-key-id',
    title: 'AWS access key ID',
    severity: 'high',
    keywords: ['akia', 'asia'],
    // Access key ids are base32 (A-Z, 2-7) after the 4-letter kind prefix.
    regex: /(?<![A-Za-z0-9])(?<secret>(?:AKIA|ASIA)[A-Z2-7]{16})(?![A-Za-z0-9])/g,
    validate: randomTail(4, 2.5),
    // The lookbehind takes no characters: a match starts with AKIA or ASIA.
    keywordLead: 0,
  },
  {
    id: 'aws-secret-access-key',
    title: 'AWS secret access key',
    severity: 'critical',
    keywords: ['secret_access_key', 'secretaccesskey', 'aws_secret', 'aws-secret', 'secret-access-key'],
    regex:
      /(?:aws[_-]?secret(?:[_-]?access)?(?:[_-]?key)?|secret[_-]?access[_-]?key)["']?[ \t]{0,16}(?:=>|:=|=|:)[ \t]{0,16}["']?(?<secret>[A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])/gi,
    entropy: 3.5,
    validate: (s) => !isRepetitive(s) && characterClasses(s) >= 2,
  },
  // --- GCP -----------------------------------------------------------------------------------
  {
    id: 'gcp-service-account-key',
    title: 'GCP service account private key',
    severity: 'critical',
    keywords: ['service_account'],
    regex:
      /"private_key"\s*:\s*"(?<secret>-----BEGIN (?:RSA )?PRIVATE KEY-----[A-Za-z0-9+/=\\\s]{64,8192}-----END (?:RSA )?PRIVATE KEY-----(?:\\n)?)"/g,
    validate: (s, ctx) => validGcpBody(s) && validGcp(s, ctx),
  },
  // --- Azure ---------------------------------------------------------------------------------
  // 64-byte account keys are 88 base64 characters; the 86th can only be A, Q, g or w because the
  // last byte leaves 4 zero bits, which rejects random base64 of the same length most of the time.
  {
    id: 'azure-storage-connection-string',
    title: 'Azure storage account connection string',
    severity: 'critical',
    keywords: ['defaultendpointsprotocol'],
    regex:
      /DefaultEndpointsProtocol=https?;(?:[A-Za-z]{1,40}=[^;\s"']{0,256};){0,4}?AccountKey=(?<secret>[A-Za-z0-9+/]{85}[AQgw]==)(?![A-Za-z0-9+/=])/g,
    validate: randomTail(0, 4.5),
  },
  {
    id: 'azure-storage-account-key',
    title: 'Azure storage account key',
    severity: 'critical',
    keywords: ['accountkey'],
    regex:
      /(?<![A-Za-z0-9])AccountKey["']?[ \t]{0,8}[=:][ \t]{0,8}["']?(?<secret>[A-Za-z0-9+/]{85}[AQgw]==)(?![A-Za-z0-9+/=])/g,
    validate: randomTail(0, 4.5),
  },
  {
    id: 'azure-shared-access-key',
    title: 'Azure Service Bus / Event Hubs connection string',
    severity: 'critical',
    keywords: ['sharedaccesskey='],
    // 32-byte keys: 44 characters, the 43rd restricted to the 16 values whose low 2 bits are 0.
    regex:
      /Endpoint=sb:\/\/[A-Za-z0-9.-]{1,256}\/?;SharedAccessKeyName=[^;\s"']{1,256};SharedAccessKey=(?<secret>[A-Za-z0-9+/]{42}[AEIMQUYcgkosw048]=)(?![A-Za-z0-9+/=])/g,
    validate: randomTail(0, 4),
  },
  // --- GitHub --------------------------------------------------------------------------------
  {
    id: 'github-pat',
    title: 'GitHub personal access token',
    severity: 'critical',
    keywords: ['ghp_'],
    regex: new RegExp(String.raw`(?<![${B62}_])(?<secret>ghp_[${B62}]{36})(?![${B62}_])`, 'g'),
    validate: randomTail(4),
  },
  {
    id: 'github-oauth-token',
    title: 'GitHub OAuth access token',
    severity: 'critical',
    keywords: ['gho_'],
    regex: new RegExp(String.raw`(?<![${B62}_])(?<secret>gho_[${B62}]{36})(?![${B62}_])`, 'g'),
    validate: randomTail(4),
  },
  {
    id: 'github-app-token',
    title: 'GitHub App user-to-server or installation token',
    severity: 'critical',
    keywords: ['ghu_', 'ghs_'],
    regex: new RegExp(String.raw`(?<![${B62}_])(?<secret>gh[us]_[${B62}]{36})(?![${B62}_])`, 'g'),
    validate: randomTail(4),
  },
  {
    id: 'github-refresh-token',
    title: 'GitHub refresh token',
    severity: 'critical',
    keywords: ['ghr_'],
    regex: new RegExp(String.raw`(?<![${B62}_])(?<secret>ghr_[${B62}]{36})(?![${B62}_])`, 'g'),
    validate: randomTail(4),
  },
  {
    id: 'github-fine-grained-pat',
    title: 'GitHub fine-grained personal access token',
    severity: 'critical',
    keywords: ['github_pat_'],
    // 82 characters after the prefix: 22 (id) + '_' + 59 (secret and checksum).
    regex: new RegExp(
      String.raw`(?<![${B62}_])(?<secret>github_pat_[${B62}]{22}_[${B62}]{59})(?![${B62}_])`,
      'g',
    ),
    validate: randomTail(11),
  },
  // --- GitLab --------------------------------------------------------------------------------
  {
    id: 'gitlab-pat',
    title: 'GitLab personal access token',
    severity: 'critical',
    keywords: ['glpat-'],
    regex: /(?<![A-Za-z0-9_-])(?<secret>glpat-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])/g,
    validate: randomTail(6),
  },
  {
    id: 'gitlab-deploy-token',
    title: 'GitLab deploy token',
    severity: 'high',
    keywords: ['gldt-'],
    regex: /(?<![A-Za-z0-9_-])(?<secret>gldt-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])/g,
    validate: randomTail(5),
  },
  {
    id: 'gitlab-runner-token',
    title: 'GitLab runner authentication token',
    severity: 'high',
    keywords: ['glrt-'],
    regex: /(?<![A-Za-z0-9_-])(?<secret>glrt-[A-Za-z0-9_-]{20})(?![A-Za-z0-9_-])/g,
    validate: randomTail(5),
  },
  // --- Slack ---------------------------------------------------------------------------------
  {
    id: 'slack-token',
    title: 'Slack API token',
    severity: 'high',
    keywords: ['xoxb-', 'xoxp-', 'xoxa-', 'xoxr-', 'xoxs-'],
    // xoxb-<team>-<bot>-<24 alnum>, xoxp-<team>-<user>-<id>-<32 hex>, xoxa-2-…, xoxs-…: 1 to 4
    // dash-terminated numeric groups, then one alphanumeric secret segment.
    regex:
      /(?<![A-Za-z0-9_-])(?<secret>xox[abprs]-(?:[0-9]{1,14}-){1,4}[A-Za-z0-9]{20,64})(?![A-Za-z0-9_-])/g,
    validate: lastSegmentRandom(3),
  },
  {
    id: 'slack-webhook-url',
    title: 'Slack incoming webhook URL',
    severity: 'high',
    keywords: ['hooks.slack.com'],
    regex:
      /hooks\.slack\.com\/services\/(?<secret>T[A-Z0-9]{8,12}\/B[A-Z0-9]{8,12}\/[A-Za-z0-9]{24})(?![A-Za-z0-9])/g,
    validate: lastSegmentRandom(3),
  },
  // --- Stripe --------------------------------------------------------------------------------
  {
    id: 'stripe-live-key',
    title: 'Stripe live secret or restricted key',
    severity: 'critical',
    keywords: ['sk_live_', 'rk_live_'],
    regex: new RegExp(String.raw`(?<![${B62}_])(?<secret>[sr]k_live_[${B62}]{24,247})(?![${B62}_])`, 'g'),
    validate: randomTail(8),
  },
  {
    id: 'stripe-test-key',
    title: 'Stripe test-mode secret key',
    severity: 'low',
    keywords: ['sk_test_', 'rk_test_'],
    regex: new RegExp(String.raw`(?<![${B62}_])(?<secret>[sr]k_test_[${B62}]{24,247})(?![${B62}_])`, 'g'),
    validate: randomTail(8),
  },
  // --- npm -----------------------------------------------------------------------------------
  {
    id: 'npm-access-token',
    title: 'npm access token',
    severity: 'critical',
    keywords: ['npm_'],
    regex: new RegExp(String.raw`(?<![${B62}_])(?<secret>npm_[${B62}]{36})(?![${B62}_])`, 'g'),
    validate: randomTail(4),
  },
  {
    id: 'npmrc-auth',
    title: 'npm registry credential in .npmrc',
    severity: 'high',
    keywords: ['_authtoken', '_auth', '_password'],
    // `//registry.example/:_authToken=…` or a top-level `_auth=…`; anchored on the literal key
    // rather than on `//…` so that a text full of slashes costs nothing.
    regex:
      /(?:^|:)[ \t]{0,8}_(?:authToken|auth|password)[ \t]{0,8}=[ \t]{0,8}["']?(?<secret>[A-Za-z0-9._~+/=-]{16,512})["']?[ \t]*$/gm,
    entropy: 3,
    validate: (s) => !isPlaceholderValue(s),
  },
  // --- Docker --------------------------------------------------------------------------------
  {
    id: 'docker-config-auth',
    title: 'Docker registry credential (config.json auths)',
    severity: 'high',
    keywords: ['"auths"'],
    regex: /"auth"\s{0,16}:\s{0,16}"(?<secret>[A-Za-z0-9+/]{4,4096}={0,2})"/g,
    validate: validDockerAuth,
  },
  // --- Private keys --------------------------------------------------------------------------
  {
    id: 'private-key',
    title: 'Private key',
    severity: 'critical',
    keywords: ['private key-----', 'private key block-----'],
    regex: PEM_RE,
    validate: validPemBody,
  },
  // --- JWT -----------------------------------------------------------------------------------
  {
    id: 'jwt',
    title: 'JSON Web Token',
    severity: 'medium',
    keywords: ['eyj'],
    regex:
      /(?<![A-Za-z0-9_-])(?<secret>eyJ[A-Za-z0-9_-]{10,1000}\.eyJ[A-Za-z0-9_-]{4,8000}\.[A-Za-z0-9_-]{16,1000})(?![A-Za-z0-9_.-])/g,
    validate: validJwt,
    // The lookbehind takes no characters: a match starts with eyJ.
    keywordLead: 0,
  },
  // --- Generic -------------------------------------------------------------------------------
  {
    id: 'generic-secret',
    title: 'Generic secret assignment',
    severity: 'medium',
    keywords: [
      'password',
      'passwd',
      'pwd',
      'secret',
      'token',
      'api_key',
      'api-key',
      'apikey',
      'access_key',
      'access-key',
      'accesskey',
    ],
    regex: GENERIC_RE,
    validate: validGeneric,
    fallback: true,
    // A match starts with the key, one of GENERIC_WORDS: under the i flag (without u) their
    // letters match only ASCII letters, which the lower-cased text holds lower-cased in place.
    // Each word starts with a keyword, except client[_-]?secret, whose "secret" is 6 or 7 in.
    keywordLead: 7,
  },
];

/** The ids of the built-in rules, for documentation and config validation. */
export const BUILTIN_RULE_IDS: readonly string[] = BUILTIN_RULES.map((r) => r.id);
