/**
 * What the bus runs: a task of a connector, given its spec, as a TaskRunner. The runtime's
 * herder and reconciler decide which tasks run on this worker and start them through a
 * TaskRunnerFactory (bus/runners.ts).
 */
import type { SinkConnector, SourceConnector } from '@omnibus/sdk';
import type { TransformCatalog } from '../transforms/catalog.ts';

/** One running task of a connector on this worker. */
export interface TaskRunner {
  start(): Promise<void>;
  /** Stops fetching/polling and finishes in-flight work; resolves when the task is idle. */
  pause(): Promise<void>;
  resume(): Promise<void>;
  stop(): Promise<void>;
  /** Settles when the task fails on its own (e.g. a FatalConnectorError), with the trace. */
  readonly failure: Promise<Error>;
  /** A topic may have changed (its shard count raised): a sink task reads its topics again. */
  topicsChanged?(): void;
}

export interface SinkTaskSpec {
  connectorName: string;
  taskId: number;
  connector: SinkConnector;
  /** The task's config with placeholders resolved (secrets in clear: never log it). */
  config: Record<string, string>;
  /** How many tasks the connector runs now; task i owns the shards s with s % taskCount === i. */
  taskCount: number;
  /** Where the config's `transforms`/`predicates` are looked up; the built-ins alone when absent. */
  transforms?: TransformCatalog;
}

export interface SourceTaskSpec {
  connectorName: string;
  taskId: number;
  connector: SourceConnector;
  config: Record<string, string>;
  taskCount: number;
  /** Where the config's `transforms`/`predicates` are looked up; the built-ins alone when absent. */
  transforms?: TransformCatalog;
}

/** The bus's side of running tasks; the herder calls it for the tasks assigned to this worker. */
export interface TaskRunnerFactory {
  sink(spec: SinkTaskSpec): TaskRunner;
  source(spec: SourceTaskSpec): TaskRunner;
}
