import { describe, expect, it } from 'vitest';
import { parseAuthChallenges } from '../../src/oci/registry.js';
import {
  buildBearerChallenge,
  formatScope,
  formatScopes,
  isValidRepositoryName,
  parseScope,
  parseScopeParams,
  type Scope,
} from '../../src/registry/auth/scope.js';

describe('parseScope', () => {
  const valid: Array<[string, Scope, string?]> = [
    ['repository:alpine:pull', { type: 'repository', name: 'alpine', actions: ['pull'] }],
    [
      'repository:library/alpine:pull,push',
      { type: 'repository', name: 'library/alpine', actions: ['pull', 'push'] },
    ],
    // Actions come back deduplicated in canonical order.
    [
      'repository:a/b:push,pull,push',
      { type: 'repository', name: 'a/b', actions: ['pull', 'push'] },
      'repository:a/b:pull,push',
    ],
    [
      'repository:a:delete,pull',
      { type: 'repository', name: 'a', actions: ['pull', 'delete'] },
      'repository:a:pull,delete',
    ],
    // A name with a registry host and port: the colons inside the name must not confuse the split.
    [
      'repository:localhost:5000/team/app:pull',
      { type: 'repository', name: 'localhost:5000/team/app', actions: ['pull'] },
    ],
    [
      'repository:registry.example.com/x/y-z__w.v:pull',
      { type: 'repository', name: 'registry.example.com/x/y-z__w.v', actions: ['pull'] },
    ],
    ['repository:[::1]:5000/app:pull', { type: 'repository', name: '[::1]:5000/app', actions: ['pull'] }],
    ['repository:deep/a/b/c/d:*', { type: 'repository', name: 'deep/a/b/c/d', actions: ['*'] }],
    ['registry:catalog:*', { type: 'registry', name: 'catalog', actions: ['*'] }],
    [
      'repository(plugin):vieux/sshfs:pull',
      { type: 'repository', class: 'plugin', name: 'vieux/sshfs', actions: ['pull'] },
    ],
    // The grammar allows an empty action list; it parses and grants nothing.
    ['repository:a:', { type: 'repository', name: 'a', actions: [] }],
  ];
  it.each(valid)('%s', (text, expected, formatted) => {
    const scope = parseScope(text);
    expect(scope).toEqual(expected);
    expect(formatScope(scope)).toBe(formatted ?? text);
  });

  const invalid: Array<[string, RegExp]> = [
    ['', /expected <type>:<name>:<actions>/],
    ['repository', /expected/],
    ['repository:alpine', /expected/],
    ['Repository:alpine:pull', /resource type/],
    ['repository:Alpine:pull', /not a valid name/],
    ['repository::pull', /not a valid name/],
    ['repository:a//b:pull', /not a valid name/],
    ['repository:/a:pull', /not a valid name/],
    ['repository:a/:pull', /not a valid name/],
    ['repository:a"b:pull', /not a valid name/],
    ['repository:a:pull,,push', /actions/],
    ['repository:a:PULL', /actions/],
    ['repository:a:pull push', /actions/],
    [`repository:${'a'.repeat(300)}:pull`, /not a valid name/],
    [`repository:a:${'pull,'.repeat(200)}pull`, /longer than/],
  ];
  it.each(invalid)('refuses %j', (text, why) => {
    expect(() => parseScope(text)).toThrow(why);
  });

  it('checks repository names like the distribution reference grammar', () => {
    expect(isValidRepositoryName('a')).toBe(true);
    expect(isValidRepositoryName('a-b---c.d_e__f')).toBe(true);
    expect(isValidRepositoryName('a___b')).toBe(false);
    expect(isValidRepositoryName('-a')).toBe(false);
    expect(isValidRepositoryName('host:notaport/a')).toBe(false);
  });
});

describe('parseScopeParams', () => {
  it('reads repeated parameters and space-separated lists, merging the same resource', () => {
    const scopes = parseScopeParams([
      'repository:a:pull',
      'repository:b:push repository:a:push',
      'registry:catalog:*',
    ]);
    expect(scopes).toEqual([
      { type: 'repository', name: 'a', actions: ['pull', 'push'] },
      { type: 'repository', name: 'b', actions: ['push'] },
      { type: 'registry', name: 'catalog', actions: ['*'] },
    ]);
    expect(formatScopes(scopes)).toBe('repository:a:pull,push repository:b:push registry:catalog:*');
  });

  it('accepts no scope at all (docker login asks for none)', () => {
    expect(parseScopeParams(undefined)).toEqual([]);
    expect(parseScopeParams('')).toEqual([]);
  });

  it('bounds the number of scopes', () => {
    const many = Array.from({ length: 40 }, (_, i) => `repository:r${i}:pull`);
    expect(() => parseScopeParams(many)).toThrow(/Too many scopes/);
  });
});

describe('buildBearerChallenge', () => {
  it('quotes every value and reads back with the client parser', () => {
    const header = buildBearerChallenge({
      realm: 'https://reg.example.com/token',
      service: 'reg.example.com',
      scopes: [{ type: 'repository', name: 'team/app', actions: ['push', 'pull'] }],
    });
    expect(header).toBe(
      'Bearer realm="https://reg.example.com/token",service="reg.example.com",scope="repository:team/app:pull,push"',
    );
    expect(parseAuthChallenges(header)).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://reg.example.com/token',
          service: 'reg.example.com',
          scope: 'repository:team/app:pull,push',
        },
      },
    ]);
  });

  it('omits the scope when there is none and adds an error when asked', () => {
    expect(buildBearerChallenge({ realm: 'http://r/token', service: 'r' })).toBe(
      'Bearer realm="http://r/token",service="r"',
    );
    expect(
      buildBearerChallenge({
        realm: 'http://r/token',
        service: 'r',
        scopes: [],
        error: 'insufficient_scope',
      }),
    ).toBe('Bearer realm="http://r/token",service="r",error="insufficient_scope"');
  });

  it('puts several scopes in one space-separated value', () => {
    const header = buildBearerChallenge({
      realm: 'http://r/token',
      service: 'r',
      scopes: [parseScope('repository:a:pull'), parseScope('repository:b:pull,push')],
    });
    expect(parseAuthChallenges(header)[0]?.params.scope).toBe('repository:a:pull repository:b:pull,push');
  });

  it('escapes quotes and backslashes and refuses header injection', () => {
    const header = buildBearerChallenge({ realm: 'http://r/token', service: 'a"b\\c' });
    expect(header).toBe('Bearer realm="http://r/token",service="a\\"b\\\\c"');
    expect(parseAuthChallenges(header)[0]?.params.service).toBe('a"b\\c');
    expect(() => buildBearerChallenge({ realm: 'http://r/token\r\nSet-Cookie: x=y', service: 'r' })).toThrow(
      /control characters/,
    );
  });
});
