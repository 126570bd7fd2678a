import { z } from 'zod';
import { parseSince } from '../registry/access/index.js';
import type { ApiContext } from './context.js';
import type { ApiRouter } from './router.js';
import { auditListSchema, limitParam } from './schemas.js';

const since = z
  .string()
  .refine((s) => {
    try {
      parseSince(s);
      return true;
    } catch {
      return false;
    }
  }, 'must be a duration back from now (30m, 12h, 7d, 2w) or a date/time (2026-01-31, 2026-01-31T12:00:00Z)')
  .describe('Only entries at or after this: a duration back from now (`1h`, `7d`) or an ISO date/time.');

/** `/api/v1/audit`: the audit log, for system administrators. */
export function auditRoutes(router: ApiRouter, ctx: ApiContext): void {
  router.get(
    {
      path: '/api/v1/audit',
      operationId: 'listAudit',
      summary: 'The audit log (system administrators)',
      description:
        'Logins, token grants, pushes, pulls and deletions (refused ones too), newest first, as `portcullis audit` shows them. Names and addresses, never credentials.',
      tags: ['audit'],
      auth: 'user',
      query: z.object({
        since: since.optional(),
        limit: limitParam('At most this many entries'),
      }),
      responses: {
        200: { description: 'The entries, newest first.', schema: auditListSchema },
        403: { description: 'The caller is not a system administrator.' },
      },
    },
    async ({ req, query }) => {
      await ctx.access.admin(req);
      await ctx.deps.audit?.flush();
      const rows = await ctx.deps.metadata.listAudit({
        limit: query.limit,
        ...(query.since !== undefined ? { since: parseSince(query.since, ctx.now().getTime()) } : {}),
      });
      return { entries: rows.map((r) => ({ ...r, id: r.id ?? 0 })) };
    },
  );
}
