/**
 * Just enough shell parsing to find the commands inside a Dockerfile RUN: line continuations are
 * joined, comment lines inside a continued instruction dropped (as the Docker builder does), and
 * the result is cut into simple commands at `&&`, `||`, `;`, `|`, `&` and newlines (heredoc bodies).
 * It is not a shell: expansions are left as text, which is what the checks want to see anyway.
 */

/** Shell text with each character's 1-based source line. */
export interface MappedText {
  text: string;
  /** lines[i] is the source line of text[i]; one longer than text so an end index maps too. */
  lines: number[];
}

export interface SimpleCommand {
  /** The words, quotes removed, with wrappers such as `sudo`, `env` and `VAR=x` stripped. */
  words: string[];
  /** The command's program name without its directory (`/usr/bin/apt-get` → `apt-get`). */
  name: string;
  /** 1-based source line where the command starts. */
  line: number;
  /** The operator that ended this command (`|` means its output feeds the next command). */
  next: string;
}

/**
 * Joins escaped newlines and drops the comment and blank lines that may sit between continued
 * lines, keeping track of which source line every remaining character came from.
 */
export function joinContinuations(raw: string, firstLine: number, escape: string): MappedText {
  let text = '';
  const lines: number[] = [];
  let line = firstLine;
  let i = 0;
  while (i < raw.length) {
    const ch = raw[i] as string;
    if (ch === escape) {
      const m = /^[ \t]*\r?\n/.exec(raw.slice(i + 1));
      if (m) {
        i += 1 + m[0].length;
        line++;
        // Docker removes comment lines and empty lines inside a continued instruction.
        for (;;) {
          const rest = raw.slice(i);
          const skip = /^[ \t]*(#[^\n]*)?\r?\n/.exec(rest);
          if (!skip) break;
          i += skip[0].length;
          line++;
        }
        continue;
      }
    }
    text += ch;
    lines.push(line);
    if (ch === '\n') line++;
    i++;
  }
  lines.push(line);
  return { text, lines };
}

const OPERATORS = ['&&', '||', ';;', ';', '|', '&', '\n', '(', ')'];
/** Words that start a compound command or prefix another command; the real command follows. */
const PREFIXES = new Set([
  'then',
  'do',
  'else',
  'elif',
  'if',
  'while',
  'until',
  '!',
  '{',
  '}',
  'time',
  'exec',
  'nohup',
]);
/** Wrappers that run the next word as the command (their own options are skipped). */
const WRAPPERS = new Set(['sudo', 'env', 'nice', 'doas', 'su-exec', 'gosu']);

/** Splits shell text into simple commands. */
export function splitCommands(src: MappedText): SimpleCommand[] {
  const out: SimpleCommand[] = [];
  const { text, lines } = src;
  let words: string[] = [];
  let start = -1;
  let word: string | null = null;
  let i = 0;

  const endWord = (): void => {
    if (word !== null) words.push(word);
    word = null;
  };
  const endCommand = (op: string): void => {
    endWord();
    if (words.length > 0) {
      const cmd = simplify(words, lines[start] ?? lines[0] ?? 1, op);
      if (cmd) out.push(cmd);
    }
    words = [];
    start = -1;
  };

  while (i < text.length) {
    const ch = text[i] as string;
    // A `#` at the start of a word begins a comment up to the end of the line.
    if (ch === '#' && word === null) {
      while (i < text.length && text[i] !== '\n') i++;
      continue;
    }
    if (ch === '$' && text[i + 1] === '(') {
      // Keep a command substitution in one word; the checks look into it with regexes.
      if (start < 0) start = i;
      let depth = 0;
      let j = i + 1;
      for (; j < text.length; j++) {
        if (text[j] === '(') depth++;
        else if (text[j] === ')' && --depth === 0) break;
      }
      word = (word ?? '') + text.slice(i, j + 1);
      i = j + 1;
      continue;
    }
    // `>&2`, `2>&1`: a redirection, not a background operator.
    const redirect = ch === '&' && (text[i - 1] === '>' || text[i - 1] === '<');
    const op = redirect ? undefined : OPERATORS.find((o) => text.startsWith(o, i));
    if (op !== undefined) {
      endCommand(op);
      i += op.length;
      continue;
    }
    if (ch === ' ' || ch === '\t' || ch === '\r') {
      endWord();
      i++;
      continue;
    }
    if (start < 0) start = i;
    if (word === null) word = '';
    if (ch === "'") {
      const close = text.indexOf("'", i + 1);
      const end = close < 0 ? text.length : close;
      word += text.slice(i + 1, end);
      i = end + 1;
      continue;
    }
    if (ch === '"') {
      let j = i + 1;
      while (j < text.length && text[j] !== '"') {
        if (text[j] === '\\' && j + 1 < text.length) j++;
        word += text[j];
        j++;
      }
      i = j + 1;
      continue;
    }
    if (ch === '\\' && i + 1 < text.length) {
      word += text[i + 1];
      i += 2;
      continue;
    }
    word += ch;
    i++;
  }
  endCommand('');
  return out;
}

function simplify(all: string[], line: number, next: string): SimpleCommand | null {
  let k = 0;
  for (;;) {
    const w = all[k];
    if (w === undefined) return null;
    if (PREFIXES.has(w) || /^[A-Za-z_][A-Za-z0-9_]*=/.test(w)) {
      k++;
      continue;
    }
    if (WRAPPERS.has(w)) {
      k++;
      // Skip the wrapper's options; `sudo -u user` takes a value.
      while (all[k]?.startsWith('-')) {
        if (w === 'sudo' && /^-[ugCDhpRrTt]$/.test(all[k] as string)) k++;
        k++;
      }
      continue;
    }
    break;
  }
  const words = all.slice(k);
  const first = words[0] as string;
  return { words, name: first.slice(first.lastIndexOf('/') + 1), line, next };
}
