/**
 * ScyllaCdcSource: streams the changes of ScyllaDB tables (their CDC log) into Omnibus topics
 * as Debezium-style change events, one topic per table: `<topic.prefix>.<keyspace>.<table>`.
 *
 * Work is split over tasks by vnode: task i of n reads the streams of every vnode whose index
 * v satisfies v % n === i, in every table and generation. The split needs no query at config
 * time and stays the same across generations, so a restart or a rebalance resumes each
 * (table, vnode, generation) partition from its stored offset, whichever task gets it.
 */
import { readFileSync } from 'node:fs';
import { defineSourceConnector } from '@omnibus/sdk';
import { crossCheck, scyllaCdcConfig, TASK_COUNT_KEY, TASK_INDEX_KEY, type ScyllaCdcConfig } from './config.ts';
import { ScyllaCdcTask } from './task.ts';

const manifest = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export const ScyllaCdcSource = defineSourceConnector<ScyllaCdcConfig>({
  className: 'ScyllaCdcSource',
  aliases: ['@omnibus/cdc-source/ScyllaCdcSource'],
  version: manifest.version,
  description: 'Streams the CDC log of ScyllaDB tables into topics as Debezium-style change events (insert, update, delete, with pre/post-images).',
  config: scyllaCdcConfig,
  validate: crossCheck,
  taskConfigs(config, maxTasks) {
    const count = Math.max(1, maxTasks);
    return Array.from({ length: count }, (_, index) => ({ ...config, [TASK_INDEX_KEY]: index, [TASK_COUNT_KEY]: count }));
  },
  createTask: () => new ScyllaCdcTask({ version: manifest.version }),
});

export default ScyllaCdcSource;

export { scyllaCdcConfig, topicFor, heartbeatTopicFor, type ScyllaCdcConfig } from './config.ts';
export { jsonSchemaForTable, rowSchemaForTable, cqlToJson, jsonSchemaForType, type CqlTableShape, type CqlColumn, type CqlType } from './schema.ts';
export type { Envelope, EnvelopeSource, Op, RowImage, CollectionChange } from './envelope.ts';
export { decodeStreamId, type StreamIdParts } from './stream-id.ts';
