import { afterEach, describe, expect, it, vi } from 'vitest';
import { scanText } from '../../src/secrets/engine.js';
import { MAX_QUIET_JSON_DEPTH, parseJsonQuietly } from '../../src/secrets/text.js';

const b64url = (v: string): string => Buffer.from(v).toString('base64url');
/** A JWT whose payload is `{"sub":"u","x":VALUE}`, signed with a random-looking signature. */
const jwt = (value: string): string =>
  `${b64url('{"alg":"HS256","typ":"JWT"}')}.${b64url(`{"sub":"u","x":${value}}`)}.${'Zx9-Qw3_Lp7Rt2Vb8Nm4Kj6Hg1Fd5Sa0'}`;
const nested = (depth: number): string => `${'['.repeat(depth)}${']'.repeat(depth)}`;

describe('parseJsonQuietly bounds', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('parses JSON up to the depth bound', () => {
    expect(parseJsonQuietly('{"alg":"HS256"}')).toEqual({ alg: 'HS256' });
    // The object itself is one level: the whole text is MAX_QUIET_JSON_DEPTH deep.
    expect(parseJsonQuietly(`{"a":${nested(MAX_QUIET_JSON_DEPTH - 1)}}`)).toBeDefined();
    expect(parseJsonQuietly('{"a":')).toBeUndefined();
  });

  it('refuses deeper JSON before JSON.parse sees it', () => {
    const parse = vi.spyOn(JSON, 'parse');
    expect(parseJsonQuietly(`{"a":${nested(MAX_QUIET_JSON_DEPTH)}}`)).toBeUndefined();
    expect(parseJsonQuietly(nested(100_000))).toBeUndefined();
    expect(parse).not.toHaveBeenCalled();
  });

  it('reports a JWT with an ordinary payload and not one nested past the bound', () => {
    expect(scanText(`token=${jwt('[[1]]')}\n`, { path: 'app/env' }).map((s) => s.ruleId)).toEqual(['jwt']);
    expect(scanText(`token=${jwt(nested(200))}\n`, { path: 'app/env' })).toEqual([]);
  });
});
