import { z } from 'zod';

/**
 * zod compiles a fast parser (with `new Function`) for each object schema the first time it
 * parses with it. A one-shot command parses a few dozen documents, so the compiling costs more
 * than it saves, and V8's code cache cannot keep code made that way. Without it, cold scans took
 * 424 against 433 ms (node-app, medians of 30 alternating runs) and 337 against 344 ms
 * (alpine-3.20); `db import` of the fixture data was unchanged. `serve` parses requests all day
 * and keeps the compiled parsers. zod reads this setting when a schema is made, at module load, so
 * cli/index.ts imports this module before anything else.
 */
if (!process.argv.slice(2).includes('serve')) z.config({ jitless: true });

/**
 * Ends a finished one-shot command's process as soon as its output has reached the operating
 * system. Left to itself, Node tears down the whole V8 heap (page by page) before the process
 * ends; process.exit skips that, and the 'exit' listeners (the code cache) still run. Only the
 * launcher asks for it (main's `standalone`), never code that calls main() in its own process.
 */
export async function exitWhenFlushed(code: number): Promise<never> {
  await Promise.all([process.stdout, process.stderr].map((s) => new Promise<void>((resolve) => s.write('', () => resolve()))));
  process.exit(code);
}
