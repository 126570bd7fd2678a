/**
 * Text from outside (a registry's reason phrase, a manifest's media type, a file name in a layer)
 * ends up in messages printed to a terminal. Terminals act on control characters: an escape
 * sequence can clear the screen, recolour or rewrite earlier lines, set the window title or, on
 * some terminals, answer back into the input. These helpers show such characters as visible
 * escapes (`\x1b`, `\u202e`) instead, so a message says what the server sent without letting it
 * drive the terminal.
 */

/** C0 controls, DEL, C1 controls, and the Unicode marks that reorder or break lines. */
function unsafe(code: number, keepLines: boolean): boolean {
  if (code < 0x20) return !(keepLines && (code === 0x0a || code === 0x09));
  if (code >= 0x7f && code <= 0x9f) return true;
  return (
    code === 0x061c ||
    code === 0x200e ||
    code === 0x200f ||
    code === 0x2028 ||
    code === 0x2029 ||
    (code >= 0x202a && code <= 0x202e) ||
    (code >= 0x2066 && code <= 0x2069)
  );
}

function escapeUnsafe(text: string, keepLines: boolean): string {
  let out = '';
  let start = 0;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (!unsafe(code, keepLines)) continue;
    out += text.slice(start, i);
    out += code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
    start = i + 1;
  }
  return start === 0 ? text : out + text.slice(start);
}

/** One value for a one-line message: every control character escaped, newlines and tabs too. */
export function printable(text: string): string {
  return escapeUnsafe(text, false);
}

/** A message for the terminal: control characters escaped, but its own newlines and tabs kept. */
export function printableLines(text: string): string {
  return escapeUnsafe(text, true);
}
