// The policy the gate benchmark evaluates with: the built-in one, or a policy file (--watch).
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';

export async function benchPolicy(root, policyFile) {
  const { builtinPolicy, BUILTIN_POLICY_SOURCE, parsePolicyText } = await import(pathToFileURL(join(root, 'dist/policy/index.js')).href);
  const text = policyFile ? readFileSync(policyFile, 'utf8') : '';
  if (text.trim() === '') return { policy: builtinPolicy(), source: BUILTIN_POLICY_SOURCE };
  return { policy: parsePolicyText(text, policyFile), source: policyFile };
}
