import { describe, expect, it } from 'vitest';
import { MAX_SECRETS_PER_FILE, createSecretAnalyser } from '../../src/analyse/analysers/secrets.js';
import type { AnalyserContext, FileFacts } from '../../src/analyse/types.js';

const CTX = { scratchDir: '/tmp' } as AnalyserContext;
const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/** `count` distinct, random-looking AWS access key ids, one a line. */
function keyIds(count: number): string {
  let x = 12345;
  const lines: string[] = [];
  for (let i = 0; i < count; i++) {
    let id = 'AKIA';
    for (let k = 0; k < 16; k++) {
      x = (Math.imul(x, 1103515245) + 12345) >>> 0;
      id += BASE32[(x >>> 16) % 32];
    }
    lines.push(`${id}\n`);
  }
  return lines.join('');
}

async function scan(path: string, text: string): Promise<FileFacts> {
  const content = Buffer.from(text);
  return createSecretAnalyser().analyse({ path, size: content.length, mode: 0o644, content }, CTX);
}

describe('findings per file', () => {
  it('reports every finding of a file with fewer than the bound', async () => {
    const facts = await scan('app/keys.txt', keyIds(20));
    expect(facts.secrets).toHaveLength(20);
    expect(facts.warnings).toBeUndefined();
  });

  it('keeps the first findings past the bound and says how many more there were', async () => {
    const count = MAX_SECRETS_PER_FILE + 234;
    const facts = await scan('app/keys.txt', keyIds(count));
    expect(facts.secrets).toHaveLength(MAX_SECRETS_PER_FILE);
    expect(facts.secrets?.[0]).toMatchObject({ ruleId: 'aws-access-key-id', line: 1 });
    expect(facts.secrets?.at(-1)?.line).toBe(MAX_SECRETS_PER_FILE);
    expect(facts.warnings).toEqual([`app/keys.txt: 234 more secrets past the first ${MAX_SECRETS_PER_FILE} not reported`]);
  });
});
