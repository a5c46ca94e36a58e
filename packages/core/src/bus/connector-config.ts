/**
 * The keys every connector has, whatever its class (Kafka's ConnectorConfig and
 * SinkConnectorConfig), merged in front of the connector's own spec for validation, docs
 * and parsing. Runtime behaviour (retries, dead letters, the delivery guarantee) is
 * configured here, so that every connector gets it the same way.
 */
import { ConfigSpec, validators, type ConfigSpec as Spec, type Validator } from '@omnibus/sdk';

/** A worker group's name, as workers declare it and connectors name it. */
const WORKER_GROUP_NAME = /^[A-Za-z0-9._-]{1,64}$/;

/** Worker group names: letters, digits, '.', '_' and '-', at most 64 each. */
export const workerGroupNames: Validator<string[]> = {
  describe: 'worker group names ([A-Za-z0-9._-], at most 64 characters each)',
  check: (names) => {
    const bad = names.find((name) => !WORKER_GROUP_NAME.test(name));
    return bad === undefined ? undefined : `Value must be a list of worker group names ([A-Za-z0-9._-], at most 64 characters each), not "${bad}"`;
  },
};

export const commonConnectorSpec = ConfigSpec.builder()
  .string('name', {
    documentation: 'Globally unique name to use for this connector.',
    importance: 'HIGH',
    group: 'Common',
    validator: validators.pattern(/^[^\u0000-\u001f\u007f/]+$/, 'a non-empty string without control characters or slashes'),
  })
  .string('connector.class', {
    documentation: 'Name of the connector class (e.g. EmailSink) or its package-qualified alias.',
    importance: 'HIGH',
    group: 'Common',
  })
  .int('tasks.max', {
    documentation: 'Maximum number of tasks to use for this connector.',
    default: 1,
    importance: 'HIGH',
    group: 'Common',
    validator: validators.range(1, 1024),
  })
  .list('worker.groups', {
    documentation:
      'Worker groups this connector\'s tasks may run in (comma-separated): only workers whose own worker.groups names one of them run its tasks ' +
      '(e.g. sms: the workers whose addresses an SMSC allows). Empty (default): any worker. With no live worker in these groups, its tasks stay UNASSIGNED.',
    default: [],
    importance: 'MEDIUM',
    group: 'Common',
    validator: workerGroupNames,
  })
  .list('topics', {
    documentation: 'Topics a sink consumes (comma-separated). Ignored by source connectors.',
    default: [],
    importance: 'HIGH',
    group: 'Common',
  })
  .string('delivery.guarantee', {
    documentation:
      'at-most-once (default): a message whose send is in doubt after a crash is marked unknown and never sent again. at-least-once: it is sent again.',
    default: 'at-most-once',
    importance: 'HIGH',
    group: 'Delivery',
    validator: validators.oneOf('at-most-once', 'at-least-once'),
    recommended: ['at-most-once', 'at-least-once'],
  })
  .int('errors.retry.max.attempts', {
    documentation: 'Attempts per message before a retriable failure is treated as final.',
    default: 5,
    group: 'Error Handling',
    validator: validators.range(1, 1000),
  })
  .long('errors.retry.timeout', {
    documentation: 'Longest time (ms) a message keeps being retried after its first attempt; -1 for no limit.',
    default: 300_000,
    group: 'Error Handling',
    validator: validators.atLeast(-1),
  })
  .long('errors.retry.delay.initial.ms', {
    documentation: 'First retry delay (ms); doubled on each attempt, with full jitter.',
    default: 500,
    group: 'Error Handling',
    validator: validators.range(1, 3_600_000),
  })
  .long('errors.retry.delay.max.ms', {
    documentation: 'Largest delay between two attempts (ms).',
    default: 60_000,
    group: 'Error Handling',
    validator: validators.range(1, 86_400_000),
  })
  .string('errors.deadletterqueue.topic.name', {
    documentation: 'Topic that receives messages that failed permanently or exhausted their retries; empty disables it.',
    default: '',
    group: 'Error Handling',
  })
  .double('rate.limit.per.second', {
    documentation: 'Cluster-wide sends per second for this connector; 0 for none. Split across the shards\' owners.',
    default: 0,
    group: 'Delivery',
    validator: validators.atLeast(0),
  })
  .string('delivery.events.topic', {
    documentation:
      'Topic that receives an event for every state change of this connector\'s messages (sent, retrying, delivered, read, failed, dead, unknown, filtered), keyed by message id, with an id derived from message, connector and state; created with 16 shards if missing. Empty (default): no events. One topic for the cluster, e.g. omnibus.delivery-events, is the usual choice.',
    default: '',
    group: 'Delivery',
    validator: validators.pattern(/^(|[A-Za-z0-9._-]{1,249})$/, 'empty or a topic name ([A-Za-z0-9._-], at most 249 characters)'),
  })
  .int('batch.size', {
    documentation: 'Most records handed to one put() call.',
    default: 500,
    group: 'Delivery',
    validator: validators.range(1, 10_000),
  });

export type CommonConnectorConfig = ReturnType<typeof commonConnectorSpec.parse>;

/** The full spec of a connector: the common keys first, then its own. */
export function fullSpec(connectorSpec: Spec<unknown>): Spec<unknown> {
  return commonConnectorSpec.merge(connectorSpec) as Spec<unknown>;
}
