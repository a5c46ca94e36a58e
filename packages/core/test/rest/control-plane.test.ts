// Kafka Connect's REST API, endpoint by endpoint: status codes, bodies and quirks as in
// reference/kafka-connect.md §1.3, every response checked against the served OpenAPI document.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectDocumented } from './openapi-check.ts';
import { helloConfig, startTestWorker, type TestWorker } from './harness.ts';

let worker: TestWorker;

beforeAll(async () => {
  worker = await startTestWorker();
});
afterAll(async () => {
  await worker?.close();
});

interface Answer {
  status: number;
  body: unknown;
  text: string;
  headers: Record<string, unknown>;
}

async function call(method: string, url: string, payload?: unknown, headers: Record<string, string> = {}): Promise<Answer> {
  // Objects are sent as JSON by inject; strings are sent as given, declared as JSON.
  const response = await worker.app.inject({
    method: method as 'GET',
    url,
    headers: typeof payload === 'string' ? { 'content-type': 'application/json', ...headers } : headers,
    ...(payload === undefined ? {} : { payload: payload as string }),
  });
  expectDocumented(method, url, { statusCode: response.statusCode, body: response.body, headers: response.headers });
  return {
    status: response.statusCode,
    body: response.body === '' ? undefined : (JSON.parse(response.body) as unknown),
    text: response.body,
    headers: response.headers,
  };
}

/** The stored connectors, to prove a rejected request changed nothing. */
async function storedConnectors() {
  return JSON.stringify(await worker.store.listConnectors());
}

async function expectRejected(method: string, url: string, payload: unknown, status: number, message: string | RegExp) {
  const before = await storedConnectors();
  const answer = await call(method, url, payload);
  expect(answer.status).toBe(status);
  expect(answer.body).toMatchObject({ error_code: status, message: typeof message === 'string' ? message : expect.stringMatching(message) });
  expect(await storedConnectors()).toBe(before);
}

describe('GET /', () => {
  it('describes the worker', async () => {
    const answer = await call('GET', '/');
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({
      version: '3.9.0',
      commit: expect.stringMatching(/^[0-9a-f]{16}$/),
      kafka_cluster_id: expect.stringMatching(/^[A-Za-z0-9_-]{22}$/),
      omnibus_version: expect.stringMatching(/^\d+\.\d+\.\d+/),
    });
  });
});

describe('POST /connectors', () => {
  it('creates a connector: 201, Location, ConnectorInfo', async () => {
    const answer = await call('POST', '/connectors', { name: 'hello-a', config: helloConfig('hello-a') });
    expect(answer.status).toBe(201);
    expect(answer.headers.location).toBe('/connectors/hello-a');
    expect(answer.body).toEqual({
      name: 'hello-a',
      config: { 'connector.class': 'HelloSink', topics: 'people', name: 'hello-a' },
      tasks: [{ connector: 'hello-a', task: 0 }],
      type: 'sink',
    });
  });

  it('injects the name into a config that has none, trims it, and accepts numbers and booleans as Kafka does', async () => {
    const answer = await call('POST', '/connectors', {
      name: '  hello-num ',
      config: { 'connector.class': 'HelloSink', topics: 'people', 'tasks.max': 2, 'errors.retry.max.attempts': 3 },
    });
    expect(answer.status).toBe(201);
    expect(answer.body).toMatchObject({ name: 'hello-num', config: { name: 'hello-num', 'tasks.max': '2' }, tasks: [{ task: 0 }, { task: 1 }] });
  });

  it('percent-encodes the name in Location', async () => {
    const answer = await call('POST', '/connectors', { name: 'hello été', config: helloConfig('hello été') });
    expect(answer.status).toBe(201);
    expect(answer.headers.location).toBe('/connectors/hello%20%C3%A9t%C3%A9');
    expect((await call('GET', answer.headers.location as string)).status).toBe(200);
  });

  it('takes initial_state case-insensitively (KIP-980)', async () => {
    expect((await call('POST', '/connectors', { name: 'hello-paused', config: helloConfig('hello-paused'), initial_state: 'paused' })).status).toBe(201);
    expect((await worker.store.getConnector('hello-paused'))?.targetState).toBe('PAUSED');
    const stopped = await call('POST', '/connectors', { name: 'hello-stopped', config: helloConfig('hello-stopped'), initial_state: 'STOPPED' });
    expect(stopped.body).toMatchObject({ tasks: [] });
    expect((await worker.store.getConnector('hello-stopped'))?.targetState).toBe('STOPPED');
  });

  it('answers 409 for a name that exists', async () => {
    await expectRejected('POST', '/connectors', { name: 'hello-a', config: helloConfig('hello-a', { 'hello.greeting': 'Hi' }) }, 409, 'Connector hello-a already exists');
  });

  it('rejects malformed requests with 400 and creates nothing', async () => {
    await expectRejected('POST', '/connectors', { name: 'x', config: helloConfig('y') }, 400, "Connector name configuration (y) doesn't match connector name in the URL (x)");
    await expectRejected('POST', '/connectors', { name: 'x' }, 400, /no connector config/);
    await expectRejected('POST', '/connectors', { name: 'x', config: ['a'] }, 400, /must be a JSON object, not an array/);
    await expectRejected('POST', '/connectors', { name: 'x', config: { ...helloConfig('x'), topics: { a: 1 } } }, 400, /Invalid value for topics: expected a string/);
    await expectRejected('POST', '/connectors', { name: 'x', config: { ...helloConfig('x'), topics: null } }, 400, /Null value can not be supplied/);
    await expectRejected('POST', '/connectors', { name: 'x', config: helloConfig('x'), initialState: 'PAUSED' }, 400, /Unrecognized field "initialState"/);
    await expectRejected('POST', '/connectors', { name: 'x', config: helloConfig('x'), initial_state: 'SLEEPING' }, 400, /Invalid initial_state/);
    await expectRejected('POST', '/connectors', { name: '   ', config: { 'connector.class': 'HelloSink' } }, 400, 'Connector name must not be empty');
    await expectRejected('POST', '/connectors', { name: 'a/b', config: { 'connector.class': 'HelloSink' } }, 400, /slashes/);
    await expectRejected('POST', '/connectors', { name: 'a\u0007b', config: { 'connector.class': 'HelloSink' } }, 400, /control characters/);
    await expectRejected('POST', '/connectors', { name: 42, config: {} }, 400, 'Connector name must be a string');
    await expectRejected('POST', '/connectors', [], 400, /must be a JSON object/);
    await expectRejected('POST', '/connectors', '"just a string"', 400, /must be a JSON object/);
  });

  it('rejects an invalid config with the herder\'s validation message and creates nothing', async () => {
    await expectRejected('POST', '/connectors', { name: 'x', config: { topics: 'people' } }, 400, /contains no connector type/);
    await expectRejected('POST', '/connectors', { name: 'x', config: { 'connector.class': 'NoSuchSink' } }, 400, /NoSuchSink/);
    await expectRejected(
      'POST',
      '/connectors',
      { name: 'x', config: helloConfig('x', { 'tasks.max': '0' }) },
      400,
      /^Connector configuration is invalid and contains the following 1 error\(s\):\n.*tasks\.max/,
    );
  });

  it('answers 400 to malformed JSON and 415 to a body that is not JSON', async () => {
    const before = await storedConnectors();
    const broken = await worker.app.inject({ method: 'POST', url: '/connectors', payload: '{"name": "x", ', headers: { 'content-type': 'application/json' } });
    expect(broken.statusCode).toBe(400);
    expect(broken.json()).toMatchObject({ error_code: 400, message: expect.any(String) });
    const text = await worker.app.inject({ method: 'POST', url: '/connectors', payload: 'name=x', headers: { 'content-type': 'text/plain' } });
    expect(text.statusCode).toBe(415);
    expect(text.json()).toMatchObject({ error_code: 415 });
    const poisoned = await worker.app.inject({
      method: 'POST',
      url: '/connectors',
      payload: '{"name":"x","config":{},"__proto__":{"admin":true}}',
      headers: { 'content-type': 'application/json' },
    });
    expect(poisoned.statusCode).toBe(400);
    expect(await storedConnectors()).toBe(before);
  });
});

describe('GET /connectors', () => {
  it('lists the names, sorted', async () => {
    const answer = await call('GET', '/connectors');
    expect(answer.status).toBe(200);
    const names = answer.body as string[];
    expect(names).toContain('hello-a');
    expect([...names].sort()).toEqual(names);
  });

  it('expands status and info, repeatable', async () => {
    const answer = await call('GET', '/connectors?expand=status&expand=info');
    const entry = (answer.body as Record<string, { status: unknown; info: unknown }>)['hello-a'];
    expect(entry).toEqual({
      status: { name: 'hello-a', connector: { state: 'UNASSIGNED', worker_id: '' }, tasks: [{ id: 0, state: 'UNASSIGNED', worker_id: '' }], type: 'sink' },
      info: { name: 'hello-a', config: helloConfig('hello-a'), tasks: [{ connector: 'hello-a', task: 0 }], type: 'sink' },
    });
    const infoOnly = await call('GET', '/connectors?expand=info');
    expect(Object.keys((infoOnly.body as Record<string, object>)['hello-a'] ?? {})).toEqual(['info']);
  });

  it('ignores unknown expand values, as Kafka does', async () => {
    const answer = await call('GET', '/connectors?expand=bogus');
    expect(answer.status).toBe(200);
    expect((answer.body as Record<string, object>)['hello-a']).toEqual({});
  });
});

describe('GET /connectors/{connector}[/config]', () => {
  it('answers the info and the config', async () => {
    expect((await call('GET', '/connectors/hello-a')).body).toMatchObject({ name: 'hello-a', type: 'sink' });
    expect((await call('GET', '/connectors/hello-a/config')).body).toEqual(helloConfig('hello-a'));
  });

  it('answers 404 for an unknown connector', async () => {
    const answer = await call('GET', '/connectors/nope');
    expect(answer).toMatchObject({ status: 404, body: { error_code: 404, message: 'Connector nope not found' } });
    expect((await call('GET', '/connectors/nope/config')).status).toBe(404);
  });
});

describe('PUT /connectors/{connector}/config', () => {
  it('creates (201 + Location), then updates (200)', async () => {
    const created = await call('PUT', '/connectors/hello-b/config', helloConfig('hello-b'));
    expect(created.status).toBe(201);
    expect(created.headers.location).toBe('/connectors/hello-b');
    const updated = await call('PUT', '/connectors/hello-b/config', { 'connector.class': 'HelloSink', topics: 'people', 'hello.greeting': 'Hi' });
    expect(updated.status).toBe(200);
    expect(updated.headers.location).toBeUndefined();
    expect(updated.body).toMatchObject({ config: { name: 'hello-b', 'hello.greeting': 'Hi' } });
  });

  it('rejects a name mismatch, wrong types and invalid configs without touching the stored config', async () => {
    await expectRejected('PUT', '/connectors/hello-b/config', helloConfig('other'), 400, /doesn't match connector name in the URL \(hello-b\)/);
    await expectRejected('PUT', '/connectors/hello-b/config', { ...helloConfig('hello-b'), topics: ['people'] }, 400, /expected a string, not an array/);
    await expectRejected('PUT', '/connectors/hello-b/config', helloConfig('hello-b', { 'hello.greeting': ' ' }), 400, /hello\.greeting/);
    await expectRejected('PUT', '/connectors/hello-b/config', 'null', 400, /must be a JSON object, not null/);
    await expectRejected('PUT', '/connectors/a%2Fb/config', helloConfig('a/b'), 400, /slashes/);
  });
});

describe('PATCH /connectors/{connector}/config', () => {
  it('merges, and a null removes a key', async () => {
    const answer = await call('PATCH', '/connectors/hello-b/config', { 'hello.greeting': null, 'hello.file': '/tmp/greetings.txt' });
    expect(answer.status).toBe(200);
    const config = (answer.body as { config: Record<string, string> }).config;
    expect(config['hello.file']).toBe('/tmp/greetings.txt');
    expect(config).not.toHaveProperty('hello.greeting');
  });

  it('answers 404 for an unknown connector (PATCH never creates) and 400 for an invalid result', async () => {
    await expectRejected('PATCH', '/connectors/nope/config', { topics: 'x' }, 404, 'Connector nope not found');
    await expectRejected('PATCH', '/connectors/hello-b/config', { 'tasks.max': 'many' }, 400, /tasks\.max/);
    await expectRejected('PATCH', '/connectors/hello-b/config', { name: 'renamed' }, 400, /doesn't match connector name/);
    await expectRejected('PATCH', '/connectors/hello-b/config', { topics: { deep: true } }, 400, /expected a string/);
  });
});

describe('status and tasks', () => {
  it('answers the connector status, the tasks and the deprecated tasks-config', async () => {
    expect((await call('GET', '/connectors/hello-a/status')).body).toMatchObject({ name: 'hello-a', connector: { state: 'UNASSIGNED' }, type: 'sink' });
    expect((await call('GET', '/connectors/hello-a/tasks')).body).toEqual([{ id: { connector: 'hello-a', task: 0 }, config: helloConfig('hello-a') }]);
    expect((await call('GET', '/connectors/hello-a/tasks-config')).body).toEqual({ 'hello-a-0': helloConfig('hello-a') });
    expect((await call('GET', '/connectors/nope/status')).body).toMatchObject({ error_code: 404, message: 'No status found for connector nope' });
  });

  it('answers a task status, 404 for an unknown task, 400 for an id that is not one', async () => {
    expect((await call('GET', '/connectors/hello-a/tasks/0/status')).body).toEqual({ id: 0, state: 'UNASSIGNED', worker_id: '' });
    expect((await call('GET', '/connectors/hello-a/tasks/7/status')).body).toMatchObject({ error_code: 404, message: 'No status found for task hello-a-7' });
    for (const bad of ['abc', '-1', '1.5', '99999999999', '0x1']) {
      expect((await call('GET', `/connectors/hello-a/tasks/${bad}/status`)).status).toBe(400);
    }
  });

  it('restarts a task: 204, or 404 for an unknown one', async () => {
    expect((await call('POST', '/connectors/hello-a/tasks/0/restart')).status).toBe(204);
    expect((await call('POST', '/connectors/hello-a/tasks/3/restart')).body).toMatchObject({ error_code: 404, message: 'Unknown task: hello-a-3' });
  });
});

describe('POST /connectors/{connector}/restart', () => {
  it('answers 204 without flags and 202 with the RESTARTING status with them', async () => {
    expect((await call('POST', '/connectors/hello-num/restart')).status).toBe(204);
    const answer = await call('POST', '/connectors/hello-num/restart?includeTasks=true&onlyFailed=false');
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({ connector: { state: 'RESTARTING' }, tasks: [{ id: 0, state: 'RESTARTING' }, { id: 1, state: 'RESTARTING' }] });
  });

  it('only restarts failed instances with onlyFailed', async () => {
    await call('POST', '/connectors', { name: 'hello-failing', config: helloConfig('hello-failing', { 'tasks.max': '2' }) });
    const generation = (await worker.store.getConnector('hello-failing'))?.generation ?? 0;
    // What a worker reports when task 1 fails.
    await worker.store.putStatus({ connector: 'hello-failing', task: 1, state: 'FAILED', workerId: 'w1:8083', trace: 'Error: boom', generation, updatedAt: Date.now() });
    const answer = await call('POST', '/connectors/hello-failing/restart?includeTasks=TRUE&onlyFailed=true');
    expect(answer.status).toBe(202);
    expect(answer.body).toMatchObject({
      connector: { state: 'UNASSIGNED' },
      tasks: [
        { id: 0, state: 'UNASSIGNED' },
        { id: 1, state: 'RESTARTING', worker_id: 'w1:8083' },
      ],
    });
  });

  it('takes a flag that is not true as false (as Kafka), answers 404 to an unknown connector', async () => {
    expect((await call('POST', '/connectors/hello-a/restart?includeTasks=maybe')).status).toBe(204);
    expect((await call('POST', '/connectors/hello-a/restart?onlyFailed=1&onlyFailed=0')).status).toBe(204);
    expect((await call('POST', '/connectors/nope/restart')).body).toMatchObject({ error_code: 404, message: 'Unknown connector: nope' });
  });
});

describe('pause, resume, stop', () => {
  it('answer 202, 202, 204 and write the target state', async () => {
    expect((await call('PUT', '/connectors/hello-b/pause')).status).toBe(202);
    expect((await worker.store.getConnector('hello-b'))?.targetState).toBe('PAUSED');
    expect((await call('PUT', '/connectors/hello-b/pause')).status).toBe(202);
    expect((await call('PUT', '/connectors/hello-b/resume')).status).toBe(202);
    expect((await worker.store.getConnector('hello-b'))?.targetState).toBe('STARTED');
    expect((await call('PUT', '/connectors/hello-b/stop')).status).toBe(204);
    expect((await worker.store.getConnector('hello-b'))?.targetState).toBe('STOPPED');
  });

  it('accept an empty body sent as application/json (curl -H "Content-Type: application/json")', async () => {
    expect((await call('PUT', '/connectors/hello-b/resume', '')).status).toBe(202);
  });

  it('answer 404 for an unknown connector', async () => {
    expect((await call('PUT', '/connectors/nope/pause')).body).toMatchObject({ error_code: 404, message: 'Unknown connector nope' });
    expect((await call('PUT', '/connectors/nope/stop')).status).toBe(404);
  });
});

describe('topics', () => {
  it('answers the active topics keyed by the name (none before any record), and 202 to a reset', async () => {
    expect((await call('GET', '/connectors/hello-a/topics')).body).toEqual({ 'hello-a': { topics: [] } });
    const reset = await call('PUT', '/connectors/hello-a/topics/reset');
    expect(reset.status).toBe(202);
    expect(reset.body).toBeUndefined();
    expect((await call('GET', '/connectors/nope/topics')).status).toBe(404);
  });
});

describe('offsets', () => {
  it('refuses to alter or reset the offsets of a connector that is not stopped', async () => {
    expect((await call('GET', '/connectors/hello-a/offsets')).body).toEqual({ offsets: [] });
    const body = { offsets: [{ partition: { topic: 'people', shard: 0 }, offset: { watermark: 1000 } }] };
    expect((await call('PATCH', '/connectors/hello-a/offsets', body)).body).toMatchObject({ error_code: 400, message: /STOPPED state/ });
    expect((await call('DELETE', '/connectors/hello-a/offsets')).body).toMatchObject({ error_code: 400, message: /STOPPED state/ });
  });

  it('alters and resets the watermarks of a stopped sink', async () => {
    await worker.store.createTopic({ name: 'people', shards: 2, retentionMs: 3_600_000, createdAt: Date.now() });
    expect((await call('PUT', '/connectors/hello-a/stop')).status).toBe(204);
    const body = { offsets: [{ partition: { topic: 'people', shard: 1 }, offset: { watermark: 1000 } }] };
    expect((await call('PATCH', '/connectors/hello-a/offsets', body)).body).toEqual({ message: 'The offsets for this connector have been altered successfully' });
    expect((await call('GET', '/connectors/hello-a/offsets')).body).toEqual({ offsets: [{ partition: { topic: 'people', shard: 1 }, offset: { watermark: 1000 } }] });
    expect((await call('DELETE', '/connectors/hello-a/offsets')).body).toEqual({ message: 'The offsets for this connector have been reset successfully' });
    expect((await call('GET', '/connectors/hello-a/offsets')).body).toEqual({ offsets: [{ partition: { topic: 'people', shard: 1 }, offset: { watermark: 0 } }] });
    expect((await call('PUT', '/connectors/hello-a/resume')).status).toBe(202);
  });

  it('rejects malformed offset bodies with 400', async () => {
    for (const body of [{}, { offsets: [] }, { offsets: 'x' }, { offsets: [{ partition: 1, offset: {} }] }, { offsets: [{ partition: {}, offset: [1] }] }]) {
      expect((await call('PATCH', '/connectors/hello-a/offsets', body)).status).toBe(400);
    }
    expect((await call('PATCH', '/connectors/hello-a/offsets', {})).body).toMatchObject({
      message: 'Partitions / offsets need to be provided for an alter offsets request',
    });
    expect((await call('GET', '/connectors/nope/offsets')).status).toBe(404);
  });
});

describe('connector plugins', () => {
  it('lists the installed connectors with their version', async () => {
    const answer = await call('GET', '/connector-plugins');
    expect(answer.body).toContainEqual({ class: 'HelloSink', type: 'sink', version: '0.1.0' });
    // As Kafka: all plugins are the connectors, then the transformations and predicates.
    const connectors = answer.body as unknown[];
    const all = (await call('GET', '/connector-plugins?connectorsOnly=false')).body as Array<{ type: string }>;
    expect(all.slice(0, connectors.length)).toEqual(connectors);
    expect(new Set(all.slice(connectors.length).map((p) => p.type))).toEqual(new Set(['transformation', 'predicate']));
    // Kafka's Boolean parameter: anything but true is false.
    expect((await call('GET', '/connector-plugins?connectorsOnly=perhaps')).body).toEqual(all);
  });

  it("answers a plugin's config definition: its own keys first, then the common ones", async () => {
    const answer = await call('GET', '/connector-plugins/HelloSink/config');
    const names = (answer.body as Array<{ name: string }>).map((k) => k.name);
    expect(names.slice(0, 3)).toEqual(['hello.greeting', 'hello.file', 'hello.webhook.secret']);
    expect(names).toEqual(expect.arrayContaining(['name', 'connector.class', 'tasks.max', 'topics', 'delivery.guarantee']));
    expect((answer.body as Array<{ name: string; type: string }>).find((k) => k.name === 'hello.webhook.secret')?.type).toBe('PASSWORD');
    expect((await call('GET', '/connector-plugins/Hello/config')).body).toEqual(answer.body);
    expect((await call('GET', '/connector-plugins/Nope/config')).body).toEqual({ error_code: 404, message: 'Unknown plugin Nope.' });
  });

  it('validates a config: 200 even with errors, Kafka\'s ConfigInfos', async () => {
    const answer = await call('PUT', '/connector-plugins/HelloSink/config/validate', { 'connector.class': 'HelloSink', topics: 'people', 'hello.greeting': ' ' });
    expect(answer.status).toBe(200);
    const infos = answer.body as { name: string; error_count: number; configs: Array<{ definition: { name: string }; value: { errors: string[] } }> };
    expect(infos.name).toBe('HelloSink');
    expect(infos.error_count).toBeGreaterThan(0);
    expect(infos.configs.find((c) => c.definition.name === 'hello.greeting')?.value.errors).not.toEqual([]);
    const valid = await call('PUT', '/connector-plugins/HelloSinkConnector/config/validate', helloConfig('v'));
    expect(valid.body).toMatchObject({ error_count: 0 });
  });

  it("compares the path's plugin name as Kafka does, and needs connector.class", async () => {
    expect((await call('PUT', '/connector-plugins/FileSink/config/validate', helloConfig('v'))).body).toEqual({
      error_code: 400,
      message: 'Included connector type HelloSink does not match request type FileSink',
    });
    expect((await call('PUT', '/connector-plugins/Sink/config/validate', helloConfig('v'))).status).toBe(200);
    expect((await call('PUT', '/connector-plugins/HelloSink/config/validate', { topics: 'x' })).body).toMatchObject({
      error_code: 400,
      message: /contains no connector type/,
    });
    expect((await call('PUT', '/connector-plugins/HelloSink/config/validate', { 'connector.class': ['HelloSink'] })).status).toBe(400);
  });
});

describe('DELETE /connectors/{connector}', () => {
  it('answers 204, then 404', async () => {
    expect((await call('DELETE', '/connectors/hello-paused')).status).toBe(204);
    expect((await call('GET', '/connectors/hello-paused')).status).toBe(404);
    expect((await call('DELETE', '/connectors/hello-paused')).body).toEqual({ error_code: 404, message: 'Connector hello-paused not found' });
    expect(await worker.store.listStatuses('hello-paused')).toEqual([]);
  });
});

describe('unknown paths and methods', () => {
  it('answer 404 with the error body', async () => {
    const response = await worker.app.inject({ method: 'GET', url: '/connectorz' });
    expect(response.statusCode).toBe(404);
    expect(response.json()).toMatchObject({ error_code: 404, message: expect.any(String) });
    const wrongMethod = await worker.app.inject({ method: 'POST', url: '/connectors/hello-a/status' });
    expect(wrongMethod.statusCode).toBe(404);
    expect(wrongMethod.json()).toMatchObject({ error_code: 404 });
  });
});
