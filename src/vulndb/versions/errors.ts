/**
 * Thrown when a version string cannot be ordered under the scheme asked for. Shared by every
 * version ordering (distro and language) so callers can catch one type and one stable code.
 */
export class VersionError extends Error {
  readonly code = 'VERSION_INVALID';

  constructor(message: string) {
    super(message);
    this.name = 'VersionError';
  }
}
