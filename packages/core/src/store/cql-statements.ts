import { priorityLaneStatements } from './cql-priorities.ts';

/** Every CQL statement the store runs, prepared once per keyspace. */

export type CqlStatements = ReturnType<typeof statements>;

export function statements(ks: string) {
  return {
    ...priorityLaneStatements(ks),
    insertTopic: `INSERT INTO ${ks}.topics (name, shards, value_schema, retention_ms, created_at, quiet_hours) VALUES (?, ?, ?, ?, ?, ?) IF NOT EXISTS`,
    selectTopic: `SELECT name, shards, value_schema, retention_ms, created_at, reshards, quiet_hours FROM ${ks}.topics WHERE name = ?`,
    selectTopics: `SELECT name, shards, value_schema, retention_ms, created_at, reshards, quiet_hours FROM ${ks}.topics`,
    reshardTopic: `UPDATE ${ks}.topics SET shards = ?, reshards = ? WHERE name = ? IF shards = ?`,
    insertBufferedMessage: `INSERT INTO ${ks}.buffered_messages (topic, shard, bucket, ts, id, message) VALUES (?, ?, ?, ?, ?, ?) USING TTL ?`,
    insertMessagePosition: `INSERT INTO ${ks}.message_positions (slot, id, position) VALUES (?, ?, ?) USING TTL ?`,
    insertBufferBucket: `INSERT INTO ${ks}.buffer_buckets (topic, shard, bucket) VALUES (?, ?, ?) USING TTL ?`,
    insertGroupMessage: `INSERT INTO ${ks}.group_messages (grp, message_id) VALUES (?, ?) USING TTL ?`,
    selectMessagePositions: `SELECT id, position FROM ${ks}.message_positions WHERE slot = ? AND id IN ?`,
    selectBufferSlice:
      `SELECT ts, id, message FROM ${ks}.buffered_messages ` +
      'WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ?',
    scanBuffer: `SELECT ts, id FROM ${ks}.buffered_messages WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ? LIMIT ?`,
    scanBufferSlice: `SELECT ts, id FROM ${ks}.buffered_messages WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ?`,
    selectBuffer:
      `SELECT ts, id, message FROM ${ks}.buffered_messages ` +
      'WHERE topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ? LIMIT ?',
    selectBufferBuckets: `SELECT bucket FROM ${ks}.buffer_buckets WHERE topic = ? AND shard = ? AND bucket >= ? AND bucket <= ?`,
    selectGroupMessages: `SELECT message_id FROM ${ks}.group_messages WHERE grp = ? LIMIT ?`,
    selectWatermark: `SELECT ts FROM ${ks}.watermarks WHERE consumer = ? AND topic = ? AND shard = ?`,
    insertWatermark: `INSERT INTO ${ks}.watermarks (consumer, topic, shard, ts) VALUES (?, ?, ?, ?)`,
    selectSourceOffsets: `SELECT partition_json, offset_json FROM ${ks}.source_offsets WHERE connector = ?`,
    insertSourceOffset: `INSERT INTO ${ks}.source_offsets (connector, partition_json, offset_json) VALUES (?, ?, ?)`,
    deleteSourceOffsets: `DELETE FROM ${ks}.source_offsets WHERE connector = ?`,
    selectDeliveryRange:
      `SELECT ts, message_id, state, detail, receipt FROM ${ks}.delivery_states ` +
      'WHERE connector = ? AND topic = ? AND shard = ? AND bucket = ? AND ts >= ? AND ts <= ?',
    insertDeliveryState:
      `INSERT INTO ${ks}.delivery_states (connector, topic, shard, bucket, ts, message_id, state, detail) ` +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?',
    updateReceiptState:
      `UPDATE ${ks}.delivery_states USING TTL ? SET receipt = ? ` +
      'WHERE connector = ? AND topic = ? AND shard = ? AND bucket = ? AND ts = ? AND message_id = ?',
    insertProviderId: `INSERT INTO ${ks}.provider_ids (connector, provider_id, message_id) VALUES (?, ?, ?) USING TTL ?`,
    selectProviderId: `SELECT message_id FROM ${ks}.provider_ids WHERE connector = ? AND provider_id = ?`,
    insertEvent:
      `INSERT INTO ${ks}.events (message_id, event_at, seq, tag, event_type, connector, worker_id, detail) ` +
      'VALUES (?, ?, ?, ?, ?, ?, ?, ?) USING TTL ?',
    selectEvents: `SELECT event_at, event_type, connector, worker_id, detail FROM ${ks}.events WHERE message_id = ?`,
    selectLease: `SELECT name, owner, epoch, expires_at FROM ${ks}.leases WHERE name = ?`,
    selectLeases: `SELECT name, owner, epoch, expires_at FROM ${ks}.leases`,
    insertLease: `INSERT INTO ${ks}.leases (name, owner, epoch, expires_at) VALUES (?, ?, ?, ?) IF NOT EXISTS`,
    takeLease: `UPDATE ${ks}.leases SET owner = ?, epoch = ?, expires_at = ? WHERE name = ? IF owner = ? AND epoch = ?`,
    renewLease: `UPDATE ${ks}.leases SET expires_at = ? WHERE name = ? IF owner = ? AND epoch = ?`,
    releaseLease: `UPDATE ${ks}.leases SET owner = '', expires_at = 0 WHERE name = ? IF owner = ? AND epoch = ?`,
    insertMember:
      `INSERT INTO ${ks}.cluster_view (part, kind, id, url, started_at, heartbeat_at, expires_at, worker_groups) VALUES (?, 'member', ?, ?, ?, ?, ?, ?) ` +
      'USING TTL ?',
    selectClusterView: `SELECT kind, id, url, started_at, heartbeat_at, expires_at, version, worker_groups FROM ${ks}.cluster_view WHERE part = ?`,
    deleteMember: `DELETE FROM ${ks}.cluster_view WHERE part = ? AND kind = 'member' AND id = ?`,
    // Always true for a fresh version, and applied on a missing row too: an LWT only for its ordering.
    bumpConnectorsVersion: `UPDATE ${ks}.cluster_view SET version = ? WHERE part = ? AND kind = 'connectors' AND id = '' IF version != ?`,
    insertConnector:
      `INSERT INTO ${ks}.connectors (name, config, target_state, task_configs, generation, created_at, updated_at) ` +
      'VALUES (?, ?, ?, ?, ?, ?, ?) IF NOT EXISTS',
    updateConnector:
      `UPDATE ${ks}.connectors SET config = ?, target_state = ?, task_configs = ?, generation = ?, created_at = ?, updated_at = ? ` +
      'WHERE name = ? IF EXISTS',
    selectConnector: `SELECT name, config, target_state, task_configs, generation, created_at, updated_at FROM ${ks}.connectors WHERE name = ?`,
    selectConnectors: `SELECT name, config, target_state, task_configs, generation, created_at, updated_at FROM ${ks}.connectors`,
    deleteConnector: `DELETE FROM ${ks}.connectors WHERE name = ? IF EXISTS`,
    insertStatus:
      `INSERT INTO ${ks}.statuses (connector, task, state, worker_id, trace, generation, updated_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
    selectStatuses: `SELECT task, state, worker_id, trace, generation, updated_at FROM ${ks}.statuses WHERE connector = ?`,
    deleteStatuses: `DELETE FROM ${ks}.statuses WHERE connector = ?`,
    insertTemplate:
      `INSERT INTO ${ks}.templates (name, live_version, latest_version, created_at, updated_at) VALUES (?, ?, ?, ?, ?) IF NOT EXISTS`,
    updateTemplate:
      `UPDATE ${ks}.templates SET live_version = ?, latest_version = ?, updated_at = ? WHERE name = ? IF latest_version = ? AND live_version = ?`,
    selectTemplate: `SELECT name, live_version, latest_version, created_at, updated_at FROM ${ks}.templates WHERE name = ?`,
    selectTemplates: `SELECT name, live_version, latest_version, created_at, updated_at FROM ${ks}.templates`,
    deleteTemplate: `DELETE FROM ${ks}.templates WHERE name = ? IF EXISTS`,
    deleteTemplateVersions: `DELETE FROM ${ks}.template_versions WHERE name = ?`,
    insertTemplateVersion: `INSERT INTO ${ks}.template_versions (name, version, body) VALUES (?, ?, ?) IF NOT EXISTS`,
    selectTemplateVersion: `SELECT name, version, body FROM ${ks}.template_versions WHERE name = ? AND version = ?`,
    selectTemplateVersions: `SELECT name, version, body FROM ${ks}.template_versions WHERE name = ?`,
  };
}
