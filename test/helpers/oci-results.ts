import type { Readable } from 'node:stream';
import { expect } from 'vitest';
import { OciError } from '../../src/errors.js';

/** Every byte of a blob stream; `pauseMs` between chunks plays a slow consumer. */
export async function readAll(stream: Readable, pauseMs = 0): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) {
    chunks.push(c as Buffer);
    if (pauseMs) await new Promise((r) => setTimeout(r, pauseMs));
  }
  return Buffer.concat(chunks);
}

/** The OciError a promise rejects with, which must be one line, as the CLI prints it. */
export async function oneLineFailure(p: Promise<unknown>): Promise<OciError> {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(OciError);
  expect((err as OciError).message.split('\n')).toHaveLength(1);
  return err as OciError;
}
