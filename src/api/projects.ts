import { z } from 'zod';
import type { Principal } from '../registry/index.js';
import { pageCursors } from '../registry/page-cursor.js';
import { REPOSITORY_SCAN_LIMIT, scanRepositories } from '../registry/repository-scan.js';
import type { ProjectRecord, ProjectRole } from '../store/index.js';
import type { ApiContext } from './context.js';
import { ApiError, setNextLink } from './http.js';
import type { ApiRouter } from './router.js';
import {
  pageQuery,
  projectDetailSchema,
  projectListSchema,
  projectParam,
  repositoryListSchema,
} from './schemas.js';

async function roleOf(ctx: ApiContext, project: string, principal: Principal): Promise<ProjectRole | null> {
  if (principal.kind !== 'user') return null;
  const members = await ctx.deps.metadata.listProjectMembers(project);
  return members.find((m) => m.user === principal.name)?.role ?? null;
}

const summary = (p: ProjectRecord, role: ProjectRole | null) => ({
  name: p.name,
  public: p.public,
  createdBy: p.createdBy,
  createdAt: p.createdAt,
  role,
});

/** `/api/v1/projects`, `/api/v1/projects/{name}` and the project's repositories. */
export function projectRoutes(router: ApiRouter, ctx: ApiContext): void {
  const { metadata } = ctx.deps;

  router.get(
    {
      path: '/api/v1/projects',
      operationId: 'listProjects',
      summary: 'Projects the caller can see',
      description:
        'Member projects and public ones; system administrators see every project, a robot its own and the public ones.',
      tags: ['projects'],
      auth: 'user',
      responses: { 200: { description: 'The projects, by name.', schema: projectListSchema } },
    },
    async ({ req }) => {
      const principal = await ctx.access.user(req);
      const admin = await ctx.access.isAdmin(principal);
      const listable = ctx.access.listable(principal);
      const roles = new Map<string, ProjectRole>();
      if (principal.kind === 'user')
        for (const m of await metadata.listProjectMembers())
          if (m.user === principal.name) roles.set(m.project, m.role);
      const projects = (await metadata.listProjects()).filter((p) => admin || listable(p.name));
      return { projects: projects.map((p) => summary(p, roles.get(p.name) ?? null)) };
    },
  );

  router.get(
    {
      path: '/api/v1/projects/{name}',
      operationId: 'getProject',
      summary: "A project's settings",
      description:
        "Visibility, tag immutability rules, quota and usage. Members and robots are listed for the project's administrators and system administrators only (never a secret or hash). " +
        'Callers who cannot see the project get 403 whether or not it exists.',
      tags: ['projects'],
      auth: 'pull',
      params: z.object({ name: projectParam }),
      responses: {
        200: { description: 'The project.', schema: projectDetailSchema },
        403: { description: '' },
        404: { description: '' },
      },
    },
    async ({ req, params }) => {
      const principal = await ctx.access.project(req, params.name);
      const project = await metadata.getProject(params.name);
      if (!project) throw new ApiError(404, 'NOT_FOUND', `no project ${params.name}`);
      const role = await roleOf(ctx, project.name, principal);
      const manages = role === 'admin' || (await ctx.access.isAdmin(principal));
      const detail = {
        ...summary(project, role),
        immutableTags: project.immutableTags,
        quota: { limitBytes: project.quotaBytes, usedBytes: await metadata.projectUsage(project.name) },
      };
      if (!manages) return detail;
      const members = (await metadata.listProjectMembers(project.name)).map((m) => ({
        user: m.user,
        role: m.role,
      }));
      // Picked field by field: the secret's hash must never reach a response.
      const robots = (await metadata.listRobots(project.name)).map((r) => ({
        name: r.name,
        actions: r.actions,
        expiresAt: r.expiresAt,
        revoked: r.revoked,
        createdBy: r.createdBy,
        createdAt: r.createdAt,
      }));
      return { ...detail, members, robots };
    },
  );

  router.get(
    {
      path: '/api/v1/projects/{name}/repositories',
      operationId: 'listProjectRepositories',
      summary: "A project's repositories",
      description:
        'By name, paged like the registry catalog: `n` per page and a `Link: rel="next"` header while more remain.',
      tags: ['projects'],
      auth: 'pull',
      params: z.object({ name: projectParam }),
      query: z.object(pageQuery),
      responses: {
        200: {
          description: 'One page of repositories.',
          schema: repositoryListSchema,
          headers: {
            Link: {
              description:
                'Present while more pages remain: `</api/v1/projects/P/repositories?n=N&last=R>; rel="next"`.',
              schema: { type: 'string' },
            },
          },
        },
        403: { description: '' },
        404: { description: '' },
      },
    },
    async ({ req, reply, params, query }) => {
      const principal = await ctx.access.project(req, params.name);
      const name = params.name;
      if (!(await metadata.getProject(name))) throw new ApiError(404, 'NOT_FOUND', `no project ${name}`);
      const prefix = `${name}/`;
      // A sealed continuation is opened first: the name it stands for must then be of this project.
      const last = query.last !== undefined && pageCursors.isSealed(query.last) ? pageCursors.open(query.last) : query.last;
      if (query.last !== undefined && last === undefined) {
        throw new ApiError(400, 'BAD_REQUEST', 'this continuation has expired (the server restarted, or another one made it); list again from the start');
      }
      if (last !== undefined && last !== name && !last.startsWith(prefix)) {
        throw new ApiError(400, 'QUERY_INVALID', `last "${query.last}" is not a repository of project ${name}`);
      }
      const listable = ctx.access.listable(principal);
      const names: string[] = [];
      // A repository named like the project itself sorts before every `project/...` one.
      if (last === undefined && (await metadata.repositoryExists(name)) && listable(name)) names.push(name);
      // Bounded like the registry catalog: past the bound a page may be short, its Link continuing
      // (sealed) from the last repository examined.
      const scan = await scanRepositories(metadata, {
        after: last === undefined || last === name ? prefix : last,
        want: query.n + 1 - names.length,
        keep: listable,
        within: (r) => r.startsWith(prefix),
        limit: REPOSITORY_SCAN_LIMIT,
      });
      names.push(...scan.found);
      const page = names.slice(0, query.n);
      if (names.length > query.n)
        setNextLink(reply, `/api/v1/projects/${name}/repositories`, query.n, page[page.length - 1]!);
      else if (scan.stoppedAt !== undefined)
        // Sealed: the scan may have stopped on a repository the caller may not see.
        setNextLink(reply, `/api/v1/projects/${name}/repositories`, query.n, pageCursors.seal(scan.stoppedAt));
      const repositories = [];
      for (const repo of page) {
        repositories.push({
          name: repo,
          tags: (await metadata.listTagTargets(repo)).length,
          manifests: (await metadata.listManifests(repo)).length,
        });
      }
      return { project: name, repositories };
    },
  );
}
