import { describe, expect, it } from 'vitest';
import { projectOfRepository } from '../../src/cli/policy-command.js';
import { projectOf } from '../../src/registry/access/index.js';

describe('one project rule for CI and the registry', () => {
  it('names the same project for a repository in `policy test` as the gate does', () => {
    for (const repo of ['team/app', 'team/app/api', 'alpine', 'library/alpine', 'a/b/c/d']) {
      expect(projectOfRepository(repo)).toBe(projectOf(repo));
    }
    expect(projectOfRepository(undefined)).toBeUndefined();
  });
});
