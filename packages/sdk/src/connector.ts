/**
 * The connector and task contracts, after Kafka Connect's: a connector splits its config
 * into task configs; the runtime runs the tasks on workers, feeds sink tasks with records
 * from the bus and publishes what source tasks poll. Each method says when it is called.
 */
import type { ConfigSpec } from './config.ts';
import type { InboundMessage, RecipientDeclaration, SuppressionRequest } from './consent.ts';
import type { ProviderStatus } from './providers.ts';
import { SDK_API_VERSION, SDK_API_VERSION_KEY } from './version.ts';

/** The subset of pino's logger that connectors use; lines carry connector and task ids. */
export interface Logger {
  debug(obj: object | string, msg?: string): void;
  info(obj: object | string, msg?: string): void;
  warn(obj: object | string, msg?: string): void;
  error(obj: object | string, msg?: string): void;
  child(bindings: Record<string, unknown>): Logger;
}

/** One message handed to a sink task. */
export interface SinkRecord<V = unknown> {
  /** The message id: stable across retries and redeliveries; use it for provider idempotency keys. */
  id: string;
  topic: string;
  key: string;
  shard: number;
  value: V;
  headers: Record<string, string>;
  /** Ingestion time, ms since the epoch. */
  timestamp: number;
  /** 1 on the first attempt. */
  attempt: number;
  group?: string;
}

/** What happened to one record; `put` returns one per record, in the same order. */
export type SinkOutcome =
  | {
      status: 'sent';
      /** The provider's id for the message (Message-ID, SMSC message_id, wamid…), used to match receipts. */
      providerId?: string;
      /** Anything worth keeping in the message's event trace (accepted/rejected recipients…). */
      details?: Record<string, unknown>;
      /** Recipients the provider refused for good (a hard bounce of one of several): the runtime suppresses them. */
      suppress?: SuppressionRequest[];
    }
  | { status: 'retry'; error: { code: string; message: string }; retryAfterMs?: number }
  | {
      status: 'failed';
      error: { code: string; message: string };
      details?: Record<string, unknown>;
      /** The provider says these addresses must not be sent to again (opted out, hard bounce, blocked). */
      suppress?: SuppressionRequest[];
    };

/** A later change of a sent message's state, from a webhook or a delivery receipt. */
export interface DeliveryUpdate {
  /** Our message id when the provider echoes it back; otherwise give `providerId`. */
  messageId?: string;
  providerId?: string;
  state: 'delivered' | 'read' | 'failed';
  /** When the provider says it happened (ms since the epoch); updates may arrive out of order. */
  at: number;
  error?: { code: string; message: string };
  details?: Record<string, unknown>;
  /** The receipt says these addresses must not be sent to again (a WhatsApp opt-out, a carrier's block). */
  suppress?: SuppressionRequest[];
}

export interface ConnectorContext {
  /** The connector's name as registered. */
  readonly name: string;
  readonly logger: Logger;
  /** Ask the runtime to call `taskConfigs` again (the set of tasks changed). */
  requestTaskReconfiguration(): void;
  /** Fail the connector with this error as its trace. */
  raiseError(error: Error): void;
}

export interface SinkTaskContext {
  readonly connectorName: string;
  readonly taskId: number;
  readonly logger: Logger;
  /** Report delivery receipts that arrive on the task's own connection (SMPP deliver_sm). */
  reportDeliveries(updates: DeliveryUpdate[]): Promise<void>;
  /**
   * Report the task's providers and their circuit breakers (see ProviderChain), for the
   * connector's status and metrics. Optional: runtimes before it do not offer it.
   */
  reportProviders?(statuses: ProviderStatus[]): void;
  /**
   * Report messages people sent on the task's own connection (SMPP deliver_sm that is not a
   * receipt). Resolves once they are handled (STOP/START applied, published to `inbound.topic`);
   * acknowledge them to the provider only then. Optional: runtimes before it do not offer it.
   */
  reportInbound?(messages: InboundMessage[]): Promise<void>;
}

export interface SinkTask<C = Record<string, unknown>> {
  /** Called once, before the first `put`, with the task's parsed config. Open connections here. */
  start(config: C, context: SinkTaskContext): Promise<void>;
  /**
   * Called with a batch of records from the task's shards, in order per key. Send them and
   * return one outcome per record. Throw {@link FatalConnectorError} if nothing could be sent
   * because the connector itself is broken; any other exception fails the task and leaves the
   * batch's outcome in doubt.
   */
  put(records: SinkRecord[]): Promise<SinkOutcome[]>;
  /** Called when the task is stopped, paused or moved; close connections, finish in-flight sends. */
  stop(): Promise<void>;
}

/** A provider calling us back at `/hooks/{connector}/…`. */
export interface WebhookRequest {
  method: string;
  /** The path under `/hooks/{connector}`, e.g. `/` or `/status`. */
  path: string;
  /** The full URL as the provider called it (signature schemes such as Twilio's sign it). */
  url: string;
  query: Record<string, string>;
  headers: Record<string, string>;
  /** The body exactly as received: signatures are computed over these bytes. */
  rawBody: Buffer;
}

export interface WebhookResponse {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
  /** Delivery state changes the runtime applies once the request is verified. */
  updates?: DeliveryUpdate[];
  /** Messages people sent (Twilio inbound SMS, WhatsApp messages), handled as {@link SinkTaskContext.reportInbound}'s. */
  inbound?: InboundMessage[];
}

interface ConnectorDefinition<C> {
  /** The value of `connector.class` that selects this connector (Kafka's class name, e.g. "EmailSink"). */
  readonly className: string;
  /** Other accepted names, e.g. the package-qualified "@omnibus/connector-email/EmailSink". */
  readonly aliases?: readonly string[];
  readonly version: string;
  readonly description: string;
  readonly config: ConfigSpec<C>;
  /**
   * Splits the connector's config into at most `maxTasks` task configs. The runtime starts
   * one task per entry. Default: `maxTasks` copies of the connector's config.
   */
  taskConfigs?(config: C, maxTasks: number): Array<Record<string, unknown>>;
  /** Cross-key checks beyond the spec; returns problems by key (merged into validate's response). */
  validate?(config: C): Record<string, string[]>;
  /** The SDK API version the connector was built for; `defineSinkConnector`/`defineSourceConnector` set it. */
  readonly [SDK_API_VERSION_KEY]?: string;
}

export interface SinkConnector<C = Record<string, unknown>> extends ConnectorDefinition<C> {
  readonly type: 'sink';
  /** JSON Schema of the message values this sink accepts; the runtime rejects others at ingest. */
  readonly valueSchema?: Record<string, unknown>;
  createTask(): SinkTask<C>;
  /**
   * Whom each record goes to, on which channel: the runtime checks the suppression list before
   * handing a record to the task, and a record to a suppressed address ends `suppressed`
   * without reaching it. Without it, nothing is checked.
   */
  readonly recipients?: RecipientDeclaration;
  /** Handles provider callbacks on `/hooks/{connector}/…`; verify signatures here. */
  webhook?(request: WebhookRequest, config: C, context: ConnectorContext): Promise<WebhookResponse>;
}

/** A record a source task publishes to the bus. */
export interface SourceRecord {
  /** Where it came from, e.g. `{keyspace, table, vnode}`; offsets are kept per partition. */
  sourcePartition: Record<string, unknown>;
  /** How far this partition has been read once this record is published. */
  sourceOffset: Record<string, unknown>;
  topic: string;
  key: string;
  value: unknown;
  headers?: Record<string, string>;
  /**
   * A deterministic id makes publishing idempotent, so a crash between publish and offset
   * commit does not duplicate the record downstream.
   */
  id?: string;
  timestamp?: number;
}

export interface SourceTaskContext {
  readonly connectorName: string;
  readonly taskId: number;
  readonly logger: Logger;
  /** The committed offsets of the given source partitions (null where none is stored). */
  offsets(partitions: Array<Record<string, unknown>>): Promise<Array<Record<string, unknown> | null>>;
}

export interface SourceTask<C = Record<string, unknown>> {
  /** Called once, before the first `poll`. Read committed offsets through the context here. */
  start(config: C, context: SourceTaskContext): Promise<void>;
  /**
   * Returns the next records; may wait a little, and returns an empty array when there is
   * nothing new. The runtime publishes the records, then commits their offsets.
   */
  poll(signal: AbortSignal): Promise<SourceRecord[]>;
  /** Called after the offsets of everything polled so far are committed. */
  commit?(): Promise<void>;
  stop(): Promise<void>;
}

export interface SourceConnector<C = Record<string, unknown>> extends ConnectorDefinition<C> {
  readonly type: 'source';
  createTask(): SourceTask<C>;
}

export type Connector<C = Record<string, unknown>> = SinkConnector<C> | SourceConnector<C>;

/**
 * Helpers that keep `C` inferred from the config spec, and stamp the connector with the SDK
 * API version it is built for (the runtime checks it at load).
 */
export function defineSinkConnector<C>(connector: Omit<SinkConnector<C>, 'type'>): SinkConnector<C> {
  return { ...connector, type: 'sink', [SDK_API_VERSION_KEY]: SDK_API_VERSION };
}

export function defineSourceConnector<C>(connector: Omit<SourceConnector<C>, 'type'>): SourceConnector<C> {
  return { ...connector, type: 'source', [SDK_API_VERSION_KEY]: SDK_API_VERSION };
}

/** Common connector keys every sink has; the runtime parses them, connectors may read them. */
export type ParsedConfig<S> = S extends ConfigSpec<infer C> ? C : never;
