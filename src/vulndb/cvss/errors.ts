import { PortcullisError } from '../../errors.js';

/**
 * A CVSS vector string that cannot be scored: wrong prefix, a missing, repeated or unknown metric,
 * or a value the metric does not define. Lives in its own module so v3.ts and v4.ts can throw it
 * without importing index.ts (which imports them).
 */
export class CvssError extends PortcullisError {
  constructor(message: string, vector: string) {
    super('CVSS_INVALID_VECTOR', message, { subject: vector });
  }
}
