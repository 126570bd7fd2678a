import type { Principal } from './auth-hook.js';

/** A manifest a push just recorded. */
export interface PushedManifest {
  repository: string;
  digest: string;
  mediaType: string;
  /** The manifest's artifactType, else its config media type (null for indexes without one). */
  artifactType: string | null;
  subjectDigest: string | null;
  tag: string | undefined;
  principal: string;
}

/** A manifest about to be recorded: its blobs are uploaded, nothing refers to it yet. */
export interface IncomingManifest {
  repository: string;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  annotations: Record<string, string> | null;
  manifest: Buffer;
  tag: string | undefined;
  principal: string;
}

/** A manifest about to be served to a client (GET, not HEAD). */
export interface ServedManifest {
  repository: string;
  /** The tag or digest the client asked for. */
  reference: string;
  digest: string;
  mediaType: string;
  artifactType: string | null;
  principal: Principal | null;
  clientIp: string | null;
}

/** What the audit row of a manifest GET that was let through says besides `success`. */
export interface ServedNote {
  auditOutcome: 'blocked-override';
  detail: string;
}

/** A blob about to be served to a client (GET, not HEAD). */
export interface ServedBlob {
  repository: string;
  digest: string;
  principal: Principal | null;
  /** Asked for a cross-repository mount rather than a GET: a refusal then only means "upload it". */
  mount?: boolean;
}

/**
 * Optional behaviour around the core protocol (scan on push, the pull gate), in the way zot's
 * extensions work: the registry always calls these, and `NO_EXTENSIONS` is the twin that does
 * nothing, so the core never branches on whether a feature is on. `beforeManifestServed` refuses
 * a pull by throwing a RegistryError (DENIED), and is the one link of the manifest GET chain
 * where the security gate sits.
 */
export interface RegistryExtensions {
  /** May refuse a push (throw DENIED) before anything is stored: enforce-on-push. */
  beforeManifestRecorded(manifest: IncomingManifest): Promise<void>;
  manifestPushed(manifest: PushedManifest): Promise<void>;
  beforeManifestServed(manifest: ServedManifest): Promise<ServedNote | void>;
  /**
   * May refuse a blob GET (throw DENIED): a refused image's layers must not be fetched by digest
   * by someone the manifest GET refuses, as its config and layers hold what the policy blocked.
   */
  beforeBlobServed(blob: ServedBlob): Promise<void>;
}

export const NO_EXTENSIONS: RegistryExtensions = {
  async beforeManifestRecorded() {},
  async manifestPushed() {},
  async beforeManifestServed() {},
  async beforeBlobServed() {},
};
