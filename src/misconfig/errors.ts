import { PortcullisError } from '../errors.js';

/**
 * A configuration file (Dockerfile, Kubernetes manifest) that could not be read or parsed. The
 * subject is the file path so the CLI can name the file in its one-line message.
 */
export class MisconfigError extends PortcullisError {}
