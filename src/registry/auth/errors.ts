import { PortcullisError } from '../../errors.js';

/**
 * Authentication and authorization failures. Codes that the OCI distribution spec defines
 * (`UNAUTHORIZED`, `DENIED`, `TOOMANYREQUESTS`) are used as is so the server can put them straight
 * into an error body; the `TOKEN_*` codes say why a bearer token was refused. Messages never
 * contain a password or a token.
 */
export class AuthError extends PortcullisError {}
