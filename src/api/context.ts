import type { Gate, PolicySource } from '../gate/index.js';
import type { RegistryAuth } from '../registry/index.js';
import type { RegistryMetadata } from '../store/index.js';
import type { ApiAccess } from './access.js';
import { ApiError } from './http.js';
import type { DocumentRenderer } from './render-cache.js';

/** What the API reads from: the registry's auth hook and metadata, and the gate when it runs. */
export interface ApiDeps {
  /** The registry's own auth hook (the same object buildRegistry gets), so users, roles and tokens are shared. */
  auth: RegistryAuth;
  metadata: RegistryMetadata;
  /** Absent under `serve --no-gate`: verdicts, findings, SBOMs and advisory search answer 503. */
  gate?: Gate | undefined;
  /** The policy the gate enforces; absent without the gate. */
  policy?: PolicySource | undefined;
  /** The audit log writer: flushed before the audit route reads, so it shows every event so far. */
  audit?: { flush(): Promise<void> } | undefined;
  now?: () => Date;
  /** Rendered SBOMs and the limit on renders at once; one of its own when absent. */
  documents?: DocumentRenderer | undefined;
}

export interface ApiContext {
  deps: ApiDeps;
  access: ApiAccess;
  now: () => Date;
}

export function requireGate(deps: ApiDeps): Gate {
  if (!deps.gate)
    throw new ApiError(
      503,
      'GATE_DISABLED',
      'the server runs without the gate (serve --no-gate): no analysis, verdicts or findings',
    );
  return deps.gate;
}

export async function policyInForce(deps: ApiDeps) {
  if (!deps.policy)
    throw new ApiError(
      503,
      'GATE_DISABLED',
      'the server runs without the gate (serve --no-gate): no policy is enforced',
    );
  try {
    return await deps.policy.get();
  } catch (err) {
    // The gate refuses every pull while this lasts; say why.
    throw new ApiError(
      503,
      'POLICY_INVALID',
      `the policy cannot be loaded, so every gated pull is refused: ${(err as Error).message}`,
    );
  }
}
