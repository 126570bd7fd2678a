/**
 * Reading the `Authorization` header. The results hold secrets (passwords, tokens): callers must
 * not log them or put them in errors, which is why failures here are reported as a bare kind with
 * no echo of the input.
 */

export type ParsedAuthorization =
  | { scheme: 'none' }
  | { scheme: 'basic'; username: string; password: string }
  | { scheme: 'bearer'; token: string }
  /** A header we cannot use: malformed, repeated, or of another scheme. */
  | { scheme: 'invalid' };

// Bounds on what we decode; far beyond real credentials, well below anything that costs memory.
export const MAX_USERNAME_LENGTH = 256;
export const MAX_PASSWORD_LENGTH = 4096;
const MAX_HEADER_LENGTH = 16 * 1024;

const BASE64_RE = /^[A-Za-z0-9+/]+={0,2}$/;
const TOKEN68_RE = /^[A-Za-z0-9\-._~+/]+=*$/;
const CONTROL_RE = /[\u0000-\u001f\u007f]/;

export function parseAuthorization(header: string | string[] | undefined): ParsedAuthorization {
  if (header === undefined || header === '') return { scheme: 'none' };
  // Two Authorization headers are ambiguous; picking one would let a proxy and us disagree.
  if (Array.isArray(header) || header.length > MAX_HEADER_LENGTH) return { scheme: 'invalid' };
  const match = /^([A-Za-z]+) +(\S+) *$/.exec(header);
  if (!match) return { scheme: 'invalid' };
  const scheme = (match[1] as string).toLowerCase();
  const value = match[2] as string;
  if (scheme === 'bearer')
    return TOKEN68_RE.test(value) ? { scheme: 'bearer', token: value } : { scheme: 'invalid' };
  if (scheme === 'basic') {
    const basic = decodeBasic(value);
    return basic ? { scheme: 'basic', ...basic } : { scheme: 'invalid' };
  }
  return { scheme: 'invalid' };
}

/** `base64(username:password)`; the password may contain colons, the username may not. */
export function decodeBasic(value: string): { username: string; password: string } | undefined {
  if (!BASE64_RE.test(value) || value.length % 4 !== 0) return undefined;
  const decoded = Buffer.from(value, 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon <= 0) return undefined;
  return checkCredentials(decoded.slice(0, colon), decoded.slice(colon + 1));
}

/** Refuses empty or oversized credentials and usernames with control characters. */
export function checkCredentials(
  username: string,
  password: string,
): { username: string; password: string } | undefined {
  if (username === '' || username.length > MAX_USERNAME_LENGTH || CONTROL_RE.test(username)) return undefined;
  if (password.length > MAX_PASSWORD_LENGTH) return undefined;
  return { username, password };
}
