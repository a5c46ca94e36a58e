/**
 * HelloSink: greets the person named in each message. It shows, in one small file, what a
 * third-party connector needs: a config spec (with a secret), a task that returns one outcome
 * per record, and a webhook that verifies its caller before reporting delivery receipts.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { appendFile } from 'node:fs/promises';
import {
  checkWritablePath,
  ConfigError,
  ConfigSpec,
  defineSinkConnector,
  validators,
  writableDirs,
  type DeliveryUpdate,
  type ParsedConfig,
  type SinkOutcome,
  type SinkRecord,
  type SinkTask,
  type SinkTaskContext,
  type WebhookRequest,
  type WebhookResponse,
} from '@omnibus/sdk';

const F_GREETING = 'hello.greeting';
const F_FILE = 'hello.file';
const F_WEBHOOK_SECRET = 'hello.webhook.secret';

/** The header carrying `sha256=<hex HMAC-SHA256 of the raw body>` on webhook calls. */
export const SIGNATURE_HEADER = 'x-hello-signature';

export const helloConfig = ConfigSpec.builder()
  .string(F_GREETING, {
    documentation: 'The word each greeting starts with.',
    default: 'Hello',
    importance: 'HIGH',
    group: 'Hello',
    validator: validators.nonEmptyString(),
  })
  .string(F_FILE, {
    documentation:
      'File the greetings are appended to, one per line, inside a directory the worker allows connectors to write under ' +
      '(OMNIBUS_FILE_SINK_ALLOWED_DIRS). Without it they are kept in memory, per connector, for `greetingsOf(name)`.',
    optional: true,
    group: 'Hello',
  })
  .password(F_WEBHOOK_SECRET, {
    documentation:
      'Shared secret of the receipt webhook: a caller signs the raw body with HMAC-SHA256 and sends `sha256=<hex>` in X-Hello-Signature. Without a secret the webhook refuses every call.',
    optional: true,
    importance: 'HIGH',
    group: 'Webhook',
  });

export type HelloConfig = ParsedConfig<typeof helloConfig>;

/** Greetings of connectors that have no `hello.file`, by connector name. */
const inMemory = new Map<string, string[]>();

export function greetingsOf(connectorName: string): readonly string[] {
  return inMemory.get(connectorName) ?? [];
}

/** Problems of `hello.file`: a REST caller chose it, so it must lie where the worker allows writing. */
function fileProblems(config: HelloConfig): Record<string, string[]> {
  const file = config[F_FILE];
  if (file === undefined) return {};
  try {
    checkWritablePath(file, writableDirs());
    return {};
  } catch (error) {
    return { [F_FILE]: [(error as Error).message] };
  }
}

class HelloTask implements SinkTask<HelloConfig> {
  private config!: HelloConfig;
  private context!: SinkTaskContext;

  async start(config: HelloConfig, context: SinkTaskContext): Promise<void> {
    // Checked again here: the worker running the task may allow less than the one that validated.
    const problems = fileProblems(config);
    if (Object.keys(problems).length > 0) throw new ConfigError(problems);
    this.config = config;
    this.context = context;
    context.logger.info({ file: config[F_FILE] ?? null }, 'hello task started');
  }

  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    const lines: string[] = [];
    const outcomes = records.map((record): SinkOutcome => {
      const name = nameOf(record.value);
      if (name === undefined) {
        return { status: 'failed', error: { code: 'OMNI_ERR_HELLO_NO_NAME', message: 'the message value has no "name" to greet' } };
      }
      lines.push(`${this.config[F_GREETING]}, ${name}!`);
      return { status: 'sent', providerId: `hello-${record.id}` };
    });
    if (lines.length === 0) return outcomes;

    const file = this.config[F_FILE];
    if (file === undefined) {
      const kept = inMemory.get(this.context.connectorName) ?? [];
      kept.push(...lines);
      inMemory.set(this.context.connectorName, kept);
      return outcomes;
    }
    try {
      // One append per batch: either every line of the batch is written or none is.
      await appendFile(file, lines.map((line) => `${line}\n`).join(''), 'utf8');
      return outcomes;
    } catch (error) {
      const message = `cannot write to ${file}: ${(error as Error).message}`;
      return outcomes.map((outcome) =>
        outcome.status === 'sent' ? { status: 'retry', error: { code: 'OMNI_ERR_HELLO_WRITE', message }, retryAfterMs: 1000 } : outcome,
      );
    }
  }

  async stop(): Promise<void> {
    this.context.logger.info('hello task stopped');
  }
}

function nameOf(value: unknown): string | undefined {
  if (value === null || typeof value !== 'object') return undefined;
  const name = (value as { name?: unknown }).name;
  return typeof name === 'string' && name.trim() !== '' ? name.trim() : undefined;
}

function signatureMatches(secret: string, request: WebhookRequest): boolean {
  const given = request.headers[SIGNATURE_HEADER] ?? '';
  const expected = `sha256=${createHmac('sha256', secret).update(request.rawBody).digest('hex')}`;
  const a = Buffer.from(given);
  const b = Buffer.from(expected);
  return a.length === b.length && timingSafeEqual(a, b);
}

/** Parses `{messageId, state}` or an array of them; undefined when the body is not that. */
function receiptsOf(rawBody: Buffer): DeliveryUpdate[] | undefined {
  let body: unknown;
  try {
    body = JSON.parse(rawBody.toString('utf8'));
  } catch {
    return undefined;
  }
  const items = Array.isArray(body) ? body : [body];
  const updates: DeliveryUpdate[] = [];
  for (const item of items) {
    const { messageId, state } = (item ?? {}) as { messageId?: unknown; state?: unknown };
    if (typeof messageId !== 'string' || (state !== 'delivered' && state !== 'read')) return undefined;
    updates.push({ messageId, state, at: Date.now() });
  }
  return updates;
}

export const HelloSink = defineSinkConnector({
  className: 'HelloSink',
  aliases: ['Hello'],
  version: '0.1.0',
  description: 'Greets the person named in each message, in a file or in memory. An example of a third-party connector.',
  config: helloConfig,
  validate: fileProblems,
  valueSchema: {
    type: 'object',
    properties: { name: { type: 'string', minLength: 1 } },
    required: ['name'],
  },
  createTask: () => new HelloTask(),

  async webhook(request, config): Promise<WebhookResponse> {
    if (request.method !== 'POST') return { status: 405, body: { error: 'use POST' }, headers: { allow: 'POST' } };
    const secret = config[F_WEBHOOK_SECRET];
    if (secret === undefined || !signatureMatches(secret.value(), request)) {
      return { status: 401, body: { error: 'bad or missing signature' } };
    }
    const updates = receiptsOf(request.rawBody);
    if (updates === undefined) {
      return { status: 400, body: { error: 'expected {"messageId": string, "state": "delivered" | "read"} or an array of them' } };
    }
    return { status: 200, body: { accepted: updates.length }, updates };
  },
});
