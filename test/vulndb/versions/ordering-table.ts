/** The case-table vocabulary the version-ordering tests share. */
export type Op = '<' | '=' | '>';
export type Case = readonly [string, Op, string];
export const flip: Record<Op, Op> = { '<': '>', '=': '=', '>': '<' };
export const expected: Record<Op, -1 | 0 | 1> = { '<': -1, '=': 0, '>': 1 };

/** Every pair from an ascending chain whose elements are groups of equal versions. */
export function chainCases(chain: ReadonlyArray<string | readonly string[]>): Case[] {
  const groups = chain.map((g) => (typeof g === 'string' ? [g] : [...g]));
  const out: Case[] = [];
  groups.forEach((g, i) => {
    for (let x = 0; x < g.length; x++) for (let y = x + 1; y < g.length; y++) out.push([g[x]!, '=', g[y]!]);
    for (const h of groups.slice(i + 1)) for (const a of g) for (const b of h) out.push([a, '<', b]);
  });
  return out;
}
