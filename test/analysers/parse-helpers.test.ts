import { describe, expect, it } from 'vitest';
import { MAX_JSON_CONTAINERS, MAX_JSON_DEPTH, MAX_TOML_STRUCTURES, jsonTooLarge, tomlTooLarge } from '../../src/analyse/analysers/parse-helpers.js';

describe('tomlTooLarge', () => {
  it('counts keys, dotted segments, tables and arrays up to the bound', () => {
    const dotted = (n: number) => Array.from({ length: n }, (_, i) => `a${i}.b.c = 1\n`).join('');
    // Three per line: two dots and an equals sign.
    expect(tomlTooLarge('x.lock', dotted(MAX_TOML_STRUCTURES / 4))).toBeUndefined();
    expect(tomlTooLarge('x.lock', dotted(MAX_TOML_STRUCTURES / 3 + 1))).toBe(
      `x.lock: more than ${MAX_TOML_STRUCTURES} TOML keys and tables, more than any real lockfile; skipped`,
    );
    expect(tomlTooLarge('x.lock', '[t]\n'.repeat(MAX_TOML_STRUCTURES + 1))).toMatch(/more than 100000 TOML keys/);
    expect(tomlTooLarge('x.lock', `x = [${'1,'.repeat(16 * MAX_TOML_STRUCTURES)}1]`)).toMatch(/more than/);
    expect(tomlTooLarge('x.lock', `x = [${'1,'.repeat(15 * MAX_TOML_STRUCTURES)}1]`)).toBeUndefined();
  });

  it('does not count what strings and comments hold', () => {
    const many = '.='.repeat(MAX_TOML_STRUCTURES);
    for (const quiet of [
      `x = "${many}"`,
      `x = "\\"${many}"`,
      `x = '${many}'`,
      `x = """\n${many}\n"""`,
      `x = """a\\"""${many}"""`,
      `x = '''\n${many}'''`,
      `x = """${many}"""""`,
      `# ${many}\nx = 1`,
    ]) {
      expect(tomlTooLarge('x.lock', quiet)).toBeUndefined();
    }
    // A closed string does not hide what follows it, nor a string ended by a newline (invalid).
    expect(tomlTooLarge('x.lock', `x = "a"\ny = 1${'.1'.repeat(MAX_TOML_STRUCTURES)}`)).toMatch(/more than/);
    expect(tomlTooLarge('x.lock', `x = "a\n${'[t]\n'.repeat(MAX_TOML_STRUCTURES)}`)).toMatch(/more than/);
    expect(tomlTooLarge('x.lock', `x = '''a'''\n${'[t]\n'.repeat(MAX_TOML_STRUCTURES)}`)).toMatch(/more than/);
  });
});

describe('jsonTooLarge', () => {
  it('refuses nesting deeper than the bound, counting only brackets outside strings', () => {
    const deep = (n: number) => `${'['.repeat(n)}${']'.repeat(n)}`;
    expect(jsonTooLarge('a.json', deep(MAX_JSON_DEPTH))).toBeUndefined();
    expect(jsonTooLarge('a.json', deep(MAX_JSON_DEPTH + 1))).toBe(`a.json: JSON nested deeper than ${MAX_JSON_DEPTH} levels; skipped`);
    // Closed levels do not add up; brackets in strings, after escaped quotes too, do not count.
    expect(jsonTooLarge('a.json', `[${Array.from({ length: 50 }, () => deep(900)).join(',')}]`)).toBeUndefined();
    expect(jsonTooLarge('a.json', `["\\"${'['.repeat(5000)}", {"k\\\\": "${'{'.repeat(5000)}"}]`)).toBeUndefined();
  });

  it('refuses more arrays and objects than the bound', () => {
    expect(jsonTooLarge('a.json', `[${'{},'.repeat(MAX_JSON_CONTAINERS)}{}]`)).toBe(
      `a.json: more than ${MAX_JSON_CONTAINERS} JSON arrays and objects, more than any real lockfile; skipped`,
    );
    expect(jsonTooLarge('a.json', `[${'1,'.repeat(8 * MAX_JSON_CONTAINERS)}1]`)).toMatch(/more than/);
    expect(jsonTooLarge('a.json', `[${'1,'.repeat(7 * MAX_JSON_CONTAINERS)}1]`)).toBeUndefined();
  });
});
