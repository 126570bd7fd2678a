import { createHash } from 'node:crypto';
import { z } from 'zod';
import { analysisJobKey, decodeFacts, isImageManifest, publicVerdict } from '../gate/index.js';
import { renderResult } from '../sbom/render.js';
import { withVulnerabilities } from '../vulndb/index.js';
import type { ApiContext } from './context.js';
import { requireGate } from './context.js';
import { ApiError, setNextLink } from './http.js';
import { DocumentRenderer, nextStep, untilClientGone } from './render-cache.js';
import type { ApiRouter } from './router.js';
import {
  artifactListSchema,
  artifactSchema,
  digestParam,
  findingsSchema,
  pageQuery,
  repositoryParam,
} from './schemas.js';

const repoDigest = z.object({ repository: repositoryParam, digest: digestParam });

/**
 * `/api/v1/repositories/{repository}/artifacts[/{digest}[/findings|/sbom]]`. Each needs the pull
 * right on the repository, decided as for a manifest GET; the artifact route is the address a
 * refused pull points at.
 */
export function artifactRoutes(router: ApiRouter, ctx: ApiContext): void {
  const { metadata } = ctx.deps;
  const documents = ctx.deps.documents ?? new DocumentRenderer();

  async function manifestOf(repository: string, digest: string) {
    const manifest = await metadata.getManifest(repository, digest);
    if (!manifest) throw new ApiError(404, 'MANIFEST_UNKNOWN', `no manifest ${digest} in ${repository}`);
    return manifest;
  }

  async function analysedFacts(repository: string, digest: string) {
    await manifestOf(repository, digest);
    const facts = await metadata.artifacts.getFacts(digest);
    if (!facts)
      throw new ApiError(
        404,
        'NOT_ANALYSED',
        `${repository}@${digest} has not been analysed (yet); GET the artifact for the analysis state`,
      );
    if (!facts.facts)
      throw new ApiError(
        404,
        'NOT_ANALYSED',
        `${repository}@${digest} could not be analysed: ${facts.error ?? 'unknown error'}`,
      );
    return { ...facts, facts: facts.facts };
  }

  router.get(
    {
      path: '/api/v1/repositories/{repository}/artifacts',
      operationId: 'listArtifacts',
      summary: "A repository's artifacts",
      description:
        'Manifests by digest with their tags, stored verdict and analysis state, paged with `n`/`last` like the registry (a `Link: rel="next"` header while more remain). ' +
        'Referrers (SBOMs, reports, signatures) are left out unless `referrers=true`.',
      tags: ['artifacts'],
      auth: 'pull',
      params: z.object({ repository: repositoryParam }),
      query: z.object({
        ...pageQuery,
        last: digestParam.optional().describe('Continue after this digest.'),
        referrers: z
          .enum(['true', 'false'], { error: 'must be true or false' })
          .default('false')
          .describe('Include manifests that refer to another (SBOM, report, signature).'),
      }),
      responses: {
        200: {
          description: 'One page of artifacts.',
          schema: artifactListSchema,
          headers: { Link: { description: 'Present while more pages remain.', schema: { type: 'string' } } },
        },
        403: { description: '' },
        404: { description: '' },
      },
    },
    async ({ req, reply, params, query }) => {
      const { repository } = params;
      await ctx.access.pull(req, repository);
      if (!(await metadata.repositoryExists(repository)))
        throw new ApiError(404, 'NAME_UNKNOWN', `no repository ${repository}`);
      const all = (await metadata.listManifests(repository)).filter(
        (m) => query.referrers === 'true' || m.subjectDigest === null,
      );
      const after = query.last === undefined ? all : all.filter((m) => m.digest > query.last!);
      const page = after.slice(0, query.n);
      if (after.length > query.n)
        setNextLink(
          reply,
          `/api/v1/repositories/${repository}/artifacts`,
          query.n,
          page[page.length - 1]!.digest,
          query.referrers === 'true' ? { referrers: 'true' } : {},
        );
      const tags = new Map<string, string[]>();
      for (const t of await metadata.listTagTargets(repository))
        tags.set(t.digest, [...(tags.get(t.digest) ?? []), t.tag]);
      const verdicts = new Map(
        (await metadata.artifacts.listVerdicts({ repository })).map((v) => [v.digest, v]),
      );
      const artifacts = [];
      for (const m of page) {
        const v = verdicts.get(m.digest);
        let analysis: 'analysed' | 'failed' | 'pending' | 'not-analysed' | 'not-applicable' =
          'not-applicable';
        if (isImageManifest(m.mediaType, m.artifactType)) {
          const facts = await metadata.artifacts.getFacts(m.digest);
          const job = facts ? null : await metadata.jobs.latestByKey(analysisJobKey(repository, m.digest));
          analysis = facts
            ? facts.state
            : job && job.state !== 'failed' && job.state !== 'done'
              ? 'pending'
              : 'not-analysed';
        }
        artifacts.push({
          digest: m.digest,
          mediaType: m.mediaType,
          artifactType: m.artifactType,
          subjectDigest: m.subjectDigest,
          size: m.size,
          createdAt: m.createdAt,
          tags: tags.get(m.digest) ?? [],
          verdict: v ? { status: v.status, evaluatedAt: v.evaluatedAt } : null,
          analysis,
        });
      }
      return { repository, artifacts };
    },
  );

  router.get(
    {
      path: '/api/v1/repositories/{repository}/artifacts/{digest}',
      operationId: 'getArtifact',
      summary: "An artifact's verdict",
      description:
        "The verdict in force (recomputed when the policy, the vulnerability database or an exception's expiry made the stored one stale) with its reasons, remedies and exceptions, and the state of the analysis. " +
        "The address a refused pull's message points at.",
      tags: ['artifacts'],
      auth: 'pull',
      params: repoDigest,
      responses: {
        200: { description: 'The artifact.', schema: artifactSchema },
        403: { description: '' },
        404: { description: '' },
      },
    },
    async ({ req, params }) => {
      const { repository, digest } = params;
      await ctx.access.pull(req, repository);
      const manifest = await manifestOf(repository, digest);
      const facts = await metadata.artifacts.getFacts(digest);
      const verdict =
        facts && ctx.deps.gate ? await ctx.deps.gate.verdicts.current(repository, digest) : null;
      const job = facts ? null : await metadata.jobs.latestByKey(analysisJobKey(repository, digest));
      const tags = (await metadata.listTagTargets(repository))
        .filter((t) => t.digest === digest)
        .map((t) => t.tag);
      return {
        repository,
        digest,
        mediaType: manifest.mediaType,
        tags,
        analysis: facts
          ? { state: facts.state, analysedAt: facts.analysedAt, error: facts.error }
          : {
              state: job ? job.state : 'not-analysed',
              attempts: job?.attempts ?? 0,
              error: job?.lastError ?? null,
            },
        verdict: verdict ? publicVerdict(verdict) : null,
      };
    },
  );

  router.get(
    {
      path: '/api/v1/repositories/{repository}/artifacts/{digest}/findings',
      operationId: 'getArtifactFindings',
      summary: "An artifact's findings",
      description:
        'Vulnerabilities (the stored facts matched against the current vulnerability database, as the gate does), secrets (redacted when they were found: the first 4 characters and the length) and misconfigurations. ' +
        'Everything found, before the policy decides what matters; the verdict says that.',
      tags: ['artifacts'],
      auth: 'pull',
      params: repoDigest,
      responses: {
        200: { description: 'The findings.', schema: findingsSchema },
        403: { description: '' },
        404: { description: 'No such manifest, or not analysed (yet): code NOT_ANALYSED.' },
        429: {
          description:
            'Too many findings and SBOMs are being worked out at once: code TOO_MANY_REQUESTS; try again after `Retry-After` seconds.',
          headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'string' } } },
        },
        503: { description: '' },
      },
    },
    async ({ req, reply, params }) => {
      const { repository, digest } = params;
      await ctx.access.pull(req, repository);
      const gate = requireGate(ctx.deps);
      const facts = await analysedFacts(repository, digest);
      // Decoding and matching a large image's facts takes the event loop for a second or more:
      // under the same limiter as SBOM renders, so parallel requests cannot pile them up, and
      // given up when the client has gone.
      const { result, store, version } = await documents.limiter.run(async (signal) => {
        await nextStep(signal);
        const { store, version } = gate.vulndb.get();
        const base = decodeFacts(facts.facts);
        await nextStep(signal);
        return { result: store ? withVulnerabilities(base, store) : base, store, version };
      }, untilClientGone(reply.raw));
      const vulnerabilities = result.vulnerabilities ?? [];
      const secrets = result.secrets ?? [];
      const misconfigurations = result.misconfigurations ?? [];
      return {
        repository,
        digest,
        analysedAt: facts.analysedAt,
        database: { available: store !== null, version },
        counts: {
          packages: result.packages.length,
          vulnerabilities: vulnerabilities.length,
          secrets: secrets.length,
          misconfigurations: misconfigurations.length,
        },
        vulnerabilities,
        secrets,
        misconfigurations,
        warnings: result.warnings,
      };
    },
  );

  router.get(
    {
      path: '/api/v1/repositories/{repository}/artifacts/{digest}/sbom',
      operationId: 'getArtifactSbom',
      summary: "An artifact's SBOM",
      description:
        'CycloneDX 1.6 JSON (with the vulnerabilities section, matched against the current database), or SPDX 2.3 JSON with `format=spdx`. The same writers as `portcullis sbom`.',
      tags: ['artifacts'],
      auth: 'pull',
      params: repoDigest,
      query: z.object({
        format: z
          .enum(['cyclonedx', 'spdx'], { error: 'must be cyclonedx or spdx' })
          .default('cyclonedx')
          .describe('cyclonedx (default) or spdx.'),
      }),
      responses: {
        200: {
          description: 'The SBOM document.',
          content: {
            'application/vnd.cyclonedx+json': {
              schema: {
                type: 'object',
                description: 'CycloneDX 1.6 (https://cyclonedx.org/docs/1.6/json/)',
                required: ['bomFormat', 'specVersion'],
              },
            },
            'application/spdx+json': {
              schema: {
                type: 'object',
                description: 'SPDX 2.3 JSON (https://spdx.github.io/spdx-spec/v2.3/)',
                required: ['spdxVersion'],
              },
            },
          },
        },
        403: { description: '' },
        404: { description: 'No such manifest, or not analysed (yet): code NOT_ANALYSED.' },
        429: {
          description:
            'Too many SBOMs are being rendered at once: code TOO_MANY_REQUESTS; try again after `Retry-After` seconds.',
          headers: { 'Retry-After': { description: 'Seconds to wait.', schema: { type: 'string' } } },
        },
        503: { description: '' },
      },
    },
    async ({ req, reply, params, query }) => {
      const { repository, digest } = params;
      await ctx.access.pull(req, repository);
      const gate = requireGate(ctx.deps);
      const facts = await analysedFacts(repository, digest);
      // Everything the document is made of: the stored facts (replaced when an image is analysed
      // again), the vulnerability database they are matched against, and the format. The
      // repository is not: facts are per digest, and the access check above is per request.
      const factsDigest = createHash('sha256').update(facts.facts).digest('hex');
      const key = (version: string) => [digest, factsDigest, query.format, version].join('\n');
      const asked = key(gate.vulndb.version());
      const doc = await documents.get(
        asked,
        async (signal) => {
          // Each step may hold the event loop for a second on a large image: stopped between
          // them once nobody waits for the document.
          await nextStep(signal);
          // Opened only now: a render may have waited for a slot while the database was replaced.
          const { store, version } = gate.vulndb.get();
          const base = decodeFacts(facts.facts);
          await nextStep(signal);
          const result = store ? withVulnerabilities(base, store) : base;
          await nextStep(signal);
          const text = await renderResult(result, query.format);
          return { doc: Buffer.from(text), keep: key(version) === asked };
        },
        untilClientGone(reply.raw),
      );
      // The charset Fastify added when the document was sent as a string.
      return reply
        .header(
          'content-type',
          `${query.format === 'spdx' ? 'application/spdx+json' : 'application/vnd.cyclonedx+json'}; charset=utf-8`,
        )
        .send(doc);
    },
  );
}
