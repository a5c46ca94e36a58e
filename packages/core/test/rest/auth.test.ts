// Control-plane authentication (rest.auth.bearer.tokens, rest.auth.basic.users) and the body
// size limit, on a worker composed as in production.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { authConfigFrom } from '../../src/rest/auth.ts';
import { expectDocumented } from './openapi-check.ts';
import { helloConfig, startTestWorker, type TestWorker } from './harness.ts';

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('authConfigFrom', () => {
  it('reads comma-separated tokens and user:password pairs split at the first colon', () => {
    expect(authConfigFrom({ 'rest.auth.bearer.tokens': ' t1, t2,,', 'rest.auth.basic.users': 'ops:pa:ss, admin:x' })).toEqual({
      bearerTokens: ['t1', 't2'],
      basicUsers: [
        { user: 'ops', password: 'pa:ss' },
        { user: 'admin', password: 'x' },
      ],
    });
    expect(authConfigFrom({ 'rest.auth.bearer.tokens': '', 'rest.auth.basic.users': '' })).toEqual({ bearerTokens: [], basicUsers: [] });
    expect(() => authConfigFrom({ 'rest.auth.bearer.tokens': '', 'rest.auth.basic.users': 'nobody' })).toThrow(/user:password/);
  });
});

describe('with auth configured', () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker({ auth: { bearerTokens: ['tok-one', 'tok-two'], basicUsers: [{ user: 'ops', password: 'pa:ss' }] } });
  });
  afterAll(async () => {
    await worker?.close();
  });

  const get = (url: string, authorization?: string) =>
    worker.app.inject({ method: 'GET', url, headers: authorization ? { authorization } : {} });

  it('answers 401 with a challenge for both schemes when credentials are missing', async () => {
    const response = await get('/connectors');
    expect(response.statusCode).toBe(401);
    expect(response.json()).toEqual({ error_code: 401, message: 'Authentication required' });
    expect(response.headers['www-authenticate']).toEqual(['Bearer realm="omnibus"', 'Basic realm="omnibus", charset="UTF-8"']);
    expectDocumented('GET', '/connectors', { statusCode: response.statusCode, body: response.body, headers: response.headers });
  });

  it('accepts any configured bearer token, whatever the scheme case', async () => {
    expect((await get('/connectors', 'Bearer tok-one')).statusCode).toBe(200);
    expect((await get('/connectors', 'bearer tok-two')).statusCode).toBe(200);
  });

  it('refuses wrong, partial, longer and empty tokens', async () => {
    for (const header of ['Bearer tok-three', 'Bearer tok-', 'Bearer tok-one-and-more', 'Bearer ', 'Bearer', 'tok-one', 'Token tok-one']) {
      const response = await get('/connectors', header);
      expect(response.statusCode, header).toBe(401);
      expect(response.json()).toMatchObject({ error_code: 401 });
    }
  });

  it('accepts basic users, passwords with colons included, and refuses wrong ones', async () => {
    expect((await get('/connectors', basic('ops', 'pa:ss'))).statusCode).toBe(200);
    expect((await get('/connectors', basic('ops', 'pa'))).statusCode).toBe(401);
    expect((await get('/connectors', basic('root', 'pa:ss'))).statusCode).toBe(401);
    expect((await get('/connectors', 'Basic !!!not-base64')).statusCode).toBe(401);
    // A token is not a basic credential, nor the reverse.
    expect((await get('/connectors', 'Basic tok-one')).statusCode).toBe(401);
  });

  it('protects writes: nothing is created without credentials', async () => {
    const topic = await worker.app.inject({ method: 'POST', url: '/topics', payload: { name: 't', shards: 1 } });
    expect(topic.statusCode).toBe(401);
    expect(await worker.store.listTopics()).toEqual([]);
    const response = await worker.app.inject({ method: 'POST', url: '/connectors', payload: { name: 'h', config: helloConfig('h') } });
    expect(response.statusCode).toBe(401);
    expect(await worker.store.listConnectors()).toEqual([]);
    const allowed = await worker.app.inject({
      method: 'POST',
      url: '/connectors',
      payload: { name: 'h', config: helloConfig('h') },
      headers: { authorization: 'Bearer tok-one' },
    });
    expect(allowed.statusCode).toBe(201);
  });

  it('leaves /, /health, /openapi.json and /hooks/* open', async () => {
    expect((await get('/')).statusCode).toBe(200);
    expect((await get('/health')).statusCode).toBe(200);
    expect((await get('/openapi.json')).statusCode).toBe(200);
    // Webhooks are verified by the connector, with the provider's signature: 404 here, not 401.
    const hook = await worker.app.inject({ method: 'POST', url: '/hooks/nope/status', payload: 'x', headers: { 'content-type': 'text/plain' } });
    expect(hook.statusCode).toBe(404);
  });

  it('protects the data plane, /metrics, /admin/loggers and the plugins', async () => {
    for (const url of ['/topics', '/metrics', '/admin/loggers', '/connector-plugins', '/connectors/h/status']) {
      expect((await get(url)).statusCode, url).toBe(401);
      expect((await get(url, 'Bearer tok-two')).statusCode, url).toBe(200);
    }
  });

  it('does not reveal which paths exist to strangers: unknown paths answer 401, then 404', async () => {
    expect((await get('/no/such/path')).statusCode).toBe(401);
    expect((await get('/no/such/path', 'Bearer tok-one')).statusCode).toBe(404);
  });
});

describe('body size limit', () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker({ bodyLimit: 2048, hooks: { bodyLimit: 2048 } });
    await worker.herder.createConnector('hooked', helloConfig('hooked', { 'hello.webhook.secret': 'hook-secret' }));
  });
  afterAll(async () => {
    await worker?.close();
  });

  it('answers 413 with the error body to a control-plane request over the limit, and creates nothing', async () => {
    const config = helloConfig('big', { 'hello.greeting': 'x'.repeat(4096) });
    const response = await worker.app.inject({ method: 'POST', url: '/connectors', payload: { name: 'big', config } });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ error_code: 413, message: expect.any(String) });
    expectDocumented('POST', '/connectors', { statusCode: response.statusCode, body: response.body, headers: response.headers });
    expect((await worker.store.listConnectors()).map((c) => c.name)).toEqual(['hooked']);
  });

  it('applies to webhooks too (their own limit, rest.hooks.body.limit.bytes)', async () => {
    const response = await worker.app.inject({ method: 'POST', url: '/hooks/hooked', payload: Buffer.alloc(4096, 1), headers: { 'content-type': 'application/octet-stream' } });
    expect(response.statusCode).toBe(413);
    expect(response.json()).toMatchObject({ error_code: 413 });
  });

  it('accepts a body under the limit', async () => {
    const response = await worker.app.inject({ method: 'POST', url: '/connectors', payload: { name: 'small', config: helloConfig('small') } });
    expect(response.statusCode).toBe(201);
  });
});
