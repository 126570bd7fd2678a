import { z } from 'zod';
import { indexName } from '../gate/index.js';
import { PACKAGE_TYPES } from '../sbom/model.js';
import type { ApiContext } from './context.js';
import { requireGate } from './context.js';
import type { ApiRouter } from './router.js';
import { searchResultSchema } from './schemas.js';


/** `/api/v1/search`: which stored artifacts an advisory affects now, or which hold a package. */
export function searchRoutes(router: ApiRouter, ctx: ApiContext): void {
  const { metadata } = ctx.deps;
  router.get(
    {
      path: '/api/v1/search',
      operationId: 'search',
      summary: 'Artifacts affected by an advisory, or holding a package',
      description:
        '`advisory=ID` (an OSV id or any alias, e.g. a CVE): the artifacts it affects now, each matched against the current database (nothing is stored by a search). ' +
        '`package=NAME` (optionally `type=`): artifacts holding the package, by name or by source/origin package, with the versions found. ' +
        'Only repositories the caller may pull are listed.',
      tags: ['search'],
      auth: 'user',
      query: z
        .object({
          advisory: z
            .string()
            .regex(
              /^[A-Za-z0-9._:-]{1,128}$/,
              'must be an advisory id such as CVE-2024-1234 or GHSA-xxxx-xxxx-xxxx',
            )
            .optional()
            .describe('Advisory id or alias.'),
          package: z
            .string()
            .min(1, 'must not be empty')
            .max(256, 'must be at most 256 characters')
            .optional()
            .describe(
              'Package name (as its ecosystem spells it: npm `@scope/name`, Maven `group:artifact`).',
            ),
          type: z
            .enum(PACKAGE_TYPES, { error: `must be one of ${PACKAGE_TYPES.join(', ')}` })
            .optional()
            .describe('Package type, with `package`; all types by default.'),
        })
        .refine(
          (q) => (q.advisory === undefined) !== (q.package === undefined),
          'give either advisory=ID or package=NAME (with an optional type=apk|deb|npm|...)',
        ),
      responses: {
        200: {
          description: 'The matching artifacts, one entry per repository holding each.',
          schema: searchResultSchema,
        },
        503: { description: '' },
      },
    },
    async ({ req, query }) => {
      const principal = await ctx.access.user(req);
      const visible = ctx.access.listable(principal);
      if (query.advisory !== undefined) {
        const hits = (await requireGate(ctx.deps).artifactsAffectedBy(query.advisory)).filter((h) =>
          visible(h.repository),
        );
        return { advisory: query.advisory, artifacts: hits };
      }
      const asked = query.package!;
      const artifacts: {
        repository: string;
        digest: string;
        type: string;
        name: string;
        versions: string[];
      }[] = [];
      for (const type of query.type !== undefined ? [query.type] : PACKAGE_TYPES) {
        const name = indexName(type, asked);
        for (const digest of await metadata.artifacts.digestsWithPackage(type, name)) {
          const versions = (await metadata.artifacts.packagesOf(digest))
            .filter((p) => p.type === type && (p.name === name || p.sourceName === name))
            .map((p) => p.version);
          for (const v of await metadata.artifacts.verdictsForDigest(digest)) {
            if (visible(v.repository))
              artifacts.push({
                repository: v.repository,
                digest,
                type,
                name,
                versions: [...new Set(versions)],
              });
          }
        }
      }
      return { package: asked, artifacts };
    },
  );
}
