import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { EventPublisher, SIGNATURE_HEADER, signWebhookBody, slackText, WEBHOOK_JOB, webhookRequest, type StoredEvent, type WebhookTarget } from '../../src/gate/index.js';
import { SqliteRegistryMetadata } from '../../src/store/index.js';

const event: StoredEvent = {
  id: 42,
  type: 'verdict_changed',
  time: '2026-12-06T12:00:00.000Z',
  event: { type: 'verdict_changed', repository: 'team/app', digest: `sha256:${'a'.repeat(64)}`, from: 'pass', to: 'fail', reasons: ['fixable'] },
};

describe('webhook deliveries', () => {
  it('signs the exact body with HMAC-SHA256 and names the event and delivery', () => {
    const { body, headers } = webhookRequest({ url: 'https://hooks.example/x', secret: 's3cret-s3cret-s3cret', format: 'json' }, event);
    expect(JSON.parse(body)).toEqual({ id: 42, type: 'verdict_changed', time: event.time, data: event.event });
    expect(headers['x-portcullis-signature-256']).toBe(signWebhookBody('s3cret-s3cret-s3cret', body));
    expect(headers['x-portcullis-signature-256']).toMatch(/^sha256=[0-9a-f]{64}$/);
    expect(headers).toMatchObject({ 'x-portcullis-event': 'verdict_changed', 'x-portcullis-delivery': '42', 'content-type': 'application/json' });
    // Unsigned when no secret is configured, and the secret never appears in what is sent.
    expect(webhookRequest({ url: 'https://hooks.example/x', format: 'json' }, event).headers['x-portcullis-signature-256']).toBeUndefined();
    expect(JSON.stringify(webhookRequest({ url: 'https://h/x', secret: 's3cret-s3cret-s3cret', format: 'json' }, event))).not.toContain('s3cret');
  });

  it('writes a Slack-compatible message a person can read', () => {
    const { body } = webhookRequest({ url: 'https://hooks.slack.example/T/B/X', format: 'slack' }, event);
    expect(JSON.parse(body)).toEqual({ text: ':no_entry: team/app@sha256:aaaaaaaaaaaa: verdict pass -> fail (fixable)' });
    expect(
      slackText({
        ...event,
        type: 'new_advisory_affects',
        event: {
          type: 'new_advisory_affects',
          advisory: 'ALPINE-CVE-2026-3000',
          aliases: [],
          severity: 'high',
          fixAvailable: true,
          artifacts: [{ repository: 'team/app', digest: `sha256:${'b'.repeat(64)}`, package: 'zlib', installedVersion: '1.3.1-r1', fixedVersions: ['1.3.1-r2'] }],
        },
      }),
    ).toBe(':rotating_light: ALPINE-CVE-2026-3000 (high, fix available) affects 1 stored image(s): team/app@sha256:bbbbbbbbbbbb (zlib 1.3.1-r1)');
  });
});

/** A receiver on a loopback port that records the event types posted to it and answers `status`. */
async function receiver(status = 204, headers: Record<string, string> = {}): Promise<{ url: string; got: string[]; server: Server }> {
  const got: string[] = [];
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (c: Buffer) => (body += c.toString()));
    req.on('end', () => {
      got.push((JSON.parse(body) as { type: string }).type);
      res.writeHead(status, headers).end();
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`, got, server };
}

describe('queued webhook deliveries after the configuration changed', () => {
  it('go to the receiver they were queued for, or nowhere; a redirect is not followed', async () => {
    const data = await mkdtemp(join(tmpdir(), 'portcullis-webhooks-'));
    const metadata = await SqliteRegistryMetadata.open(data);
    const [teamA, teamB, elsewhere] = [await receiver(), await receiver(), await receiver()];
    const moved = await receiver(308, { location: elsewhere.url });
    try {
      const a: WebhookTarget = { url: teamA.url, format: 'json' };
      const b: WebhookTarget = { url: teamB.url, format: 'json', events: ['push_denied'] };
      const before = new EventPublisher(metadata, [a, b, { url: moved.url, format: 'json' }]);
      await before.publish(event.event);
      // A restart with team A's webhook removed: team B's is now first in the list.
      const after = new EventPublisher(metadata, [b, { url: moved.url, format: 'json' }, a]);
      const deliver = after.handler(2000);
      const errors: string[] = [];
      for (let job = await metadata.jobs.claim('t', [WEBHOOK_JOB], 10_000); job; job = await metadata.jobs.claim('t', [WEBHOOK_JOB], 10_000)) {
        await deliver(job, new AbortController().signal).catch((err: Error) => errors.push(err.message));
        await metadata.jobs.complete(job.id, 't');
      }
      expect(teamA.got).toEqual(['verdict_changed']);
      expect(teamB.got).toEqual([]);
      expect(moved.got).toEqual(['verdict_changed']);
      expect(elsewhere.got).toEqual([]);
      expect(errors).toEqual([expect.stringMatching(/answered 308, a redirect, which is not followed/)]);
      // With team A gone for good, its queued event goes to no one.
      await before.publish(event.event);
      const withoutA = new EventPublisher(metadata, [b]).handler(2000);
      for (let job = await metadata.jobs.claim('t', [WEBHOOK_JOB], 10_000); job; job = await metadata.jobs.claim('t', [WEBHOOK_JOB], 10_000)) {
        await withoutA(job, new AbortController().signal).catch(() => undefined);
        await metadata.jobs.complete(job.id, 't');
      }
      expect([teamA.got.length, teamB.got.length]).toEqual([1, 0]);
    } finally {
      for (const r of [teamA, teamB, elsewhere, moved]) r.server.close();
      await metadata.close();
      await rm(data, { recursive: true, force: true });
    }
  });

  it('keep apart two receivers that share an address, the list unchanged or reordered', async () => {
    // One URL listed twice, each entry with its own events and secret (a service that routes by
    // X-Portcullis-Event): a delivery queued for the second entry is not the first one's to drop.
    const data = await mkdtemp(join(tmpdir(), 'portcullis-webhooks-'));
    const metadata = await SqliteRegistryMetadata.open(data);
    const posted: { body: string; signature: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        posted.push({ body, signature: String(req.headers[SIGNATURE_HEADER]) });
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`;
    try {
      const denials: WebhookTarget = { url, format: 'json', secret: 'denials-secret-0123456789', events: ['push_denied'] };
      const verdicts: WebhookTarget = { url, format: 'json', secret: 'verdicts-secret-0123456789', events: ['verdict_changed'] };
      const deliverAll = async (publisher: EventPublisher) => {
        const deliver = publisher.handler(2000);
        for (let job = await metadata.jobs.claim('t', [WEBHOOK_JOB], 10_000); job; job = await metadata.jobs.claim('t', [WEBHOOK_JOB], 10_000)) {
          await deliver(job, new AbortController().signal);
          await metadata.jobs.complete(job.id, 't');
        }
      };
      const publisher = new EventPublisher(metadata, [denials, verdicts]);
      await publisher.publish(event.event);
      await deliverAll(publisher);
      await publisher.publish(event.event);
      await deliverAll(new EventPublisher(metadata, [verdicts, denials]));
      expect(posted.map((p) => (JSON.parse(p.body) as { type: string }).type)).toEqual(['verdict_changed', 'verdict_changed']);
      for (const p of posted) expect(p.signature).toBe(signWebhookBody(verdicts.secret!, p.body));
    } finally {
      server.close();
      await metadata.close();
      await rm(data, { recursive: true, force: true });
    }
  });
});
