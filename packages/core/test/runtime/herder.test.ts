// The herder against the real LMDB store, inside a real worker (REST not involved): every
// control-plane operation, the statuses the reconcile loop reports, and what survives a restart.
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { Password } from '@omnibus/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureTopic } from '../../src/bus/topics.ts';
import type { ConnectorStateInfo } from '../../src/runtime/types.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { eventually, FIXTURE_PLUGINS, rejection, startWorker } from './helpers.ts';
import { deliveriesById, storeDelivered } from '../bus/helpers.ts';

const WHATSAPP_PACKAGE = fileURLToPath(new URL('../../../connector-whatsapp', import.meta.url));

let dir: string;
let storeUrl: string;
/** The tests' placeholders read OMNIBUS_TEST_* variables; nothing else is allowed. */
const PROVIDERS = { 'config.providers.env.allowed.names': ['OMNIBUS_TEST_*'] };
let worker: Worker;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-herder-'));
  storeUrl = `lmdb:${join(dir, 'data')}`;
  // Core depends on no connector package: the WhatsApp sink (a sink with a webhook) comes
  // from the workspace through plugin.path, as a third-party package would.
  worker = await startWorker(storeUrl, { ...PROVIDERS, 'plugin.path': [FIXTURE_PLUGINS, WHATSAPP_PACKAGE] });
});

afterAll(async () => {
  await worker?.stop();
  await rm(dir, { recursive: true, force: true });
});

const fileSink = (name: string, extra: Record<string, string> = {}) => ({
  name,
  'connector.class': 'FileSink',
  topics: `${name}-topic`,
  file: join(dir, `${name}.jsonl`),
  ...extra,
});

const status = (name: string) => worker.herder.connectorStatus(name);
const untilStatus = (name: string, accept: (s: ConnectorStateInfo) => boolean, what: string) => eventually(() => status(name), accept, what);
const allTasks = (s: ConnectorStateInfo, state: string) => s.tasks.length > 0 && s.tasks.every((t) => t.state === state);

describe('herder validation', () => {
  it('rejects what Kafka rejects, with its messages, and writes nothing', async () => {
    const herder = worker.herder;
    const noClass = await rejection(herder.createConnector('v1', { name: 'v1', topics: 't' }));
    expect(noClass).toEqual({ status: 400, message: 'Connector config {name=v1, topics=t} contains no connector type' });

    const unknown = await rejection(herder.createConnector('v1', { 'connector.class': 'NoSuchSink' }));
    expect(unknown.status).toBe(400);
    expect(unknown.message).toContain('Failed to find any class that implements Connector and which name matches NoSuchSink');
    expect(unknown.message).toContain('FileSink');

    const invalid = await rejection(herder.createConnector('v1', { 'connector.class': 'FileSink', 'tasks.max': '0', 'file.fsync': 'maybe' }));
    expect(invalid).toEqual({
      status: 400,
      message:
        'Connector configuration is invalid and contains the following 3 error(s):\n' +
        'Invalid value 0 for configuration tasks.max: Value must be at least 1\n' +
        'Missing required configuration "file" which has no default value.\n' +
        'Invalid value "maybe" for configuration file.fsync: Expected value to be either true or false\n' +
        'You can also find the above list of errors at the endpoint `/connector-plugins/{connectorType}/config/validate`',
    });

    const mismatch = await rejection(herder.putConnectorConfig('v1', { ...fileSink('v1'), name: 'other' }));
    expect(mismatch).toEqual({ status: 400, message: "Connector name configuration (other) doesn't match connector name in the URL (v1)" });

    const numbers = await rejection(herder.createConnector('v1', { ...fileSink('v1'), 'tasks.max': 2 } as never));
    expect(numbers.status).toBe(400);
    expect(numbers.message).toContain('"tasks.max" is a number');

    const badName = await rejection(herder.createConnector('a/b', { ...fileSink('a/b') }));
    expect(badName.status).toBe(400);
    expect(badName.message).toContain('for configuration name');

    expect(await herder.connectorNames()).toEqual([]);
    expect((await rejection(herder.connectorInfo('v1'))).status).toBe(404);
  });

  it('a rejected update leaves the stored connector as it was', async () => {
    const herder = worker.herder;
    await herder.createConnector('keep', fileSink('keep'), 'STOPPED');
    const before = await worker.store.getConnector('keep');
    expect((await rejection(herder.putConnectorConfig('keep', { ...fileSink('keep'), 'tasks.max': 'many' }))).status).toBe(400);
    expect((await rejection(herder.patchConnectorConfig('keep', { file: null }))).status).toBe(400);
    expect(await worker.store.getConnector('keep')).toEqual(before);
    await herder.deleteConnector('keep');
  });

  it('validate answers Kafka-shaped results with the errors per key, and 200 even when invalid', async () => {
    const infos = await worker.herder.validateConfig('FileSink', { 'connector.class': 'FileSink', 'tasks.max': 'x', file: null });
    expect(infos.name).toBe('FileSink');
    expect(infos.error_count).toBe(3);
    const byName = new Map(infos.configs.map((c) => [c.definition.name, c.value]));
    expect(byName.get('name')?.errors).toEqual(['Missing required configuration "name" which has no default value.']);
    expect(byName.get('tasks.max')?.errors).toEqual(['Invalid value "x" for configuration tasks.max: Expected an integer']);
    expect(byName.get('file')?.errors).toEqual(['Null value can not be supplied as the configuration value.']);
  });
});

describe('connector lifecycle', () => {
  it('create → RUNNING tasks on this worker; 409 on a second create', async () => {
    const herder = worker.herder;
    const info = await herder.createConnector('life', fileSink('life', { 'tasks.max': '3' }));
    expect(info).toMatchObject({ name: 'life', type: 'sink', tasks: [0, 1, 2].map((task) => ({ connector: 'life', task })) });
    expect(info.config.name).toBe('life');
    expect(await rejection(herder.createConnector('life', fileSink('life')))).toEqual({ status: 409, message: 'Connector life already exists' });

    const running = await untilStatus('life', (s) => s.connector.state === 'RUNNING' && allTasks(s, 'RUNNING'), 'life to run');
    expect(running).toEqual({
      name: 'life',
      type: 'sink',
      connector: { state: 'RUNNING', worker_id: worker.workerId },
      tasks: [0, 1, 2].map((id) => ({ id, state: 'RUNNING', worker_id: worker.workerId })),
    });
    expect((await herder.taskConfigs('life')).map((t) => t.config.file)).toEqual([0, 1, 2].map(() => join(dir, 'life.jsonl')));
  });

  it('pause and resume move connector and tasks, idempotently', async () => {
    const herder = worker.herder;
    await herder.setTargetState('life', 'PAUSED');
    await herder.setTargetState('life', 'PAUSED');
    await untilStatus('life', (s) => s.connector.state === 'PAUSED' && allTasks(s, 'PAUSED'), 'life to pause');
    expect((await worker.store.getConnector('life'))?.targetState).toBe('PAUSED');
    await herder.setTargetState('life', 'STARTED');
    await untilStatus('life', (s) => s.connector.state === 'RUNNING' && allTasks(s, 'RUNNING'), 'life to resume');
  });

  it('restart: 202 snapshot with RESTARTING for the chosen instances, then RUNNING again', async () => {
    const herder = worker.herder;
    expect(await herder.restartConnector('life', { includeTasks: false, onlyFailed: false })).toBeUndefined();
    await untilStatus('life', (s) => s.connector.state === 'RUNNING', 'the connector to run after its restart');
    const onlyFailed = await herder.restartConnector('life', { includeTasks: true, onlyFailed: true });
    // Nothing failed, so nothing is restarted.
    expect(onlyFailed?.connector.state).toBe('RUNNING');
    expect(onlyFailed?.tasks.map((t) => t.state)).toEqual(['RUNNING', 'RUNNING', 'RUNNING']);

    const snapshot = await herder.restartConnector('life', { includeTasks: true, onlyFailed: false });
    expect(snapshot?.connector).toEqual({ state: 'RESTARTING', worker_id: worker.workerId });
    expect(snapshot?.tasks.map((t) => t.state)).toEqual(['RESTARTING', 'RESTARTING', 'RESTARTING']);
    await untilStatus('life', (s) => s.connector.state === 'RUNNING' && allTasks(s, 'RUNNING'), 'life to run after restart');

    await herder.restartTask('life', 1);
    await untilStatus('life', (s) => allTasks(s, 'RUNNING'), 'task 1 to run after its restart');
    expect(await rejection(herder.restartTask('life', 7))).toEqual({ status: 404, message: 'Unknown task: life-7' });
    expect(await rejection(herder.restartConnector('nope', { includeTasks: true, onlyFailed: false }))).toEqual({
      status: 404,
      message: 'Unknown connector: nope',
    });
  });

  it('a config change re-splits the tasks (generation + 1)', async () => {
    const herder = worker.herder;
    const before = (await worker.store.getConnector('life'))!.generation;
    // The same config again is no change at all.
    expect((await herder.putConnectorConfig('life', fileSink('life', { 'tasks.max': '3' }))).created).toBe(false);
    expect((await worker.store.getConnector('life'))!.generation).toBe(before);
    const { created, info } = await herder.putConnectorConfig('life', fileSink('life', { 'tasks.max': '2' }));
    expect(created).toBe(false);
    expect(info.tasks).toHaveLength(2);
    expect((await worker.store.getConnector('life'))!.generation).toBe(before + 1);
    const patched = await herder.patchConnectorConfig('life', { 'tasks.max': '4', 'file.fsync': 'true' });
    expect(patched.tasks).toHaveLength(4);
    expect(patched.config['file.fsync']).toBe('true');
    const s = await untilStatus('life', (x) => x.tasks.length === 4 && allTasks(x, 'RUNNING'), 'four running tasks');
    expect(s.tasks.map((t) => t.id)).toEqual([0, 1, 2, 3]);
  });

  it('stop: connector STOPPED without tasks; offsets only then; resume brings the tasks back', async () => {
    const herder = worker.herder;
    const notStopped = await rejection(herder.alterOffsets('life', [{ partition: { topic: 'life-topic', shard: 0 }, offset: { watermark: 5 } }]));
    expect(notStopped).toEqual({
      status: 400,
      message:
        "Connectors must be in the STOPPED state before their offsets can be modified. This can be done for the specified connector by issuing a 'PUT' request to the '/connectors/life/stop' endpoint",
    });
    expect((await rejection(herder.resetOffsets('life'))).status).toBe(400);

    await herder.setTargetState('life', 'STOPPED');
    const stopped = await untilStatus('life', (s) => s.connector.state === 'STOPPED', 'life to stop');
    expect(stopped.tasks).toEqual([]);
    expect((await herder.connectorInfo('life')).tasks).toEqual([]);
    await eventually(async () => worker.reconciler.localTasks().filter((t) => t.connector === 'life'), (l) => l.length === 0, 'life tasks to stop');

    // A sink's offsets are the watermarks of its topics' shards.
    await ensureTopic(worker.store, { name: 'life-topic', shards: 4 });
    expect(await rejection(herder.alterOffsets('life', []))).toEqual({
      status: 400,
      message: 'Partitions / offsets need to be provided for an alter offsets request',
    });
    expect((await rejection(herder.alterOffsets('life', [{ partition: { topic: 'life-topic', shard: 10_000 }, offset: { watermark: 1 } }]))).status).toBe(400);
    await herder.alterOffsets('life', [{ partition: { topic: 'life-topic', shard: 0 }, offset: { watermark: 12345 } }]);
    const offsets = await herder.offsets('life');
    expect(offsets).toContainEqual({ partition: { topic: 'life-topic', shard: 0 }, offset: { watermark: 12345 } });
    await herder.resetOffsets('life');
    expect(await herder.offsets('life')).toContainEqual({ partition: { topic: 'life-topic', shard: 0 }, offset: { watermark: 0 } });

    await herder.setTargetState('life', 'STARTED');
    const resumed = await untilStatus('life', (s) => s.connector.state === 'RUNNING' && s.tasks.length === 4 && allTasks(s, 'RUNNING'), 'life to resume');
    expect(resumed.tasks.every((t) => t.worker_id === worker.workerId)).toBe(true);
  });

  it('created STOPPED or PAUSED, it stays so until resumed', async () => {
    const herder = worker.herder;
    await herder.createConnector('born-paused', fileSink('born-paused', { 'tasks.max': '2' }), 'PAUSED');
    await untilStatus('born-paused', (s) => s.connector.state === 'PAUSED' && allTasks(s, 'PAUSED'), 'paused at birth');
    await herder.createConnector('born-stopped', fileSink('born-stopped'), 'STOPPED');
    const s = await untilStatus('born-stopped', (x) => x.connector.state === 'STOPPED', 'stopped at birth');
    expect(s.tasks).toEqual([]);
  });

  it('delete: gone from every read, statuses included', async () => {
    const herder = worker.herder;
    await herder.deleteConnector('born-stopped');
    expect(await rejection(herder.connectorStatus('born-stopped'))).toEqual({ status: 404, message: 'No status found for connector born-stopped' });
    expect(await rejection(herder.deleteConnector('born-stopped'))).toEqual({ status: 404, message: 'Connector born-stopped not found' });
    expect(await worker.store.listStatuses('born-stopped')).toEqual([]);
    expect(await herder.connectorNames()).not.toContain('born-stopped');
  });
});

describe('failures', () => {
  it('an unresolvable placeholder fails connector and tasks with a clear trace; a restart after the fix runs them', async () => {
    const herder = worker.herder;
    delete process.env.OMNIBUS_TEST_SINK_FILE;
    await herder.createConnector('secretive', fileSink('secretive', { file: '${env:OMNIBUS_TEST_SINK_FILE}', 'tasks.max': '2' }));
    const failed = await untilStatus('secretive', (s) => s.connector.state === 'FAILED' && allTasks(s, 'FAILED'), 'secretive to fail');
    expect(failed.connector.trace).toContain('"file" uses ${env:OMNIBUS_TEST_SINK_FILE}, which could not be resolved');
    expect(failed.tasks[0]?.trace).toContain('${env:OMNIBUS_TEST_SINK_FILE}');
    // Stored and shown as written: the placeholder, never a value.
    expect((await herder.connectorInfo('secretive')).config.file).toBe('${env:OMNIBUS_TEST_SINK_FILE}');

    process.env.OMNIBUS_TEST_SINK_FILE = join(dir, 'secretive-resolved.jsonl');
    const snapshot = await herder.restartConnector('secretive', { includeTasks: true, onlyFailed: true });
    expect(snapshot?.tasks.map((t) => t.state)).toEqual(['RESTARTING', 'RESTARTING']);
    const running = await untilStatus('secretive', (s) => s.connector.state === 'RUNNING' && allTasks(s, 'RUNNING'), 'secretive to run');
    expect(running.connector.trace).toBeUndefined();
    expect((await herder.taskConfigs('secretive'))[0]?.config.file).toBe('${env:OMNIBUS_TEST_SINK_FILE}');
  });

  it('a task whose start throws is FAILED with the stack as trace, and stays failed', async () => {
    const herder = worker.herder;
    // A plain file where the file's directory should be: the sink's open() fails at task start.
    await writeFile(join(dir, 'plain-file'), '');
    await herder.createConnector('broken', fileSink('broken', { file: join(dir, 'plain-file', 'broken.jsonl') }));
    const failed = await untilStatus('broken', (s) => allTasks(s, 'FAILED'), 'broken to fail');
    expect(failed.connector.state).toBe('RUNNING');
    expect(failed.tasks[0]?.trace).toMatch(/could not be opened for appending \(E(EXIST|NOTDIR)\)/);
    await herder.deleteConnector('broken');
  });
});

describe('task configs from the connector', () => {
  it("are split by the connector's taskConfigs and keep placeholders instead of secrets", async () => {
    const herder = worker.herder;
    process.env.OMNIBUS_TEST_SPLIT_SECRET = 'hunter2';
    const logFile = join(dir, 'split.log');
    await herder.createConnector('split', {
      'connector.class': 'SplitSink',
      topics: 'split-topic',
      targets: 'a,b,c',
      'tasks.max': '2',
      'api.password': '${env:OMNIBUS_TEST_SPLIT_SECRET}',
      'log.file': logFile,
    });
    const tasks = await herder.taskConfigs('split');
    expect(tasks.map((t) => t.config.targets)).toEqual(['a,c', 'b']);
    expect(tasks.every((t) => t.config['api.password'] === '${env:OMNIBUS_TEST_SPLIT_SECRET}')).toBe(true);
    expect(JSON.stringify(await worker.store.getConnector('split'))).not.toContain('hunter2');

    // The tasks themselves get the secret, resolved when they start.
    await untilStatus('split', (s) => allTasks(s, 'RUNNING'), 'split to run');
    const lines = (await readFile(logFile, 'utf8')).trim().split('\n').sort();
    expect(lines).toEqual(['a+c hunter2', 'b hunter2']);
  });
});

describe('webhooks and receipts', () => {
  it('webhookTarget resolves and parses the config of a sink with a webhook', async () => {
    const herder = worker.herder;
    process.env.OMNIBUS_TEST_WA_TOKEN = 'wa-token';
    await herder.createConnector(
      'wa',
      {
        'connector.class': 'WhatsAppSink',
        topics: 'wa-topic',
        'whatsapp.phone.number.id': '1234',
        'whatsapp.access.token': '${env:OMNIBUS_TEST_WA_TOKEN}',
        'whatsapp.app.secret': 'app-secret',
      },
      'STOPPED',
    );
    const target = await herder.webhookTarget('wa');
    expect(target?.connector.className).toBe('WhatsAppSink');
    const token = (target?.config as Record<string, unknown>)['whatsapp.access.token'];
    expect(token).toBeInstanceOf(Password);
    expect((token as Password).value()).toBe('wa-token');
    expect(await herder.webhookTarget('life')).toBeUndefined();
    expect(await herder.webhookTarget('nope')).toBeUndefined();
  });

  it('receipts map provider ids to messages and never move a delivery back', async () => {
    const store = worker.store;
    await storeDelivered(store, { connector: 'wa', messageId: 'm-1', state: 'sent', attempts: 1, epoch: 1, workerId: 'w', providerId: 'wamid.1', updatedAt: 1 });
    await store.putProviderIds([{ connector: 'wa', providerId: 'wamid.1', messageId: 'm-1', topic: 'receipts' }]);
    await worker.herder.applyDeliveryUpdates('wa', [
      { providerId: 'wamid.1', state: 'read', at: 2000 },
      { providerId: 'wamid.1', state: 'delivered', at: 1000 },
      { providerId: 'wamid.unknown', state: 'delivered', at: 1000 },
    ]);
    expect((await deliveriesById(store, 'wa', ['m-1'])).get('m-1')?.state).toBe('read');
    await worker.herder.applyDeliveryUpdates('wa', [{ messageId: 'm-1', state: 'delivered', at: 3000 }]);
    expect((await deliveriesById(store, 'wa', ['m-1'])).get('m-1')?.state).toBe('read');
    const events = await store.listEvents('m-1');
    expect(events.map((e) => e.type)).toEqual(['delivered', 'read', 'delivered']);
  });
});

describe('restarts of the worker', () => {
  it('configs, target states and task configs survive; the new worker reports them', async () => {
    await worker.herder.setTargetState('split', 'PAUSED');
    await untilStatus('split', (s) => allTasks(s, 'PAUSED'), 'split to pause');
    const before = await worker.store.listConnectors();
    await worker.stop();

    worker = await startWorker(storeUrl, PROVIDERS);
    expect(await worker.store.listConnectors()).toEqual(before);
    const split = await untilStatus('split', (s) => s.connector.state === 'PAUSED' && allTasks(s, 'PAUSED') && s.connector.worker_id === worker.workerId, 'split paused on the new worker');
    expect(split.tasks).toHaveLength(2);
    await untilStatus('life', (s) => s.connector.state === 'RUNNING' && allTasks(s, 'RUNNING') && s.tasks.every((t) => t.worker_id === worker.workerId), 'life running on the new worker');
    await untilStatus('born-paused', (s) => allTasks(s, 'PAUSED'), 'born-paused still paused');
    expect((await worker.herder.connectorStatus('wa')).connector.state).toBe('STOPPED');
  });
});
