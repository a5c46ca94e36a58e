// Secrets never leave the worker in clear: no GET shows a PASSWORD-typed value (Kafka does,
// omnibus does not), no log line holds one, and a GET-edit-PUT round trip keeps them.
import { createHmac } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectDocumented } from './openapi-check.ts';
import { helloConfig, startTestWorker, type TestWorker } from './harness.ts';

const LITERAL_SECRET = 'literal-S3cret-9f8e7d';
const ENV_SECRET = 'env-S3cret-1a2b3c';
const GONE_SECRET = 'gone-S3cret-4d5e6f';
const SECRET_KEY = 'hello.webhook.secret';

let worker: TestWorker;
const seen: string[] = [];

beforeAll(async () => {
  worker = await startTestWorker({ env: { HELLO_SECRET: ENV_SECRET } });
});
afterAll(async () => {
  await worker?.close();
});

async function call(method: string, url: string, payload?: object, headers: Record<string, string> = {}) {
  const response = await worker.app.inject({ method: method as 'GET', url, headers, ...(payload ? { payload } : {}) });
  expectDocumented(method, url, { statusCode: response.statusCode, body: response.body, headers: response.headers });
  seen.push(response.body);
  return { status: response.statusCode, body: response.body === '' ? undefined : (response.json() as Record<string, unknown>) };
}

const configOf = (body: unknown) => (body as { config: Record<string, string> }).config;

describe('secrets in REST responses', () => {
  it('hides a literal secret in every response that carries a config', async () => {
    const created = await call('POST', '/connectors', { name: 'secret-a', config: helloConfig('secret-a', { [SECRET_KEY]: LITERAL_SECRET }) });
    expect(created.status).toBe(201);
    expect(configOf(created.body)[SECRET_KEY]).toBe('[hidden]');
    expect(configOf((await call('GET', '/connectors/secret-a')).body)[SECRET_KEY]).toBe('[hidden]');
    expect((await call('GET', '/connectors/secret-a/config')).body?.[SECRET_KEY]).toBe('[hidden]');
    const tasks = (await call('GET', '/connectors/secret-a/tasks')).body as unknown as Array<{ config: Record<string, string> }>;
    expect(tasks[0]?.config[SECRET_KEY]).toBe('[hidden]');
    const tasksConfig = (await call('GET', '/connectors/secret-a/tasks-config')).body as Record<string, Record<string, string>>;
    expect(tasksConfig['secret-a-0']?.[SECRET_KEY]).toBe('[hidden]');
    const expanded = (await call('GET', '/connectors?expand=info')).body as Record<string, { info: unknown }>;
    expect(configOf(expanded['secret-a']?.info)[SECRET_KEY]).toBe('[hidden]');
    // The store keeps what the operator wrote; only responses hide it.
    expect((await worker.store.getConnector('secret-a'))?.config[SECRET_KEY]).toBe(LITERAL_SECRET);
  });

  it('returns a config-provider placeholder as written: it is not a secret', async () => {
    const placeholder = '${env:HELLO_SECRET}';
    const created = await call('PUT', '/connectors/secret-env/config', helloConfig('secret-env', { [SECRET_KEY]: placeholder }));
    expect(created.status).toBe(201);
    expect(configOf(created.body)[SECRET_KEY]).toBe(placeholder);
    expect((await call('GET', '/connectors/secret-env/config')).body?.[SECRET_KEY]).toBe(placeholder);
    const tasks = (await call('GET', '/connectors/secret-env/tasks')).body as unknown as Array<{ config: Record<string, string> }>;
    expect(tasks[0]?.config[SECRET_KEY]).toBe(placeholder);
  });

  it('uses the resolved secret where it is needed: the webhook verifies a signature made with it', async () => {
    const payload = JSON.stringify({ messageId: 'no-such-message', state: 'read' });
    const signature = `sha256=${createHmac('sha256', ENV_SECRET).update(payload).digest('hex')}`;
    const response = await worker.app.inject({
      method: 'POST',
      url: '/hooks/secret-env',
      payload,
      headers: { 'content-type': 'application/json', 'x-hello-signature': signature },
    });
    seen.push(response.body);
    expect(response.statusCode).toBe(200);
  });

  it('hides secrets in validate responses and in the answers to rejected requests', async () => {
    const validated = await call('PUT', '/connector-plugins/HelloSink/config/validate', helloConfig('v', { [SECRET_KEY]: LITERAL_SECRET, 'tasks.max': 'x' }));
    expect(validated.status).toBe(200);
    const rejected = await call('POST', '/connectors', { name: 'secret-bad', config: { topics: 'people', [SECRET_KEY]: LITERAL_SECRET } });
    expect(rejected.status).toBe(400);
    const invalid = await call('POST', '/connectors', { name: 'secret-bad', config: helloConfig('secret-bad', { [SECRET_KEY]: LITERAL_SECRET, 'tasks.max': '0' }) });
    expect(invalid.status).toBe(400);
  });

  it('hides secret-looking keys of a connector whose plugin is no longer installed', async () => {
    const now = Date.now();
    await worker.store.putConnector({
      name: 'secret-gone',
      config: { name: 'secret-gone', 'connector.class': 'UninstalledSink', 'api.password': GONE_SECRET, 'smtp.host': 'mail' },
      targetState: 'STARTED',
      taskConfigs: [],
      generation: 1,
      createdAt: now,
      updatedAt: now,
    });
    const config = (await call('GET', '/connectors/secret-gone/config')).body;
    expect(config).toMatchObject({ 'api.password': '[hidden]', 'smtp.host': 'mail' });
  });
});

describe('sending [hidden] back', () => {
  it('keeps the stored secret on PUT', async () => {
    const shown = (await call('GET', '/connectors/secret-a/config')).body as Record<string, string>;
    const updated = await call('PUT', '/connectors/secret-a/config', { ...shown, 'hello.greeting': 'Hi' });
    expect(updated.status).toBe(200);
    const stored = (await worker.store.getConnector('secret-a'))?.config;
    expect(stored).toMatchObject({ [SECRET_KEY]: LITERAL_SECRET, 'hello.greeting': 'Hi' });
  });

  it('keeps the stored secret on PATCH', async () => {
    const updated = await call('PATCH', '/connectors/secret-a/config', { [SECRET_KEY]: '[hidden]', 'hello.greeting': 'Hey' });
    expect(updated.status).toBe(200);
    expect((await worker.store.getConnector('secret-a'))?.config).toMatchObject({ [SECRET_KEY]: LITERAL_SECRET, 'hello.greeting': 'Hey' });
  });

  it('refuses [hidden] for a secret that has no stored value', async () => {
    const answer = await call('POST', '/connectors', { name: 'secret-new', config: helloConfig('secret-new', { [SECRET_KEY]: '[hidden]' }) });
    expect(answer.status).toBe(400);
    expect(answer.body).toMatchObject({ message: expect.stringContaining('send the secret itself') });
    expect(await worker.store.getConnector('secret-new')).toBeUndefined();
  });
});

describe('secrets in logs', () => {
  it('never writes a secret to a log line, at debug level, after everything above', async () => {
    const log = await worker.logText();
    expect(log).toContain('connector created');
    expect(log.split('\n').length).toBeGreaterThan(5);
    for (const secret of [LITERAL_SECRET, ENV_SECRET, GONE_SECRET]) {
      expect(log).not.toContain(secret);
      for (const body of seen) expect(body).not.toContain(secret);
    }
  });
});
