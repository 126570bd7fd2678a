import { existsSync } from 'node:fs';

/**
 * Splits what follows a transport (`oci-archive:`, `oci:`, `docker-archive:`) into the path and
 * what names an image inside it: `FILE`, `FILE:TAG`, `FILE:NAME:TAG` or `FILE:@N`. The path is
 * the longest prefix, ending before a colon, that exists, so a path that itself holds colons still
 * works, and so does a docker `NAME:TAG` after it. Nothing is split off when the whole text
 * exists or no prefix does.
 *
 * It imports only node:fs: the launcher (cli/sized-heap.ts) uses it before the CLI is loaded.
 */
export function splitArchivePath(
  rest: string,
  exists: (path: string) => boolean = existsSync,
): { path: string; name?: string } {
  if (exists(rest)) return { path: rest };
  for (let i = rest.lastIndexOf(':'); i > 0; i = rest.lastIndexOf(':', i - 1)) {
    const path = rest.slice(0, i);
    if (exists(path)) return { path, name: rest.slice(i + 1) };
  }
  return { path: rest };
}
