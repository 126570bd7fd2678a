import type { FastifyReply } from 'fastify';
import type { z } from 'zod';
import { PortcullisError } from '../errors.js';

/**
 * An API refusal: an HTTP status, a stable code and a message that says what to do. The API's
 * error handler turns it into `{ "error": { "code", "message", "details"? } }`.
 */
export class ApiError extends PortcullisError {
  constructor(
    readonly status: number,
    code: string,
    message: string,
    readonly extra: { headers?: Record<string, string>; details?: string[] } = {},
  ) {
    super(code, message);
  }
}

/** Zod issues as one readable line per problem: `n: must be at most 1000`. */
export function describeIssues(where: 'query' | 'path', error: z.ZodError): ApiError {
  const details = error.issues.map((i) => `${i.path.length > 0 ? `${i.path.join('.')}: ` : ''}${i.message}`);
  return new ApiError(
    400,
    where === 'query' ? 'QUERY_INVALID' : 'PATH_INVALID',
    `invalid ${where === 'query' ? 'query parameter' : 'path'}: ${details.join('; ')}`,
    { details },
  );
}

export function sendError(reply: FastifyReply, err: ApiError): FastifyReply {
  for (const [k, v] of Object.entries(err.extra.headers ?? {})) void reply.header(k, v);
  return reply
    .code(err.status)
    .header('content-type', 'application/json')
    .send({
      error: {
        code: err.code,
        message: err.message,
        ...(err.extra.details ? { details: err.extra.details } : {}),
      },
    });
}

/** `Link: <path?n=N&last=L>; rel="next"`, as the registry's tag list and catalog page. */
export function setNextLink(
  reply: FastifyReply,
  path: string,
  n: number,
  last: string,
  extra: Record<string, string> = {},
): void {
  const q = new URLSearchParams({ ...extra, n: String(n), last });
  void reply.header('link', `<${path}?${q.toString()}>; rel="next"`);
}
