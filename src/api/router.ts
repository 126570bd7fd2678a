import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { ApiError, describeIssues, sendError } from './http.js';
import { RegistryError } from '../registry/errors.js';

/**
 * Every `/api/v1` route is declared once, as a `RouteSpec`: its path, its path and query
 * parameters and its responses as zod schemas. The same declaration validates requests at the
 * edge (clear 400s), registers the Fastify route and produces the route's part of the OpenAPI 3.1
 * document (zod v4's `z.toJSONSchema`), so the document cannot drift from what the server does.
 */

/** Names the schemas that appear in responses: each becomes `#/components/schemas/<id>`. */
export const apiSchemas = z.registry<{ id: string; description?: string }>();

export function named<T extends z.ZodType>(id: string, schema: T, description?: string): T {
  apiSchemas.add(schema, { id, ...(description !== undefined ? { description } : {}) });
  return schema;
}

/**
 * Who may call: `none` (no credentials needed), `user` (an authenticated user or robot), `pull`
 * (the registry's pull right on the repository or project named in the path: anonymous callers
 * too, on public projects).
 */
export type AuthMode = 'none' | 'user' | 'pull';

export interface ResponseSpec {
  description: string;
  /** A named JSON schema (see `named`); omitted for bodies documented by `content`. */
  schema?: z.ZodType;
  /** Other media types, with their JSON schema (e.g. an SBOM whose schema lives elsewhere). */
  content?: Record<string, { schema: Record<string, unknown> }>;
  headers?: Record<string, { description: string; schema: Record<string, unknown> }>;
}

type AnyObject = z.ZodObject<z.ZodRawShape>;

export interface RouteSpec<P extends AnyObject = AnyObject, Q extends AnyObject = AnyObject> {
  /** The OpenAPI path template, e.g. `/api/v1/projects/{name}`. `{repository}` may hold slashes. */
  path: string;
  operationId: string;
  summary: string;
  description?: string;
  tags: string[];
  auth: AuthMode;
  params?: P;
  query?: Q;
  responses: Record<number, ResponseSpec>;
}

export interface RouteContext<P extends AnyObject, Q extends AnyObject> {
  req: FastifyRequest;
  reply: FastifyReply;
  params: z.output<P>;
  query: z.output<Q>;
}

type Handler<P extends AnyObject, Q extends AnyObject> = (ctx: RouteContext<P, Q>) => Promise<unknown>;

interface Registered {
  spec: RouteSpec;
  handler: Handler<AnyObject, AnyObject>;
  /** For templates that hold `{repository}`: the regex over the rest of the path after the prefix. */
  match?: { prefix: string; re: RegExp; names: string[] };
}

const REPOSITORY_PARAM = '{repository}';

export class ApiRouter {
  readonly routes: Registered[] = [];

  get<P extends AnyObject, Q extends AnyObject>(spec: RouteSpec<P, Q>, handler: Handler<P, Q>): void {
    const at = spec.path.indexOf(REPOSITORY_PARAM);
    const entry: Registered = {
      spec: spec as unknown as RouteSpec,
      handler: handler as unknown as Handler<AnyObject, AnyObject>,
    };
    if (at >= 0) {
      // Repository names have slashes, so these routes share one wildcard per prefix and are told
      // apart by a regex over the rest (the repository part is greedy: `a/artifacts/artifacts`
      // is the artifacts of `a/artifacts`).
      const rest = spec.path.slice(at);
      const names: string[] = [];
      const body = rest
        .split(/(\{[a-z]+\})/)
        .map((part) => {
          const m = /^\{([a-z]+)\}$/.exec(part);
          if (!m) return part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
          names.push(m[1]!);
          return m[1] === 'repository' ? '(.+)' : '([^/]+)';
        })
        .join('');
      entry.match = { prefix: spec.path.slice(0, at), re: new RegExp(`^${body}$`), names };
    }
    this.routes.push(entry);
  }

  /** The Fastify URL each route is served under (wildcards for repository routes). */
  fastifyUrl(spec: RouteSpec): string {
    const at = spec.path.indexOf(REPOSITORY_PARAM);
    if (at >= 0) return `${spec.path.slice(0, at)}*`;
    return spec.path.replace(/\{([a-z]+)\}/g, ':$1');
  }

  /**
   * Registers the routes on `app`, a scope registered with `prefix` (its error and not-found
   * handlers are the API's own, so every answer under the prefix has the API's error shape).
   */
  mount(app: FastifyInstance, prefix = ''): void {
    const local = (url: string) => {
      if (!url.startsWith(prefix)) throw new Error(`${url} is outside ${prefix}`);
      return url.slice(prefix.length);
    };
    app.setNotFoundHandler((req, reply) => {
      sendError(
        reply,
        new ApiError(
          404,
          'NOT_FOUND',
          `no API route ${req.method} ${req.url.split('?')[0]}; see /api/v1/openapi.json`,
        ),
      );
    });
    app.setErrorHandler((err: unknown, req, reply) => {
      if (err instanceof ApiError) return sendError(reply, err);
      // A locked-out login (see bearerAuth): the same 429 and Retry-After as on /v2 and /token.
      if (err instanceof RegistryError && err.status === 429) {
        return sendError(
          reply,
          new ApiError(429, 'TOO_MANY_REQUESTS', err.message, { headers: err.headers }),
        );
      }
      const status = (err as { statusCode?: number }).statusCode;
      if (typeof status === 'number' && status >= 400 && status < 500) {
        return sendError(reply, new ApiError(status, 'BAD_REQUEST', (err as Error).message));
      }
      req.log.error({ err }, 'api request failed');
      return sendError(
        reply,
        new ApiError(500, 'INTERNAL', 'the server could not answer; the log has the details'),
      );
    });
    const wildcards = new Map<string, Registered[]>();
    for (const r of this.routes) {
      if (r.match) {
        const list = wildcards.get(r.match.prefix) ?? [];
        list.push(r);
        wildcards.set(r.match.prefix, list);
        continue;
      }
      app.get(local(this.fastifyUrl(r.spec)), async (req, reply) =>
        this.run(r, req, reply, (req.params ?? {}) as Record<string, string>),
      );
    }
    for (const [start, list] of wildcards) {
      // More literal text first, so `/artifacts/{digest}/sbom` is tried before `/artifacts/{digest}`.
      list.sort((a, b) => b.match!.re.source.length - a.match!.re.source.length);
      app.get(local(`${start}*`), async (req, reply) => {
        const rest = (req.params as { '*': string })['*'];
        for (const r of list) {
          const m = r.match!.re.exec(rest);
          if (!m) continue;
          const params = Object.fromEntries(r.match!.names.map((n, i) => [n, m[i + 1]!]));
          return this.run(r, req, reply, params);
        }
        throw new ApiError(
          404,
          'NOT_FOUND',
          `no API route matches ${req.url.split('?')[0]}; see /api/v1/openapi.json`,
        );
      });
    }
  }

  private async run(
    r: Registered,
    req: FastifyRequest,
    reply: FastifyReply,
    rawParams: Record<string, string>,
  ): Promise<unknown> {
    const params = r.spec.params ? r.spec.params.safeParse(rawParams) : { success: true as const, data: {} };
    if (!params.success) throw describeIssues('path', params.error);
    const query = r.spec.query
      ? r.spec.query.safeParse(req.query ?? {})
      : { success: true as const, data: {} };
    if (!query.success) throw describeIssues('query', query.error);
    const out = await r.handler({ req, reply, params: params.data, query: query.data });
    if (out === reply) return reply;
    return reply.header('content-type', 'application/json').send(out);
  }
}

const ERROR_RESPONSES: Record<number, string> = {
  400: 'A path or query parameter is invalid; `details` lists each problem.',
  401: 'No usable credentials: the `WWW-Authenticate` header is the registry challenge (Basic, or Bearer with the token realm and scope).',
  403: 'Authenticated, but the caller lacks the right this route needs.',
  404: 'Not found (only said to callers who may read the thing asked for).',
  503: 'The part of the server this route needs is not running (e.g. `serve --no-gate`).',
};

function stripMeta(schema: Record<string, unknown>): Record<string, unknown> {
  const { $schema: _s, $id: _i, ...rest } = schema;
  return rest;
}

/** The OpenAPI 3.1 document for the routes of `router`. */
export function openApiDocument(
  router: ApiRouter,
  info: { version: string; errorSchema: z.ZodType },
): Record<string, unknown> {
  const uri = (id: string) => `#/components/schemas/${id}`;
  const { schemas } = z.toJSONSchema(apiSchemas, { uri, io: 'output', unrepresentable: 'any' });
  const refOf = (schema: z.ZodType) => {
    const id = apiSchemas.get(schema)?.id;
    if (id === undefined) throw new Error('response schemas must be registered with named()');
    return { $ref: uri(id) };
  };
  const paths: Record<string, Record<string, unknown>> = {};
  for (const { spec } of router.routes) {
    const parameters: Record<string, unknown>[] = [];
    for (const [where, obj] of [
      ['path', spec.params],
      ['query', spec.query],
    ] as const) {
      if (!obj) continue;
      const json = z.toJSONSchema(obj, { io: 'input', unrepresentable: 'any' }) as {
        properties?: Record<string, Record<string, unknown>>;
        required?: string[];
      };
      for (const [name, schema] of Object.entries(json.properties ?? {})) {
        const { description, ...rest } = schema;
        parameters.push({
          name,
          in: where,
          required: where === 'path' || (json.required ?? []).includes(name),
          ...(typeof description === 'string' ? { description } : {}),
          schema: rest,
        });
      }
    }
    const responses: Record<string, unknown> = {};
    for (const [status, r] of Object.entries(spec.responses)) {
      const content: Record<string, unknown> = {
        ...(r.schema ? { 'application/json': { schema: refOf(r.schema) } } : {}),
        ...(r.content ?? {}),
      };
      responses[status] = {
        description: r.description,
        ...(r.headers ? { headers: r.headers } : {}),
        ...(Object.keys(content).length > 0 ? { content } : {}),
      };
    }
    const implied = [...(spec.params || spec.query ? [400] : []), ...(spec.auth !== 'none' ? [401] : [])];
    for (const status of implied) {
      responses[String(status)] ??= {
        description: ERROR_RESPONSES[status],
        ...(status === 401
          ? {
              headers: {
                'WWW-Authenticate': { description: 'The registry challenge', schema: { type: 'string' } },
              },
            }
          : {}),
        content: { 'application/json': { schema: refOf(info.errorSchema) } },
      };
    }
    for (const [status, r] of Object.entries(responses)) {
      const entry = r as { description?: string; content?: unknown };
      if (Number(status) >= 400 && entry.content === undefined)
        entry.content = { 'application/json': { schema: refOf(info.errorSchema) } };
      if (entry.description === '' && ERROR_RESPONSES[Number(status)])
        entry.description = ERROR_RESPONSES[Number(status)];
    }
    const security =
      spec.auth === 'none'
        ? []
        : spec.auth === 'pull'
          ? [{ basicAuth: [] }, { bearerAuth: [] }, {}]
          : [{ basicAuth: [] }, { bearerAuth: [] }];
    (paths[spec.path] ??= {}).get = {
      operationId: spec.operationId,
      summary: spec.summary,
      ...(spec.description !== undefined ? { description: spec.description } : {}),
      tags: spec.tags,
      security,
      ...(parameters.length > 0 ? { parameters } : {}),
      responses,
    };
  }
  return {
    openapi: '3.1.0',
    info: {
      title: 'Portcullis API',
      version: info.version,
      description:
        "The curated registry's REST API: projects, repositories, artifacts with their verdicts, findings and SBOMs, search, the policy and its exceptions, events and the audit log. " +
        "It uses the registry's own users, roles, robots and tokens: HTTP Basic, or a Bearer token from `GET /token`. Everything is read-only; exceptions live in the policy file.",
    },
    jsonSchemaDialect: 'https://json-schema.org/draft/2020-12/schema',
    servers: [{ url: '/' }],
    tags: [
      { name: 'projects' },
      { name: 'artifacts' },
      { name: 'search' },
      { name: 'policy' },
      { name: 'events' },
      { name: 'audit' },
      { name: 'meta' },
    ],
    paths,
    components: {
      schemas: Object.fromEntries(
        Object.entries(schemas).map(([id, s]) => [id, stripMeta(s as Record<string, unknown>)]),
      ),
      securitySchemes: {
        basicAuth: {
          type: 'http',
          scheme: 'basic',
          description:
            'A registry user (name and password) or a robot (`robot$project+name` and its secret).',
        },
        bearerAuth: {
          type: 'http',
          scheme: 'bearer',
          bearerFormat: 'JWT',
          description:
            "A registry token from `GET /token` (Basic credentials, `service` and optional `scope=repository:NAME:pull`). Listings follow the account's roles; reading one repository needs a token whose scope grants pull on it (else 401 `insufficient_scope` names the scope to ask for).",
        },
      },
    },
  };
}
