import { createHmac } from 'node:crypto';
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
      await this.metadata.jobs.enqueue(WEBHOOK_JOB, { target: index, event: stored }, { maxAttempts: 8, priority: 5 });
      queued = true;
    }
    if (queued) this.notify();
    return stored;
  }

  /** Delivers one event to one target; a non-2xx answer or a network error is retried by the queue. */
  handler(timeoutMs = 10_000): JobHandler {
    return async (job) => {
      const { target: index, event } = job.payload as { target: number; event: StoredEvent };
      const target = this.targets[index];
      if (!target) return; // the configuration changed since: nobody to deliver to
      const { body, headers } = webhookRequest(target, event);
      const res = await fetch(target.url, { method: 'POST', body, headers, signal: AbortSignal.timeout(timeoutMs) });
      await res.body?.cancel();
      // The URL may carry a token (Slack's do): messages name the host only.
      if (!res.ok) throw new Error(`webhook ${new URL(target.url).host} answered ${res.status}`);
    };
  }
}
