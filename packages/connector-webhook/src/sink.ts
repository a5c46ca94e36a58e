/**
 * WebhookSink: posts each record's value, as JSON, to one HTTP(S) endpoint, signed with
 * HMAC-SHA256 so the receiver knows it came from us and was not replayed long after; or, with
 * `webhook.batch.max.records` above 1, several records in one POST (a JSON array).
 *
 * Delivery is at least once: a record is posted again after a 5xx, a 429 or a network error
 * (with backoff, honouring Retry-After), so a receiver deduplicates by the record's id (for a
 * delivery event, an id derived from message, connector and state). Records of one key are
 * posted in order, and once one of them must be retried the later ones of that key wait too:
 * per key (per message, for delivery events) a receiver sees them in order (key-lanes.ts).
 * Different keys are posted concurrently, over kept-alive connections (endpoint.ts).
 */
import { createHmac, createSecretKey, type KeyObject } from 'node:crypto';
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
import { WebhookEndpoint } from './endpoint.ts';
import { postInKeyOrder } from './key-lanes.ts';
import { VERSION } from './version.ts';

export { retryAfterMs } from './endpoint.ts';

const F_URL = 'webhook.url';
const F_SECRET = 'webhook.signing.secret';
const F_TIMEOUT = 'webhook.timeout.ms';
const F_CONCURRENCY = 'webhook.max.in.flight';
const F_BATCH = 'webhook.batch.max.records';
const F_CA = 'webhook.tls.ca';

export const SIGNATURE_HEADER = 'Omnibus-Signature';
export const EVENT_ID_HEADER = 'Omnibus-Event-Id';
export const BATCH_HEADER = 'Omnibus-Batch';

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
    documentation: 'How long connecting, waiting for the answer, and reading it may each take (ms) before the POST counts as a network error and is retried.',
    default: 10_000,
    group: 'Webhook',
    validator: validators.range(100, 300_000),
  })
  .int(F_CONCURRENCY, {
    documentation: 'Most POSTs in flight at once per task, each on a kept-alive connection (records of one key are always posted in order, one POST at a time).',
    default: 16,
    group: 'Webhook',
    validator: validators.range(1, 1000),
  })
  .int(F_BATCH, {
    documentation:
      '1 (default): one record per POST, its value as the body. Above 1: up to this many records per POST, the body a JSON array of ' +
      '{"id","topic","key","attempt","value"} in order per key, with the header Omnibus-Batch: <count>; the whole POST succeeds or is retried together.',
    default: 1,
    group: 'Webhook',
    validator: validators.range(1, 1000),
  })
  .string(F_CA, {
    documentation:
      "PEM certificate(s) of the authorities that sign the endpoint's certificate, trusted instead of the system's (a private CA, a self-signed endpoint). " +
      'Give the PEM text with its line breaks (a JSON string keeps them), or through a config provider such as `${file:/etc/omnibus/tls.json:webhook.ca}`.',
    optional: true,
    group: 'Webhook',
    validator: validators.pattern(/-----BEGIN CERTIFICATE-----/, 'PEM text with at least one "-----BEGIN CERTIFICATE-----" block'),
  });

export type WebhookConfig = ParsedConfig<typeof webhookConfigSpec>;

/** `t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<body>">`. */
export function signatureHeader(secret: string | KeyObject, body: string, unixSeconds: number): string {
  const v1 = createHmac('sha256', secret).update(`${unixSeconds}.${body}`).digest('hex');
  return `t=${unixSeconds},v1=${v1}`;
}

/** A short secret is guessable: refused when the connector is validated, and again at start. */
function secretProblems(config: WebhookConfig): Record<string, string[]> {
  return config[F_SECRET].value().length < 16 ? { [F_SECRET]: ['must be at least 16 characters'] } : {};
}

class WebhookTask implements SinkTask<WebhookConfig> {
  private context!: SinkTaskContext;
  private endpoint!: WebhookEndpoint;
  /** The secret as a key object: HMAC's key set-up is done once, not per POST. */
  private key!: KeyObject;
  private limits!: { inFlight: number; perPost: number };

  async start(config: WebhookConfig, context: SinkTaskContext): Promise<void> {
    const problems = secretProblems(config);
    if (Object.keys(problems).length > 0) throw new ConfigError(problems);
    this.context = context;
    this.key = createSecretKey(Buffer.from(config[F_SECRET].value(), 'utf8'));
    this.limits = { inFlight: config[F_CONCURRENCY], perPost: config[F_BATCH] };
    const ca = config[F_CA];
    this.endpoint = new WebhookEndpoint({ url: config[F_URL], connections: config[F_CONCURRENCY], timeoutMs: config[F_TIMEOUT], ...(ca ? { ca } : {}) });
  }

  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    return postInKeyOrder(records, this.limits, (indexes) => (this.limits.perPost === 1 ? this.postOne(records[indexes[0]!]!) : this.postMany(indexes.map((i) => records[i]!))));
  }

  private postOne(record: SinkRecord): Promise<SinkOutcome> {
    return this.post(JSON.stringify(record.value ?? null), [record], {
      [EVENT_ID_HEADER]: record.id,
      'Omnibus-Topic': record.topic,
      'Omnibus-Key': encodeURIComponent(record.key),
      'Omnibus-Attempt': String(record.attempt),
    });
  }

  private postMany(records: SinkRecord[]): Promise<SinkOutcome> {
    const items = records.map((r) => JSON.stringify({ id: r.id, topic: r.topic, key: r.key, attempt: r.attempt, value: r.value ?? null }));
    return this.post(`[${items.join(',')}]`, records, { [BATCH_HEADER]: String(records.length) });
  }

  private async post(body: string, records: SinkRecord[], headers: Record<string, string>): Promise<SinkOutcome> {
    const signature = signatureHeader(this.key, body, Math.floor(Date.now() / 1000));
    const outcome = await this.endpoint.post(body, { 'content-type': 'application/json', [SIGNATURE_HEADER]: signature, ...headers });
    if (outcome.status === 'failed') this.context.logger.warn({ error: outcome.error, records: records.map((r) => r.id) }, 'webhook endpoint refused a POST');
    return outcome;
  }

  async stop(): Promise<void> {
    await this.endpoint?.close();
  }
}
export const WebhookSink = defineSinkConnector({
  className: 'WebhookSink',
  version: VERSION,
  description: 'Posts records (delivery events or any topic) to an HTTP(S) endpoint, signed with HMAC-SHA256; at least once, in order per key.',
  config: webhookConfigSpec,
  validate: secretProblems,
  createTask: () => new WebhookTask(),
});
