import { describe, expect, it } from 'vitest';
import { signWebhookBody, slackText, webhookRequest, type StoredEvent } from '../../src/gate/index.js';

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
