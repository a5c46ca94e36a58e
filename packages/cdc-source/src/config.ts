/**
 * The connector's config keys. Names, meanings and defaults follow ScyllaDB's Kafka source
 * connector (scylla-cdc-source-connector), so that a config written for it carries over.
 */
import { ConfigSpec, validators, type Validator } from '@omnibus/sdk';
import { INCLUDE_MODES, OUTPUT_FORMATS } from './formats.ts';

export const CONSISTENCY_LEVELS = ['ANY', 'ONE', 'TWO', 'THREE', 'QUORUM', 'ALL', 'LOCAL_QUORUM', 'EACH_QUORUM', 'LOCAL_ONE'] as const;
const READ_CONSISTENCY_LEVELS = CONSISTENCY_LEVELS.filter((level) => level !== 'ANY');

const IDENTIFIER = '[A-Za-z][A-Za-z0-9_]{0,47}';
const TABLE_NAME = new RegExp(`^${IDENTIFIER}\\.${IDENTIFIER}$`);
const HOST_PORT = /^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9.-]+)(:\d{1,5})?$/;

function everyItem(one: string, many: string, test: (item: string) => boolean): Validator<string[]> {
  return {
    describe: `a non-empty list of ${many}`,
    check: (items) => {
      if (items.length === 0) return 'List must be non-empty';
      const bad = items.filter((item) => !test(item));
      if (bad.length === 0) return undefined;
      return `${bad.map((b) => JSON.stringify(b)).join(', ')} ${bad.length === 1 ? `is not ${one}` : `are not ${many}`}`;
    },
  };
}

const GROUP_CONNECTION = 'Connection';
const GROUP_CDC = 'CDC';
const GROUP_OUTPUT = 'Output';

export const scyllaCdcConfig = ConfigSpec.builder()
  .list('scylla.cluster.ip.addresses', {
    documentation: 'Contact points of the ScyllaDB cluster, as host:port pairs (port 9042 when omitted), e.g. "10.0.0.1:9042,10.0.0.2:9042".',
    importance: 'HIGH',
    group: GROUP_CONNECTION,
    validator: everyItem('a host:port pair', 'host:port pairs', (item) => {
      const match = HOST_PORT.exec(item);
      return match !== null && (match[2] === undefined || Number(match[2].slice(1)) <= 65535);
    }),
  })
  .string('scylla.local.dc', {
    documentation:
      'The data center whose nodes are queried (DC-aware load balancing). When unset, queries go round robin to every node of the cluster.',
    optional: true,
    importance: 'MEDIUM',
    group: GROUP_CONNECTION,
  })
  .string('scylla.user', {
    documentation: 'User name for password authentication; unset for a cluster without authentication.',
    optional: true,
    importance: 'HIGH',
    group: GROUP_CONNECTION,
  })
  .password('scylla.password', {
    documentation: 'Password of `scylla.user`.',
    optional: true,
    importance: 'HIGH',
    group: GROUP_CONNECTION,
  })
  .string('scylla.consistency.level', {
    documentation: 'Consistency level of the CDC log queries.',
    default: 'QUORUM',
    importance: 'MEDIUM',
    group: GROUP_CONNECTION,
    validator: validators.oneOf(...READ_CONSISTENCY_LEVELS),
    recommended: READ_CONSISTENCY_LEVELS,
  })
  .int('scylla.query.options.fetch.size', {
    documentation: 'Rows per page of a CDC log query; 0 keeps the driver default (5000).',
    default: 0,
    importance: 'LOW',
    group: GROUP_CONNECTION,
    validator: validators.atLeast(0),
  })
  .list('scylla.table.names', {
    documentation: 'The CDC-enabled tables to read, as keyspace.table, e.g. "shop.orders,shop.customers".',
    importance: 'HIGH',
    group: GROUP_CDC,
    validator: everyItem('a keyspace.table name', 'keyspace.table names', (item) => TABLE_NAME.test(item)),
  })
  .string('scylla.cdc.generations.keyspace', {
    documentation:
      'Keyspace of the CDC generation tables `cdc_generation_timestamps` and `cdc_streams_descriptions_v2` (vnode keyspaces). ScyllaDB keeps them in system_distributed.',
    default: 'system_distributed',
    importance: 'LOW',
    group: GROUP_CDC,
    validator: validators.pattern(new RegExp(`^${IDENTIFIER}$`), 'a keyspace name'),
  })
  .string('scylla.cdc.tablets.keyspace', {
    documentation:
      'Keyspace of the CDC stream tables of tablets keyspaces, `cdc_timestamps` and `cdc_streams` (one stream set per table, renewed when its tablets split or merge). ScyllaDB keeps them in system.',
    default: 'system',
    importance: 'LOW',
    group: GROUP_CDC,
    validator: validators.pattern(new RegExp(`^${IDENTIFIER}$`), 'a keyspace name'),
  })
  .long('scylla.query.time.window.size', {
    documentation:
      'Length of the time window read per query, ms. While far behind, the connector doubles it (up to 64 times) for sparse windows, to catch up with fewer queries.',
    default: 30_000,
    importance: 'MEDIUM',
    group: GROUP_CDC,
    validator: validators.atLeast(1),
  })
  .long('scylla.confidence.window.size', {
    documentation:
      'How long after a window ends it is read, ms: writes may carry timestamps a little in the past (clock skew, client-side timestamps), and are read only once no write can still land in the window.',
    default: 30_000,
    importance: 'MEDIUM',
    group: GROUP_CDC,
    validator: validators.atLeast(0),
  })
  .long('scylla.minimal.wait.for.window.time', {
    documentation: 'The least time between two queries of one vnode, ms; raises throughput per query at the cost of latency.',
    default: 0,
    importance: 'LOW',
    group: GROUP_CDC,
    validator: validators.atLeast(0),
  })
  .long('scylla.initial.lookback.ms', {
    documentation:
      'On a first start (no stored offsets), read changes from this long ago, ms. 0 reads from the start of the oldest generation that the CDC log can still hold.',
    default: 0,
    importance: 'MEDIUM',
    group: GROUP_CDC,
    validator: validators.atLeast(0),
  })
  .long('scylla.generation.poll.interval.ms', {
    documentation: 'How often the generation tables are read to learn of a new generation (a topology change), ms.',
    default: 15_000,
    importance: 'LOW',
    group: GROUP_CDC,
    validator: validators.atLeast(10),
  })
  .string('topic.prefix', {
    documentation: 'Prefix of the topics changes are written to: `<topic.prefix>.<keyspace>.<table>`. Also `source.name` of every event.',
    importance: 'HIGH',
    group: GROUP_OUTPUT,
    validator: validators.pattern(/^[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}$/, 'a topic name prefix of [A-Za-z0-9._-], at most 100 characters'),
  })
  .long('heartbeat.interval.ms', {
    documentation:
      'How often a vnode whose windows were empty records its progress, as a heartbeat message on `<heartbeat.topics.prefix>.<topic.prefix>` (Debezium\'s heartbeats), so that a restart does not re-read those windows. 0 disables periodic heartbeats; the markers of a finished generation are always written.',
    default: 30_000,
    importance: 'LOW',
    group: GROUP_OUTPUT,
    validator: validators.atLeast(0),
  })
  .string('cdc.output.format', {
    documentation:
      "Event format. 'merged' (Omnibus's): one event per row and write, the write's delta rows merged, `after` the columns written (or the post-image), element-wise collection changes in `collection_changes`. 'legacy' and 'advanced': the formats of ScyllaDB's Kafka connector under its own key and values, byte for byte as its JsonConverter output without schemas (see the package README for what differs); ScyllaDB's connector defaults to 'legacy', so a config carried over from it sets this key to keep its format.",
    default: 'merged',
    importance: 'HIGH',
    group: GROUP_OUTPUT,
    validator: validators.oneOf(...OUTPUT_FORMATS),
    recommended: [...OUTPUT_FORMATS],
  })
  .boolean('experimental.preimages.enabled', {
    documentation: "With cdc.output.format 'legacy': fill `before` from the table's pre-images (as ScyllaDB's connector does).",
    default: false,
    importance: 'LOW',
    group: GROUP_OUTPUT,
  })
  .string('cdc.include.before', {
    documentation:
      "With cdc.output.format 'advanced': 'full' fills `before` with the whole row before the change (pre-image, completed from the post-image), 'only-updated' with the key and the changed columns, 'none' leaves it null. Needs the table's 'preimage' CDC option.",
    default: 'none',
    importance: 'MEDIUM',
    group: GROUP_OUTPUT,
    validator: validators.oneOf(...INCLUDE_MODES),
    recommended: [...INCLUDE_MODES],
  })
  .string('cdc.include.after', {
    documentation:
      "With cdc.output.format 'advanced': 'full' fills `after` with the post-image, 'only-updated' with the key and the changed columns, 'none' leaves it null. Needs the table's 'postimage' CDC option.",
    default: 'none',
    importance: 'MEDIUM',
    group: GROUP_OUTPUT,
    validator: validators.oneOf(...INCLUDE_MODES),
    recommended: [...INCLUDE_MODES],
  })
  .string('heartbeat.topics.prefix', {
    documentation: 'Prefix of the heartbeat topic.',
    default: '__debezium-heartbeat',
    importance: 'LOW',
    group: GROUP_OUTPUT,
    validator: validators.pattern(/^[A-Za-z0-9._-]{1,100}$/, 'a topic name prefix of [A-Za-z0-9._-]'),
  });

export type ScyllaCdcConfig = ReturnType<typeof scyllaCdcConfig.parse>;

/** Keys the connector adds to each task config: which share of the vnodes the task reads. */
export const TASK_INDEX_KEY = 'scylla.task.index';
export const TASK_COUNT_KEY = 'scylla.task.count';

export function topicFor(prefix: string, keyspace: string, table: string): string {
  return `${prefix}.${keyspace}.${table}`;
}

export function heartbeatTopicFor(config: Pick<ScyllaCdcConfig, 'heartbeat.topics.prefix' | 'topic.prefix'>): string {
  return `${config['heartbeat.topics.prefix']}.${config['topic.prefix']}`;
}

/** Cross-key checks: every topic name the config implies must be a valid topic name. */
export function crossCheck(config: ScyllaCdcConfig): Record<string, string[]> {
  const problems: Record<string, string[]> = {};
  const tooLong = config['scylla.table.names']
    .map((name) => topicFor(config['topic.prefix'], ...(name.split('.') as [string, string])))
    .filter((topic) => topic.length > 249);
  if (tooLong.length > 0) problems['topic.prefix'] = [`topic names must be at most 249 characters: ${tooLong.join(', ')}`];
  if (heartbeatTopicFor(config).length > 249) problems['heartbeat.topics.prefix'] = ['the heartbeat topic name must be at most 249 characters'];
  const duplicates = config['scylla.table.names'].filter((name, i, all) => all.indexOf(name) !== i);
  if (duplicates.length > 0) problems['scylla.table.names'] = [`tables listed twice: ${[...new Set(duplicates)].join(', ')}`];
  return problems;
}
