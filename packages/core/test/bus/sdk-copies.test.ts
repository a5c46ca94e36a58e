// A connector built against its own installed copy of @omnibus/sdk, run by this core (which
// has the workspace's copy): its errors, secrets and config spec must mean to core what they
// mean to the connector, although none of its classes is core's.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as coreSdk from '@omnibus/sdk';
import type { SinkConnector, SinkRecord } from '@omnibus/sdk';
import { loadSdkCopy, type SdkCopy } from '@omnibus/test-support';
import { Producer } from '../../src/bus/producer.ts';
import { ShardSignals } from '../../src/bus/signals.ts';
import { SinkRunner } from '../../src/bus/sink-runner.ts';
import { newTopic } from '../../src/bus/topics.ts';
import { toHttpError } from '../../src/errors.ts';
import { Metrics } from '../../src/metrics.ts';
import { authConfigFrom } from '../../src/rest/auth.ts';
import { fullSpec } from '../../src/runtime/connector-config.ts';
import { deliveriesById, eventually, lmdbStore, quietLogger, recordingSink, type StoreHandle } from './helpers.ts';

let copy: SdkCopy;
let pluginSdk: SdkCopy['sdk'];
let handle: StoreHandle;
let producer: Producer;
const signals = new ShardSignals();
const runners: SinkRunner[] = [];

beforeAll(async () => {
  copy = await loadSdkCopy();
  pluginSdk = copy.sdk;
  handle = await lmdbStore();
  producer = new Producer({ store: handle.store, signals });
});
afterAll(async () => {
  await Promise.all(runners.map((r) => r.stop()));
  await handle?.close();
  copy?.remove();
});

function runner(connector: SinkConnector, name: string, topic: string): SinkRunner {
  const r = new SinkRunner(
    { connectorName: name, taskId: 0, taskCount: 1, connector, config: { 'connector.class': connector.className, name, topics: topic, 'plugin.token': 'tok-1' } },
    {
      store: handle.store,
      producer,
      signals,
      metrics: new Metrics({ defaultMetrics: false }),
      logger: quietLogger(),
      workerId: '127.0.0.1:8083',
      leaseTtlMs: 5000,
      heartbeatMs: 500,
      consumer: { pollIdleMs: 200 },
    },
  );
  runners.push(r);
  return r;
}

/** What the plugin's tasks found in their config: is the token a Password by the plugin's own copy? */
const tokenSeenByPlugin: unknown[] = [];

/** A sink of the plugin's SDK copy whose every put fails with `error`. */
function failingPluginSink(error: () => Error): SinkConnector {
  return pluginSdk.defineSinkConnector({
    className: 'PluginSink',
    version: '1.0.0',
    description: 'a sink built against its own SDK copy',
    config: pluginSdk.ConfigSpec.builder().password('plugin.token', { documentation: 'Token.' }),
    createTask: () => ({
      start: async (config: { 'plugin.token': unknown }) => {
        const token = config['plugin.token'];
        tokenSeenByPlugin.push(token instanceof pluginSdk.Password ? token.value() : token);
      },
      put: async (_records: SinkRecord[]) => {
        throw error();
      },
      stop: async () => undefined,
    }),
  }) as unknown as SinkConnector;
}

describe("a plugin's own SDK copy, seen by core", () => {
  it('its FatalConnectorError is fatal: the batch goes back to pending and the next run sends it', async () => {
    expect(pluginSdk.FatalConnectorError).not.toBe(coreSdk.FatalConnectorError);
    const topic = `fatal-${Date.now().toString(36)}`;
    await handle.store.createTopic(newTopic({ name: topic, shards: 1 }));
    const first = runner(
      failingPluginSink(() => new pluginSdk.FatalConnectorError('OMNI_ERR_PLUGIN_REVOKED', 'plugin credentials revoked')),
      'copy-fatal',
      topic,
    );
    await first.start();
    const id = (await producer.produce(topic, [{ key: 'k', value: 'not yet' }]))[0]!.id;
    const failure = await first.failure;
    expect(failure.message).toBe('plugin credentials revoked');
    // Core parsed the config with its own copy; the plugin still sees its secret as a Password.
    expect(tokenSeenByPlugin).toEqual(['tok-1']);
    // Not left in doubt (`sending`): the connector promised nothing reached the provider.
    expect((await deliveriesById(handle.store, 'copy-fatal', [id])).get(id)?.state).toBe('pending');

    const healthy = recordingSink();
    const second = runner(healthy.connector, 'copy-fatal', topic);
    await second.start();
    await eventually(async () => (await deliveriesById(handle.store, 'copy-fatal', [id])).get(id)?.state === 'sent', 'sent by the next run');
    expect(healthy.received.map((r) => r.id)).toEqual([id]);
  });

  it('any other exception from put still leaves the batch in doubt (the control for the test above)', async () => {
    const topic = `doubt-${Date.now().toString(36)}`;
    await handle.store.createTopic(newTopic({ name: topic, shards: 1 }));
    const r = runner(failingPluginSink(() => new pluginSdk.PermanentError('OMNI_ERR_PLUGIN_BUG', 'thrown instead of returned')), 'copy-doubt', topic);
    await r.start();
    const id = (await producer.produce(topic, [{ key: 'k', value: 'in doubt' }]))[0]!.id;
    await r.failure;
    expect((await deliveriesById(handle.store, 'copy-doubt', [id])).get(id)?.state).toBe('sending');
  });

  it('its RetriableError is retriable, its PermanentError permanent, for the guards core uses', () => {
    expect(coreSdk.isRetriable(new pluginSdk.RetriableError('later', { retryAfterMs: 10 }))).toBe(true);
    expect(coreSdk.isPermanent(new pluginSdk.PermanentError('C', 'never'))).toBe(true);
    expect(coreSdk.isFatalConnectorError(new pluginSdk.RetriableError('later'))).toBe(false);
  });

  it('its ConfigError is a config error: a 400 listing the problems by key', () => {
    const answer = toHttpError(new pluginSdk.ConfigError({ 'plugin.token': ['Missing required configuration'] }));
    expect(answer).toEqual({
      status: 400,
      body: { error_code: 400, message: expect.stringContaining('plugin.token'), errors: { 'plugin.token': ['Missing required configuration'] } },
    });
  });

  it('its Password is a secret: read where core needs the value, hidden everywhere else', () => {
    const auth = authConfigFrom({
      'rest.auth.bearer.tokens': new pluginSdk.Password('token-a, token-b'),
      'rest.auth.basic.users': new pluginSdk.Password('ada:lovelace'),
    } as never);
    expect(JSON.stringify(auth)).toContain('token-b');
    expect(JSON.stringify(auth)).toContain('lovelace');
    expect(JSON.stringify({ p: new pluginSdk.Password('lovelace') })).not.toContain('lovelace');
  });

  it('its ConfigSpec is accepted: merged with the common keys, secrets known, parsed into secrets', () => {
    const connector = failingPluginSink(() => new Error('unused'));
    expect(coreSdk.isConfigSpec(connector.config)).toBe(true);
    const spec = fullSpec(connector.config as coreSdk.ConfigSpec<unknown>);
    expect(spec.isSecret('plugin.token')).toBe(true);
    expect(spec.key('tasks.max')).toBeDefined();
    const parsed = spec.parse({ name: 'n', 'connector.class': 'PluginSink', 'plugin.token': 's3cret' }) as Record<string, unknown>;
    expect(coreSdk.isPassword(parsed['plugin.token'])).toBe(true);
    expect(String(parsed['plugin.token'])).toBe('[hidden]');
    const infos = spec.validate('PluginSink', { name: 'n', 'connector.class': 'PluginSink', 'plugin.token': 's3cret' });
    expect(infos.error_count).toBe(0);
    expect(JSON.stringify(infos)).not.toContain('s3cret');
  });
});
