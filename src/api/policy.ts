import { z } from 'zod';
import {
  effectiveAsDocument,
  expiryTime,
  globMatches,
  resolvePolicy,
  type ExceptionScope,
  type PolicyDocument,
  type ScopedException,
} from '../policy/index.js';
import { projectOf } from '../registry/access/index.js';
import type { Principal } from '../registry/auth-hook.js';
import type { RejectedPolicyChange } from '../gate/index.js';
import type { ApiContext } from './context.js';
import { policyInForce } from './context.js';
import type { ApiRouter } from './router.js';
import { exceptionListSchema, policySchema, projectParam } from './schemas.js';

/** Whether an exception with this scope could apply to an artifact of `project`. */
function scopeTouches(scope: ExceptionScope, project: string): boolean {
  if (scope === 'global') return true;
  if (scope.project !== undefined && !globMatches(scope.project, project)) return false;
  // A repository pattern's first segment is its project; `*` there may cover any project.
  if (
    scope.repository !== undefined &&
    !globMatches(projectOf(scope.repository), project) &&
    !scope.repository.startsWith('*')
  )
    return false;
  return true;
}

/** Every exception the document holds: top-level ones, then each project override's (scoped to it by default). */
function allExceptions(doc: PolicyDocument): ScopedException[] {
  const out: ScopedException[] = doc.exceptions.map((e, i) => ({ ...e, origin: `exceptions[${i}]` }));
  for (const [pattern, override] of Object.entries(doc.projects)) {
    for (const [i, e] of override.exceptions.entries())
      out.push({
        ...e,
        scope: e.scope ?? { project: pattern },
        origin: `projects.${pattern}.exceptions[${i}]`,
      });
  }
  return out;
}

/**
 * What of the policy a caller may read. Administrators read all of it. Others read what concerns
 * projects they can see: exceptions and `projects:` overrides name private projects and
 * repositories, and their reasons and authors are often confidential (a robot of one team must
 * not learn another team's plans from them).
 */
async function policyView(ctx: ApiContext, principal: Principal): Promise<{ all: boolean; touches: (scope: ExceptionScope) => boolean; pattern: (p: string) => boolean }> {
  if (await ctx.access.isAdmin(principal)) return { all: true, touches: () => true, pattern: () => true };
  const listable = ctx.access.listable(principal);
  const visible = (await ctx.deps.metadata.listProjects()).map((p) => p.name).filter((name) => listable(name));
  return {
    all: false,
    touches: (scope) => scope === 'global' || visible.some((p) => scopeTouches(scope, p)),
    pattern: (p) => visible.some((name) => globMatches(p, name)),
  };
}

/**
 * A refused change to the policy file as `view` may read it: the parser's message can quote the
 * file's lines (another project's exception), so only administrators read the message itself.
 */
function rejectedChangeFor(rejected: RejectedPolicyChange | undefined, view: Awaited<ReturnType<typeof policyView>>): RejectedPolicyChange | null {
  if (!rejected) return null;
  if (view.all) return rejected;
  return { message: 'the policy file was changed and cannot be loaded; an administrator can read why', since: rejected.since };
}

/** The document with only the exceptions and overrides `view` lets the caller read. */
function visibleDocument(doc: PolicyDocument, view: Awaited<ReturnType<typeof policyView>>): PolicyDocument {
  if (view.all) return doc;
  return {
    ...doc,
    exceptions: doc.exceptions.filter((e) => view.touches(e.scope ?? 'global')),
    projects: Object.fromEntries(Object.entries(doc.projects).filter(([pattern]) => view.pattern(pattern))),
  };
}

/**
 * `/api/v1/policy` and `/api/v1/exceptions`: the policy the gate enforces, read-only. Exceptions
 * are written in the policy file (reviewed like code); the server re-reads it within a second.
 */
export function policyRoutes(router: ApiRouter, ctx: ApiContext): void {
  const projectQuery = z.object({
    project: projectParam
      .optional()
      .describe('A project name: its effective policy / the exceptions that can apply to it.'),
  });

  router.get(
    {
      path: '/api/v1/policy',
      operationId: 'getPolicy',
      summary: 'The policy in force',
      description:
        'Where it comes from, its hash and the document (defaults filled in). With `project=`, also the effective policy for that project (its `projects:` overrides applied). Read-only: edit the policy file.',
      tags: ['policy'],
      auth: 'user',
      query: projectQuery,
      responses: {
        200: { description: 'The policy.', schema: policySchema },
        503: { description: 'No gate, or no policy has loaded since the start (then every gated pull is refused).' },
      },
    },
    async ({ req, query }) => {
      const principal = await ctx.access.user(req);
      if (query.project !== undefined && !(await ctx.access.isAdmin(principal))) await ctx.access.project(req, query.project);
      const view = await policyView(ctx, principal);
      const policy = await policyInForce(ctx.deps);
      const out = {
        source: policy.source,
        hash: policy.hash,
        document: visibleDocument(policy.policy, view) as unknown as Record<string, unknown> & { version: 1 },
        rejectedChange: rejectedChangeFor(ctx.deps.policy?.rejectedChange(), view),
      };
      if (query.project === undefined) return out;
      const effective = resolvePolicy(policy.policy, query.project);
      return {
        ...out,
        effective: {
          project: query.project,
          appliedOverrides: effective.appliedOverrides,
          document: effectiveAsDocument(effective) as Record<string, unknown> & { version: 1 },
        },
      };
    },
  );

  router.get(
    {
      path: '/api/v1/exceptions',
      operationId: 'listExceptions',
      summary: "The policy's exceptions",
      description:
        'Every exception with its scope, reason, author, expiry and whether it has expired (an expired one no longer applies; the verdict lists it under expiredExceptions). ' +
        'With `project=`, those that can apply to that project. Read-only: exceptions are added, changed and removed in the policy file, which the server re-reads on change.',
      tags: ['policy'],
      auth: 'user',
      query: projectQuery,
      responses: {
        200: { description: 'The exceptions, in policy order.', schema: exceptionListSchema },
        503: { description: 'No gate, or no policy has loaded since the start.' },
      },
    },
    async ({ req, query }) => {
      const principal = await ctx.access.user(req);
      if (query.project !== undefined && !(await ctx.access.isAdmin(principal))) await ctx.access.project(req, query.project);
      const view = await policyView(ctx, principal);
      const policy = await policyInForce(ctx.deps);
      const now = ctx.now().getTime();
      const exceptions = allExceptions(policy.policy)
        .filter((e) => view.touches(e.scope))
        .filter((e) => query.project === undefined || scopeTouches(e.scope, query.project))
        .map((e) => ({
          id: e.id,
          scope: e.scope,
          reason: e.reason,
          author: e.author ?? null,
          expires: e.expires ?? null,
          expired: e.expires !== undefined && now >= expiryTime(e.expires),
          origin: e.origin,
        }));
      return { source: policy.source, exceptions };
    },
  );
}
