import type { FastifyInstance, FastifyReply } from 'fastify';
import { analysisJobKey, indexName, type Gate } from '../gate/index.js';
import { isAnonymous, validateRepositoryName, type RegistryAuth } from '../registry/index.js';
import type { RegistryMetadata } from '../store/index.js';

export interface ArtifactRoutesOptions {
  auth: RegistryAuth;
  metadata: RegistryMetadata;
  gate: Gate;
}

const DIGEST_RE = /^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$/;

function problem(reply: FastifyReply, status: number, code: string, message: string) {
  return reply.code(status).header('content-type', 'application/json').send({ error: { code, message } });
}

/**
 * `/api/v1/repositories/NAME/artifacts/DIGEST`: an artifact's verdict with its reasons, remedies
 * and exceptions, and the state of its analysis. The address a refused pull points at. The same
 * users, roles and tokens as the registry: reading it needs pull rights on the repository.
 */
export async function artifactRoutes(app: FastifyInstance, options: ArtifactRoutesOptions): Promise<void> {
  const { auth, metadata, gate } = options;

  /**
   * `/api/v1/search?advisory=ID` (artifacts the advisory affects now) or `?package=NAME[&type=T]`
   * (artifacts holding the package): only repositories the caller may pull are listed.
   */
  app.get('/api/v1/search', async (req, reply) => {
    const q = req.query as { advisory?: string; package?: string; type?: string };
    const principal = await auth.authenticate(req);
    if (!principal || isAnonymous(principal)) {
      void reply.header('www-authenticate', auth.challenge(undefined, []));
      return problem(reply, 401, 'UNAUTHORIZED', 'authentication required');
    }
    const visible = (repo: string) => auth.authorize(principal, repo, ['pull']);
    if (q.advisory !== undefined) {
      if (!/^[A-Za-z0-9._:-]{1,128}$/.test(q.advisory)) return problem(reply, 400, 'QUERY_INVALID', `"${q.advisory}" is not an advisory id`);
      const hits = (await gate.artifactsAffectedBy(q.advisory)).filter((h) => visible(h.repository));
      return reply.send({ advisory: q.advisory, artifacts: hits });
    }
    if (q.package !== undefined) {
      const types = q.type !== undefined ? [q.type] : ['apk', 'deb', 'rpm', 'npm', 'pypi', 'maven', 'golang', 'gem', 'cargo', 'composer', 'nuget'];
      const artifacts: { repository: string; digest: string; type: string; name: string; versions: string[] }[] = [];
      for (const type of types) {
        const name = indexName(type, q.package);
        for (const digest of await metadata.artifacts.digestsWithPackage(type, name)) {
          const versions = (await metadata.artifacts.packagesOf(digest)).filter((p) => p.type === type && (p.name === name || p.sourceName === name)).map((p) => p.version);
          for (const v of await metadata.artifacts.verdictsForDigest(digest)) {
            if (visible(v.repository)) artifacts.push({ repository: v.repository, digest, type, name, versions: [...new Set(versions)] });
          }
        }
      }
      return reply.send({ package: q.package, artifacts });
    }
    return problem(reply, 400, 'QUERY_INVALID', 'give ?advisory=ID or ?package=NAME (with &type=apk|deb|npm|...)');
  });

  app.get('/api/v1/repositories/*', async (req, reply) => {
    const rest = (req.params as { '*': string })['*'];
    const m = /^(.+)\/artifacts\/([^/]+)$/.exec(rest);
    if (!m) return problem(reply, 404, 'NOT_FOUND', 'expected /api/v1/repositories/NAME/artifacts/DIGEST');
    const [, repository, digest] = m as unknown as [string, string, string];
    try {
      validateRepositoryName(repository);
    } catch (err) {
      return problem(reply, 400, 'NAME_INVALID', (err as Error).message);
    }
    if (!DIGEST_RE.test(digest)) return problem(reply, 400, 'DIGEST_INVALID', `"${digest}" is not a sha256 or sha512 digest`);
    const principal = await auth.authenticate(req);
    if (!principal || isAnonymous(principal)) {
      if (!principal || !auth.authorize(principal, repository, ['pull'])) {
        void reply.header('www-authenticate', auth.challenge(repository, ['pull']));
        return problem(reply, 401, 'UNAUTHORIZED', 'authentication required');
      }
    } else if (!auth.authorize(principal, repository, ['pull'])) {
      return problem(reply, 403, 'DENIED', `${principal.name} may not read ${repository}`);
    }
    const manifest = await metadata.getManifest(repository, digest);
    if (!manifest) return problem(reply, 404, 'MANIFEST_UNKNOWN', `no manifest ${digest} in ${repository}`);
    const facts = await metadata.artifacts.getFacts(digest);
    const verdict = facts ? await gate.verdicts.current(repository, digest) : null;
    const job = await metadata.jobs.latestByKey(analysisJobKey(repository, digest));
    return reply.header('content-type', 'application/json').send({
      repository,
      digest,
      mediaType: manifest.mediaType,
      analysis: facts
        ? { state: facts.state, analysedAt: facts.analysedAt, error: facts.error }
        : { state: job ? job.state : 'not-analysed', attempts: job?.attempts ?? 0, error: job?.lastError ?? null },
      verdict,
    });
  });
}
