/**
 * Runs a connector against a small in-memory runtime, so that a connector's own tests need
 * nothing but the SDK:
 *
 *   const sink = await startSink(EmailSink, { topics: 'mail', 'smtp.host': '127.0.0.1', … });
 *   const [outcome] = await sink.send([{ key: 'a@x.org', value: { to: 'a@x.org', subject: 'hi' } }]);
 *   await sink.stop();
 *
 * It applies the config spec as the runtime does, retries retriable outcomes (with short,
 * capped waits), and records delivery receipts and log lines for assertions.
 */
import { randomUUID } from 'node:crypto';
import type { RawConfig } from './config.ts';
import { ConfigError } from './errors.ts';
import type {
  ConnectorContext,
  DeliveryUpdate,
  Logger,
  SinkConnector,
  SinkOutcome,
  SinkRecord,
  SourceConnector,
  SourceRecord,
  WebhookRequest,
  WebhookResponse,
} from './connector.ts';
import type { ProviderStatus } from './providers.ts';

export interface LogLine {
  level: 'debug' | 'info' | 'warn' | 'error';
  bindings: Record<string, unknown>;
  obj: object | string;
  msg?: string;
}

/** A logger that keeps every line, so tests can assert what was (and was not) logged. */
export function memoryLogger(lines: LogLine[] = [], bindings: Record<string, unknown> = {}): Logger & { lines: LogLine[] } {
  const at =
    (level: LogLine['level']) =>
    (obj: object | string, msg?: string): void => {
      lines.push({ level, bindings, obj, msg });
    };
  return {
    lines,
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
    child: (more) => memoryLogger(lines, { ...bindings, ...more }),
  };
}

export interface TestMessage<V = unknown> {
  key: string;
  value: V;
  headers?: Record<string, string>;
  id?: string;
  topic?: string;
}

export interface SentOutcome {
  record: SinkRecord;
  outcome: SinkOutcome;
  attempts: number;
}

export interface SinkHarness {
  /** Hands the messages to the task as one batch; retriable outcomes are retried up to `maxAttempts`. */
  send<V>(messages: TestMessage<V>[], options?: { maxAttempts?: number; maxWaitMs?: number }): Promise<SentOutcome[]>;
  /** Calls the connector's webhook as the runtime's `/hooks/{connector}` route would. */
  webhook(request: Partial<Omit<WebhookRequest, 'rawBody'>> & { rawBody: Buffer | string }): Promise<WebhookResponse>;
  /** Receipts the task reported through its context, and those returned by webhooks. */
  readonly deliveries: DeliveryUpdate[];
  /** The providers and breaker states the task last reported (empty if it reports none). */
  readonly providers: ProviderStatus[];
  readonly logs: LogLine[];
  readonly errors: Error[];
  stop(): Promise<void>;
}

function contextFor(name: string, logger: Logger, errors: Error[]): ConnectorContext {
  return {
    name,
    logger,
    requestTaskReconfiguration: () => undefined,
    raiseError: (error) => void errors.push(error),
  };
}

export async function startSink<C>(
  connector: SinkConnector<C>,
  rawConfig: RawConfig,
  options: { name?: string; taskId?: number } = {},
): Promise<SinkHarness> {
  const name = options.name ?? 'test-connector';
  const taskId = options.taskId ?? 0;
  const logger = memoryLogger([], { connector: name, task: taskId });
  const errors: Error[] = [];
  const deliveries: DeliveryUpdate[] = [];
  let providers: ProviderStatus[] = [];
  const config = connector.config.parse(rawConfig);
  const problems = connector.validate?.(config) ?? {};
  if (Object.keys(problems).length > 0) throw new ConfigError(problems);
  const taskConfig = connector.taskConfigs ? connector.taskConfigs(config, 1)[0] ?? rawConfig : rawConfig;
  const task = connector.createTask();
  await task.start(connector.config.parse(taskConfig), {
    connectorName: name,
    taskId,
    logger,
    reportDeliveries: async (updates) => void deliveries.push(...updates),
    reportProviders: (statuses) => void (providers = statuses),
  });
  const context = contextFor(name, logger, errors);

  return {
    deliveries,
    get providers() {
      return providers;
    },
    logs: logger.lines,
    errors,
    async send(messages, sendOptions = {}) {
      const maxAttempts = sendOptions.maxAttempts ?? 3;
      const maxWaitMs = sendOptions.maxWaitMs ?? 200;
      const results: SentOutcome[] = messages.map((m, i) => ({
        record: {
          id: m.id ?? randomUUID(),
          topic: m.topic ?? 'test',
          key: m.key,
          shard: 0,
          value: m.value,
          headers: m.headers ?? {},
          timestamp: Date.now(),
          attempt: 1,
        },
        outcome: { status: 'retry', error: { code: 'OMNI_ERR_TESTKIT_NOT_SENT', message: `message ${i} not sent yet` } },
        attempts: 0,
      }));
      let pending = results;
      while (pending.length > 0) {
        const outcomes = await task.put(pending.map((r) => ({ ...r.record, attempt: r.attempts + 1 })));
        if (outcomes.length !== pending.length) {
          throw new Error(`put returned ${outcomes.length} outcomes for ${pending.length} records`);
        }
        pending.forEach((r, i) => {
          r.outcome = outcomes[i] as SinkOutcome;
          r.attempts += 1;
        });
        pending = pending.filter((r) => r.outcome.status === 'retry' && r.attempts < maxAttempts);
        const wait = Math.min(maxWaitMs, Math.max(0, ...pending.map((r) => (r.outcome.status === 'retry' ? (r.outcome.retryAfterMs ?? 10) : 0))));
        if (pending.length > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      }
      return results;
    },
    async webhook(request) {
      if (!connector.webhook) throw new Error(`${connector.className} has no webhook`);
      const rawBody = typeof request.rawBody === 'string' ? Buffer.from(request.rawBody) : request.rawBody;
      const path = request.path ?? '/';
      const response = await connector.webhook(
        {
          method: request.method ?? 'POST',
          path,
          url: request.url ?? `http://127.0.0.1/hooks/${name}${path === '/' ? '' : path}`,
          query: request.query ?? {},
          headers: request.headers ?? {},
          rawBody,
        },
        config,
        context,
      );
      if (response.updates) deliveries.push(...response.updates);
      return response;
    },
    async stop() {
      await task.stop();
    },
  };
}

export interface SourceHarness {
  /** Polls until `count` records arrived or `timeoutMs` passed; offsets are committed as the runtime would. */
  pollUntil(count: number, timeoutMs?: number): Promise<SourceRecord[]>;
  /** Committed offsets, keyed by the JSON of the source partition. */
  readonly offsets: Map<string, Record<string, unknown>>;
  /** Stops the task and starts a new one on the committed offsets, as after a worker restart. */
  restart(): Promise<void>;
  stop(): Promise<void>;
}

export async function startSource<C>(
  connector: SourceConnector<C>,
  rawConfig: RawConfig,
  options: { name?: string; taskIndex?: number; maxTasks?: number; offsets?: Map<string, Record<string, unknown>> } = {},
): Promise<SourceHarness> {
  const name = options.name ?? 'test-source';
  const taskId = options.taskIndex ?? 0;
  const logger = memoryLogger([], { connector: name, task: taskId });
  const offsets = options.offsets ?? new Map<string, Record<string, unknown>>();
  const config = connector.config.parse(rawConfig);
  const taskConfigs = connector.taskConfigs ? connector.taskConfigs(config, options.maxTasks ?? 1) : [rawConfig];
  const taskConfig = connector.config.parse(taskConfigs[taskId] ?? rawConfig);

  const startTask = async () => {
    const task = connector.createTask();
    await task.start(taskConfig, {
      connectorName: name,
      taskId,
      logger,
      offsets: async (partitions) => partitions.map((p) => offsets.get(stableJson(p)) ?? null),
    });
    return task;
  };
  let task = await startTask();
  const abort = new AbortController();

  return {
    offsets,
    async pollUntil(count, timeoutMs = 10_000) {
      const records: SourceRecord[] = [];
      const deadline = Date.now() + timeoutMs;
      while (records.length < count && Date.now() < deadline) {
        const batch = await task.poll(abort.signal);
        for (const record of batch) offsets.set(stableJson(record.sourcePartition), record.sourceOffset);
        records.push(...batch);
        if (batch.length > 0) await task.commit?.();
      }
      return records;
    },
    async restart() {
      await task.stop();
      task = await startTask();
    },
    async stop() {
      abort.abort();
      await task.stop();
    },
  };
}

/**
 * JSON with sorted object keys: the identity of a source partition or offset map. The same
 * rule as the runtime's (JSON.stringify's, with every object's keys sorted), so that a test
 * keys offsets as the worker does; @omnibus/core checks both against the same vectors.
 */
export function stableJson(value: unknown): string {
  return JSON.stringify(value, (_key, inner: unknown) =>
    inner && typeof inner === 'object' && !Array.isArray(inner)
      ? Object.fromEntries(Object.entries(inner as Record<string, unknown>).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)))
      : inner,
  );
}
