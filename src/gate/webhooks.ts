import { createHash, createHmac } from 'node:crypto';
import type { JobHandler } from '../jobs/index.js';
import type { RegistryMetadata } from '../store/index.js';
import type { GateEvent } from './service.js';

export const WEBHOOK_JOB = 'webhook';
export const SIGNATURE_HEADER = 'x-portcullis-signature-256';

export interface WebhookTarget {
  url: string;
  /** HMAC-SHA256 key; the body's signature goes in X-Portcullis-Signature-256. */
  secret?: string;
  /** Event types to send; all when absent. */
  events?: string[];
  /** `json` (the event document) or `slack` (an incoming-webhook message). */
  format: 'json' | 'slack';
}

export interface StoredEvent {
  id: number;
  type: string;
  time: string;
  event: GateEvent;
}

/** What a queued delivery stores: the event, and which receiver it is for. */
interface DeliveryPayload {
  /** The receiver's place in the configured list when the event was queued. */
  target: number;
  /** A hash of the receiver's URL (the URL itself may hold a token, so it is not stored). */
  targetKey?: string;
  event: StoredEvent;
}

function targetKey(target: WebhookTarget): string {
  return createHash('sha256').update(target.url).digest('hex').slice(0, 32);
}

/** `sha256=<hex>`, the HMAC of the exact bytes sent, as GitHub-style receivers check it. */
export function signWebhookBody(secret: string, body: string): string {
  return `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;
}

const short = (digest: string) => digest.slice(0, 19);

/** One line a person reads in a chat channel. */
export function slackText(e: StoredEvent): string {
  const ev = e.event;
  switch (ev.type) {
    case 'verdict_changed':
      return `${ev.to === 'fail' || ev.to === 'error' ? ':no_entry:' : ':white_check_mark:'} ${ev.repository}@${short(ev.digest)}: verdict ${ev.from ?? 'none'} -> ${ev.to}${ev.reasons.length ? ` (${ev.reasons.join(', ')})` : ''}`;
    case 'new_advisory_affects':
      return `:rotating_light: ${ev.advisory} (${ev.severity}${ev.fixAvailable ? ', fix available' : ', no fix yet'}) affects ${ev.artifacts.length} stored image(s): ${ev.artifacts
        .slice(0, 5)
        .map((a) => `${a.repository}@${short(a.digest)} (${a.package} ${a.installedVersion})`)
        .join(', ')}`;
    case 'push_denied':
      return `:lock: push of ${ev.repository}${ev.tag ? `:${ev.tag}` : ''}@${short(ev.digest)} by ${ev.principal} refused (${ev.status})`;
    case 'pull_denied':
      return `:lock: pull of ${ev.repository}@${short(ev.digest)}${ev.blob ? ` (its blob ${short(ev.blob)})` : ''} by ${ev.principal} refused (${ev.status})`;
    case 'analysed':
      return `${ev.repository}@${short(ev.digest)} analysed: ${ev.status}`;
    case 'pushed':
      return `${ev.principal} pushed ${ev.repository}${ev.tag ? `:${ev.tag}` : ''}@${short(ev.digest)}`;
    case 'blocked_pull_allowed':
      return `:warning: administrator ${ev.principal} pulled blocked image ${ev.repository}@${short(ev.digest)} (${ev.status})`;
  }
}

/** The request a delivery sends: the same bytes on every retry, so the signature stays valid. */
export function webhookRequest(target: WebhookTarget, e: StoredEvent): { body: string; headers: Record<string, string> } {
  const body = target.format === 'slack' ? JSON.stringify({ text: slackText(e) }) : JSON.stringify({ id: e.id, type: e.type, time: e.time, data: e.event });
  const headers: Record<string, string> = {
    'content-type': 'application/json',
    'user-agent': 'portcullis-webhook',
    'x-portcullis-event': e.type,
    'x-portcullis-delivery': String(e.id),
  };
  if (target.secret) headers[SIGNATURE_HEADER] = signWebhookBody(target.secret, body);
  return { body, headers };
}

/**
 * Events: stored (the API lists them) and delivered to each webhook that wants them as a durable
 * job, so a receiver that is down gets the event later (retries with backoff) and a crash loses none.
 */
export class EventPublisher {
  constructor(
    private readonly metadata: RegistryMetadata,
    private readonly targets: WebhookTarget[],
    private readonly notify: () => void = () => {},
  ) {}

  async publish(event: GateEvent): Promise<StoredEvent> {
    const time = new Date().toISOString();
    const id = await this.metadata.artifacts.appendEvent(event.type, JSON.stringify(event), time);
    const stored: StoredEvent = { id, type: event.type, time, event };
    let queued = false;
    for (const [index, target] of this.targets.entries()) {
      if (target.events && !target.events.includes(event.type)) continue;
      const payload: DeliveryPayload = { target: index, targetKey: targetKey(target), event: stored };
      await this.metadata.jobs.enqueue(WEBHOOK_JOB, payload, { maxAttempts: 8, priority: 5 });
      queued = true;
    }
    if (queued) this.notify();
    return stored;
  }

  /**
   * The receiver a queued delivery is for, if it still wants this kind of event. Found by its
   * address, not its place in the list: after a restart with webhooks removed or reordered, the
   * place named another receiver, which then got events meant for the first (a team's private
   * channel's events in another team's). One address may be listed more than once, each entry with
   * its own events and secret; the place then tells them apart while the list is unchanged, and
   * after a change the event goes to an entry of that address that wants it, signed with its
   * secret. Deliveries queued before the key was stored carry only the place.
   */
  private targetOf(addressed: Omit<DeliveryPayload, 'event'>, type: string): WebhookTarget | undefined {
    const wants = (t: WebhookTarget | undefined): t is WebhookTarget => t !== undefined && (!t.events || t.events.includes(type));
    const placed = this.targets[addressed.target];
    if (addressed.targetKey === undefined) return wants(placed) ? placed : undefined;
    if (wants(placed) && targetKey(placed) === addressed.targetKey) return placed;
    return this.targets.find((t) => wants(t) && targetKey(t) === addressed.targetKey);
  }

  /** Delivers one event to one target; a non-2xx answer or a network error is retried by the queue. */
  handler(timeoutMs = 10_000): JobHandler {
    return async (job) => {
      const { event, ...addressed } = job.payload as DeliveryPayload;
      // Nobody, when the configuration changed since the event was queued: its receiver is gone,
      // or no longer wants this kind of event.
      const target = this.targetOf(addressed, event.type);
      if (!target) return;
      const { body, headers } = webhookRequest(target, event);
      // A redirect is not followed: it would carry the signed body to an address nobody configured.
      const res = await fetch(target.url, { method: 'POST', body, headers, redirect: 'manual', signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      // The URL may carry a token (Slack's do): messages name the host only.
      const host = new URL(target.url).host;
      if (res.status >= 300 && res.status < 400) {
        throw new Error(`webhook ${host} answered ${res.status}, a redirect, which is not followed; configure the address it redirects to`);
      }
      if (!res.ok) throw new Error(`webhook ${host} answered ${res.status}`);
    };
  }
}
