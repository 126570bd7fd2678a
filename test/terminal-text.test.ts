import { describe, expect, it } from 'vitest';
import { printable, printableLines } from '../src/terminal-text.js';

describe('printable and printableLines', () => {
  it('shows escape sequences, bells, carriage returns and C1 controls as visible escapes', () => {
    expect(printable('a\x1b[2J\x1b]0;title\x07b')).toBe('a\\x1b[2J\\x1b]0;title\\x07b');
    expect(printable('ok\rFAKE')).toBe('ok\\x0dFAKE');
    expect(printable('x\x7f\x9b31m')).toBe('x\\x7f\\x9b31m');
  });

  it('escapes bidi overrides and Unicode line separators', () => {
    expect(printable('abc\u202edcb\u2066\u2028')).toBe('abc\\u202edcb\\u2066\\u2028');
  });

  it('printable escapes newlines and tabs; printableLines keeps them', () => {
    expect(printable('one\ntwo\tthree')).toBe('one\\x0atwo\\x09three');
    expect(printableLines('one\ntwo\tthree\x1b[0m')).toBe('one\ntwo\tthree\\x1b[0m');
  });

  it('leaves ordinary text, including non-ASCII letters and emoji, untouched', () => {
    const text = 'registry.example/ünïcode:v1 — 😀 [MANIFEST_UNKNOWN]';
    expect(printable(text)).toBe(text);
    expect(printableLines(text)).toBe(text);
  });
});
