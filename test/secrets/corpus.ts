/**
 * The labelled corpus: per rule family, generated positives (with the exact rule ids expected)
 * and negatives (expected to yield nothing). Everything derives from a seeded PRNG.
 */
import { B32, B62, B64, B64URL, DIGITS, HEX, Rng, embed, wrap } from './gen.js';

export interface Case {
  text: string;
  expect: string[];
  /** What the case exercises, shown when it fails. */
  note: string;
}

export interface Family {
  name: string;
  positives(rng: Rng): Case[];
  negatives(rng: Rng): Case[];
}

const N = 100;

function times(n: number, f: (i: number) => Case): Case[] {
  return Array.from({ length: n }, (_, i) => f(i));
}

/** Neutral wrappers for negatives: no key name a generic rule would react to. */
function neutral(rng: Rng, token: string): string {
  return embed(rng, token);
}

/** Random alphanumerics guaranteed to contain a character outside `avoid`. */
function strWith(rng: Rng, alphabet: string, length: number, must: string): string {
  const s = rng.str(alphabet, length - 1);
  const at = rng.int(0, length - 1);
  return s.slice(0, at) + rng.pick([...must]) + s.slice(at);
}

// ------------------------------------------------------------------------------------------ AWS

const awsSecretKeys = [
  'aws_secret_access_key',
  'AWS_SECRET_ACCESS_KEY',
  'SecretAccessKey',
  'secret_access_key',
  'AWS_SECRET_KEY',
  'aws-secret-access-key',
];

function awsSecretLine(rng: Rng, key: string, value: string): string {
  const forms = [
    `${key} = ${value}`,
    `${key}=${value}`,
    `"${key}": "${value}"`,
    `${key}: ${value}`,
    `export ${key}="${value}"`,
  ];
  return rng.pick(forms);
}

export const aws: Family = {
  name: 'AWS',
  positives: (rng) => [
    ...times(50, () => ({
      text: embed(rng, rng.pick(['AKIA', 'ASIA']) + rng.str(B32, 16)),
      expect: ['aws-access-key-id'],
      note: 'key id',
    })),
    ...times(50, () => ({
      text: awsSecretLine(rng, rng.pick(awsSecretKeys), rng.str(B64, 40)),
      expect: ['aws-secret-access-key'],
      note: 'secret key assignment',
    })),
  ],
  negatives: (rng) =>
    times(N, (i) => {
      const kind = i % 10;
      const prefix = rng.pick(['AKIA', 'ASIA']);
      switch (kind) {
        case 0:
          return { text: neutral(rng, prefix + rng.str(B32, 15)), expect: [], note: 'id too short' };
        case 1:
          return { text: neutral(rng, prefix + rng.str(B32, 17)), expect: [], note: 'id too long' };
        case 2:
          return {
            text: neutral(rng, prefix.toLowerCase() + rng.str(B32, 16).toLowerCase()),
            expect: [],
            note: 'lower case',
          };
        case 3:
          return {
            text: neutral(rng, rng.pick(['AKIB', 'AKIE', 'ASIB', 'AIDA']) + rng.str(B32, 16)),
            expect: [],
            note: 'wrong prefix',
          };
        case 4:
          return {
            text: neutral(rng, prefix + strWith(rng, B32, 16, '0189')),
            expect: [],
            note: 'not base32',
          };
        case 5:
          return {
            text: neutral(rng, prefix + rng.pick(['X', 'A', '2', 'Z']).repeat(16)),
            expect: [],
            note: 'placeholder id',
          };
        case 6:
          return {
            text: neutral(rng, 'X' + prefix + rng.str(B32, 16)),
            expect: [],
            note: 'inside a longer word',
          };
        case 7:
          return {
            text: awsSecretLine(rng, rng.pick(awsSecretKeys), rng.pick(['x', 'X', '*', 'a']).repeat(40)),
            expect: [],
            note: 'placeholder secret',
          };
        case 8:
          return {
            text: awsSecretLine(
              rng,
              rng.pick(awsSecretKeys),
              rng.pick([
                '${AWS_SECRET_ACCESS_KEY}',
                '<your-secret-access-key>',
                '$(cat /run/secrets/aws)',
                'REPLACE_ME',
              ]),
            ),
            expect: [],
            note: 'template secret',
          };
        default:
          return {
            text: neutral(rng, rng.str(B64, 40)),
            expect: [],
            note: '40 base64 chars without a key name',
          };
      }
    }),
};

// ------------------------------------------------------------------------------------------ GCP

function pemBody(rng: Rng, bytes: number, width = 64): string[] {
  return wrap(rng.bytes(bytes).toString('base64'), width);
}

function gcpJson(rng: Rng, privateKey: string | undefined, type = 'service_account'): string {
  const fields: [string, string][] = [
    ['type', type],
    ['project_id', `proj-${rng.str(DIGITS, 6)}`],
    ['private_key_id', rng.str(HEX, 40)],
    ['client_email', `svc@proj-${rng.str(DIGITS, 4)}.iam.gserviceaccount.com`],
    ['client_id', rng.str(DIGITS, 21)],
    ['auth_uri', 'https://accounts.google.com/o/oauth2/auth'],
    ['token_uri', 'https://oauth2.googleapis.com/token'],
  ];
  if (privateKey !== undefined) fields.splice(rng.int(0, fields.length), 0, ['private_key', privateKey]);
  const pretty = rng.next() < 0.5;
  const body = fields.map(([k, v]) => `${pretty ? '  ' : ''}"${k}": "${v}"`).join(pretty ? ',\n' : ', ');
  return pretty ? `{\n${body}\n}\n` : `{${body}}`;
}

function gcpKey(lines: string[]): string {
  return `-----BEGIN PRIVATE KEY-----\\n${lines.join('\\n')}\\n-----END PRIVATE KEY-----\\n`;
}

export const gcp: Family = {
  name: 'GCP',
  positives: (rng) =>
    times(N, () => ({
      text: gcpJson(rng, gcpKey(pemBody(rng, rng.int(600, 1300)))),
      expect: ['gcp-service-account-key'],
      note: 'service account JSON',
    })),
  negatives: (rng) =>
    times(N, (i) => {
      const kind = i % 8;
      switch (kind) {
        case 0:
          return { text: gcpJson(rng, gcpKey(['...'])), expect: [], note: 'elided key' };
        case 1:
          return { text: gcpJson(rng, ''), expect: [], note: 'empty key' };
        case 2:
          return { text: gcpJson(rng, gcpKey(pemBody(rng, 24))), expect: [], note: 'body too short' };
        case 3:
          return {
            text: gcpJson(rng, rng.pick(['<your private key>', '${GCP_PRIVATE_KEY}', 'REDACTED'])),
            expect: [],
            note: 'placeholder',
          };
        case 4:
          return { text: gcpJson(rng, undefined), expect: [], note: 'no private key' };
        case 5:
          return {
            text: gcpJson(rng, undefined, 'external_account'),
            expect: [],
            note: 'workload identity config',
          };
        case 6:
          return {
            text: gcpJson(rng, gcpKey(Array.from({ length: 16 }, () => 'A'.repeat(64)))),
            expect: [],
            note: 'repetitive body',
          };
        default:
          return {
            text: gcpJson(rng, `-----BEGIN PRIVATE KEY-----\\n${pemBody(rng, 900).join('\\n')}`),
            expect: [],
            note: 'no END line',
          };
      }
    }),
};

// ---------------------------------------------------------------------------------------- Azure

const key88 = (rng: Rng) => rng.bytes(64).toString('base64');
const key44 = (rng: Rng) => rng.bytes(32).toString('base64');

function storageConn(rng: Rng, key: string): string {
  const parts = [
    `DefaultEndpointsProtocol=https`,
    `AccountName=acct${rng.str(DIGITS, 6)}`,
    `AccountKey=${key}`,
    'EndpointSuffix=core.windows.net',
  ];
  return rng.pick([
    `${parts.join(';')}`,
    `"${parts.join(';')}"`,
    `AZURE_STORAGE_CONNECTION_STRING=${parts.join(';')}`,
  ]);
}

function busConn(rng: Rng, key: string): string {
  return `Endpoint=sb://ns-${rng.str(DIGITS, 5)}.servicebus.windows.net/;SharedAccessKeyName=RootManageSharedAccessKey;SharedAccessKey=${key}`;
}

/** 88 characters of base64 that cannot be 64 bytes (the 86th character keeps data bits). */
function not64Bytes(rng: Rng): string {
  return rng.str(B64, 85) + rng.pick([...'BCDEFhijk0129+/']) + '==';
}

export const azure: Family = {
  name: 'Azure',
  positives: (rng) =>
    times(N, (i) => {
      if (i % 3 === 0)
        return {
          text: storageConn(rng, key88(rng)),
          expect: ['azure-storage-connection-string'],
          note: 'storage connection string',
        };
      if (i % 3 === 1) {
        const k = key88(rng);
        return {
          text: rng.pick([`AccountKey=${k}`, `"AccountKey": "${k}"`, `AccountName=x;AccountKey=${k}`]),
          expect: ['azure-storage-account-key'],
          note: 'bare account key',
        };
      }
      return { text: busConn(rng, key44(rng)), expect: ['azure-shared-access-key'], note: 'service bus' };
    }),
  negatives: (rng) =>
    times(N, (i) => {
      switch (i % 8) {
        case 0:
          return { text: storageConn(rng, key88(rng).slice(1)), expect: [], note: '87 chars' };
        case 1:
          return { text: storageConn(rng, 'A' + key88(rng)), expect: [], note: '89 chars' };
        case 2:
          return { text: storageConn(rng, not64Bytes(rng)), expect: [], note: 'not a 64-byte value' };
        case 3:
          return {
            text: storageConn(
              rng,
              'Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==',
            ),
            expect: [],
            note: 'Azurite emulator key',
          };
        case 4:
          return {
            text: `AccountKey=${rng.pick(['<account-key>', '${STORAGE_KEY}', '[key]', 'REPLACE'])}`,
            expect: [],
            note: 'placeholder',
          };
        case 5:
          return { text: `AccountKey=${'A'.repeat(86)}==`, expect: [], note: 'repetitive' };
        case 6:
          return {
            text: busConn(
              rng,
              rng.pick(['${SERVICEBUS_KEY}', '<shared-access-key>', 'REPLACE_WITH_KEY', '{{ .Values.key }}']),
            ),
            expect: [],
            note: 'service bus placeholder',
          };
        default:
          return { text: neutral(rng, key88(rng)), expect: [], note: 'base64 without a key name' };
      }
    }),
};

// --------------------------------------------------------------------------------------- GitHub

const ghKinds: [string, string][] = [
  ['ghp_', 'github-pat'],
  ['gho_', 'github-oauth-token'],
  ['ghu_', 'github-app-token'],
  ['ghs_', 'github-app-token'],
  ['ghr_', 'github-refresh-token'],
];

const fineGrained = (rng: Rng) => `github_pat_${rng.str(B62, 22)}_${rng.str(B62, 59)}`;

export const github: Family = {
  name: 'GitHub',
  positives: (rng) =>
    times(N, (i) => {
      if (i % 6 === 5)
        return {
          text: embed(rng, fineGrained(rng)),
          expect: ['github-fine-grained-pat'],
          note: 'fine-grained',
        };
      const [prefix, id] = rng.pick(ghKinds);
      const token = prefix + rng.str(B62, 36);
      return {
        text: rng.next() < 0.3 ? `GITHUB_TOKEN=${token}` : embed(rng, token),
        expect: [id],
        note: prefix,
      };
    }),
  negatives: (rng) =>
    times(N, (i) => {
      const [prefix] = rng.pick(ghKinds);
      switch (i % 9) {
        case 0:
          return { text: neutral(rng, prefix + rng.str(B62, 35)), expect: [], note: '35 chars' };
        case 1:
          return { text: neutral(rng, prefix + rng.str(B62, 37)), expect: [], note: '37 chars' };
        case 2:
          return {
            text: neutral(rng, rng.pick(['ghx_', 'gha_', 'ghb_', 'gh_', 'ghpp_']) + rng.str(B62, 36)),
            expect: [],
            note: 'wrong prefix',
          };
        case 3:
          return {
            text: neutral(rng, prefix.toUpperCase() + rng.str(B62, 36)),
            expect: [],
            note: 'upper-case prefix',
          };
        case 4:
          return {
            text: neutral(rng, prefix + rng.pick(['x', 'X', '0']).repeat(36)),
            expect: [],
            note: 'placeholder',
          };
        case 5:
          return {
            text: neutral(rng, `github_pat_${rng.str(B62, 22)}_${rng.str(B62, 58)}`),
            expect: [],
            note: 'fine-grained 81',
          };
        case 6:
          return {
            text: neutral(rng, `github_pat_${rng.str(B62, 82)}`),
            expect: [],
            note: 'fine-grained without separator',
          };
        case 7:
          return { text: neutral(rng, 'a' + prefix + rng.str(B62, 36)), expect: [], note: 'inside a word' };
        default: {
          const t = rng.str(B62, 36);
          return {
            text: neutral(rng, `${prefix}${t.slice(0, 18)}-${t.slice(18)}`),
            expect: [],
            note: 'dash inside',
          };
        }
      }
    }),
};

// --------------------------------------------------------------------------------------- GitLab

const GL = `${B62}_-`;
const glKinds: [string, string][] = [
  ['glpat-', 'gitlab-pat'],
  ['gldt-', 'gitlab-deploy-token'],
  ['glrt-', 'gitlab-runner-token'],
];

export const gitlab: Family = {
  name: 'GitLab',
  positives: (rng) =>
    times(N, () => {
      const [prefix, id] = rng.pick(glKinds);
      // First and last characters alphanumeric so the surrounding text's punctuation is not ambiguous.
      const token = prefix + rng.str(B62, 1) + rng.str(GL, 18) + rng.str(B62, 1);
      return { text: embed(rng, token), expect: [id], note: prefix };
    }),
  negatives: (rng) =>
    times(N, (i) => {
      const [prefix] = rng.pick(glKinds);
      switch (i % 6) {
        case 0:
          return { text: neutral(rng, prefix + rng.str(B62, 19)), expect: [], note: '19 chars' };
        case 1:
          return { text: neutral(rng, prefix + rng.str(B62, 21)), expect: [], note: '21 chars' };
        case 2:
          return {
            text: neutral(rng, prefix.replace('-', '_') + rng.str(B62, 20)),
            expect: [],
            note: 'underscore prefix',
          };
        case 3:
          return {
            text: neutral(rng, prefix + rng.pick(['x', 'X', '0']).repeat(20)),
            expect: [],
            note: 'placeholder',
          };
        case 4:
          return {
            text: neutral(rng, rng.pick(['glpax-', 'glp-', 'gldx-', 'gl-']) + rng.str(B62, 20)),
            expect: [],
            note: 'wrong prefix',
          };
        default:
          return {
            text: neutral(rng, prefix + rng.pick(['<your-token>', '${GITLAB_TOKEN}', 'REPLACE_WITH_TOKEN'])),
            expect: [],
            note: 'template',
          };
      }
    }),
};

// ---------------------------------------------------------------------------------------- Slack

function slackToken(rng: Rng): string {
  switch (rng.int(0, 4)) {
    case 0:
      return `xoxb-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 13)}-${rng.str(B62, 24)}`;
    case 1:
      return `xoxp-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 13)}-${rng.str(HEX, 32)}`;
    case 2:
      return `xoxa-2-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 12)}-${rng.str(HEX, 64)}`;
    case 3:
      return `xoxs-${rng.str(DIGITS, 10)}-${rng.str(DIGITS, 12)}-${rng.str(DIGITS, 12)}-${rng.str(HEX, 64)}`;
    default:
      return `xoxr-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 12)}-${rng.str(B62, 40)}`;
  }
}

const webhook = (rng: Rng) =>
  `https://hooks.slack.com/services/T${rng.str(B32, 10)}/B${rng.str(B32, 10)}/${rng.str(B62, 24)}`;

export const slack: Family = {
  name: 'Slack',
  positives: (rng) =>
    times(N, (i) =>
      i % 3 === 2
        ? { text: embed(rng, webhook(rng)), expect: ['slack-webhook-url'], note: 'webhook' }
        : { text: embed(rng, slackToken(rng)), expect: ['slack-token'], note: 'token' },
    ),
  negatives: (rng) =>
    times(N, (i) => {
      switch (i % 8) {
        case 0:
          return {
            text: neutral(
              rng,
              rng.pick([
                'xoxb-your-bot-token',
                'xoxb-not-a-real-token-this-will-not-work',
                'xoxp-REPLACE-ME',
              ]),
            ),
            expect: [],
            note: 'doc token',
          };
        case 1:
          return {
            text: neutral(rng, `xoxb-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 12)}-${rng.str(B62, 12)}`),
            expect: [],
            note: 'short secret segment',
          };
        case 2:
          return {
            text: neutral(
              rng,
              `${rng.pick(['xoxc', 'xoxz', 'xob', 'xxxb'])}-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 12)}-${rng.str(B62, 24)}`,
            ),
            expect: [],
            note: 'wrong prefix',
          };
        case 3:
          return {
            text: neutral(rng, `xoxb-${rng.str(DIGITS, 11)}-${rng.str(DIGITS, 12)}-${'x'.repeat(24)}`),
            expect: [],
            note: 'placeholder secret',
          };
        case 4:
          return {
            text: neutral(
              rng,
              'https://hooks.slack.com/services/T00000000/B00000000/XXXXXXXXXXXXXXXXXXXXXXXX',
            ),
            expect: [],
            note: 'doc webhook',
          };
        case 5:
          return {
            text: neutral(
              rng,
              `https://hooks.slack.com/services/t${rng.str(B32, 10).toLowerCase()}/B${rng.str(B32, 10)}/${rng.str(B62, 24)}`,
            ),
            expect: [],
            note: 'lower-case team',
          };
        case 6:
          return {
            text: neutral(
              rng,
              `https://hooks.slack.com/services/T${rng.str(B32, 10)}/B${rng.str(B32, 10)}/${rng.str(B62, 23)}`,
            ),
            expect: [],
            note: 'webhook secret 23',
          };
        default:
          return { text: neutral(rng, `xoxb-${rng.str(B62, 30)}`), expect: [], note: 'no numeric groups' };
      }
    }),
};

// --------------------------------------------------------------------------------------- Stripe

export const stripe: Family = {
  name: 'Stripe',
  positives: (rng) =>
    times(N, (i) => {
      const body = rng.str(B62, rng.pick([24, 32, 99]));
      if (i % 4 === 3)
        return { text: embed(rng, `sk_test_${body}`), expect: ['stripe-test-key'], note: 'test key' };
      const prefix = rng.pick(['sk_live_', 'rk_live_']);
      return {
        text: rng.next() < 0.3 ? `STRIPE_SECRET_KEY=${prefix}${body}` : embed(rng, prefix + body),
        expect: ['stripe-live-key'],
        note: prefix,
      };
    }),
  negatives: (rng) =>
    times(N, (i) => {
      switch (i % 7) {
        case 0:
          return { text: neutral(rng, `pk_live_${rng.str(B62, 24)}`), expect: [], note: 'publishable key' };
        case 1:
          return { text: neutral(rng, `sk_live_${rng.str(B62, 23)}`), expect: [], note: '23 chars' };
        case 2:
          return { text: neutral(rng, `sk_live_${'x'.repeat(24)}`), expect: [], note: 'placeholder' };
        case 3:
          return {
            text: neutral(
              rng,
              rng.pick(['sk_test_4eC39HqLyjWDarjtT1zdp7dc', 'sk_test_BQokikJOvBiI2HlWgH4olfQ2']),
            ),
            expect: [],
            note: 'Stripe docs key',
          };
        case 4:
          return {
            text: neutral(
              rng,
              `${rng.pick(['sk_prod_', 'sk_livex_', 'sklive_', 'ak_live_'])}${rng.str(B62, 24)}`,
            ),
            expect: [],
            note: 'wrong prefix',
          };
        case 5:
          return {
            text: neutral(rng, `sk_live_${rng.pick(['...', '<key>', '${STRIPE_KEY}'])}`),
            expect: [],
            note: 'template',
          };
        default:
          return { text: neutral(rng, `x_sk_live_${rng.str(B62, 24)}`), expect: [], note: 'inside a word' };
      }
    }),
};

// ------------------------------------------------------------------------------------------ npm

const uuid = (rng: Rng) =>
  `${rng.str(HEX, 8)}-${rng.str(HEX, 4)}-4${rng.str(HEX, 3)}-${rng.pick(['8', '9', 'a', 'b'])}${rng.str(HEX, 3)}-${rng.str(HEX, 12)}`;
const registries = ['//registry.npmjs.org/', '//npm.pkg.github.com/', '//registry.example.corp/npm/'];

export const npm: Family = {
  name: 'npm',
  positives: (rng) =>
    times(N, (i) => {
      const token = `npm_${rng.str(B62, 36)}`;
      switch (i % 4) {
        case 0:
          return { text: embed(rng, token), expect: ['npm-access-token'], note: 'bare token' };
        case 1:
          return {
            text: `registry=https://registry.npmjs.org/\n${rng.pick(registries)}:_authToken=${token}\n`,
            expect: ['npm-access-token'],
            note: '.npmrc with npm_ token',
          };
        case 2:
          return {
            text: `${rng.pick(registries)}:_authToken=${uuid(rng)}\nalways-auth=true\n`,
            expect: ['npmrc-auth'],
            note: '.npmrc legacy uuid',
          };
        default:
          return {
            text: `_auth=${Buffer.from(`ci-${rng.str(B62, 6)}:${rng.str(B62, 20)}`).toString('base64')}\nemail=ci@example.com\n`,
            expect: ['npmrc-auth'],
            note: '.npmrc _auth',
          };
      }
    }),
  negatives: (rng) =>
    times(N, (i) => {
      switch (i % 7) {
        case 0:
          return {
            text: `${rng.pick(registries)}:_authToken=\${NPM_TOKEN}\n`,
            expect: [],
            note: 'env placeholder',
          };
        case 1:
          return { text: neutral(rng, `npm_${rng.str(B62, 35)}`), expect: [], note: '35 chars' };
        case 2:
          return { text: neutral(rng, `npm_${rng.str(B62, 37)}`), expect: [], note: '37 chars' };
        case 3:
          return { text: neutral(rng, `npm_${'x'.repeat(36)}`), expect: [], note: 'placeholder' };
        case 4:
          return {
            text: `${rng.pick(registries)}:_authToken=${rng.pick(['', 'abc123', 'changeme-changeme', 'YOUR_TOKEN_HERE_PLEASE'])}\n`,
            expect: [],
            note: 'short or placeholder',
          };
        case 5:
          return { text: neutral(rng, `pnpm_${rng.str(B62, 36)}`), expect: [], note: 'inside a word' };
        default:
          return {
            text: `registry=https://registry.npmjs.org/\nsave-exact=true\n${rng.pick(registries)}:always-auth=true\n`,
            expect: [],
            note: 'npmrc without credentials',
          };
      }
    }),
};

// --------------------------------------------------------------------------------------- Docker

function dockerConfig(rng: Rng, entry: string): string {
  const reg = rng.pick([
    'https://index.docker.io/v1/',
    'ghcr.io',
    'registry.example.com:5000',
    '123456789012.dkr.ecr.us-east-1.amazonaws.com',
  ]);
  return rng.next() < 0.5
    ? `{\n  "auths": {\n    "${reg}": {\n      ${entry}\n    }\n  }\n}\n`
    : `{"auths":{"${reg}":{${entry}}},"HttpHeaders":{"User-Agent":"Docker-Client/24.0.7 (linux)"}}`;
}

const b64 = (s: string) => Buffer.from(s).toString('base64');

export const docker: Family = {
  name: 'Docker config',
  positives: (rng) =>
    times(N, () => {
      const user = rng.pick(['ci', 'deploy', 'AWS', '_json_key', 'robot$builder']) + rng.str(DIGITS, 2);
      const pass = rng.str(`${B62}!@#%^&*`, rng.int(8, 40));
      const entry =
        rng.next() < 0.5
          ? `"auth": "${b64(`${user}:${pass}`)}"`
          : `"auth": "${b64(`${user}:${pass}`)}", "email": "ci@example.com"`;
      return { text: dockerConfig(rng, entry), expect: ['docker-config-auth'], note: 'auths entry' };
    }),
  negatives: (rng) =>
    times(N, (i) => {
      switch (i % 9) {
        case 0:
          return { text: dockerConfig(rng, '"auth": ""'), expect: [], note: 'empty auth' };
        case 1:
          return { text: dockerConfig(rng, ''), expect: [], note: 'credsStore style empty entry' };
        case 2:
          return {
            text: dockerConfig(rng, `"auth": "${b64(rng.str(B62, 20))}"`),
            expect: [],
            note: 'no colon',
          };
        case 3:
          return {
            text: dockerConfig(rng, `"auth": "${rng.bytes(30).toString('base64')}"`),
            expect: [],
            note: 'binary',
          };
        case 4:
          return {
            text: `{"auth": "${b64(`user${rng.str(DIGITS, 3)}:${rng.str(B62, 16)}`)}"}`,
            expect: [],
            note: 'no auths object',
          };
        case 5:
          return {
            text: dockerConfig(rng, `"auth": "${b64(`user${rng.str(DIGITS, 3)}:`)}"`),
            expect: [],
            note: 'empty password',
          };
        case 6:
          return {
            text: dockerConfig(rng, `"auth": "${b64(`:${rng.str(B62, 16)}`)}"`),
            expect: [],
            note: 'empty user',
          };
        case 7:
          return {
            text: dockerConfig(
              rng,
              `"auth": "${b64(rng.pick(['user:password', 'username:changeme', 'admin:<password>', 'me:${PASSWORD}']))}"`,
            ),
            expect: [],
            note: 'placeholder',
          };
        default:
          return {
            text: dockerConfig(rng, `"auth": "${rng.str(B62, 4 * rng.int(2, 6) + 1)}"`),
            expect: [],
            note: 'not canonical base64',
          };
      }
    }),
};

// --------------------------------------------------------------------------------- Private keys

const pemLabels = [
  'RSA PRIVATE KEY',
  'EC PRIVATE KEY',
  'DSA PRIVATE KEY',
  'OPENSSH PRIVATE KEY',
  'ENCRYPTED PRIVATE KEY',
  'PRIVATE KEY',
];

export function pem(label: string, lines: string[], nl = '\n', headers: string[] = []): string {
  const head = headers.length > 0 ? `${headers.join(nl)}${nl}${nl}` : '';
  return `-----BEGIN ${label}-----${nl}${head}${lines.join(nl)}${nl}-----END ${label}-----${nl}`;
}

export function opensshKey(rng: Rng): string {
  const blob = Buffer.concat([
    Buffer.from('openssh-key-v1\0', 'latin1'),
    Buffer.from([0, 0, 0, 4]),
    Buffer.from('none'),
    rng.bytes(360),
  ]);
  return pem('OPENSSH PRIVATE KEY', wrap(blob.toString('base64'), 70));
}

export const privateKeys: Family = {
  name: 'private keys',
  positives: (rng) =>
    times(N, (i) => {
      switch (i % 6) {
        case 0:
          return { text: opensshKey(rng), expect: ['private-key'], note: 'openssh' };
        case 1:
          return {
            text: pem('RSA PRIVATE KEY', pemBody(rng, 1190), '\n', [
              'Proc-Type: 4,ENCRYPTED',
              `DEK-Info: AES-128-CBC,${rng.str(HEX, 32).toUpperCase()}`,
            ]),
            expect: ['private-key'],
            note: 'legacy encrypted rsa',
          };
        case 2:
          return {
            text: pem('PGP PRIVATE KEY BLOCK', [...pemBody(rng, 900), `=${rng.str(B64, 4)}`], '\n', [
              'Version: GnuPG v2',
            ]),
            expect: ['private-key'],
            note: 'pgp',
          };
        case 3:
          return {
            text: pem(rng.pick(pemLabels), pemBody(rng, rng.int(120, 1200)), '\r\n'),
            expect: ['private-key'],
            note: 'crlf',
          };
        case 4:
          return {
            text: `{"tls_key": "${pem(rng.pick(pemLabels), pemBody(rng, 200), '\\n')}"}`,
            expect: ['private-key'],
            note: 'escaped newlines in JSON',
          };
        default:
          return {
            text: `# key\n${pem(rng.pick(pemLabels), pemBody(rng, rng.int(120, 2400)))}`,
            expect: ['private-key'],
            note: 'plain',
          };
      }
    }),
  negatives: (rng) =>
    times(N, (i) => {
      const label = rng.pick(pemLabels);
      switch (i % 10) {
        case 0:
          return { text: `-----BEGIN ${label}-----`, expect: [], note: 'bare header' };
        case 1:
          return { text: `-----BEGIN ${label}-----\n-----END ${label}-----\n`, expect: [], note: 'no body' };
        case 2:
          return {
            text: `-----BEGIN ${label}-----\n...\n-----END ${label}-----\n`,
            expect: [],
            note: 'elided body',
          };
        case 3:
          return {
            text: `-----BEGIN ${label}-----\n<your key here>\n-----END ${label}-----\n`,
            expect: [],
            note: 'placeholder body',
          };
        case 4:
          return {
            text: pem(
              label,
              Array.from({ length: 10 }, () => 'A'.repeat(64)),
            ),
            expect: [],
            note: 'repetitive body',
          };
        case 5:
          return {
            text: pem(
              rng.pick(['PUBLIC KEY', 'CERTIFICATE', 'RSA PUBLIC KEY', 'CERTIFICATE REQUEST']),
              pemBody(rng, 600),
            ),
            expect: [],
            note: 'not a private key',
          };
        case 6:
          return {
            text: `-----BEGIN RSA PRIVATE KEY-----\n${pemBody(rng, 600).join('\n')}\n-----END EC PRIVATE KEY-----\n`,
            expect: [],
            note: 'mismatched END',
          };
        case 7:
          return { text: pem(label, pemBody(rng, 24)), expect: [], note: 'body too short' };
        case 8:
          return {
            text: `Usage: ssh-keygen writes "-----BEGIN ${label}-----" followed by the key and "-----END ${label}-----".`,
            expect: [],
            note: 'docs prose',
          };
        default: {
          const junk = rng.bytes(200).toString('latin1');
          return {
            text: `${junk}\0-----BEGIN ${label}-----\0${junk}\0-----END ${label}-----\0`,
            expect: [],
            note: 'strings inside a binary',
          };
        }
      }
    }),
};

// ------------------------------------------------------------------------------------------ JWT

const b64url = (s: string | Buffer) => Buffer.from(s).toString('base64url');

function jwt(rng: Rng, header: object, payload: object, sigLen: number): string {
  return `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}.${rng.str(B64URL, sigLen)}`;
}

function claims(rng: Rng): object {
  return {
    sub: rng.str(B62, 12),
    iat: rng.int(1_600_000_000, 1_800_000_000),
    iss: `https://auth${rng.int(1, 9)}.example.org`,
    scope: rng.pick(['read', 'write admin', 'repo']),
  };
}

export const jwtFamily: Family = {
  name: 'JWT',
  positives: (rng) =>
    times(N, () => {
      const header = rng.pick([
        { alg: 'HS256', typ: 'JWT' },
        { alg: 'RS256', kid: rng.str(HEX, 16) },
        { typ: 'JWT', alg: 'ES256' },
      ]);
      const token = jwt(rng, header, claims(rng), rng.pick([43, 86, 342]));
      return {
        text: rng.next() < 0.3 ? `token: ${token}` : embed(rng, token),
        expect: ['jwt'],
        note: header.alg,
      };
    }),
  negatives: (rng) =>
    times(N, (i) => {
      switch (i % 7) {
        case 0:
          return {
            text: neutral(rng, jwt(rng, { typ: 'JWT' }, claims(rng), 43)),
            expect: [],
            note: 'no alg',
          };
        case 1:
          return {
            text: neutral(rng, `eyJ${rng.str(B64URL, 30)}.eyJ${rng.str(B64URL, 40)}.${rng.str(B64URL, 43)}`),
            expect: [],
            note: 'random eyJ parts',
          };
        case 2:
          return {
            text: neutral(rng, jwt(rng, { alg: 'HS256' }, claims(rng), 43).split('.').slice(0, 2).join('.')),
            expect: [],
            note: 'two parts',
          };
        case 3:
          return {
            text: neutral(rng, jwt(rng, { alg: 'HS256' }, claims(rng), 8)),
            expect: [],
            note: 'short signature',
          };
        case 4:
          return {
            text: neutral(
              rng,
              `${b64url('{"alg":"HS256"}')}.${b64url(`{"sub": ${rng.str(B62, 10)}`)}.${rng.str(B64URL, 43)}`,
            ),
            expect: [],
            note: 'payload not JSON',
          };
        case 5:
          return {
            text: neutral(
              rng,
              'eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIiwibmFtZSI6IkpvaG4gRG9lIiwiaWF0IjoxNTE2MjM5MDIyfQ.SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c',
            ),
            expect: [],
            note: 'jwt.io sample',
          };
        default:
          return {
            text: neutral(
              rng,
              `${b64url('["alg","HS256"]')}.${b64url(JSON.stringify(claims(rng)))}.${rng.str(B64URL, 43)}`,
            ),
            expect: [],
            note: 'header not an object',
          };
      }
    }),
};

// -------------------------------------------------------------------------------------- Generic

const genericKeys = [
  'password',
  'DB_PASSWORD',
  'passwd',
  'MYSQL_ROOT_PASSWORD',
  'api_key',
  'apiKey',
  'X-API-KEY',
  'client_secret',
  'SECRET_KEY',
  'auth_token',
  'access_key',
  'pwd',
  'REDIS_PASSWORD',
  'jwtSecret',
  'accessToken',
];
const SYMBOLS = '!@#%^&*+=~';

/** A random password: alphanumeric start, mixed body, at least one symbol, 16 to 40 characters. */
export function randomPassword(rng: Rng): string {
  const len = rng.int(16, 40);
  return rng.str(B62, 1) + strWith(rng, `${B62}${SYMBOLS}-_.`, len - 1, SYMBOLS);
}

function assignment(rng: Rng, key: string, value: string): string {
  return rng.pick([
    `${key}=${value}`,
    `${key} = "${value}"`,
    `${key}: ${value}`,
    `"${key}": "${value}",`,
    `${key} := '${value}'`,
    `:${key} => "${value}"`,
    `export ${key}='${value}'`,
    `  ${key}: "${value}"\n`,
  ]);
}

export const generic: Family = {
  name: 'generic',
  positives: (rng) =>
    times(N, () => ({
      text: assignment(rng, rng.pick(genericKeys), randomPassword(rng)),
      expect: ['generic-secret'],
      note: 'assignment',
    })),
  negatives: (rng) =>
    times(N, (i) => {
      const key = rng.pick(genericKeys);
      switch (i % 10) {
        case 0:
          return {
            text: assignment(
              rng,
              key,
              rng.pick([
                'changeme',
                'change_me_please',
                'example-password-1',
                'your_password_here',
                'REPLACE_ME_NOW',
                'password123!',
              ]),
            ),
            expect: [],
            note: 'placeholder word',
          };
        case 1:
          return {
            text: assignment(
              rng,
              key,
              rng.pick([
                '${DB_PASSWORD}',
                '$DB_PASSWORD',
                '$(cat /run/secrets/db)',
                '%DB_PASSWORD%',
                '<password>',
                '[secret]',
                '__TOKEN__',
                '%(password)s',
                '{{.Password}}',
                '#{secret_value}',
              ]),
            ),
            expect: [],
            note: 'template',
          };
        case 2:
          return {
            text: assignment(
              rng,
              key,
              rng.pick([
                'xxxxxxxxxxxx',
                '************',
                '............',
                'aaaaaaaaaaaaaaaa',
                'abababababababab',
                '1234123412341234',
              ]),
            ),
            expect: [],
            note: 'repeated',
          };
        case 3:
          return {
            text: assignment(rng, key, rng.pick(['true', 'false', 'null', 'none', 'undefined'])),
            expect: [],
            note: 'literal',
          };
        case 4:
          return {
            text: assignment(
              rng,
              key,
              rng.pick([
                '/run/secrets/db_password',
                './config/secret.txt',
                '~/.ssh/id_rsa_token',
                'C:\\secrets\\token.txt',
                'https://vault.internal/v1/secret/data/app',
              ]),
            ),
            expect: [],
            note: 'path or URL',
          };
        case 5:
          return {
            text: assignment(
              rng,
              key,
              rng.pick([
                'self.password',
                'config.database.password',
                'DB_PASSWORD_FROM_ENV',
                'settings.SECRET_KEY',
                'getPassword()',
                'os.environ.get(',
                'request_params_token',
                'userPasswordValue',
              ]),
            ),
            expect: [],
            note: 'code reference',
          };
        case 6:
          return {
            text: assignment(
              rng,
              key,
              rng.pick(['database', 'postgres', 'abcdefgh', 'qwertyuiop', 'letmein99']),
            ),
            expect: [],
            note: 'low entropy',
          };
        case 7:
          return {
            text: assignment(
              rng,
              `${rng.pick(['password', 'token', 'secret'])}_${rng.pick(['file', 'path', 'url', 'length', 'hash', 'name', 'ttl'])}`,
              randomPassword(rng),
            ),
            expect: [],
            note: 'non-secret suffix',
          };
        case 8:
          return {
            text: `${rng.pick(['tokenizer', 'passwords', 'secrets', 'pwdx'])} = ${randomPassword(rng)}`,
            expect: [],
            note: 'word only contains the keyword',
          };
        default:
          return {
            text: `${key}: "${rng.pick(['correct horse battery staple', 'my secret value here'])}"`,
            expect: [],
            note: 'spaces',
          };
      }
    }),
};

export const FAMILIES: readonly Family[] = [
  aws,
  gcp,
  azure,
  github,
  gitlab,
  slack,
  stripe,
  npm,
  docker,
  privateKeys,
  jwtFamily,
  generic,
];
