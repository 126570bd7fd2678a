import { z } from 'zod';
import type { GateEvent } from '../gate/index.js';
import type { ApiContext } from './context.js';
import type { ApiRouter } from './router.js';
import { EVENT_TYPES, eventListSchema, limitParam } from './schemas.js';

const MAX_SCANNED = 10_000;

/**
 * `/api/v1/events`: the stored gate events, oldest first, for consumers that poll instead of
 * receiving webhooks. Non-administrators see only events about repositories they may pull.
 */
export function eventRoutes(router: ApiRouter, ctx: ApiContext): void {
  router.get(
    {
      path: '/api/v1/events',
      operationId: 'listEvents',
      summary: 'Stored events, for polling',
      description:
        'Events in id order (newest last): pushed, analysed, verdict_changed, pull_denied, push_denied, blocked_pull_allowed, new_advisory_affects. The `data` field is the same document webhooks send. ' +
        'Poll with `after=<last>` from the previous answer. System administrators see every event; others only those about repositories they may pull (an advisory event lists only those artifacts).',
      tags: ['events'],
      auth: 'user',
      query: z.object({
        after: z.coerce
          .number({ error: 'must be a whole number' })
          .int('must be a whole number')
          .min(0, 'must not be negative')
          .optional()
          .describe('Only events with a greater id.'),
        type: z
          .enum(EVENT_TYPES, { error: `must be one of ${EVENT_TYPES.join(', ')}` })
          .optional()
          .describe('Only events of this type.'),
        limit: limitParam('At most this many events'),
      }),
      responses: { 200: { description: 'The events.', schema: eventListSchema } },
    },
    async ({ req, query }) => {
      const principal = await ctx.access.user(req);
      const all = await ctx.access.isAdmin(principal);
      const visible = ctx.access.listable(principal);
      const events: { id: number; type: string; time: string; data: GateEvent }[] = [];
      let cursor = query.after;
      let last: number | null = null;
      // Filtering may drop events: read on until the page is full or the log ends, but examine at
      // most MAX_SCANNED per request (a caller who sees little must not make one request read the
      // whole log); `last` then says where the next poll continues.
      for (let scanned = 0; scanned < MAX_SCANNED;) {
        const batch = await ctx.deps.metadata.artifacts.listEvents({
          limit: query.limit,
          ...(cursor !== undefined ? { after: cursor } : {}),
          ...(query.type !== undefined ? { type: query.type } : {}),
        });
        for (const e of batch) {
          last = e.id;
          let data = JSON.parse(e.payload) as GateEvent;
          if (!all) {
            if (data.type === 'new_advisory_affects') {
              const artifacts = data.artifacts.filter((a) => visible(a.repository));
              if (artifacts.length === 0) continue;
              data = { ...data, artifacts };
            } else if (!visible(data.repository)) continue;
          }
          events.push({ id: e.id, type: e.type, time: e.time, data });
          if (events.length === query.limit) return { events, last };
        }
        if (batch.length < query.limit) return { events, last };
        scanned += batch.length;
        cursor = batch[batch.length - 1]!.id;
      }
      return { events, last };
    },
  );
}
