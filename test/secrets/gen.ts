/** Seeded generators for the secret corpus: the same seed always yields the same corpus. */

export const B62 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789';
export const B32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
export const B64 = `${B62}+/`;
export const B64URL = `${B62}-_`;
export const HEX = '0123456789abcdef';
export const DIGITS = '0123456789';

/** mulberry32: tiny, fast, good enough for test data. */
export class Rng {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  int(lo: number, hi: number): number {
    return lo + Math.floor(this.next() * (hi - lo + 1));
  }

  pick<T>(items: readonly T[]): T {
    return items[Math.floor(this.next() * items.length)] as T;
  }

  str(alphabet: string, length: number): string {
    let s = '';
    for (let i = 0; i < length; i++) s += alphabet.charAt(Math.floor(this.next() * alphabet.length));
    return s;
  }

  bytes(n: number): Buffer {
    const b = Buffer.alloc(n);
    for (let i = 0; i < n; i++) b[i] = Math.floor(this.next() * 256);
    return b;
  }
}

/** Split into lines of `width` characters. */
export function wrap(s: string, width: number): string[] {
  const out: string[] = [];
  for (let i = 0; i < s.length; i += width) out.push(s.slice(i, i + width));
  return out;
}

/** Contexts a credential commonly sits in; `{}` is replaced by the token. */
export const CONTEXTS = [
  'export VALUE={}',
  'VALUE="{}"',
  "value: '{}'",
  '{"value": "{}"}',
  'ENV CREDENTIAL {}',
  'curl -H "Authorization: Bearer {}" https://api.example.com',
  '# note\n  item = {}\n# end',
  '{}',
  '<key>{}</key>',
  'args: ["--cred", "{}"]',
];

export function embed(rng: Rng, token: string): string {
  return rng.pick(CONTEXTS).replace('{}', token);
}
