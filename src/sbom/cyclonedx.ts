/**
 * CycloneDX 1.6 JSON output, built with @cyclonedx/cyclonedx-library's model and JSON serializer,
 * and checked with the library's strict JSON-schema validator.
 *
 * Layout:
 * - metadata.component: the image (type container, name = reference, version = manifest digest,
 *   purl `pkg:oci/...`), with image facts as `portcullis:image:*` properties.
 * - metadata.tools: Portcullis itself; scan warnings as `portcullis:warning` metadata properties.
 * - components: the operating system (type operating-system) when identified, then every package
 *   (type library) with bom-ref, purl, licenses and `portcullis:*` properties.
 * - dependencies: the image depends on the operating system and on every package.
 * - vulnerabilities (only when the scan was matched): one entry per finding, whose `affects`
 *   names the component of the package it was found in, with the installed version as
 *   `affected`; ratings from the CVSS vector (or the severity alone), aliases as references,
 *   the advisory's links as advisories, and "Upgrade to ..." as the recommendation. Suppressed
 *   findings are not written.
 */
// The library's parts one by one: its main entry also loads the JSON and XML validators (ajv and
// the schemas), about 45 ms of every CycloneDX or SPDX output, which only validateCycloneDx needs.
import * as Enums from '@cyclonedx/cyclonedx-library/Enums';
import * as Models from '@cyclonedx/cyclonedx-library/Models';
import * as Serialize from '@cyclonedx/cyclonedx-library/Serialize';
import * as Spec from '@cyclonedx/cyclonedx-library/Spec';
import * as SPDX from '@cyclonedx/cyclonedx-library/SPDX';
import type { JsonStrictValidator } from '@cyclonedx/cyclonedx-library/Validation';

import type { Finding } from './finding.js';
import { compareFindings, comparePackages } from './json.js';
import type { Package } from './model.js';
import { imagePurl, packageDisplayName } from './purl.js';
import type { ScanResult } from './result.js';
import { isCompoundExpression, stableUuid, toSpdxExpression } from './spdx.js';

/** Property names Portcullis writes on components (a `portcullis:` namespace, as the CycloneDX property taxonomy asks). */
export const CDX_PROPERTY = {
  layerIndex: 'portcullis:layer:index',
  layerDigest: 'portcullis:layer:digest',
  layerDiffId: 'portcullis:layer:diffId',
  path: 'portcullis:package:path',
  type: 'portcullis:package:type',
  foundBy: 'portcullis:package:foundBy',
  sourceName: 'portcullis:package:sourceName',
  sourceVersion: 'portcullis:package:sourceVersion',
  arch: 'portcullis:package:arch',
  epoch: 'portcullis:package:epoch',
  dev: 'portcullis:package:dev',
  ownedBy: 'portcullis:package:ownedBy',
  /** Prefix: each entry of Package.properties becomes `portcullis:package:property:<key>`. */
  propertyPrefix: 'portcullis:package:property:',
  imageConfigDigest: 'portcullis:image:configDigest',
  imagePlatform: 'portcullis:image:platform',
  imageCreated: 'portcullis:image:created',
  imageRepoTag: 'portcullis:image:repoTag',
  /** Prefix: one property per layer, `portcullis:image:layer:<index>` = layer digest. */
  imageLayerPrefix: 'portcullis:image:layer:',
  warning: 'portcullis:warning',
  vulnEcosystem: 'portcullis:vulnerability:ecosystem',
  vulnMatchedName: 'portcullis:vulnerability:matchedName',
  vulnInstalledVersion: 'portcullis:vulnerability:installedVersion',
  vulnFixedVersion: 'portcullis:vulnerability:fixedVersion',
  vulnSeveritySource: 'portcullis:vulnerability:severitySource',
} as const;

/**
 * Where an advisory comes from. A distribution's own ecosystem (`Debian:12`, `Alpine:v3.20`,
 * `Ubuntu:22.04`) names its security tracker, whatever the id looks like (Debian files CVE ids
 * too); otherwise the id's prefix decides: CVE → NVD, GHSA → GitHub, DSA/DLA → Debian,
 * USN → Ubuntu, and OSV (which mirrors them all) for the rest.
 */
export function advisorySource(id: string, ecosystem?: string): { name: string; url: string } {
  const enc = encodeURIComponent(id);
  const distro = ecosystem?.split(':')[0];
  if (distro === 'Debian' || /^(DSA|DLA|DTSA)-/.test(id))
    return { name: 'Debian', url: `https://security-tracker.debian.org/tracker/${enc}` };
  if (distro === 'Alpine') return { name: 'Alpine', url: `https://security.alpinelinux.org/vuln/${enc}` };
  if (id.startsWith('USN-')) return { name: 'Ubuntu', url: `https://ubuntu.com/security/notices/${enc}` };
  if (distro === 'Ubuntu') return { name: 'Ubuntu', url: `https://ubuntu.com/security/${enc}` };
  if (/^CVE-\d+-\d+$/.test(id)) return { name: 'NVD', url: `https://nvd.nist.gov/vuln/detail/${enc}` };
  if (id.startsWith('GHSA-')) return { name: 'GitHub', url: `https://github.com/advisories/${enc}` };
  return { name: 'OSV', url: `https://osv.dev/vulnerability/${enc}` };
}

function cdxSource(id: string, ecosystem?: string): Models.Vulnerability.Source {
  const { name, url } = advisorySource(id, ecosystem);
  return new Models.Vulnerability.Source({ name, url });
}

/** Who rated the finding: the upstream CVE record (NVD), else the advisory it was matched in. */
function ratingSource(f: Finding): Models.Vulnerability.Source {
  if (f.severitySource === 'upstream-cve') {
    const cve = [f.id, ...f.aliases].find((id) => /^CVE-\d+-\d+$/.test(id));
    return cve ? cdxSource(cve) : new Models.Vulnerability.Source({ name: 'NVD' });
  }
  return cdxSource(f.id, f.ecosystem);
}

/** The rating method for a CVSS vector, judged by its prefix (`CVSS:3.1/`, `CVSS:4.0/`, or a bare v2 vector). */
function ratingMethod(vector: string | undefined): Enums.Vulnerability.RatingMethod {
  const M = Enums.Vulnerability.RatingMethod;
  if (vector === undefined) return M.Other;
  if (vector.startsWith('CVSS:3.1/')) return M.CVSSv31;
  if (vector.startsWith('CVSS:3.0/')) return M.CVSSv3;
  if (vector.startsWith('CVSS:4.0/')) return M.CVSSv4;
  if (/^AV:[LAN]\/AC:[HML]\/Au:/.test(vector)) return M.CVSSv2;
  return M.Other;
}

const CDX_SEVERITY: Record<Finding['severity'], Enums.Vulnerability.Severity> = {
  critical: Enums.Vulnerability.Severity.Critical,
  high: Enums.Vulnerability.Severity.High,
  medium: Enums.Vulnerability.Severity.Medium,
  low: Enums.Vulnerability.Severity.Low,
  none: Enums.Vulnerability.Severity.None,
  unknown: Enums.Vulnerability.Severity.Unknown,
};

function dateOf(text: string | undefined): Date | undefined {
  if (text === undefined) return undefined;
  const d = new Date(text);
  return Number.isNaN(d.getTime()) ? undefined : d;
}

function isAbsoluteUrl(text: string): boolean {
  try {
    new URL(text);
    return !/\s/.test(text);
  } catch {
    return false;
  }
}

/** The key that ties a finding to the package (and so the component) it was found in. */
function packageKey(p: Pick<Package, 'purl' | 'paths' | 'layer'>): string {
  return [p.purl, p.layer.index, p.paths[0] ?? ''].join('\u0000');
}

function buildVulnerability(f: Finding, ref: Models.BomRef): Models.Vulnerability.Vulnerability {
  const V = Models.Vulnerability;
  const vuln = new V.Vulnerability({
    bomRef: `vuln:${f.id}:${ref.value ?? f.package.purl}`,
    id: f.id,
    source: cdxSource(f.id, f.ecosystem),
    published: dateOf(f.published),
    updated: dateOf(f.modified),
  });
  if (f.summary !== undefined) vuln.description = f.summary;
  const fixed = f.fixedVersions[0];
  if (fixed !== undefined)
    vuln.recommendation = `Upgrade ${packageDisplayName(f.package)} to ${fixed} or later`;
  for (const alias of f.aliases) vuln.references.add(new V.Reference(alias, cdxSource(alias)));
  vuln.ratings.add(
    new V.Rating({
      source: f.severity === 'unknown' ? undefined : ratingSource(f),
      score: f.score,
      severity: CDX_SEVERITY[f.severity],
      method: f.cvssVector !== undefined || f.score !== undefined ? ratingMethod(f.cvssVector) : undefined,
      vector: f.cvssVector,
    }),
  );
  for (const url of new Set(f.references)) if (isAbsoluteUrl(url)) vuln.advisories.add(new V.Advisory(url));
  vuln.affects.add(
    new V.Affect(ref, {
      versions: new V.AffectedVersionRepository([
        new V.AffectedSingleVersion(f.package.version, { status: Enums.Vulnerability.AffectStatus.Affected }),
      ]),
    }),
  );
  const props: [string, string | undefined][] = [
    [CDX_PROPERTY.vulnEcosystem, f.ecosystem],
    [CDX_PROPERTY.vulnMatchedName, f.matchedName],
    [CDX_PROPERTY.vulnInstalledVersion, f.installedVersion],
    ...f.fixedVersions.map((v): [string, string] => [CDX_PROPERTY.vulnFixedVersion, v]),
    [CDX_PROPERTY.vulnSeveritySource, f.severitySource],
  ];
  for (const [name, value] of props) {
    if (value !== undefined && value !== '') vuln.properties.add(new Models.Property(name, value));
  }
  return vuln;
}

/**
 * The CycloneDX `licenses` of a package: SPDX ids where the declared string is one, names
 * otherwise. When the declared licenses form compound SPDX expressions (`MIT OR Apache-2.0`)
 * and all of them are valid, they become one expression, since CycloneDX allows an expression
 * only as the sole entry.
 */
function cdxLicenses(licenses: string[]): Models.License[] {
  const distinct = [...new Set(licenses.map((l) => l.trim()).filter((l) => l !== ''))];
  const expressions = distinct.map(toSpdxExpression);
  const allValid = expressions.every((e): e is string => e !== undefined);
  if (allValid && expressions.some(isCompoundExpression)) {
    const joined =
      expressions.length === 1
        ? (expressions[0] as string)
        : expressions.map((e) => (/ OR /.test(e) ? `(${e})` : e)).join(' AND ');
    return [new Models.LicenseExpression(joined)];
  }
  return distinct.map((license, i) => {
    const id = expressions[i];
    if (id !== undefined && SPDX.isSupportedSpdxId(id)) return new Models.SpdxLicense(id);
    return new Models.NamedLicense(license);
  });
}

function packageProperties(pkg: Package): Models.Property[] {
  const props: [string, string | undefined][] = [
    [CDX_PROPERTY.type, pkg.type],
    [CDX_PROPERTY.foundBy, pkg.foundBy],
    [CDX_PROPERTY.layerIndex, String(pkg.layer.index)],
    [CDX_PROPERTY.layerDigest, pkg.layer.digest],
    [CDX_PROPERTY.layerDiffId, pkg.layer.diffId],
    ...pkg.paths.map((p): [string, string] => [CDX_PROPERTY.path, p]),
    [CDX_PROPERTY.sourceName, pkg.sourceName],
    [CDX_PROPERTY.sourceVersion, pkg.sourceVersion],
    [CDX_PROPERTY.arch, pkg.arch],
    [CDX_PROPERTY.epoch, pkg.epoch === undefined ? undefined : String(pkg.epoch)],
    [CDX_PROPERTY.dev, pkg.dev ? 'true' : undefined],
    [CDX_PROPERTY.ownedBy, pkg.ownedBy ? `${pkg.ownedBy.type}:${pkg.ownedBy.name}` : undefined],
    ...Object.entries(pkg.properties ?? {}).map(([k, v]): [string, string] => [
      CDX_PROPERTY.propertyPrefix + k,
      v,
    ]),
  ];
  return props
    .filter((p): p is [string, string] => p[1] !== undefined && p[1] !== '')
    .map(([name, value]) => new Models.Property(name, value));
}

function hashOf(digest: string): [Enums.HashAlgorithm, string] | undefined {
  const m = /^sha(256|512):([0-9a-f]+)$/.exec(digest);
  if (!m?.[2]) return undefined;
  return [m[1] === '256' ? Enums.HashAlgorithm['SHA-256'] : Enums.HashAlgorithm['SHA-512'], m[2]];
}

/** Builds the model BOM for a scan (exported for callers that want to add to it). */
export function buildCycloneDxBom(result: ScanResult): Models.Bom {
  const { image } = result;
  const bom = new Models.Bom({
    serialNumber: `urn:uuid:${stableUuid('cyclonedx', image.reference, image.manifestDigest, result.scannedAt, result.generator.version)}`,
  });

  const timestamp = new Date(result.scannedAt);
  if (!Number.isNaN(timestamp.getTime())) bom.metadata.timestamp = timestamp;
  bom.metadata.tools.components.add(
    new Models.Component(Enums.ComponentType.Application, result.generator.name, {
      version: result.generator.version,
    }),
  );
  for (const warning of result.warnings)
    bom.metadata.properties.add(new Models.Property(CDX_PROPERTY.warning, warning));

  const imageComponent = new Models.Component(Enums.ComponentType.Container, image.reference, {
    bomRef: `image:${image.manifestDigest || image.reference}`,
    // A root filesystem folder (dir:) has no digest: no version and no purl, rather than empty ones.
    ...(image.manifestDigest ? { version: image.manifestDigest, purl: imagePurl(image) } : {}),
  });
  const imageHash = hashOf(image.manifestDigest);
  if (imageHash) imageComponent.hashes.set(...imageHash);
  const imageProps: [string, string | undefined][] = [
    [CDX_PROPERTY.imageConfigDigest, image.configDigest],
    [
      CDX_PROPERTY.imagePlatform,
      image.platform
        ? [image.platform.os, image.platform.architecture, image.platform.variant].filter(Boolean).join('/')
        : undefined,
    ],
    [CDX_PROPERTY.imageCreated, image.created],
    ...(image.repoTags ?? []).map((t): [string, string] => [CDX_PROPERTY.imageRepoTag, t]),
    ...image.layers.map((l): [string, string] => [CDX_PROPERTY.imageLayerPrefix + l.index, l.digest]),
  ];
  for (const [name, value] of imageProps) {
    if (value !== undefined && value !== '') imageComponent.properties.add(new Models.Property(name, value));
  }
  bom.metadata.component = imageComponent;

  if (result.os) {
    const os = new Models.Component(Enums.ComponentType.OperatingSystem, result.os.family, {
      bomRef: `os:${result.os.family}@${result.os.version}`,
      version: result.os.version,
    });
    if (result.os.name !== undefined) os.description = result.os.name;
    if (result.os.codename !== undefined) {
      os.properties.add(new Models.Property('portcullis:os:codename', result.os.codename));
    }
    bom.components.add(os);
    imageComponent.dependencies.add(os.bomRef);
  }

  const usedRefs = new Set<string>();
  const componentsByPackage = new Map<string, Models.Component>();
  const componentsByPurl = new Map<string, Models.Component>();
  for (const pkg of [...result.packages].sort(comparePackages)) {
    let ref = pkg.purl;
    for (let n = 2; usedRefs.has(ref); n++) ref = `${pkg.purl}#${n}`;
    usedRefs.add(ref);

    const component = new Models.Component(Enums.ComponentType.Library, pkg.name, {
      bomRef: ref,
      version: pkg.version,
      purl: pkg.purl,
    });
    if (pkg.type === 'golang') component.name = packageDisplayName(pkg);
    else if (pkg.namespace && pkg.type !== 'pypi') component.group = pkg.namespace;
    for (const license of cdxLicenses(pkg.licenses)) component.licenses.add(license);
    for (const prop of packageProperties(pkg)) component.properties.add(prop);
    bom.components.add(component);
    imageComponent.dependencies.add(component.bomRef);
    if (!componentsByPackage.has(packageKey(pkg))) componentsByPackage.set(packageKey(pkg), component);
    if (!componentsByPurl.has(pkg.purl)) componentsByPurl.set(pkg.purl, component);
  }

  for (const finding of [...(result.vulnerabilities ?? [])].sort(compareFindings)) {
    const component =
      componentsByPackage.get(packageKey(finding.package)) ?? componentsByPurl.get(finding.package.purl);
    // A finding for a package the result does not list cannot name what it affects; leave it out.
    if (!component) continue;
    bom.vulnerabilities.add(buildVulnerability(finding, component.bomRef));
  }
  return bom;
}

const serializer = new Serialize.JsonSerializer(new Serialize.JSON.Normalize.Factory(Spec.Spec1dot6));

/**
 * The CycloneDX 1.6 JSON document for a scan, as a plain object. Lists keep the order they are
 * built in, which follows the JSON format's (packages, then findings, by code units), so the same
 * scan gives the same bytes on every machine: the library's own sorting (`sortLists`) compares
 * with `localeCompare`, whose order changes with the process's locale.
 */
export function toCycloneDx(result: ScanResult): object {
  return JSON.parse(serializer.serialize(buildCycloneDxBom(result), { sortLists: false })) as object;
}

/**
 * Validates CycloneDX 1.6 JSON text with the library's strict JSON-schema validator.
 * Resolves to null when valid, else to the validator's error details.
 */
export async function validateCycloneDx(json: string): Promise<null | unknown> {
  // Building the validator compiles the schemas (about a second); keep it for later calls.
  if (!cdxValidator) {
    const Validation = await import('@cyclonedx/cyclonedx-library/Validation');
    cdxValidator = new Validation.JsonStrictValidator(Spec.Version.v1dot6);
  }
  return cdxValidator.validate(json);
}

let cdxValidator: JsonStrictValidator | undefined;
