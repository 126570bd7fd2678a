import { describe, expect, it } from 'vitest';
import { rubyAnalyser } from '../../src/analyse/analysers/ruby.js';
import type { FileFacts } from '../../src/analyse/types.js';

async function run(path: string, content: string): Promise<FileFacts> {
  const buf = Buffer.from(content, 'utf8');
  return rubyAnalyser.analyse({ path, size: buf.length, mode: 0o644, content: buf }, { scratchDir: '/tmp' });
}

const info = { size: 100, mode: 0o644 };

describe('rubyAnalyser.wants', () => {
  it.each([
    ['usr/local/bundle/specifications/rake-13.1.0.gemspec', true],
    ['var/lib/gems/3.0.0/specifications/default/json-2.6.1.gemspec', false],
    ['app/Gemfile.lock', true],
    ['Gemfile.lock', true],
    ['usr/local/bundle/gems/rack-3.0.8/Gemfile.lock', false],
    ['app/rake.gemspec', false],
    ['app/MyGemfile.lock', false],
  ])('%s -> %s', (path, expected) => {
    expect(rubyAnalyser.wants(path, info)).toBe(expected);
  });
});

describe('installed gemspec', () => {
  it('reads name, version and licences from a generated spec', async () => {
    const spec = `# -*- encoding: utf-8 -*-
# stub: rake 13.1.0 ruby lib

Gem::Specification.new do |s|
  s.name = "rake".freeze
  s.version = "13.1.0"

  s.required_rubygems_version = Gem::Requirement.new(">= 1.3.2".freeze) if s.respond_to? :required_rubygems_version=
  s.require_paths = ["lib".freeze]
  s.authors = ["Hiroshi SHIBATA".freeze, "Eric Hodel".freeze]
  s.licenses = ["MIT".freeze]
  s.required_ruby_version = Gem::Requirement.new(">= 2.3".freeze)
  s.rubygems_version = "3.4.10".freeze
  s.summary = "Rake is a Make-like program implemented in Ruby".freeze
end
`;
    const path = 'usr/local/bundle/specifications/rake-13.1.0.gemspec';
    expect(await run(path, spec)).toEqual({
      packages: [{ type: 'gem', name: 'rake', version: '13.1.0', licenses: ['MIT'], paths: [path] }],
    });
  });

  it('handles Gem::Version.new, several licences and a platform', async () => {
    const spec = `# stub: nokogiri 1.15.5 x86_64-linux lib
Gem::Specification.new do |s|
  s.name = "nokogiri".freeze
  s.version = Gem::Version.new("1.15.5")
  s.platform = "x86_64-linux".freeze
  s.license = "MIT".freeze
  s.licenses = ["MIT".freeze, "Apache-2.0".freeze]
end
`;
    const facts = await run('gems/specifications/nokogiri-1.15.5-x86_64-linux.gemspec', spec);
    expect(facts.packages?.[0]).toMatchObject({
      name: 'nokogiri',
      version: '1.15.5',
      licenses: ['MIT', 'Apache-2.0'],
      properties: { platform: 'x86_64-linux' },
    });
  });

  it('falls back to the stub line and warns when nothing identifies the gem', async () => {
    const facts = await run('x/specifications/a-1.0.gemspec', '# stub: a 1.0 ruby lib\n');
    expect(facts).toEqual({
      packages: [{ type: 'gem', name: 'a', version: '1.0', paths: ['x/specifications/a-1.0.gemspec'] }],
    });
    expect(await run('x/specifications/b.gemspec', 'garbage')).toEqual({
      warnings: ['x/specifications/b.gemspec: no name or version found'],
    });
  });
});

describe('Gemfile.lock', () => {
  it('reads GEM specs only, keeping platforms', async () => {
    const lock = `GIT
  remote: https://example.invalid/forked-gem.git
  revision: 0123456789abcdef0123456789abcdef01234567
  specs:
    forked-gem (0.3.0)

GEM
  remote: https://rubygems.org/
  specs:
    actionpack (7.1.2)
      rack (>= 2.2.4)
      rack-test (>= 0.6.3)
    nokogiri (1.15.5-x86_64-linux)
      racc (~> 1.4)
    rack (3.0.8)
    racc (1.7.3)
    sassc (2.4.0.pre.1)

PLATFORMS
  x86_64-linux

DEPENDENCIES
  actionpack
  nokogiri

BUNDLED WITH
   2.4.22
`;
    const facts = await run('app/Gemfile.lock', lock);
    expect(facts).toEqual({
      packages: [
        { type: 'gem', name: 'actionpack', version: '7.1.2', paths: ['app/Gemfile.lock'] },
        {
          type: 'gem',
          name: 'nokogiri',
          version: '1.15.5',
          paths: ['app/Gemfile.lock'],
          properties: { platform: 'x86_64-linux' },
        },
        { type: 'gem', name: 'rack', version: '3.0.8', paths: ['app/Gemfile.lock'] },
        { type: 'gem', name: 'racc', version: '1.7.3', paths: ['app/Gemfile.lock'] },
        { type: 'gem', name: 'sassc', version: '2.4.0.pre.1', paths: ['app/Gemfile.lock'] },
      ],
    });
  });

  it('warns on a file with no sections', async () => {
    expect(await run('app/Gemfile.lock', '    rack (3.0.8)\n')).toEqual({
      warnings: ['app/Gemfile.lock: no sections found'],
    });
  });
});
