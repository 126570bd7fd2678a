import { describe, expect, it } from 'vitest';
import { dpkgAnalyser } from '../../src/analyse/analysers/dpkg.js';
import { npmAnalyser } from '../../src/analyse/analysers/npm.js';
import { pythonAnalyser } from '../../src/analyse/analysers/python.js';
import { rubyAnalyser } from '../../src/analyse/analysers/ruby.js';
import type { Analyser, FileFacts } from '../../src/analyse/types.js';

// Inputs well inside each analyser's size limit that used to take time quadratic in their size:
// regexes whose \s* or \s+ backtracked over long blank runs, and includes() dedupes of licences.
// Each took seconds to minutes at these sizes; each should now take milliseconds.

async function timed(a: Analyser, path: string, content: string): Promise<{ facts: FileFacts; ms: number }> {
  const buf = Buffer.from(content, 'utf8');
  const started = performance.now();
  const facts = await a.analyse({ path, size: buf.length, mode: 0o644, content: buf }, { scratchDir: '/tmp' });
  return { facts, ms: performance.now() - started };
}

const LIMIT_MS = 2_000;

describe('hostile inputs take linear time', () => {
  it('requirements.txt: a name followed by a long run of spaces (was 3.5 s at 80 KB)', async () => {
    const { facts, ms } = await timed(pythonAnalyser, 'app/requirements.txt', `a${' '.repeat(400_000)}b\nflask == 2.0.1\nextra [x] == 1.0\n`);
    expect(facts.packages?.map((p) => `${p.name}@${p.version}`)).toEqual(['flask@2.0.1', 'extra@1.0']);
    expect(ms).toBeLessThan(LIMIT_MS);
  });

  it('gemspec: many blank lines before the fields (was 23 s at 80 KB)', async () => {
    const text = `${'\n'.repeat(400_000)}Gem::Specification.new do |s|\n  s.name = "x"\n  s.version = "1.0"\n  s.licenses = ["MIT", "MIT", "Apache-2.0"]\nend\n`;
    const { facts, ms } = await timed(rubyAnalyser, 'usr/lib/gems/specifications/x-1.0.gemspec', text);
    expect(facts.packages?.[0]).toMatchObject({ name: 'x', version: '1.0', licenses: ['MIT', 'Apache-2.0'] });
    expect(ms).toBeLessThan(LIMIT_MS);
  });

  it('gemspec: hundreds of thousands of licences (was 40 s)', async () => {
    const lic = Array.from({ length: 200_000 }, (_, i) => `"L${i}"`).join(', ');
    const { facts, ms } = await timed(rubyAnalyser, 'usr/lib/gems/specifications/x-1.0.gemspec', `# stub: x 1.0 ruby lib\n  s.licenses = [${lic}]\n`);
    expect(facts.packages?.[0]?.licenses?.length).toBeLessThanOrEqual(32);
    expect(ms).toBeLessThan(LIMIT_MS);
  });

  it('installed package.json: hundreds of thousands of legacy licences (was 24 s)', async () => {
    const doc = { name: 'foo', version: '1.0.0', license: 'MIT', licenses: Array.from({ length: 200_000 }, (_, i) => ({ type: `L${i}` })) };
    const { facts, ms } = await timed(npmAnalyser, 'app/node_modules/foo/package.json', JSON.stringify(doc));
    expect(facts.packages?.[0]?.licenses?.[0]).toBe('MIT');
    expect(facts.packages?.[0]?.licenses?.length).toBeLessThanOrEqual(32);
    expect(ms).toBeLessThan(LIMIT_MS);
  });

  it('METADATA: hundreds of thousands of licence classifiers (was 36 s)', async () => {
    const cls = Array.from({ length: 200_000 }, (_, i) => `Classifier: License :: OSI Approved :: L${i}\n`).join('');
    const { facts, ms } = await timed(pythonAnalyser, 'usr/lib/python3/dist-packages/x-1.0.dist-info/METADATA', `Name: x\nVersion: 1.0\n${cls}\n`);
    expect(facts.packages?.[0]?.licenses?.slice(0, 2)).toEqual(['L0', 'L1']);
    expect(ms).toBeLessThan(LIMIT_MS);
  });

  it('copyright: a License line with a long run of blanks (was 13 s at 80 KB)', async () => {
    const text = `License: GPL-2+${' '.repeat(400_000)}or\tArtistic\nLicense: GPL-3+  with   Bison exception\n`;
    const { facts, ms } = await timed(dpkgAnalyser, 'usr/share/doc/big/copyright', text);
    expect(facts.licenses?.[0]?.licenses).toEqual(['GPL-2.0-or-later', 'Artistic-1.0-Perl', 'GPL-3.0-or-later']);
    expect(ms).toBeLessThan(LIMIT_MS);
  });
});
