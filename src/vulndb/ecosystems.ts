/**
 * The OSV ecosystem of each language package type (the purl type), shared by matching and by
 * `db update`'s choice of ecosystems to download, so the two never disagree about a type.
 */
export const PURL_TYPE_ECOSYSTEM: Readonly<Record<string, string>> = {
  npm: 'npm',
  pypi: 'PyPI',
  golang: 'Go',
  maven: 'Maven',
  cargo: 'crates.io',
  gem: 'RubyGems',
  nuget: 'NuGet',
  composer: 'Packagist',
  hex: 'Hex',
  pub: 'Pub',
  hackage: 'Hackage',
  cran: 'CRAN',
  swift: 'SwiftURL',
};
