import { GATE_EVENT_TYPES as EVENT_TYPES } from '../gate/event-types.js';
import { z } from 'zod';
import { PROJECT_NAME_RE } from '../registry/access/index.js';
import { isValidRepositoryName } from '../registry/index.js';
import { named } from './router.js';

/** Shared parameter and response schemas of the `/api/v1` routes. */

// ---- parameters ---------------------------------------------------------------------------------

const decoded = (v: unknown) => {
  if (typeof v !== 'string' || !v.includes('%')) return v;
  try {
    return decodeURIComponent(v);
  } catch {
    return v;
  }
};

export const repositoryParam = z.preprocess(
  decoded,
  z
    .string()
    .refine(
      isValidRepositoryName,
      'not a repository name: lowercase components [a-z0-9] joined by "/", with ".", "_", "__" or "-" inside a component',
    )
    .describe('Repository name; its slashes may be sent as they are (`team/app`) or encoded (`team%2Fapp`).'),
);

export const DIGEST_RE = /^sha(256:[a-f0-9]{64}|512:[a-f0-9]{128})$/;
export const digestParam = z
  .string()
  .regex(DIGEST_RE, 'must be a digest: sha256:<64 lowercase hex> or sha512:<128 lowercase hex>')
  .describe('Manifest digest, e.g. `sha256:…`.');

export const projectParam = z
  .string()
  .regex(PROJECT_NAME_RE, 'not a project name: lowercase letters and digits, with ".", "_" or "-" inside')
  .describe("Project name (the first segment of its repositories' names).");

/** A count from the query string: 1–1000, 100 when absent. */
export function limitParam(description: string) {
  return z.coerce
    .number({ error: 'must be a whole number' })
    .int('must be a whole number')
    .min(1, 'must be at least 1')
    .max(1000, 'must be at most 1000')
    .default(100)
    .describe(`${description} (1–1000, default 100).`);
}

/** `n` and `last`, as the registry pages tags and the catalog. */
export const pageQuery = {
  n: limitParam('Page size'),
  last: z
    .string()
    .min(1, 'must not be empty')
    .max(512, 'must be at most 512 characters')
    .optional()
    .describe('Continue after this item (the `last` of the `Link: rel="next"` header).'),
};

// ---- responses ----------------------------------------------------------------------------------

export const errorSchema = named(
  'Error',
  z.object({
    error: z.object({
      code: z
        .string()
        .describe(
          'Stable machine code: UNAUTHORIZED, DENIED, NOT_FOUND, QUERY_INVALID, PATH_INVALID, GATE_DISABLED, ...',
        ),
      message: z.string(),
      details: z.array(z.string()).optional(),
    }),
  }),
);

const severity = z.enum(['critical', 'high', 'medium', 'low', 'none', 'unknown']);
const time = z.string().describe('ISO 8601 time');

export const projectRole = z.enum(['admin', 'maintainer', 'developer', 'reader']);

export const projectSummarySchema = named(
  'ProjectSummary',
  z.object({
    name: z.string(),
    public: z.boolean(),
    createdBy: z.string(),
    createdAt: time,
    role: projectRole
      .nullable()
      .describe(
        "The caller's role in the project; null when they see it as public, as an administrator or as its robot.",
      ),
  }),
);

export const projectListSchema = named('ProjectList', z.object({ projects: z.array(projectSummarySchema) }));

export const projectDetailSchema = named(
  'Project',
  z.object({
    name: z.string(),
    public: z.boolean(),
    createdBy: z.string(),
    createdAt: time,
    role: projectRole.nullable(),
    immutableTags: z
      .array(z.string())
      .describe('Tag immutability rules: `TAG_GLOB` or `REPO_GLOB:TAG_GLOB`.'),
    quota: z.object({
      limitBytes: z.number().int().nullable().describe('null: no quota'),
      usedBytes: z.number().int(),
    }),
    members: z
      .array(z.object({ user: z.string(), role: projectRole }))
      .optional()
      .describe('Project administrators and system administrators only.'),
    robots: z
      .array(
        z.object({
          name: z.string(),
          actions: z.array(z.string()),
          expiresAt: time.nullable(),
          revoked: z.boolean(),
          createdBy: z.string(),
          createdAt: time,
        }),
      )
      .optional()
      .describe('Project administrators and system administrators only; secrets are never shown.'),
  }),
);

export const repositoryListSchema = named(
  'RepositoryList',
  z.object({
    project: z.string(),
    repositories: z.array(
      z.object({ name: z.string(), tags: z.number().int(), manifests: z.number().int() }),
    ),
  }),
);

const verdictStatus = z.enum(['pass', 'warn', 'fail', 'error']);

export const artifactSummarySchema = named(
  'ArtifactSummary',
  z.object({
    digest: z.string(),
    mediaType: z.string(),
    artifactType: z.string().nullable(),
    subjectDigest: z
      .string()
      .nullable()
      .describe('Set for referrers (SBOM, report, signatures): the manifest they describe.'),
    size: z.number().int(),
    createdAt: time,
    tags: z.array(z.string()),
    verdict: z
      .object({ status: verdictStatus, evaluatedAt: time })
      .nullable()
      .describe('The stored verdict; the artifact route gives the verdict in force (recomputed when stale).'),
    analysis: z
      .enum(['analysed', 'failed', 'pending', 'not-analysed', 'not-applicable'])
      .describe('not-applicable: indexes and non-image artifacts are not analysed.'),
  }),
);

export const artifactListSchema = named(
  'ArtifactList',
  z.object({ repository: z.string(), artifacts: z.array(artifactSummarySchema) }),
);

const findingRef = z.looseObject({
  kind: z.string(),
  id: z.string(),
  severity: severity.optional(),
  message: z.string(),
  remedy: z.string(),
});

const exceptionScope = z.union([
  z.literal('global'),
  z.object({
    project: z.string().optional(),
    repository: z.string().optional(),
    digest: z.string().optional(),
  }),
]);

const exceptionReport = z.looseObject({
  id: z.string(),
  scope: exceptionScope,
  reason: z.string(),
  author: z.string().optional(),
  expires: z.string().optional(),
  origin: z.string(),
  matches: z.array(z.object({ ruleId: z.string(), finding: findingRef })),
});

export const policyVerdictSchema = named(
  'PolicyVerdict',
  z.object({
    status: z.enum(['pass', 'warn', 'fail']),
    policy: z.object({
      name: z.string().optional(),
      defaultAction: z.enum(['fail', 'warn', 'ignore']),
      overrides: z.array(z.string()),
    }),
    context: z.object({
      project: z.string().optional(),
      repository: z.string().optional(),
      digest: z.string().optional(),
      evaluatedAt: time,
    }),
    reasons: z.array(
      z.object({
        ruleId: z.string(),
        action: z.enum(['fail', 'warn']),
        kind: z.string(),
        message: z.string(),
        remedy: z.string(),
        findings: z.array(findingRef),
      }),
    ),
    exceptionsApplied: z.array(exceptionReport),
    expiredExceptions: z.array(exceptionReport),
    notes: z.array(z.string()),
  }),
  'What the policy decided for one artifact: reasons (fail first) with their findings and remedies, and the exceptions used or expired.',
);

export const storedVerdictSchema = named(
  'Verdict',
  z.object({
    status: verdictStatus,
    verdict: policyVerdictSchema.optional(),
    error: z
      .string()
      .optional()
      .describe(
        'Why there is no policy verdict (analysis failed, policy not answerable): the gate refuses the image.',
      ),
    policyHash: z.string().nullable(),
    policySource: z.string().nullable(),
    dbVersion: z.string(),
    staleAt: time.nullable(),
    counts: z.object({
      packages: z.number().int(),
      vulnerabilities: z.number().int(),
      secrets: z.number().int(),
      misconfigurations: z.number().int(),
    }),
    evaluatedAt: time,
  }),
);

export const artifactSchema = named(
  'Artifact',
  z.object({
    repository: z.string(),
    digest: z.string(),
    mediaType: z.string(),
    tags: z.array(z.string()),
    analysis: z.object({
      state: z
        .string()
        .describe("analysed, failed, or the analysis job's state (queued, running, ...), or not-analysed"),
      analysedAt: time.optional(),
      attempts: z.number().int().optional(),
      error: z.string().nullable(),
    }),
    verdict: storedVerdictSchema.nullable(),
  }),
);

const packageRef = z.looseObject({
  type: z.string(),
  name: z.string(),
  version: z.string(),
  purl: z.string(),
});

export const findingsSchema = named(
  'Findings',
  z.object({
    repository: z.string(),
    digest: z.string(),
    analysedAt: time,
    database: z
      .object({ available: z.boolean(), version: z.string() })
      .describe('The vulnerability database the findings were matched against (the current one).'),
    counts: z.object({
      packages: z.number().int(),
      vulnerabilities: z.number().int(),
      secrets: z.number().int(),
      misconfigurations: z.number().int(),
    }),
    vulnerabilities: z.array(
      z.looseObject({
        id: z.string(),
        aliases: z.array(z.string()),
        package: packageRef,
        installedVersion: z.string(),
        fixedVersions: z.array(z.string()),
        severity,
      }),
    ),
    secrets: z.array(
      z.looseObject({
        ruleId: z.string(),
        title: z.string(),
        severity,
        location: z.enum(['file', 'config', 'history']),
        target: z.string(),
        redacted: z
          .string()
          .describe('The first 4 characters and the length; the secret itself is never stored.'),
      }),
    ),
    misconfigurations: z.array(
      z.looseObject({
        id: z.string(),
        title: z.string(),
        severity,
        message: z.string(),
        remedy: z.string(),
        target: z.string(),
      }),
    ),
    warnings: z.array(z.string()),
  }),
);

const advisoryHit = z.object({
  repository: z.string(),
  digest: z.string(),
  package: z.string(),
  installedVersion: z.string(),
  fixedVersions: z.array(z.string()),
  severity,
});
const packageHit = z.object({
  repository: z.string(),
  digest: z.string(),
  type: z.string(),
  name: z.string(),
  versions: z.array(z.string()),
});

export const searchResultSchema = named(
  'SearchResult',
  z.union([
    z.object({ advisory: z.string(), artifacts: z.array(advisoryHit) }),
    z.object({ package: z.string(), artifacts: z.array(packageHit) }),
  ]),
);

const policyDocument = z
  .looseObject({ version: z.literal(1) })
  .describe('A policy document (docs/policy.md).');

export const policySchema = named(
  'Policy',
  z.object({
    source: z.string().describe('Where the policy comes from: a file, `FILE: policy`, or `built-in policy`.'),
    hash: z
      .string()
      .describe('Changes whenever the policy does; verdicts record the hash they were computed under.'),
    document: policyDocument,
    rejectedChange: z
      .object({ message: z.string(), since: z.string() })
      .nullable()
      .describe(
        'A change to the policy file that could not be loaded (why, with file and line, and since when); the policy above, the last that loaded, stays in force until the file is fixed. Null when the file is what is enforced.',
      ),
    effective: z
      .object({ project: z.string(), appliedOverrides: z.array(z.string()), document: policyDocument })
      .optional()
      .describe('With ?project=: the policy for that project, its `projects:` overrides applied.'),
  }),
);

export const exceptionListSchema = named(
  'ExceptionList',
  z.object({
    source: z.string(),
    exceptions: z.array(
      z.object({
        id: z.string().describe('Advisory id or alias, check id, secret rule id, package name or rule id.'),
        scope: exceptionScope,
        reason: z.string(),
        author: z.string().nullable(),
        expires: z.string().nullable(),
        expired: z.boolean(),
        origin: z.string().describe('Where it is written: `exceptions[0]`, `projects.team-*.exceptions[1]`.'),
      }),
    ),
  }),
);

export { EVENT_TYPES };

export const eventListSchema = named(
  'EventList',
  z.object({
    events: z.array(
      z.object({
        id: z.number().int(),
        type: z.enum(EVENT_TYPES),
        time,
        data: z.looseObject({ type: z.enum(EVENT_TYPES) }),
      }),
    ),
    last: z
      .number()
      .int()
      .nullable()
      .describe(
        'The last event id examined: pass it as `after` to poll for newer ones (null: nothing newer than `after`).',
      ),
  }),
);

export const auditListSchema = named(
  'AuditLog',
  z.object({
    entries: z.array(
      z.object({
        id: z.number().int(),
        time,
        principal: z.string(),
        action: z.string(),
        repository: z.string().nullable(),
        reference: z.string().nullable(),
        digest: z.string().nullable(),
        clientIp: z.string().nullable(),
        outcome: z.string(),
        detail: z.string().nullable(),
      }),
    ),
  }),
);

export const openApiSchema = named('OpenApiDocument', z.looseObject({ openapi: z.string() }));
