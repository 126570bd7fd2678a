import { digestOf, MediaType } from '../oci/index.js';
import { writeBlobBytes, type BlobStore, type RegistryMetadata } from '../store/index.js';

export const SBOM_ARTIFACT_TYPE = 'application/vnd.cyclonedx+json';
export const REPORT_ARTIFACT_TYPE = 'application/vnd.portcullis.report.v1+json';
/** Marks the referrers Portcullis wrote, so a new report replaces its own old one and nothing else. */
export const GENERATOR_ANNOTATION = 'dev.portcullis.generated-by';

const EMPTY_CONFIG = Buffer.from('{}');
const EMPTY_MEDIA_TYPE = 'application/vnd.oci.empty.v1+json';

export interface Subject {
  digest: string;
  mediaType: string;
  size: number;
}

/**
 * Stores `content` as an OCI artifact whose subject is the image, in the image's repository, so
 * `GET /v2/NAME/referrers/DIGEST` lists it and any OCI client (oras, crane, skopeo) can fetch it.
 * Older artifacts of the same type that Portcullis attached to the same subject are removed, so a
 * re-analysis leaves one current SBOM and one current report.
 */
export async function attachReferrer(
  stores: { metadata: RegistryMetadata; blobs: BlobStore },
  repository: string,
  subject: Subject,
  artifactType: string,
  content: Buffer,
  title: string,
): Promise<string> {
  const { metadata, blobs } = stores;
  const emptyDigest = digestOf(EMPTY_CONFIG);
  const contentDigest = digestOf(content);
  const annotations = { 'org.opencontainers.image.created': new Date().toISOString(), [GENERATOR_ANNOTATION]: 'portcullis' };
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.ociManifest,
      artifactType,
      config: { mediaType: EMPTY_MEDIA_TYPE, digest: emptyDigest, size: EMPTY_CONFIG.length },
      layers: [{ mediaType: artifactType, digest: contentDigest, size: content.length, annotations: { 'org.opencontainers.image.title': title } }],
      subject: { mediaType: subject.mediaType, digest: subject.digest, size: subject.size },
      annotations,
    }),
  );
  const manifestDigest = digestOf(manifest);
  await metadata.touchDigests([emptyDigest, contentDigest, manifestDigest]);
  await writeBlobBytes(blobs, EMPTY_CONFIG, emptyDigest);
  await writeBlobBytes(blobs, content, contentDigest);
  await metadata.linkBlob(repository, emptyDigest, EMPTY_CONFIG.length);
  await metadata.linkBlob(repository, contentDigest, content.length);
  await writeBlobBytes(blobs, manifest, manifestDigest);
  const outcome = await metadata.putManifestChecked(
    {
      repository,
      digest: manifestDigest,
      mediaType: MediaType.ociManifest,
      artifactType,
      subjectDigest: subject.digest,
      size: manifest.length,
      // The referrers API answers with the manifest's own annotations.
      annotations,
    },
    [
      { digest: emptyDigest, kind: 'blob' },
      { digest: contentDigest, kind: 'blob' },
    ],
    { blobs: [emptyDigest, contentDigest], manifests: [] },
  );
  if (outcome.status !== 'ok') throw new Error(`could not attach ${artifactType} to ${repository}@${subject.digest}: ${outcome.status}`);
  for (const old of await metadata.listReferrers(repository, subject.digest, artifactType)) {
    if (old.digest !== manifestDigest && old.annotations?.[GENERATOR_ANNOTATION] === 'portcullis') await metadata.deleteManifest(repository, old.digest);
  }
  return manifestDigest;
}
