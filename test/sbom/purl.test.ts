import { describe, expect, it } from 'vitest';

import type { OsInfo, PackageRecord } from '../../src/sbom/model.js';
import { buildPurl, imagePurl, parseImageReference } from '../../src/sbom/purl.js';

const debian: OsInfo = { family: 'debian', version: '12' };
const ubuntu: OsInfo = { family: 'ubuntu', version: '22.04' };
const alpine: OsInfo = { family: 'alpine', version: '3.19.1' };
const rhel: OsInfo = { family: 'rhel', version: '9.3' };

function purl(
  record: Partial<PackageRecord> & Pick<PackageRecord, 'type' | 'name' | 'version'>,
  os: OsInfo | null = null,
) {
  return buildPurl(record, os);
}

describe('buildPurl: OS packages', () => {
  it('deb uses the distro id as namespace and id-version as distro', () => {
    expect(purl({ type: 'deb', name: 'libssl3', version: '3.0.11-1~deb12u2', arch: 'amd64' }, debian)).toBe(
      'pkg:deb/debian/libssl3@3.0.11-1~deb12u2?arch=amd64&distro=debian-12',
    );
    expect(purl({ type: 'deb', name: 'bash', version: '5.1-6ubuntu1', arch: 'arm64' }, ubuntu)).toBe(
      'pkg:deb/ubuntu/bash@5.1-6ubuntu1?arch=arm64&distro=ubuntu-22.04',
    );
  });

  it('deb keeps the epoch inside the version', () => {
    expect(purl({ type: 'deb', name: 'login', version: '1:4.13+dfsg1-1+b1', arch: 'amd64' }, debian)).toBe(
      'pkg:deb/debian/login@1:4.13+dfsg1-1+b1?arch=amd64&distro=debian-12',
    );
  });

  it('deb without a known OS falls back to debian and no distro', () => {
    expect(purl({ type: 'deb', name: 'Foo', version: '1.0' })).toBe('pkg:deb/debian/foo@1.0');
  });

  it('apk uses alpine and the release as distro', () => {
    expect(purl({ type: 'apk', name: 'musl', version: '1.2.4_git20230717-r4', arch: 'x86_64' }, alpine)).toBe(
      'pkg:apk/alpine/musl@1.2.4_git20230717-r4?arch=x86_64&distro=3.19.1',
    );
  });

  it('rpm carries epoch as a qualifier, qualifiers sorted', () => {
    expect(
      purl({ type: 'rpm', name: 'openssl-libs', version: '3.0.7-27.el9', arch: 'x86_64', epoch: 1 }, rhel),
    ).toBe('pkg:rpm/rhel/openssl-libs@3.0.7-27.el9?arch=x86_64&distro=rhel-9.3&epoch=1');
    expect(purl({ type: 'rpm', name: 'bash', version: '5.1.8-6.el9', arch: 'x86_64', epoch: 0 }, rhel)).toBe(
      'pkg:rpm/rhel/bash@5.1.8-6.el9?arch=x86_64&distro=rhel-9.3',
    );
  });
});

describe('buildPurl: language packages', () => {
  it('npm: scope as percent-encoded namespace, lower case', () => {
    expect(purl({ type: 'npm', namespace: '@babel', name: 'core', version: '7.23.0' })).toBe(
      'pkg:npm/%40babel/core@7.23.0',
    );
    expect(purl({ type: 'npm', name: '@Types/Node', version: '20.1.0' })).toBe(
      'pkg:npm/%40types/node@20.1.0',
    );
    expect(purl({ type: 'npm', name: 'left-pad', version: '1.3.0' })).toBe('pkg:npm/left-pad@1.3.0');
  });

  it('pypi: PEP 503 normalised name', () => {
    expect(purl({ type: 'pypi', name: 'Typing_Extensions', version: '4.8.0' })).toBe(
      'pkg:pypi/typing-extensions@4.8.0',
    );
    expect(purl({ type: 'pypi', name: 'zope.interface', version: '6.0' })).toBe(
      'pkg:pypi/zope-interface@6.0',
    );
  });

  it('maven: groupId as namespace', () => {
    expect(
      purl({ type: 'maven', namespace: 'org.apache.logging.log4j', name: 'log4j-core', version: '2.17.1' }),
    ).toBe('pkg:maven/org.apache.logging.log4j/log4j-core@2.17.1');
    expect(purl({ type: 'maven', name: 'com.google.guava:guava', version: '32.1.2-jre' })).toBe(
      'pkg:maven/com.google.guava/guava@32.1.2-jre',
    );
  });

  it('golang: module path split into namespace and name, case kept', () => {
    expect(
      purl({ type: 'golang', namespace: 'github.com/sirupsen', name: 'logrus', version: 'v1.9.3' }),
    ).toBe('pkg:golang/github.com/sirupsen/logrus@v1.9.3');
    expect(purl({ type: 'golang', name: 'github.com/Azure/go-autorest/autorest', version: 'v0.11.29' })).toBe(
      'pkg:golang/github.com/Azure/go-autorest/autorest@v0.11.29',
    );
    expect(purl({ type: 'golang', name: 'stdlib', version: 'go1.21.5' })).toBe('pkg:golang/stdlib@go1.21.5');
  });

  it('gem, cargo, composer, nuget', () => {
    expect(purl({ type: 'gem', name: 'rails', version: '7.1.2' })).toBe('pkg:gem/rails@7.1.2');
    expect(purl({ type: 'cargo', name: 'serde', version: '1.0.193' })).toBe('pkg:cargo/serde@1.0.193');
    expect(purl({ type: 'composer', namespace: 'Laravel', name: 'Framework', version: 'v10.0.0' })).toBe(
      'pkg:composer/laravel/framework@v10.0.0',
    );
    expect(purl({ type: 'composer', name: 'symfony/console', version: 'v6.4.1' })).toBe(
      'pkg:composer/symfony/console@v6.4.1',
    );
    expect(purl({ type: 'nuget', name: 'Newtonsoft.Json', version: '13.0.3' })).toBe(
      'pkg:nuget/Newtonsoft.Json@13.0.3',
    );
  });

  it('percent-encodes characters that need it', () => {
    expect(purl({ type: 'gem', name: 'a b', version: '1.0 beta' })).toBe('pkg:gem/a%20b@1.0%20beta');
  });
});

describe('image purl', () => {
  const image = {
    manifestDigest: `sha256:${'1'.repeat(64)}`,
    configDigest: `sha256:${'2'.repeat(64)}`,
    platform: { os: 'linux', architecture: 'amd64' },
    layers: [],
  };

  it('parses references the way docker completes them', () => {
    expect(parseImageReference('alpine')).toEqual({ registry: 'docker.io', repository: 'library/alpine' });
    expect(parseImageReference('ghcr.io/acme/app:v1@sha256:abc')).toEqual({
      registry: 'ghcr.io',
      repository: 'acme/app',
      tag: 'v1',
    });
    expect(parseImageReference('localhost:5000/x/y')).toEqual({
      registry: 'localhost:5000',
      repository: 'x/y',
    });
    expect(parseImageReference('docker-archive:/tmp/image.tar')).toBeUndefined();
  });

  it('builds pkg:oci with repository_url, tag and arch', () => {
    expect(imagePurl({ ...image, reference: 'alpine:3.19' })).toBe(
      `pkg:oci/alpine@sha256:${'1'.repeat(64)}?arch=amd64&repository_url=docker.io%2Flibrary%2Falpine&tag=3.19`,
    );
    expect(imagePurl({ ...image, reference: './image.tar' })).toBe(
      `pkg:oci/image@sha256:${'1'.repeat(64)}?arch=amd64`,
    );
  });
});
