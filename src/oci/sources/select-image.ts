import { OciError } from '../../errors.js';

/**
 * Picks one image of an archive or layout that holds several, by what follows the path: a name
 * (a tag, or a docker `NAME:TAG`), or `@N`, the image's position counted from 0, as skopeo writes
 * it (`docker-archive:FILE:@1`). Position is the only way to reach an image saved without a tag.
 */
export interface ImageChoice<T> {
  item: T;
  /** The names this image is known by (none for an untagged one). */
  names: string[];
}

const INDEX = /^@(\d+)$/;

export function selectImage<T>(
  images: ImageChoice<T>[],
  wanted: string | undefined,
  display: string,
  nameMatches: (name: string, wanted: string) => boolean = (name, w) => name === w,
): T {
  if (images.length === 0) throw new OciError('MANIFEST_UNKNOWN', `${display}: holds no images`);
  if (wanted === undefined) {
    if (images.length === 1) return images[0]!.item;
    throw new OciError(
      'TAG_REQUIRED',
      `${display}: holds ${images.length} images; name one with :TAG or :@N (${listImages(images)})`,
    );
  }
  const index = INDEX.exec(wanted);
  if (index) {
    const n = Number(index[1]);
    if (n < images.length) return images[n]!.item;
    throw new OciError(
      'MANIFEST_UNKNOWN',
      `${display}: no image @${index[1]}: it holds ${images.length} (${listImages(images)})`,
    );
  }
  const found = images.flatMap((image, i) =>
    image.names.some((name) => nameMatches(name, wanted)) ? [i] : [],
  );
  if (found.length === 0)
    throw new OciError('MANIFEST_UNKNOWN', `${display}: no image tagged "${wanted}" (${listImages(images)})`);
  // A bare tag may fit several images (node-app:1.0.0 and go-app:1.0.0): say so rather than pick one.
  if (found.length > 1) {
    throw new OciError(
      'TAG_AMBIGUOUS',
      `${display}: "${wanted}" names ${found.length} images (${listImages(images, found)}); write the whole NAME:TAG or :@N`,
    );
  }
  return images[found[0]!]!.item;
}

/** "@0 alpine:3.20, @1 untagged": what a user can type to pick each one (of those at `positions`). */
function listImages(images: ImageChoice<unknown>[], positions: number[] = images.map((_, i) => i)): string {
  return positions.map((i) => `@${i} ${images[i]!.names.join(' ') || 'untagged'}`).join(', ');
}
