import type { FastifyInstance } from 'fastify';
import { GENERATOR_VERSION } from '../analyse/analyse-image.js';
import { ApiAccess } from './access.js';
import { artifactRoutes as artifactRoutesOf } from './artifacts.js';
import { auditRoutes } from './audit.js';
import type { ApiContext, ApiDeps } from './context.js';
import { eventRoutes } from './events.js';
import { policyRoutes } from './policy.js';
import { projectRoutes } from './projects.js';
import { ApiRouter, openApiDocument } from './router.js';
import { errorSchema, openApiSchema } from './schemas.js';
import { searchRoutes } from './search.js';

export type { ApiDeps } from './context.js';
export { ApiError } from './http.js';
export { ApiRouter, openApiDocument, type RouteSpec } from './router.js';

const API_PREFIX = '/api/v1';

/** Every `/api/v1` route, declared (not yet mounted): what `apiRoutes` serves and the OpenAPI document describes. */
export function buildApiRouter(deps: ApiDeps): ApiRouter {
  const router = new ApiRouter();
  const ctx: ApiContext = {
    deps,
    access: new ApiAccess(deps.auth, deps.metadata),
    now: deps.now ?? (() => new Date()),
  };
  projectRoutes(router, ctx);
  artifactRoutesOf(router, ctx);
  searchRoutes(router, ctx);
  policyRoutes(router, ctx);
  eventRoutes(router, ctx);
  auditRoutes(router, ctx);
  let document: Record<string, unknown> | undefined;
  router.get(
    {
      path: '/api/v1/openapi.json',
      operationId: 'getOpenApi',
      summary: 'This document',
      description:
        'The OpenAPI 3.1 description of every /api/v1 route, generated from the same schemas that validate requests.',
      tags: ['meta'],
      auth: 'none',
      responses: { 200: { description: 'The OpenAPI document.', schema: openApiSchema } },
    },
    async () => (document ??= openApiDocument(router, { version: GENERATOR_VERSION, errorSchema })),
  );
  return router;
}

/**
 * Registers the `/api/v1` REST API on `app`, in its own scope (its own error handler), on the
 * registry's own auth hook: the same users, roles, robots and tokens.
 */
export async function apiRoutes(app: FastifyInstance, deps: ApiDeps): Promise<void> {
  const router = buildApiRouter(deps);
  await app.register(async (scope) => router.mount(scope, API_PREFIX), { prefix: API_PREFIX });
}

/** The earlier name of `apiRoutes` (it served only the artifact and search routes). */
export const artifactRoutes = apiRoutes;
