import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { checkCredentials, parseAuthorization } from './credentials.js';
import { AuthError } from './errors.js';
import type { SigningKey } from './keys.js';
import { LoginBusyError, type LoginRateLimiter } from './rate-limit.js';
import { formatScopes, normaliseActions, parseScopeParams, quoteHeaderValue, type Scope } from './scope.js';
import { DEFAULT_TOKEN_TTL_SECONDS, issueToken } from './tokens.js';
import {
  ANONYMOUS,
  REGISTRY_ACTIONS,
  type AccessEntry,
  type Principal,
  type RegistryAction,
} from './types.js';

export interface TokenRoutesOptions {
  /**
   * Checks a username and password; null when they are wrong. Should compare in constant time.
   * `clientIp` is the caller's address, for the audit log.
   */
  verifyCredentials(username: string, password: string, clientIp: string | null): Promise<Principal | null>;
  /**
   * The actions `principal` may have on `repo`, out of `requested` (a subset of pull, push, delete).
   * Anonymous callers come as a principal of kind `anonymous`. The answer is intersected with what
   * was requested, so returning more is harmless but never granted.
   */
  grantedActions(
    principal: Principal,
    repo: string,
    requested: RegistryAction[],
    clientIp: string | null,
  ): RegistryAction[] | Promise<RegistryAction[]>;
  /**
   * Grants for scopes other than repositories (`registry:catalog:*`). Default: the catalog to
   * admins only, anything else to nobody.
   */
  grantedResourceActions?(principal: Principal, scope: Scope): string[] | Promise<string[]>;
  key: SigningKey;
  /** The registry's service name: the `service` clients send, and the tokens' audience. */
  service: string;
  issuer: string;
  rateLimiter: LoginRateLimiter;
  ttlSeconds?: number;
  /** Where to serve; default `/token`. */
  path?: string;
}

/** The body of a successful token response, as Docker clients and OAuth2 clients read it. */
export interface TokenResponse {
  token: string;
  access_token: string;
  expires_in: number;
  issued_at: string;
  /** Only on POST (OAuth2), where the granted scope is part of the response. */
  scope?: string;
}

const FORM_TYPE = 'application/x-www-form-urlencoded';
const MAX_FORM_BYTES = 16 * 1024;

type Params = Record<string, unknown>;

/** Answer of one token request before it becomes HTTP: a token, or an error with its status. */
type Failure = {
  ok: false;
  status: number;
  code: string;
  message: string;
  oauthError: string;
  retryAfter?: number;
};
type Outcome = { ok: true; body: TokenResponse } | Failure;

/**
 * The Docker token endpoint: `GET <path>?service=…&scope=…` with optional Basic credentials, and
 * `POST <path>` with an OAuth2 password grant form. Register it with `app.register(tokenRoutes, opts)`
 * so its form parser stays inside its own scope.
 */
export async function tokenRoutes(app: FastifyInstance, options: TokenRoutesOptions): Promise<void> {
  const path = options.path ?? '/token';
  const ttl = options.ttlSeconds ?? DEFAULT_TOKEN_TTL_SECONDS;

  // The POST form needs a urlencoded parser and Fastify has none built in. An existing parser (the
  // host app's) is left alone; the handler copes with either a string-valued or array-valued body.
  if (!app.hasContentTypeParser(FORM_TYPE)) {
    app.addContentTypeParser(
      FORM_TYPE,
      { parseAs: 'string', bodyLimit: MAX_FORM_BYTES },
      (_req, body, done) => {
        done(null, searchParamsToRecord(new URLSearchParams(body as string)));
      },
    );
  }

  app.get(path, async (request, reply) => {
    const query = (request.query ?? {}) as Params;
    const auth = parseAuthorization(request.headers.authorization);
    let credentials: Credentials;
    if (auth.scheme === 'none') credentials = undefined;
    else if (auth.scheme === 'basic') credentials = { username: auth.username, password: auth.password };
    else credentials = 'invalid';
    const outcome = await grant(request, options, ttl, {
      credentials,
      service: single(query.service),
      scopes: query.scope,
      oauth: false,
    });
    return send(reply, outcome, false, options.service);
  });

  app.post(path, async (request, reply) => {
    const body = (isRecord(request.body) ? request.body : {}) as Params;
    const grantType = single(body.grant_type);
    if (grantType !== 'password') {
      // Refresh tokens are not issued, so the refresh_token grant is refused like any other.
      return send(
        reply,
        failure(400, 'UNSUPPORTED', 'unsupported_grant_type', 'Only grant_type=password is supported.'),
        true,
        options.service,
      );
    }
    const username = single(body.username);
    const password = single(body.password);
    if (typeof username !== 'string' || typeof password !== 'string') {
      return send(
        reply,
        failure(
          400,
          'REQUEST_INVALID',
          'invalid_request',
          'The password grant needs one username and one password.',
        ),
        true,
        options.service,
      );
    }
    const credentials: Credentials = checkCredentials(username, password) ?? 'invalid';
    const outcome = await grant(request, options, ttl, {
      credentials,
      service: single(body.service),
      scopes: body.scope,
      oauth: true,
    });
    return send(reply, outcome, true, options.service);
  });
}

/** Undefined: anonymous. 'invalid': credentials were sent but cannot be read. */
type Credentials = { username: string; password: string } | undefined | 'invalid';

async function grant(
  request: FastifyRequest,
  options: TokenRoutesOptions,
  ttl: number,
  input: { credentials: Credentials; service: string | undefined | null; scopes: unknown; oauth: boolean },
): Promise<Outcome> {
  if (input.service === null) {
    return failure(
      400,
      'SERVICE_INVALID',
      'invalid_request',
      'Give the service parameter once, as a string.',
    );
  }
  // A token for another service would be useless (wrong audience); say so instead of issuing it.
  if (input.service !== undefined && input.service !== options.service) {
    return failure(
      400,
      'SERVICE_INVALID',
      'invalid_request',
      `This token service issues tokens for "${options.service}" only.`,
    );
  }
  const scopeValues = stringList(input.scopes);
  if (scopeValues === null)
    return failure(400, 'SCOPE_INVALID', 'invalid_scope', 'The scope parameter must be text.');
  let scopes: Scope[];
  try {
    scopes = parseScopeParams(scopeValues);
  } catch (err) {
    if (err instanceof AuthError) return failure(400, 'SCOPE_INVALID', 'invalid_scope', err.message);
    throw err;
  }

  let principal: Principal;
  if (input.credentials === undefined) {
    principal = { ...ANONYMOUS };
  } else if (input.credentials === 'invalid') {
    return failure(
      401,
      'UNAUTHORIZED',
      'invalid_request',
      'The credentials are malformed; send a username and password.',
    );
  } else {
    const { username, password } = input.credentials;
    const limiter = options.rateLimiter;
    const decision = limiter.check(request.ip, username);
    if (!decision.allowed) {
      return {
        ...failure(
          429,
          'TOOMANYREQUESTS',
          'invalid_grant',
          `Too many failed logins for this user from this address; retry in ${decision.retryAfterSeconds} seconds.`,
        ),
        retryAfter: decision.retryAfterSeconds,
      };
    }
    let verified: Principal | null;
    try {
      verified = await options.verifyCredentials(username, password, request.ip ?? null);
    } catch (err) {
      if (err instanceof LoginBusyError) {
        return { ...failure(429, 'TOOMANYREQUESTS', 'invalid_grant', `${err.message.charAt(0).toUpperCase()}${err.message.slice(1)}.`), retryAfter: err.retryAfterSeconds };
      }
      // Not counted as a failure: the store broke, the caller did nothing wrong.
      request.log.error({ err }, 'token endpoint: credential check failed');
      return failure(
        500,
        'UNKNOWN',
        'server_error',
        'The credentials could not be checked; try again later.',
      );
    }
    if (verified === null) {
      limiter.recordFailure(request.ip, username);
      return failure(401, 'UNAUTHORIZED', 'invalid_grant', 'Invalid username or password.');
    }
    limiter.recordSuccess(request.ip, username);
    principal = verified;
  }

  const access: AccessEntry[] = [];
  try {
    for (const scope of scopes) {
      const actions = await grantedFor(options, principal, scope, request.ip ?? null);
      if (actions.length > 0) access.push({ type: scope.type, name: scope.name, actions });
    }
  } catch (err) {
    request.log.error({ err }, 'token endpoint: deciding grants failed');
    return failure(500, 'UNKNOWN', 'server_error', 'The access could not be decided; try again later.');
  }

  const now = new Date(Math.floor(Date.now() / 1000) * 1000);
  const token = await issueToken({
    subject: principal.kind === 'anonymous' ? '' : principal.name,
    subjectKind: principal.kind,
    access,
    service: options.service,
    issuer: options.issuer,
    ttlSeconds: ttl,
    key: options.key,
    now,
    ...(principal.credential !== undefined ? { credential: principal.credential } : {}),
  });
  const body: TokenResponse = { token, access_token: token, expires_in: ttl, issued_at: now.toISOString() };
  if (input.oauth) body.scope = formatScopes(access);
  return { ok: true, body };
}

/** Requested ∩ granted: never more than the client asked for, never more than policy allows. */
async function grantedFor(
  options: TokenRoutesOptions,
  principal: Principal,
  scope: Scope,
  clientIp: string | null,
): Promise<string[]> {
  if (scope.type === 'repository' && scope.class === undefined) {
    // `*` asks for everything; policy sees it as the three concrete actions.
    const requested = REGISTRY_ACTIONS.filter(
      (a) => scope.actions.includes(a) || scope.actions.includes('*'),
    );
    if (requested.length === 0) return [];
    const allowed = await options.grantedActions(principal, scope.name, [...requested], clientIp);
    return normaliseActions(requested.filter((a) => allowed.includes(a)));
  }
  const allowed = options.grantedResourceActions
    ? await options.grantedResourceActions(principal, { ...scope, actions: [...scope.actions] })
    : defaultResourceActions(principal, scope);
  return normaliseActions(scope.actions.filter((a) => allowed.includes(a)));
}

function defaultResourceActions(principal: Principal, scope: Scope): string[] {
  if (scope.type === 'registry' && scope.name === 'catalog' && principal.admin === true) return ['*'];
  return [];
}

function send(reply: FastifyReply, outcome: Outcome, oauth: boolean, service: string): FastifyReply {
  // Token responses must never be cached (RFC 6749 §5.1), and neither must refusals.
  reply.header('cache-control', 'no-store').header('pragma', 'no-cache');
  if (outcome.ok) return reply.code(200).send(outcome.body);
  if (outcome.status === 401) {
    reply.header('www-authenticate', `Basic realm=${quoteHeaderValue(service)}, charset="UTF-8"`);
  }
  if (outcome.retryAfter !== undefined) reply.header('retry-after', String(outcome.retryAfter));
  const body: Record<string, unknown> = { errors: [{ code: outcome.code, message: outcome.message }] };
  // OAuth2 clients (POST) look for `error`; OCI clients for `errors`. Both are cheap to give.
  if (oauth) {
    body.error = outcome.oauthError;
    body.error_description = outcome.message;
  }
  return reply.code(outcome.status).send(body);
}

function failure(status: number, code: string, oauthError: string, message: string): Failure {
  return { ok: false, status, code, message, oauthError };
}

/**
 * One value of a parameter: undefined if absent, null if repeated (ambiguous, so refused) or not a
 * string (a host app's body parser may hand us anything).
 */
function single(value: unknown): string | undefined | null {
  if (value === undefined) return undefined;
  if (Array.isArray(value)) return value.length === 1 && typeof value[0] === 'string' ? value[0] : null;
  return typeof value === 'string' ? value : null;
}

/** All values of a repeatable parameter, or null if any is not a string. */
function stringList(value: unknown): string[] | null {
  if (value === undefined) return [];
  const list: unknown[] = Array.isArray(value) ? value : [value];
  return list.every((v): v is string => typeof v === 'string') ? (list as string[]) : null;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function searchParamsToRecord(params: URLSearchParams): Params {
  const out: Params = {};
  for (const [k, v] of params) {
    const prev = out[k];
    out[k] = prev === undefined ? v : Array.isArray(prev) ? [...prev, v] : [prev, v];
  }
  return out;
}
