// `/admin/loggers` (Kafka's KIP-495, levels changed at runtime) and `/metrics`.
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

async function call(method: string, url: string, payload?: unknown) {
  const response = await worker.app.inject({ method: method as 'GET', url, ...(payload === undefined ? {} : { payload: payload as object }) });
  expectDocumented(method, url, { statusCode: response.statusCode, body: response.body, headers: response.headers });
  return { status: response.statusCode, body: response.body === '' ? undefined : (response.json() as unknown) };
}

describe('/admin/loggers', () => {
  it("lists the worker's loggers, root first", async () => {
    const answer = await call('GET', '/admin/loggers');
    expect(answer.status).toBe(200);
    const levels = answer.body as Record<string, { level: string; last_modified: number | null }>;
    expect(Object.keys(levels)[0]).toBe('root');
    expect(levels['omnibus.herder']).toEqual({ level: 'DEBUG', last_modified: null });
  });

  it('answers one logger, or 404', async () => {
    expect((await call('GET', '/admin/loggers/omnibus.rest')).body).toEqual({ level: 'DEBUG', last_modified: null });
    expect((await call('GET', '/admin/loggers/nope')).body).toEqual({ error_code: 404, message: 'Logger nope not found.' });
  });

  it('sets a namespace and everything under it, and the loggers really change level', async () => {
    const before = Date.now();
    const answer = await call('PUT', '/admin/loggers/omnibus', { level: 'warn' });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual(['omnibus', 'omnibus.herder', 'omnibus.hooks', 'omnibus.rest']);
    const herder = (await call('GET', '/admin/loggers/omnibus.herder')).body as { level: string; last_modified: number };
    expect(herder.level).toBe('WARN');
    expect(herder.last_modified).toBeGreaterThanOrEqual(before);
    expect((await call('GET', '/admin/loggers/root')).body).toMatchObject({ level: 'DEBUG' });

    await worker.herder.createConnector('quiet', helloConfig('quiet'));
    expect(await worker.logText()).not.toContain('"connector":"quiet"');
    expect((await call('PUT', '/admin/loggers/omnibus.herder', { level: 'INFO' })).body).toEqual(['omnibus.herder']);
    await worker.herder.createConnector('loud', helloConfig('loud'));
    expect(await worker.logText()).toMatch(/"connector":"loud".*"connector created"/);
  });

  it('changes the children made from a named logger, at any depth, as well', async () => {
    const grandchild = worker.loggers.get('omnibus.tasks').child({ connector: 'c' }).child({ task: 1 });
    // Set to WARN above, through its namespace.
    expect(grandchild.level).toBe('warn');
    await call('PUT', '/admin/loggers/omnibus.tasks', { level: 'ERROR' });
    expect(grandchild.level).toBe('error');
    await call('PUT', '/admin/loggers/root', { level: 'TRACE' });
    expect(grandchild.level).toBe('trace');
    await call('PUT', '/admin/loggers/omnibus', { level: 'INFO' });
    expect(grandchild.level).toBe('info');
    await call('PUT', '/admin/loggers/omnibus', { level: 'WARN' });
  });

  it('gives loggers created later the level of their namespace', async () => {
    await call('PUT', '/admin/loggers/omnibus.bus', { level: 'ERROR' });
    expect(worker.loggers.get('omnibus.bus.consumer').level).toBe('error');
    expect(worker.loggers.get('omnibus.other').level).toBe('warn');
  });

  it('sets every logger from root; OFF silences', async () => {
    const answer = await call('PUT', '/admin/loggers/root', { level: 'off' });
    expect(answer.body).toEqual(expect.arrayContaining(['root', 'omnibus.herder', 'omnibus.bus.consumer']));
    expect((await call('GET', '/admin/loggers/omnibus.rest')).body).toMatchObject({ level: 'OFF' });
    await call('PUT', '/admin/loggers/root', { level: 'DEBUG' });
  });

  it("keeps Kafka's quirks: 404 for an unknown level, 400 for a missing one, 204 for scope=cluster", async () => {
    expect((await call('PUT', '/admin/loggers/omnibus', { level: 'LOUD' })).body).toEqual({ error_code: 404, message: "invalid log level 'LOUD'." });
    expect((await call('PUT', '/admin/loggers/omnibus', { verbosity: 'DEBUG' })).body).toEqual({
      error_code: 400,
      message: "Desired 'level' parameter was not specified in request.",
    });
    expect((await call('PUT', '/admin/loggers/omnibus', [1, 2])).status).toBe(400);
    expect((await call('PUT', '/admin/loggers/omnibus?scope=cluster', { level: 'INFO' })).status).toBe(204);
    expect((await call('PUT', '/admin/loggers/omnibus?scope=galaxy', { level: 'INFO' })).status).toBe(200);
    expect((await call('GET', '/admin/loggers/omnibus')).body).toMatchObject({ level: 'INFO' });
  });
});

describe('/metrics', () => {
  it("serves the worker's registry in Prometheus text format", async () => {
    worker.metrics.setState('connector', { connector: 'loud' }, 'RUNNING');
    worker.metrics.recordsSent.inc({ connector: 'loud' }, 3);
    const response = await worker.app.inject({ method: 'GET', url: '/metrics' });
    expect(response.statusCode).toBe(200);
    expect(response.headers['content-type']).toMatch(/^text\/plain; version=0\.0\.4/);
    expect(response.body).toContain('omnibus_connector_status{connector="loud",state="RUNNING"} 1');
    expect(response.body).toContain('omnibus_connector_status{connector="loud",state="PAUSED"} 0');
    expect(response.body).toContain('omnibus_sink_records_sent_total{connector="loud"} 3');
  });

  it('counts REST requests by route pattern and status, and unmatched paths under one label', async () => {
    for (const name of ['a', 'b', 'c']) await worker.app.inject({ method: 'GET', url: `/connectors/${name}/status` });
    await worker.app.inject({ method: 'GET', url: '/probe/one' });
    await worker.app.inject({ method: 'GET', url: '/probe/two' });
    const text = (await worker.app.inject({ method: 'GET', url: '/metrics' })).body;
    expect(text).toContain('omnibus_rest_requests_total{method="GET",route="/connectors/:connector/status",status="404"} 3');
    expect(text).toContain('omnibus_rest_requests_total{method="GET",route="unmatched",status="404"} 2');
    expect(text).not.toContain('/probe/');
    expect(text).toMatch(/omnibus_rest_request_duration_seconds_count\{method="GET",route="\/connectors\/:connector\/status"\} 3/);
  });
});
