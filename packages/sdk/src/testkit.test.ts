import { describe, expect, it } from 'vitest';
import { ConfigSpec, type Password } from './config.ts';
import { defineSinkConnector, defineSourceConnector, type SinkOutcome, type SinkRecord, type SourceRecord } from './connector.ts';
import { ConfigError } from './errors.ts';
import { memoryLogger, stableJson, startSink, startSource } from './testkit.ts';

/** A sink that fails its first `failures` attempts per record with a retry, then sends. */
function flakySink(failures: number) {
  const calls: SinkRecord[][] = [];
  const spec = ConfigSpec.builder()
    .string('prefix', { documentation: 'provider id prefix', default: 'p' })
    .password('api.key', { documentation: 'key', optional: true });
  const connector = defineSinkConnector({
    className: 'FlakySink',
    version: '1.0.0',
    description: 'test',
    config: spec,
    taskConfigs: (config, maxTasks) => Array.from({ length: maxTasks }, (_, i) => ({ prefix: `${config.prefix}${i}` })),
    validate: (config): Record<string, string[]> => (config.prefix === 'forbidden' ? { prefix: ['must not be forbidden'] } : {}),
    createTask: () => {
      let prefix = '';
      return {
        async start(config, context) {
          prefix = config.prefix;
          context.logger.info({ key: config['api.key'] as Password | undefined }, 'started');
          await context.reportDeliveries([{ messageId: 'boot', state: 'delivered', at: 1 }]);
        },
        async put(records): Promise<SinkOutcome[]> {
          calls.push(records);
          return records.map((r) =>
            r.attempt <= failures
              ? { status: 'retry', error: { code: 'OMNI_ERR_TEST_BUSY', message: 'busy' }, retryAfterMs: 1 }
              : { status: 'sent', providerId: `${prefix}-${r.key}` },
          );
        },
        async stop() {},
      };
    },
    async webhook(request) {
      return { status: 202, body: { got: request.rawBody.toString() }, updates: [{ providerId: request.path, state: 'read', at: 2 }] };
    },
  });
  return { connector, calls };
}

describe('startSink', () => {
  it('retries retriable outcomes with the attempt number, up to maxAttempts', async () => {
    const { connector, calls } = flakySink(2);
    const sink = await startSink(connector, {});
    const [result] = await sink.send([{ key: 'k', value: 1 }], { maxAttempts: 5 });
    await sink.stop();
    expect(calls.map((batch) => batch.map((r) => r.attempt))).toEqual([[1], [2], [3]]);
    expect(result).toMatchObject({ attempts: 3, outcome: { status: 'sent', providerId: 'p0-k' } });
  });

  it('stops retrying after maxAttempts and returns the last outcome', async () => {
    const { connector } = flakySink(10);
    const sink = await startSink(connector, {});
    const [result] = await sink.send([{ key: 'k', value: 1 }], { maxAttempts: 2 });
    await sink.stop();
    expect(result).toMatchObject({ attempts: 2, outcome: { status: 'retry', error: { code: 'OMNI_ERR_TEST_BUSY' } } });
  });

  it("starts the task with the connector's first task config", async () => {
    const { connector } = flakySink(0);
    const sink = await startSink(connector, { prefix: 'x' });
    const [result] = await sink.send([{ key: 'k', value: 1, id: 'fixed-id', headers: { h: 'v' } }]);
    await sink.stop();
    expect(result?.outcome).toMatchObject({ providerId: 'x0-k' });
    expect(result?.record).toMatchObject({ id: 'fixed-id', headers: { h: 'v' }, topic: 'test', shard: 0 });
  });

  it("refuses a config that the spec or the connector's own validate rejects", async () => {
    const { connector } = flakySink(0);
    await expect(startSink(connector, { prefix: 'forbidden' })).rejects.toMatchObject({ errors: { prefix: ['must not be forbidden'] } });
    await expect(startSink(connector, { prefix: 42 })).resolves.toBeDefined();
    await expect(startSink(connector, { prefix: { not: 'a string' } })).rejects.toBeInstanceOf(ConfigError);
  });

  it('records receipts reported by the task and returned by webhooks, and the log lines', async () => {
    const { connector } = flakySink(0);
    const sink = await startSink(connector, { 'api.key': 'top-secret-key' }, { name: 'flaky' });
    const response = await sink.webhook({ rawBody: 'hello', path: '/status' });
    await sink.stop();
    expect(response).toMatchObject({ status: 202, body: { got: 'hello' } });
    expect(sink.deliveries.map((d) => d.messageId ?? d.providerId)).toEqual(['boot', '/status']);
    expect(sink.logs).toMatchObject([{ level: 'info', msg: 'started', bindings: { connector: 'flaky', task: 0 } }]);
    expect(JSON.stringify(sink.logs)).not.toContain('top-secret-key');
  });
});

describe('startSource', () => {
  const spec = ConfigSpec.builder().int('count', { documentation: 'records to emit', default: 3 });
  const counter = defineSourceConnector({
    className: 'CounterSource',
    version: '1.0.0',
    description: 'test',
    config: spec,
    createTask: () => {
      let next = 0;
      let limit = 0;
      return {
        async start(config, context) {
          limit = config.count;
          const [offset] = await context.offsets([{ counter: 'c' }]);
          next = typeof offset?.position === 'number' ? offset.position : 0;
        },
        async poll(): Promise<SourceRecord[]> {
          if (next >= limit) return [];
          const position = next++;
          return [{ sourcePartition: { counter: 'c' }, sourceOffset: { position: position + 1 }, topic: 't', key: `k${position}`, value: position }];
        },
        async stop() {},
      };
    },
  });

  it('commits offsets as records arrive and resumes from them after a restart', async () => {
    const source = await startSource(counter, { count: 5 });
    const first = await source.pollUntil(2);
    expect(first.map((r) => r.value)).toEqual([0, 1]);
    expect(source.offsets.get(stableJson({ counter: 'c' }))).toEqual({ position: 2 });
    await source.restart();
    const rest = await source.pollUntil(3);
    await source.stop();
    expect(rest.map((r) => r.value)).toEqual([2, 3, 4]);
  });

  it('returns what it has when the time is up', async () => {
    const source = await startSource(counter, { count: 1 });
    const records = await source.pollUntil(5, 50);
    await source.stop();
    expect(records).toHaveLength(1);
  });
});

describe('helpers', () => {
  it('stableJson sorts keys at every depth and drops undefined', () => {
    expect(stableJson({ b: 1, a: { d: [2, { z: 1, y: 2 }], c: undefined } })).toBe('{"a":{"d":[2,{"y":2,"z":1}]},"b":1}');
  });

  it('memoryLogger children share the lines and add their bindings', () => {
    const logger = memoryLogger();
    logger.child({ task: 1 }).warn({ n: 1 }, 'careful');
    expect(logger.lines).toEqual([{ level: 'warn', bindings: { task: 1 }, obj: { n: 1 }, msg: 'careful' }]);
  });
});
