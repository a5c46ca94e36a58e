/** The CQL store's rows: what each table's row holds, to and from the port's types. */
import cassandra from 'cassandra-driver';
import { BUCKET_MS } from './cql-layout.ts';
import type { ConnectorRecord, Delivery, Lease, Message, MessagePosition, TemplateRecord, TemplateVersion, Topic, Reshard } from './port.ts';

const { types } = cassandra;
type Row = cassandra.types.Row;
export type BatchQuery = { query: string; params: unknown[] };

/** Delivery fields kept in their own columns; the others go into `detail`. */
export const KEY_COLUMNS = new Set(['connector', 'messageId', 'topic', 'shard', 'ts', 'state']);

/** Whether two deliveries have the same `detail` (checked field by field; optional fields make any row unique). */
export const sameDetail = (a: Delivery, b: Delivery): boolean =>
  a.attempts === b.attempts &&
  a.epoch === b.epoch &&
  a.workerId === b.workerId &&
  a.updatedAt === b.updatedAt &&
  a.group === b.group &&
  a.providerId === undefined &&
  b.providerId === undefined &&
  a.lastError === undefined &&
  b.lastError === undefined &&
  a.nextAttemptAt === undefined &&
  b.nextAttemptAt === undefined;

export const toNumber = (value: unknown): number => (value instanceof types.Long ? value.toNumber() : Number(value));

export function topicFromRow(row: Row): Topic {
  const schema = row.get('value_schema') as string | null;
  const topic: Topic = {
    name: row.get('name'),
    shards: row.get('shards'),
    retentionMs: toNumber(row.get('retention_ms')),
    createdAt: toNumber(row.get('created_at')),
  };
  if (schema !== null) topic.schema = JSON.parse(schema) as Record<string, unknown>;
  const reshards = row.get('reshards') as string | null;
  if (reshards !== null) topic.reshards = JSON.parse(reshards) as Reshard[];
  const quietHours = row.get('quiet_hours') as string | null | undefined;
  if (quietHours) topic.quietHours = JSON.parse(quietHours) as Topic['quietHours'];
  return topic;
}

/** The rows already batched for the `delivery_states` partition of this connector and position (created empty), and its bucket. */
export function deliveryPartition(
  partitions: Map<string, BatchQuery[]>,
  connector: string,
  { topic, shard, ts }: Pick<MessagePosition, 'topic' | 'shard' | 'ts'>,
): { rows: BatchQuery[]; bucket: number } {
  const bucket = Math.floor(ts / BUCKET_MS);
  const key = `${connector}\u0000${shard}/${bucket}/${topic}`;
  let rows = partitions.get(key);
  if (!rows) partitions.set(key, (rows = []));
  return { rows, bucket };
}

export function deliveryFromRow(row: Row, connector: string, topic: string, shard: number): Delivery {
  return {
    connector,
    messageId: row.get('message_id'),
    topic,
    shard,
    ts: toNumber(row.get('ts')),
    state: row.get('state'),
    ...(JSON.parse(row.get('detail') as string) as Pick<Delivery, 'attempts' | 'epoch' | 'workerId' | 'updatedAt'>),
  };
}

export function messageFromRow(row: Row, topic: string, shard: number): Message {
  const { k, t, h, g, v } = JSON.parse(row.get('message') as string) as { k: string; t: string; h: Record<string, string>; g?: string; v?: unknown };
  const message: Message = { id: row.get('id'), topic, key: k, token: t, shard, value: v, headers: h, createdAt: toNumber(row.get('ts')) };
  if (g !== undefined) message.group = g;
  return message;
}

export function leaseFromRow(row: Row): Lease {
  return { name: row.get('name'), owner: row.get('owner'), epoch: toNumber(row.get('epoch')), expiresAt: toNumber(row.get('expires_at')) };
}

export function connectorValues(record: ConnectorRecord): unknown[] {
  return [
    record.name,
    JSON.stringify(record.config),
    record.targetState,
    JSON.stringify(record.taskConfigs),
    record.generation,
    record.createdAt,
    record.updatedAt,
  ];
}

export function connectorFromRow(row: Row): ConnectorRecord {
  return {
    name: row.get('name'),
    config: JSON.parse(row.get('config') as string) as Record<string, string>,
    targetState: row.get('target_state'),
    taskConfigs: JSON.parse(row.get('task_configs') as string) as Array<Record<string, string>>,
    generation: toNumber(row.get('generation')),
    createdAt: toNumber(row.get('created_at')),
    updatedAt: toNumber(row.get('updated_at')),
  };
}


export function templateFromRow(row: Row): TemplateRecord {
  return {
    name: row.get('name'),
    liveVersion: row.get('live_version') as number,
    latestVersion: row.get('latest_version') as number,
    createdAt: toNumber(row.get('created_at')),
    updatedAt: toNumber(row.get('updated_at')),
  };
}

export function templateVersionBody(version: TemplateVersion): string {
  const { channel, defaultLocale, locales, createdAt } = version;
  return JSON.stringify({ channel, defaultLocale, locales, createdAt });
}

export function templateVersionFromRow(row: Row): TemplateVersion {
  const body = JSON.parse(row.get('body') as string) as Omit<TemplateVersion, 'name' | 'version'>;
  return { name: row.get('name'), version: row.get('version') as number, ...body };
}
