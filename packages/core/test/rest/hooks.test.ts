// Provider webhooks: raw bodies reach the connector byte for byte (signatures are computed over
// them), the connector's answer goes back as it is, and its delivery updates are applied.
import { createHmac } from 'node:crypto';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.ts';
import { createPluginRegistry } from '../../src/runtime/plugins.ts';
import { examplesDir, helloConfig, startTestWorker, type TestWorker } from './harness.ts';
import { deliveriesById, storeDelivered } from '../bus/helpers.ts';

const SECRET = 'hook-secret-0123';
const scratch = mkdtempSync(join(tmpdir(), 'omnibus-hooks-'));
let worker: TestWorker;

/** A sink whose webhook echoes what it received, to see exactly what the route hands over. */
const ECHO_MODULE = `
export const EchoSink = {
  type: 'sink', className: 'EchoSink', version: '1.0.0', description: 'echo', config: { keys: [], parse: (raw) => raw, isSecret: () => false,
    merge(other) { return other; } },
  createTask() { return { start: async () => {}, put: async (r) => r.map(() => ({ status: 'sent' })), stop: async () => {} }; },
  async webhook(request, config, context) {
    if (request.query.fail === '1') throw new Error('webhook exploded');
    if (request.query.text === '1') return { status: 200, body: 'plain answer', headers: { 'content-type': 'text/plain' } };
    return {
      status: 207,
      headers: { 'x-echo': context.name },
      body: { method: request.method, path: request.path, url: request.url, query: request.query, headers: request.headers,
        raw: request.rawBody.toString('base64'), configName: config.name },
    };
  },
};`;

beforeAll(async () => {
  const echoDir = join(scratch, 'plugins', 'echo');
  mkdirSync(echoDir, { recursive: true });
  writeFileSync(join(echoDir, 'package.json'), JSON.stringify({ name: 'echo', version: '1.0.0', type: 'module', omnibus: { connectors: ['./index.js'] } }));
  writeFileSync(join(echoDir, 'index.js'), ECHO_MODULE);
  const plugins = await createPluginRegistry({ pluginPath: [examplesDir, join(scratch, 'plugins')], logger: createLogger({ level: 'silent' }) });
  // Providers reach the hooks through a public name: the operator lists it.
  worker = await startTestWorker({ plugins, guards: { allowedHosts: ['hooks.example.org'], allowedOrigins: [] } });
  await worker.herder.createConnector('hooked', helloConfig('hooked', { 'hello.webhook.secret': SECRET }));
  await worker.herder.createConnector('echo', { 'connector.class': 'EchoSink', name: 'echo', topics: 'people' });
  await worker.herder.createConnector('filer', { 'connector.class': 'FileSink', name: 'filer', topics: 'people', file: join(scratch, 'out.jsonl') });
});
afterAll(async () => {
  await worker?.close();
  rmSync(scratch, { recursive: true, force: true });
});

const sign = (body: string | Buffer) => `sha256=${createHmac('sha256', SECRET).update(body).digest('hex')}`;

async function sentDelivery(messageId: string) {
  await storeDelivered(worker.store, { connector: 'hooked', messageId, state: 'sent', attempts: 1, epoch: 1, workerId: 'w1', updatedAt: Date.now() });
}

describe('/hooks/{connector}', () => {
  it("hands the exact bytes to the connector and applies the receipts it returns", async () => {
    await sentDelivery('m-1');
    await sentDelivery('m-2');
    // Odd spacing and key order: a re-serialised body would not match the signature.
    const body = '[ {"state":"read",   "messageId":"m-1"},\n{"messageId":"m-2","state":"delivered"} ]';
    const response = await worker.app.inject({
      method: 'POST',
      url: '/hooks/hooked',
      payload: body,
      headers: { 'content-type': 'application/json', 'x-hello-signature': sign(body) },
    });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual({ accepted: 2 });
    const deliveries = await deliveriesById(worker.store, 'hooked', ['m-1', 'm-2']);
    expect(deliveries.get('m-1')?.state).toBe('read');
    expect(deliveries.get('m-2')?.state).toBe('delivered');
    expect((await worker.store.listEvents('m-1')).map((e) => e.type)).toContain('read');
  });

  it('changes nothing when the connector refuses the signature', async () => {
    await sentDelivery('m-3');
    const body = '{"messageId":"m-3","state":"read"}';
    const response = await worker.app.inject({
      method: 'POST',
      url: '/hooks/hooked',
      payload: body,
      headers: { 'content-type': 'application/json', 'x-hello-signature': sign(`${body} `) },
    });
    expect(response.statusCode).toBe(401);
    expect((await deliveriesById(worker.store, 'hooked', ['m-3'])).get('m-3')?.state).toBe('sent');
  });

  it("answers with the connector's status and headers", async () => {
    const response = await worker.app.inject({ method: 'GET', url: '/hooks/hooked' });
    expect(response.statusCode).toBe(405);
    expect(response.headers.allow).toBe('POST');
  });

  it('passes method, sub-path, full URL, query, headers and any content type through', async () => {
    const form = 'MessageSid=SM1&MessageStatus=delivered&To=%2B33600000000';
    const response = await worker.app.inject({
      method: 'PUT',
      url: '/hooks/echo/status/twilio?sig=a%2Bb&x=1&x=2',
      payload: form,
      headers: { 'content-type': 'application/x-www-form-urlencoded', host: 'hooks.example.org:8443', 'x-twilio-signature': 'abc' },
    });
    expect(response.statusCode).toBe(207);
    expect(response.headers['x-echo']).toBe('echo');
    const echoed = response.json() as Record<string, unknown>;
    expect(echoed).toMatchObject({
      method: 'PUT',
      path: '/status/twilio',
      url: 'http://hooks.example.org:8443/hooks/echo/status/twilio?sig=a%2Bb&x=1&x=2',
      query: { sig: 'a+b', x: '1' },
      headers: { 'x-twilio-signature': 'abc', 'content-type': 'application/x-www-form-urlencoded' },
      configName: 'echo',
    });
    expect(Buffer.from(echoed.raw as string, 'base64').toString()).toBe(form);
  });

  it('keeps binary bodies and bodies without a content type intact', async () => {
    const bytes = Buffer.from([0, 255, 1, 254, 10, 13]);
    const binary = await worker.app.inject({ method: 'POST', url: '/hooks/echo', payload: bytes, headers: { 'content-type': 'application/octet-stream' } });
    expect(Buffer.from((binary.json() as { raw: string }).raw, 'base64')).toEqual(bytes);
    expect((binary.json() as { path: string }).path).toBe('/');
    const untyped = await worker.app.inject({ method: 'POST', url: '/hooks/echo', payload: 'hello' });
    expect(untyped.statusCode).toBe(207);
    const empty = await worker.app.inject({ method: 'DELETE', url: '/hooks/echo/x' });
    expect((empty.json() as { raw: string }).raw).toBe('');
  });

  it('sends a text body as it is', async () => {
    const response = await worker.app.inject({ method: 'POST', url: '/hooks/echo?text=1', payload: '' });
    expect(response.statusCode).toBe(200);
    expect(response.body).toBe('plain answer');
    expect(response.headers['content-type']).toMatch(/^text\/plain/);
  });

  it('answers 404 for an unknown connector and for a sink without a webhook', async () => {
    for (const url of ['/hooks/nope', '/hooks/nope/status', '/hooks/filer']) {
      const response = await worker.app.inject({ method: 'POST', url, payload: '{}', headers: { 'content-type': 'application/json' } });
      expect(response.statusCode, url).toBe(404);
      expect(response.json()).toMatchObject({ error_code: 404, message: expect.stringContaining('no webhook') });
    }
  });

  it('answers a constant 500 when the connector throws, and logs what it threw', async () => {
    const response = await worker.app.inject({ method: 'POST', url: '/hooks/echo?fail=1', payload: '' });
    expect(response.statusCode).toBe(500);
    expect(response.json()).toEqual({ error_code: 500, message: 'The webhook failed' });
    expect(await worker.logText()).toContain('webhook exploded');
  });
});
