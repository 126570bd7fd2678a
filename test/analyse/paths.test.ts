import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { normaliseEntryPath } from '../../src/analyse/paths.js';

/** The definition: drop empty and `.` segments, refuse `..` and absolute names. */
function reference(name: string): string {
  if (name.startsWith('/')) throw new Error('absolute');
  const parts: string[] = [];
  for (const seg of name.split('/')) {
    if (seg === '' || seg === '.') continue;
    if (seg === '..') throw new Error('climbs');
    parts.push(seg);
  }
  return parts.join('/');
}

function outcome(f: () => string): string {
  try {
    return `ok:${f()}`;
  } catch (err) {
    return (err as Error).message.includes('absolute') ? 'absolute' : 'climbs';
  }
}

describe('normaliseEntryPath', () => {
  it('normalises the usual shapes and refuses escapes', () => {
    expect(normaliseEntryPath('./etc/os-release', 's')).toBe('etc/os-release');
    expect(normaliseEntryPath('etc/x/', 's')).toBe('etc/x');
    expect(normaliseEntryPath('app/node_modules/.bin/x', 's')).toBe('app/node_modules/.bin/x');
    expect(normaliseEntryPath('./', 's')).toBe('');
    expect(normaliseEntryPath('.//a//b/./c', 's')).toBe('a/b/c');
    expect(normaliseEntryPath('a/.../b', 's')).toBe('a/.../b');
    expect(() => normaliseEntryPath('/etc/passwd', 's')).toThrow(/absolute path/);
    expect(() => normaliseEntryPath('./../x', 's')).toThrow(/climbs out/);
    expect(() => normaliseEntryPath('a/..', 's')).toThrow(/climbs out/);
  });

  it('refuses a name longer than any file system allows, and takes one just within it', () => {
    const deep = `${'d'.repeat(200)}/`.repeat(20).slice(0, 4096);
    expect(normaliseEntryPath(`./${deep}`, 's')).toBe(deep.replace(/\/$/, ''));
    expect(() => normaliseEntryPath('a'.repeat(1024 * 1024), 'img layer 0')).toThrow(
      /^img layer 0: entry "a{60}…" has a path of 1048576 characters, longer than any file system allows/,
    );
  });

  it('agrees with the split-and-join definition on any name', () => {
    const name = fc.array(fc.constantFrom('a', 'b', '.', '/', '..', './', '...', '.a'), { maxLength: 12 }).map((p) => p.join(''));
    fc.assert(
      fc.property(name, (n) => {
        const want = outcome(() => reference(n));
        const got = outcome(() => normaliseEntryPath(n, 'subject'));
        expect(got, JSON.stringify(n)).toBe(want);
      }),
      { numRuns: 5000 },
    );
  });
});
