/**
 * Docker/OCI token authentication for the registry. Wiring, in the server:
 *
 *   const key = await loadOrCreateSigningKey(dataDir);
 *   const rateLimiter = new LoginRateLimiter();
 *   const service = 'registry.example.com', issuer = 'portcullis';
 *   await app.register(tokenRoutes, { key, service, issuer, rateLimiter, verifyCredentials, grantedActions });
 *   const auth = bearerAuth({ key, service, issuer, realm: `${publicUrl}/token`, rateLimiter,
 *                             basicFallback: verifyCredentials, authorizeBasic });
 *
 * `auth` is the registry's auth hook (authenticate / authorize / challenge).
 */
export {
  bearerAuth,
  grantAllows,
  type BearerAuthOptions,
  type BearerAuthProvider,
  type ChallengeError,
} from './bearer.js';
export { parseAuthorization, type ParsedAuthorization } from './credentials.js';
export { AuthError } from './errors.js';
export {
  loadOrCreateSigningKey,
  publicJwks,
  signingKeyFromJwk,
  signingKeyPath,
  type SigningKey,
} from './keys.js';
export { LoginRateLimiter, type LoginRateLimiterOptions, type RateLimitDecision } from './rate-limit.js';
export {
  buildBearerChallenge,
  formatScope,
  formatScopes,
  isValidRepositoryName,
  parseScope,
  parseScopeParams,
  type Scope,
} from './scope.js';
export { tokenRoutes, type TokenResponse, type TokenRoutesOptions } from './token-endpoint.js';
export {
  issueToken,
  verifyToken,
  type IssueTokenOptions,
  type TokenClaims,
  type VerifyTokenOptions,
} from './tokens.js';
export {
  ANONYMOUS,
  REGISTRY_ACTIONS,
  type AccessEntry,
  type AuthProvider,
  type AuthRequest,
  type Principal,
  type RegistryAction,
  type TokenPrincipal,
} from './types.js';
