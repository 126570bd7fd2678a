/**
 * The policy in force when none is configured: secure by default. `portcullis policy show` prints
 * this text as it is, comments included, so what users read is exactly what runs.
 */
import { parsePolicyText, type PolicyDocument } from './policy-document.js';

export const BUILTIN_POLICY_SOURCE = 'built-in policy';

export const BUILTIN_POLICY_YAML = `# The built-in Portcullis policy, in force when neither --policy nor the policy: key of
# portcullis.yaml names another. Copy it to a file to start your own (docs/policy.md).
version: 1
name: builtin
description: Fail on fixable critical vulnerabilities, on any secret and on an SSH server; warn on everything else.
defaultAction: warn
rules:
  # A critical vulnerability with a fixed version available: upgrade the package.
  - id: critical-fixable
    action: fail
    vulnerability:
      severity: critical
      fixAvailable: true
  # Anything that looks like a credential, in any layer (deleted ones too), the config or the history.
  - id: no-secrets
    action: fail
    secret: {}
  # An SSH server installed in the image (check PC-IMG-003): containers are entered with exec.
  - id: no-ssh-server
    action: fail
    misconfiguration:
      ids: [PC-IMG-003]
`;

let parsed: PolicyDocument | undefined;

/** The built-in policy, parsed once (the text is validated by the same schema as any file). */
export function builtinPolicy(): PolicyDocument {
  parsed ??= parsePolicyText(BUILTIN_POLICY_YAML, BUILTIN_POLICY_SOURCE);
  return parsed;
}
