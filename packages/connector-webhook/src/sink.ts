/**
 * WebhookSink: posts each record's value, as JSON, to one HTTP(S) endpoint, signed with
 * HMAC-SHA256 so the receiver knows it came from us and was not replayed long after.
 *
 * Delivery is at least once: a record is posted again after a 5xx, a 429 or a network error
 * (with backoff, honouring Retry-After), so a receiver deduplicates by `Omnibus-Event-Id` (the
 * record's id: for a delivery event, an id derived from message, connector and state). Records
 * of one key are posted one after the other, and once one of them must be retried the later
 * ones of that key in the batch wait too: per key (per message, for delivery events) a
 * receiver sees them in order. Different keys are posted concurrently.
 */
import { createHmac } from 'node:crypto';
import {
  ConfigError,
  ConfigSpec,
  defineSinkConnector,
  validators,
  type ParsedConfig,
  type SinkOutcome,
  type SinkRecord,
  type SinkTask,
  type SinkTaskContext,
} from '@omnibus/sdk';
import { VERSION } from './version.ts';

const F_URL = 'webhook.url';
const F_SECRET = 'webhook.signing.secret';
const F_TIMEOUT = 'webhook.timeout.ms';
const F_CONCURRENCY = 'webhook.max.in.flight';

export const SIGNATURE_HEADER = 'Omnibus-Signature';
export const EVENT_ID_HEADER = 'Omnibus-Event-Id';

export const webhookConfigSpec = ConfigSpec.builder()
  .string(F_URL, {
    documentation: 'Endpoint every record is POSTed to (http or https). Changing it drops the stored signing secret: give it again.',
    importance: 'HIGH',
    group: 'Webhook',
    validator: validators.url(),
  })
  .password(F_SECRET, {
    documentation:
      'Secret of the HMAC-SHA256 signature sent in Omnibus-Signature: t=<unix seconds>,v1=<hex HMAC of "<t>.<raw body>">. At least 16 characters.',
    importance: 'HIGH',
    group: 'Webhook',
  })
  .long(F_TIMEOUT, {
    documentation: 'How long one POST may take (ms) before it counts as a network error and is retried.',
    default: 10_000,
    group: 'Webhook',
    validator: validators.range(100, 300_000),
  })
  .int(F_CONCURRENCY, {
    documentation: 'Most POSTs in flight at once per task (records of one key are always posted one at a time, in order).',
    default: 16,
    group: 'Webhook',
    validator: validators.range(1, 1000),
  });

export type WebhookConfig = ParsedConfig<typeof webhookConfigSpec>;

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signatureHeader(secret: string, body: string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}

/** Retry-After as seconds or an HTTP date, in ms; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const seconds = Number(header);
  if (Number.isFinite(seconds) && seconds >= 0) return Math.round(seconds * 1000);
  const date = Date.parse(header);
  return Number.isNaN(date) ? undefined : Math.max(0, date - now);
}

/** A short secret is guessable: refused when the connector is validated, and again at start. */
function secretProblems(config: WebhookConfig): Record<string, string[]> {
  return config[F_SECRET].value().length < 16 ? { [F_SECRET]: ['must be at least 16 characters'] } : {};
}

class WebhookTask implements SinkTask<WebhookConfig> {
  private config!: WebhookConfig;
  private context!: SinkTaskContext;

  async start(config: WebhookConfig, context: SinkTaskContext): Promise<void> {
    const problems = secretProblems(config);
    if (Object.keys(problems).length > 0) throw new ConfigError(problems);
    this.config = config;
    this.context = context;
  }

  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    const outcomes = new Array<SinkOutcome>(records.length);
    // One queue per key, in batch order: a key's records go one at a time.
    const byKey = new Map<string, number[]>();
    records.forEach((record, i) => {
      const list = byKey.get(record.key);
      if (list) list.push(i);
      else byKey.set(record.key, [i]);
    });
    const queues = [...byKey.values()];
    const runKey = async (indexes: number[]) => {
      let held: SinkOutcome | undefined;
      for (const i of indexes) {
        if (held) {
          // An earlier record of this key must be retried first: this one waits behind it.
          outcomes[i] = held;
          continue;
        }
        const outcome = await this.post(records[i]!);
        outcomes[i] = outcome;
        if (outcome.status === 'retry') held = { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_HELD', message: 'an earlier record of its key is being retried' }, retryAfterMs: outcome.retryAfterMs };
      }
    };
    let next = 0;
    const lanes = Array.from({ length: Math.min(this.config[F_CONCURRENCY], queues.length) }, async () => {
      while (next < queues.length) await runKey(queues[next++]!);
    });
    await Promise.all(lanes);
    return outcomes;
  }

  private async post(record: SinkRecord): Promise<SinkOutcome> {
    const body = JSON.stringify(record.value ?? null);
    const unixSeconds = Math.floor(Date.now() / 1000);
    let response: Response;
    try {
      response = await fetch(this.config[F_URL], {
        method: 'POST',
        redirect: 'manual',
        signal: AbortSignal.timeout(this.config[F_TIMEOUT]),
        headers: {
          'content-type': 'application/json',
          [SIGNATURE_HEADER]: signatureHeader(this.config[F_SECRET].value(), body, unixSeconds),
          [EVENT_ID_HEADER]: record.id,
          'Omnibus-Topic': record.topic,
          'Omnibus-Key': encodeURIComponent(record.key),
          'Omnibus-Attempt': String(record.attempt),
        },
        body,
      });
      // The answer's body is not used; reading it frees the connection for the next POST.
      await response.arrayBuffer().catch(() => undefined);
    } catch (error) {
      const reason = error instanceof Error ? (error.cause instanceof Error ? error.cause.message : error.message) : String(error);
      return { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_UNREACHABLE', message: `the endpoint could not be reached: ${reason}` } };
    }
    const status = response.status;
    if (status >= 200 && status < 300) return { status: 'sent' };
    const answered = `the endpoint answered ${status}`;
    if (status === 429 || status >= 500 || status === 408) {
      const after = retryAfterMs(response.headers.get('retry-after'));
      return { status: 'retry', error: { code: status === 429 ? 'OMNI_ERR_WEBHOOK_THROTTLED' : 'OMNI_ERR_WEBHOOK_UNAVAILABLE', message: answered }, ...(after !== undefined ? { retryAfterMs: after } : {}) };
    }
    this.context.logger.warn({ status, record: record.id }, 'webhook endpoint refused a record');
    return { status: 'failed', error: { code: 'OMNI_ERR_WEBHOOK_REJECTED', message: `${answered}; not retried` } };
  }

  async stop(): Promise<void> {}
}

export const WebhookSink = defineSinkConnector({
  className: 'WebhookSink',
  version: VERSION,
  description: 'Posts records (delivery events or any topic) to an HTTP(S) endpoint, signed with HMAC-SHA256; at least once, in order per key.',
  config: webhookConfigSpec,
  validate: secretProblems,
  createTask: () => new WebhookTask(),
});
