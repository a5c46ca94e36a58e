/**
 * The seams between the runtime's parts: the REST control plane talks to a Herder, the herder
 * resolves connectors through the PluginRegistry and runs their tasks through TaskRunners
 * that the bus provides. Kafka Connect has the same split (Herder, Plugins, Worker tasks).
 */
import type { ConfigInfos, Connector, DeliveryUpdate, InboundMessage, SinkConnector } from '@omnibus/sdk';
import type { ConnectorRecord, ConnectorState, SourceOffset, StatusRecord, TargetState } from '../store/port.ts';
import type { TransformCatalog } from '../transforms/catalog.ts';

export interface PluginInfo {
  class: string;
  type: 'sink' | 'source';
  version: string;
}

export interface PluginRegistry {
  /** Every connector found: built-ins, workspace packages and `plugin.path` packages. */
  list(): PluginInfo[];
  /** By `connector.class`: the class name, an alias, or the package-qualified name. Undefined if unknown. */
  find(className: string): Connector | undefined;
  /** The transformations and predicates connector configs may name; the built-ins alone when absent. */
  transformCatalog?(): TransformCatalog;
}

export type ConnectorType = 'sink' | 'source' | 'unknown';

export interface ConnectorInfo {
  name: string;
  /** The config as stored: placeholders unresolved, secrets masked by the REST layer. */
  config: Record<string, string>;
  tasks: Array<{ connector: string; task: number }>;
  type: ConnectorType;
}

export interface ConnectorStateInfo {
  name: string;
  connector: { state: ConnectorState; worker_id: string; trace?: string };
  tasks: Array<{ id: number; state: ConnectorState; worker_id: string; trace?: string }>;
  type: ConnectorType;
}

export interface RestartOptions {
  includeTasks: boolean;
  onlyFailed: boolean;
}

/**
 * What the control plane asks of the cluster. Every method validates before it writes:
 * a rejected request changes nothing. Errors are registry errors (errors.ts) with Kafka's status codes
 * (404 unknown connector, 409 exists/conflict, 400 invalid config).
 */
export interface Herder {
  connectorNames(): Promise<string[]>;
  connectorInfo(name: string): Promise<ConnectorInfo>;
  connectorStatus(name: string): Promise<ConnectorStateInfo>;
  taskConfigs(name: string): Promise<Array<{ id: { connector: string; task: number }; config: Record<string, string> }>>;

  /** 409 if it exists. `initialState` as Kafka's KIP-980. */
  createConnector(name: string, config: Record<string, string>, initialState?: TargetState): Promise<ConnectorInfo>;
  /** Upsert; `created` tells 201 from 200. */
  putConnectorConfig(name: string, config: Record<string, string>): Promise<{ created: boolean; info: ConnectorInfo }>;
  /** Merge; a null value removes the key. 404 if absent. */
  patchConnectorConfig(name: string, patch: Record<string, string | null>): Promise<ConnectorInfo>;
  deleteConnector(name: string): Promise<void>;

  setTargetState(name: string, state: TargetState): Promise<void>;
  /** Returns the status after the restart was requested (Kafka answers 202 with it when tasks are included). */
  restartConnector(name: string, options: RestartOptions): Promise<ConnectorStateInfo | undefined>;
  restartTask(name: string, task: number): Promise<void>;

  validateConfig(pluginClass: string, config: Record<string, unknown>): Promise<ConfigInfos>;

  /** Source partitions/offsets (sources) or per-shard watermarks (sinks). */
  offsets(name: string): Promise<SourceOffset[]>;
  /** Only when STOPPED (400 otherwise), as Kafka. */
  alterOffsets(name: string, offsets: SourceOffset[]): Promise<void>;
  resetOffsets(name: string): Promise<void>;
  /** Kafka's active topics: those the connector has read records from (sink) or produced to (source), sorted. */
  activeTopics(name: string): Promise<string[]>;
  /** Forgets the connector's active topics (they come back as it uses them again). */
  resetActiveTopics(name: string): Promise<void>;

  /** The sink behind `/hooks/{name}` with its resolved, parsed config; undefined if none has a webhook. */
  webhookTarget(name: string): Promise<{ connector: SinkConnector; config: unknown; topics: readonly string[] } | undefined>;
  /** Applies receipts (webhooks, SMPP deliver_sm) to delivery states; never moves a state backwards. `topics`: the connector's. */
  /** `eventsTopic`: the connector's `delivery.events.topic`, where the changes are published (none when absent). */
  applyDeliveryUpdates(connector: string, updates: DeliveryUpdate[], topics?: readonly string[], eventsTopic?: string): Promise<void>;
  /** Handles messages people sent (a webhook's `inbound`): STOP/START, then the connector's `inbound.topic`. `config`: the connector's. */
  acceptInbound(connector: string, config: Record<string, unknown>, messages: InboundMessage[]): Promise<void>;
}

export type { SinkTaskSpec, SourceTaskSpec, TaskRunner, TaskRunnerFactory } from '../bus/task-runner.ts';
export type { ConnectorRecord, StatusRecord, TargetState };
