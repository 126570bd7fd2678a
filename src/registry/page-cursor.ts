import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/** Marks a sealed continuation in `last`: no repository name can start with it. */
const SEALED = '~';
/** Names are padded to this before sealing (the grammar's 255 characters, and one). */
const SEALED_NAME_BYTES = 256;

/**
 * Continuations for listings whose page stopped at a name the caller may not see. A listing that
 * examines a bounded number of names per request (repository-scan.ts) can stop on a repository
 * the caller may not list; putting that name in the next page's `Link` would tell the caller it
 * exists, and by choosing `n` and `last` a caller could read the names of every private
 * repository. The name is sealed instead (AES-256-GCM under a key of this process), so the link
 * carries nothing the caller can read or forge. A server restart, or another replica, cannot open
 * it: the caller is told to list again from the start.
 */
export class PageCursors {
  private readonly key = randomBytes(32);

  seal(name: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    // Padded to a fixed length: the cipher text would otherwise tell the name's length.
    const plain = Buffer.alloc(Math.max(SEALED_NAME_BYTES, Buffer.byteLength(name)));
    plain.write(name, 'utf8');
    const sealed = Buffer.concat([cipher.update(plain), cipher.final()]);
    return SEALED + Buffer.concat([iv, cipher.getAuthTag(), sealed]).toString('base64url');
  }

  /** Whether `last` is a sealed continuation rather than a name. */
  isSealed(last: string): boolean {
    return last.startsWith(SEALED);
  }

  /** The name a sealed continuation stands for, or undefined when it was not sealed here. */
  open(last: string): string | undefined {
    const bytes = Buffer.from(last.slice(SEALED.length), 'base64url');
    if (bytes.length < 12 + 16 + 1) return undefined;
    try {
      const decipher = createDecipheriv('aes-256-gcm', this.key, bytes.subarray(0, 12));
      decipher.setAuthTag(bytes.subarray(12, 28));
      const plain = Buffer.concat([decipher.update(bytes.subarray(28)), decipher.final()]);
      const end = plain.indexOf(0);
      return plain.subarray(0, end === -1 ? plain.length : end).toString('utf8');
    } catch {
      return undefined;
    }
  }
}

/** The process's continuations: the registry's catalog and the API's repository lists share them. */
export const pageCursors = new PageCursors();
