import { describe, expect, it } from 'vitest';
import { dpkgAnalyser } from '../../src/analyse/analysers/dpkg.js';
import { MAX_OWNED_FILES_PER_FILE, MAX_OWNED_PATH_BYTES_PER_FILE } from '../../src/analyse/dispatch.js';
import { ownedPaths, type AnalyserContext, type FileFacts } from '../../src/analyse/types.js';

const CTX = { scratchDir: '/tmp' } as AnalyserContext;

async function status(text: string | Buffer): Promise<FileFacts> {
  const content = Buffer.isBuffer(text) ? text : Buffer.from(text);
  return dpkgAnalyser.analyse({ path: 'var/lib/dpkg/status', size: content.length, mode: 0o644, content }, CTX);
}

function stanza(i: number, descriptionLines: number): string {
  const description = ' a line of the long description, ünïcödé included\n'.repeat(descriptionLines);
  return `Package: pkg${i}\nStatus: install ok installed\nArchitecture: amd64\nSource: src${i} (2.${i})\nVersion: 1.${i}\nDescription: pkg ${i}\n${description}\n`;
}

describe('dpkg status', () => {
  it('reads every stanza of a file several decoding blocks long, across block boundaries', async () => {
    // About 3 MB of stanzas of uneven length with few description lines, so block ends fall on
    // field lines: a cut anywhere but at a line's end changes some package below.
    const text = Array.from({ length: 16_000 }, (_, i) => stanza(i, i % 97 === 0 ? 3 : 0)).join('');
    expect(text.length).toBeGreaterThan(2 << 20);
    const facts = await status(text);
    expect(facts.packages?.map((p) => `${p.name} ${p.version} ${p.sourceName} ${p.sourceVersion} ${p.arch}`)).toEqual(
      Array.from({ length: 16_000 }, (_, i) => `pkg${i} 1.${i} src${i} 2.${i} amd64`),
    );
  });

  it('reads the stanza after a line longer than a decoding block', async () => {
    const text = `${stanza(1, 1)}Package: pkg2\nStatus: install ok installed\nVersion: 2\nDescription: x\n ${'y'.repeat(3 << 20)}\n\n${stanza(3, 1)}`;
    expect((await status(text)).packages?.map((p) => `${p.name} ${p.version}`)).toEqual(['pkg1 1.1', 'pkg2 2', 'pkg3 1.3']);
  });

  it('skips packages that are not installed, and reads a file without a final newline', async () => {
    const text = `Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\nPackage: kept\nStatus: hold ok installed\nVersion: 3`;
    expect((await status(text)).packages?.map((p) => p.name)).toEqual(['kept']);
  });
});

describe('dpkg info lists', () => {
  async function list(name: string, text: string): Promise<FileFacts> {
    const content = Buffer.from(text);
    return dpkgAnalyser.analyse({ path: `var/lib/dpkg/info/${name}`, size: content.length, mode: 0o644, content }, CTX);
  }

  it('lists the files of a package, without the root, blank lines or leading slashes', async () => {
    const facts = await list('python3-urllib3:amd64.list', '/.\n/usr\n/usr/lib/python3/dist-packages/urllib3\r\n\n//usr/share/doc/python3-urllib3/copyright');
    expect(facts.owned).toEqual([
      { owner: { type: 'deb', name: 'python3-urllib3' }, files: 'usr\nusr/lib/python3/dist-packages/urllib3\nusr/share/doc/python3-urllib3/copyright\n' },
    ]);
    expect(facts.warnings).toEqual([]);
  });

  it('keeps a bounded number of paths from a list longer than any package, with a warning', async () => {
    const count = MAX_OWNED_FILES_PER_FILE + 7;
    const text = Array.from({ length: count }, (_, i) => `/usr/share/foo/f${i}\n`).join('');
    const facts = await list('foo.list', text);
    const files = [...ownedPaths(facts.owned?.[0]?.files ?? '')];
    expect(files).toHaveLength(MAX_OWNED_FILES_PER_FILE);
    expect(files.at(-1)).toBe(`usr/share/foo/f${MAX_OWNED_FILES_PER_FILE - 1}`);
    expect(facts.warnings).toEqual([
      `var/lib/dpkg/info/foo.list: lists ${count} installed files, more than any real package; kept the first ${MAX_OWNED_FILES_PER_FILE}`,
    ]);
  });
});

describe('dpkg info lists of long paths', () => {
  it('keeps paths up to a bound on their text, counting a character two bytes once one needs it', () => {
    const run = (char: string, count: number): FileFacts => {
      const text = Array.from({ length: count }, (_, i) => `/${char.repeat(200_000)}${i}\n`).join('');
      const content = Buffer.from(text);
      return dpkgAnalyser.analyse({ path: 'var/lib/dpkg/info/long.list', size: content.length, mode: 0o644, content }, CTX) as FileFacts;
    };
    const kept = (facts: FileFacts): number => [...ownedPaths(facts.owned?.[0]?.files ?? '')].length;
    const oneByte = run('é', 180);
    const fits = Math.floor(MAX_OWNED_PATH_BYTES_PER_FILE / 200_002);
    expect(kept(oneByte)).toBe(fits);
    expect(oneByte.warnings).toEqual([
      `var/lib/dpkg/info/long.list: lists 180 installed files, more than any real package; kept the first ${fits} (32 MiB of paths)`,
    ]);
    expect(kept(run('ł', 100))).toBe(Math.floor(MAX_OWNED_PATH_BYTES_PER_FILE / 400_004));
  });
});

describe('dpkg status read as it arrives', () => {
  const PATH = 'var/lib/dpkg/status';
  const streamed = (content: Buffer, chunk: number): FileFacts => {
    const reader = dpkgAnalyser.stream!(PATH, { size: content.length, mode: 0o644 })!;
    for (let at = 0; at < content.length; at += chunk) {
      // Lent, as the tar reader lends its chunks: scribbled over once written.
      const piece = Buffer.from(content.subarray(at, at + chunk));
      reader.write(piece);
      piece.fill(0x58);
    }
    return reader.end();
  };

  it('is asked for the status file and the lists only', () => {
    expect(dpkgAnalyser.stream!(PATH, { size: 1, mode: 0o644 })).toBeDefined();
    expect(dpkgAnalyser.stream!('var/lib/dpkg/info/bash.list', { size: 1, mode: 0o644 })).toBeDefined();
    expect(dpkgAnalyser.stream!('var/lib/dpkg/status.d/base', { size: 1, mode: 0o644 })).toBeUndefined();
    expect(dpkgAnalyser.stream!('usr/share/doc/bash/copyright', { size: 1, mode: 0o644 })).toBeUndefined();
  });

  it('reads a list as it arrives into what the whole file gives, whatever bytes the chunks end on', async () => {
    const path = 'var/lib/dpkg/info/libü:amd64.list';
    const content = Buffer.from('/.\n/usr\r\n/usr/lib/ü/ä.so\n\n//usr/share/doc/libü/copyright');
    const whole = dpkgAnalyser.analyse({ path, size: content.length, mode: 0o644, content }, CTX) as FileFacts;
    expect(whole.owned).toEqual([{ owner: { type: 'deb', name: 'libü' }, files: 'usr\nusr/lib/ü/ä.so\nusr/share/doc/libü/copyright\n' }]);
    for (let chunk = 1; chunk <= 12; chunk++) {
      const reader = dpkgAnalyser.stream!(path, { size: content.length, mode: 0o644 })!;
      for (let at = 0; at < content.length; at += chunk) reader.write(Buffer.from(content.subarray(at, at + chunk)));
      expect(reader.end()).toEqual(whole);
    }
  });

  it('finds what the whole file gives, whatever bytes the chunks end on (CRLF, UTF-8, no final newline)', async () => {
    const text = [
      'Package: ä-pkg\r\nStatus: install ok installed\r\nVersion: 1.0-ü\r\nDescription: x\r\n ünïcödé\r\n\r\n',
      stanza(1, 2),
      'Package: gone\nStatus: deinstall ok config-files\nVersion: 1\n\n',
      'Version: 2\n\n',
      'Package: last\nStatus: hold ok installed\nSource: s (9)\nVersion: 3',
    ].join('');
    const content = Buffer.from(text);
    const whole = await status(content);
    expect(whole.packages?.map((p) => p.name)).toEqual(['ä-pkg', 'pkg1', 'last']);
    for (let chunk = 1; chunk <= 40; chunk++) expect(streamed(content, chunk)).toEqual(whole);
    expect(streamed(content, 4096)).toEqual(whole);
  });

  it('keeps at most a bounded start of a line that never ends, and reads the stanzas after it', async () => {
    const content = Buffer.concat([Buffer.from('Description: '), Buffer.alloc(6 << 20, 0x61), Buffer.from('\n\n'), Buffer.from(stanza(7, 1))]);
    const facts = streamed(content, 64 << 10);
    expect(facts.packages?.map((p) => `${p.name} ${p.version}`)).toEqual(['pkg7 1.7']);
  });

  it('goes through the dispatcher without analyse(): the file is never held whole', async () => {
    const { FileDispatcher, emptyLayerFacts } = await import('../../src/analyse/dispatch.js');
    let wholeCalls = 0;
    const dpkg = { ...dpkgAnalyser, analyse: (...args: Parameters<typeof dpkgAnalyser.analyse>) => (wholeCalls++, dpkgAnalyser.analyse(...args)) };
    const text = Buffer.from(Array.from({ length: 24_000 }, (_, i) => stanza(i, 8)).join(''));
    expect(text.length).toBeGreaterThan(8 << 20); // past the size at which the sink copies a file into one buffer
    const facts = emptyLayerFacts();
    const sink = new FileDispatcher([dpkg], CTX, facts).open(PATH, { size: text.length, mode: 0o644 }, [dpkg]);
    for (let at = 0; at < text.length; at += 1 << 20) sink.write(text.subarray(at, at + (1 << 20)));
    await sink.end();
    expect(wholeCalls).toBe(0);
    expect(facts.files).toHaveLength(1);
    expect(facts.files[0]!.facts.packages).toHaveLength(24_000);
  });
});
