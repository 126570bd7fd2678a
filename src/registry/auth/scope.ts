import { AuthError } from './errors.js';
import { REGISTRY_ACTIONS } from './types.js';

/**
 * A resource scope of the Docker token specification: `repository:library/alpine:pull,push`,
 * `repository:localhost:5000/team/app:pull`, `registry:catalog:*`, or with a resource class,
 * `repository(plugin):name:pull`.
 */
export interface Scope {
  type: string;
  /** The optional resource class, `plugin` in `repository(plugin):…`. */
  class?: string;
  name: string;
  actions: string[];
}

// The request and header sizes we are willing to handle; real clients ask for one to three scopes
// (a cross-repository mount asks for two), so these only stop abuse.
export const MAX_SCOPES = 32;
const MAX_SCOPE_LENGTH = 512;
const MAX_NAME_LENGTH = 255;

const TYPE_RE = /^([a-z0-9]+)(?:\(([a-z0-9]+)\))?$/;
const ACTION_RE = /^(?:[a-z]+|\*)$/;
// Distribution's reference grammar: an optional registry host (with port, or a bracketed IPv6
// address) followed by lowercase path components separated by `.`, `_`, `__` or dashes.
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const PATH_COMPONENT = '[a-z0-9]+(?:(?:\\.|_|__|-+)[a-z0-9]+)*';
const REPOSITORY_RE = new RegExp(`^(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*$`);
const OTHER_NAME_RE = /^[a-z0-9]+(?:[._-][a-z0-9]+)*$/;

/** Whether `name` is a repository name a scope may carry (optionally prefixed by a registry host). */
export function isValidRepositoryName(name: string): boolean {
  return name.length <= MAX_NAME_LENGTH && REPOSITORY_RE.test(name);
}

/**
 * Parses one scope. The name may itself contain colons (`localhost:5000/app`), so the type ends at
 * the first colon and the actions start after the last one. Throws AuthError `SCOPE_INVALID`.
 */
export function parseScope(text: string): Scope {
  const fail = (why: string): AuthError =>
    new AuthError('SCOPE_INVALID', `Invalid scope "${clip(text)}": ${why}.`, { subject: clip(text) });
  if (text.length > MAX_SCOPE_LENGTH) throw fail(`longer than ${MAX_SCOPE_LENGTH} characters`);
  const first = text.indexOf(':');
  const last = text.lastIndexOf(':');
  if (first < 0 || last === first) throw fail('expected <type>:<name>:<actions>');
  const typeMatch = TYPE_RE.exec(text.slice(0, first));
  if (!typeMatch) throw fail('the resource type must be lowercase letters and digits');
  const type = typeMatch[1] as string;
  const name = text.slice(first + 1, last);
  const validName = type === 'repository' ? isValidRepositoryName(name) : OTHER_NAME_RE.test(name);
  if (!validName) throw fail('the resource name is not a valid name');
  const actionText = text.slice(last + 1);
  // The grammar allows an empty action list; it grants nothing but is not an error.
  const actions = actionText === '' ? [] : actionText.split(',');
  if (!actions.every((a) => ACTION_RE.test(a))) throw fail('actions must be lowercase words or *');
  const scope: Scope = { type, name, actions: normaliseActions(actions) };
  if (typeMatch[2] !== undefined) scope.class = typeMatch[2];
  return scope;
}

/**
 * Parses the `scope` parameters of a token request: the parameter may repeat (GET, as Docker sends
 * it) and each value may hold several scopes separated by spaces (the OAuth2 form of POST). Scopes
 * for the same resource are merged, so the result has one entry per resource.
 */
export function parseScopeParams(values: string | readonly string[] | undefined): Scope[] {
  const list = values === undefined ? [] : typeof values === 'string' ? [values] : values;
  const merged = new Map<string, Scope>();
  for (const value of list) {
    for (const part of value.split(' ')) {
      if (part === '') continue;
      const scope = parseScope(part);
      const key = `${scope.type}(${scope.class ?? ''}):${scope.name}`;
      const seen = merged.get(key);
      if (seen) seen.actions = normaliseActions([...seen.actions, ...scope.actions]);
      else merged.set(key, scope);
      if (merged.size > MAX_SCOPES) {
        throw new AuthError('SCOPE_INVALID', `Too many scopes in one request (at most ${MAX_SCOPES}).`);
      }
    }
  }
  return [...merged.values()];
}

/** `repository:name:pull,push`; the inverse of parseScope. */
export function formatScope(scope: Scope): string {
  const type = scope.class === undefined ? scope.type : `${scope.type}(${scope.class})`;
  return `${type}:${scope.name}:${normaliseActions(scope.actions).join(',')}`;
}

/** Several scopes in one string, space-separated, as the `scope` challenge parameter carries them. */
export function formatScopes(scopes: readonly Scope[]): string {
  return scopes.map(formatScope).join(' ');
}

/**
 * Deduplicates actions and puts them in a stable order (pull, push, delete, then others sorted), so
 * equal grants compare and print equally however the client ordered them.
 */
export function normaliseActions(actions: readonly string[]): string[] {
  const rank = (a: string): number => {
    const i = (REGISTRY_ACTIONS as readonly string[]).indexOf(a);
    return i < 0 ? REGISTRY_ACTIONS.length : i;
  };
  return [...new Set(actions)].sort((a, b) => rank(a) - rank(b) || (a < b ? -1 : a > b ? 1 : 0));
}

export interface BearerChallengeOptions {
  /** The full URL of the token endpoint, e.g. `https://registry.example.com/token`. */
  realm: string;
  service: string;
  scopes?: readonly Scope[];
  /** RFC 6750 error code, e.g. `insufficient_scope` or `invalid_token`. */
  error?: string;
}

/**
 * `Bearer realm="https://r.example/token",service="r.example",scope="repository:x:pull,push"`.
 * Every value is quoted, which the scope needs anyway since it contains commas.
 */
export function buildBearerChallenge(options: BearerChallengeOptions): string {
  const params: string[] = [
    `realm=${quoteHeaderValue(options.realm)}`,
    `service=${quoteHeaderValue(options.service)}`,
  ];
  if (options.scopes && options.scopes.length > 0) {
    params.push(`scope=${quoteHeaderValue(formatScopes(options.scopes))}`);
  }
  if (options.error !== undefined) params.push(`error=${quoteHeaderValue(options.error)}`);
  return `Bearer ${params.join(',')}`;
}

/**
 * An RFC 9110 quoted-string. Control characters (CR and LF above all) would split or corrupt the
 * header, so they are refused rather than escaped; quotes and backslashes are escaped.
 */
export function quoteHeaderValue(value: string): string {
  if (/[\u0000-\u001f\u007f]/.test(value)) {
    throw new AuthError('HEADER_VALUE_INVALID', 'A header parameter contains control characters.');
  }
  return `"${value.replace(/[\\"]/g, (c) => `\\${c}`)}"`;
}

function clip(text: string): string {
  return text.length > 80 ? `${text.slice(0, 80)}…` : text;
}
