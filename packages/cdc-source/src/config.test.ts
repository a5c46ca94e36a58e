import { ConfigError, startSource } from '@omnibus/sdk';
import { describe, expect, it } from 'vitest';
import { ScyllaCdcSource } from './index.ts';
import { TASK_COUNT_KEY, TASK_INDEX_KEY } from './config.ts';

const minimal = {
  'scylla.cluster.ip.addresses': '10.0.0.1:9042,node2',
  'scylla.table.names': 'shop.orders, shop.customers',
  'topic.prefix': 'cluster1',
};

describe('ScyllaCdcSource config', () => {
  it('is the connector the runtime discovers', () => {
    expect(ScyllaCdcSource).toMatchObject({ type: 'source', className: 'ScyllaCdcSource', aliases: ['@omnibus/cdc-source/ScyllaCdcSource'] });
  });

  it('has the Kafka connector’s defaults', () => {
    const config = ScyllaCdcSource.config.parse(minimal);
    expect(config).toMatchObject({
      'scylla.cluster.ip.addresses': ['10.0.0.1:9042', 'node2'],
      'scylla.table.names': ['shop.orders', 'shop.customers'],
      'scylla.query.time.window.size': 30_000,
      'scylla.confidence.window.size': 30_000,
      'scylla.minimal.wait.for.window.time': 0,
      'scylla.initial.lookback.ms': 0,
      'scylla.consistency.level': 'QUORUM',
      'scylla.cdc.generations.keyspace': 'system_distributed',
      'heartbeat.interval.ms': 30_000,
    });
  });

  it('names every bad key, with a reason', () => {
    let error: unknown;
    try {
      ScyllaCdcSource.config.parse({
        'scylla.cluster.ip.addresses': 'ok:9042,bad host',
        'scylla.table.names': 'orders',
        'topic.prefix': 'a/b',
        'scylla.consistency.level': 'SERIAL',
        'scylla.query.time.window.size': 0,
      });
    } catch (e) {
      error = e;
    }
    expect(error).toBeInstanceOf(ConfigError);
    const errors = (error as ConfigError).errors;
    expect(Object.keys(errors).sort()).toEqual(['scylla.cluster.ip.addresses', 'scylla.consistency.level', 'scylla.query.time.window.size', 'scylla.table.names', 'topic.prefix']);
    expect(errors['scylla.cluster.ip.addresses']![0]).toContain('"bad host" is not a host:port pair');
    expect(errors['scylla.table.names']![0]).toContain('"orders" is not a keyspace.table name');
  });

  it('keeps the password out of validate responses', () => {
    const infos = ScyllaCdcSource.config.validate('ScyllaCdcSource', { ...minimal, 'scylla.user': 'cdc', 'scylla.password': 's3cret' });
    expect(JSON.stringify(infos)).not.toContain('s3cret');
    expect(infos.error_count).toBe(0);
  });

  it('cross-checks the topic names the config implies', () => {
    const config = ScyllaCdcSource.config.parse({ ...minimal, 'scylla.table.names': 'ks.t,ks.t' });
    const problems = ScyllaCdcSource.validate!(config);
    expect(problems['scylla.table.names']).toEqual(['tables listed twice: ks.t']);
    expect(ScyllaCdcSource.validate!(ScyllaCdcSource.config.parse(minimal))).toEqual({});
  });

  it('gives each task its index and the task count; vnodes are split by index modulo count', () => {
    const configs = ScyllaCdcSource.taskConfigs!(ScyllaCdcSource.config.parse(minimal), 3);
    expect(configs.map((c) => [c[TASK_INDEX_KEY], c[TASK_COUNT_KEY]])).toEqual([
      [0, 3],
      [1, 3],
      [2, 3],
    ]);
    expect(configs[1]).toMatchObject({ 'topic.prefix': 'cluster1' });
  });

  it('a task that cannot reach the cluster fails to start with a clear error', async () => {
    await expect(startSource(ScyllaCdcSource, { ...minimal, 'scylla.cluster.ip.addresses': '127.0.0.1:1' })).rejects.toMatchObject({
      code: 'OMNI_ERR_CDC_CONNECT',
    });
  });
});
