/**
 * The bus's TaskRunnerFactory: what the herder calls to run the sink and source tasks
 * assigned to this worker.
 */
import type { DeliveryUpdate, Logger } from '@omnibus/sdk';
import type { Metrics } from '../metrics.ts';
import type { SinkTaskSpec, SourceTaskSpec, TaskRunner, TaskRunnerFactory } from '../runtime/types.ts';
import type { Store } from '../store/port.ts';
import { PollBudget, type ConsumerOptions } from './consumer.ts';
import type { Producer } from './producer.ts';
import type { ShardSignals } from './signals.ts';
import { SinkRunner } from './sink-runner.ts';
import { SourceRunner } from './source-runner.ts';

export interface TaskRunnerDeps {
  store: Store;
  producer: Producer;
  metrics: Metrics;
  logger: Logger;
  workerId: string;
  leaseTtlMs: number;
  heartbeatMs: number;
  /** Wake-ups of local produces; defaults to the producer's own. */
  signals?: ShardSignals;
  /** Read-path tuning (overlap, confidence, polling); defaults suit most clusters. */
  consumer?: Partial<ConsumerOptions>;
  /** Shared by every sink task of the worker, so that their idle polls share one budget (one is made if absent). */
  pollBudget?: PollBudget;
  /** Where receipts reported by tasks go (the herder's applyDeliveryUpdates); defaults to the bus's own. */
  reportDeliveries?: (connector: string, updates: DeliveryUpdate[]) => Promise<void>;
}

export function createTaskRunnerFactory(deps: TaskRunnerDeps): TaskRunnerFactory {
  const pollBudget = deps.pollBudget ?? new PollBudget();
  return {
    sink: (spec: SinkTaskSpec): TaskRunner => new SinkRunner(spec, { ...deps, pollBudget }),
    source: (spec: SourceTaskSpec): TaskRunner => new SourceRunner(spec, deps),
  };
}
