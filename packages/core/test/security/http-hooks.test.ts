// /hooks/* faces the internet: it must cost little before a caller proves anything (lookup
// before the body, a small body limit, a timeout), answer with constants that name no setting,
// file or secret, and turn a deeply nested JSON into 400, never 500. The JSON depth limit
// holds for the whole API.
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { connect, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../../src/logging.ts';
import { createPluginRegistry } from '../../src/runtime/plugins.ts';
import { Worker } from '../../src/worker/worker.ts';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';
import { distributionDir, examplesDir, helloConfig, startTestWorker, type TestWorker } from '../rest/harness.ts';

const scratch = mkdtempSync(join(tmpdir(), 'omnibus-http-hooks-'));
const SECRET_FILE = join(scratch, 'secrets', 'hooks.properties');
const TIMEOUT_MS = 600;
let worker: TestWorker;
let url: string;

/** A sink whose webhook can be slow, and says what it received. */
const SLOW_MODULE = `
export const SlowSink = {
  type: 'sink', className: 'SlowSink', version: '1.0.0', description: 'slow', config: { keys: [], parse: (raw) => raw, isSecret: () => false,
    merge(other) { return other; } },
  createTask() { return { start: async () => {}, put: async (r) => r.map(() => ({ status: 'sent' })), stop: async () => {} }; },
  async webhook(request) {
    if (request.query.sleep) await new Promise((resolve) => setTimeout(resolve, Number(request.query.sleep)));
    return { status: 200, body: { bytes: request.rawBody.length } };
  },
};`;

beforeAll(async () => {
  const slowDir = join(scratch, 'plugins', 'slow');
  mkdirSync(slowDir, { recursive: true });
  writeFileSync(join(slowDir, 'package.json'), JSON.stringify({ name: 'slow', version: '1.0.0', type: 'module', omnibus: { connectors: ['./index.js'] } }));
  writeFileSync(join(slowDir, 'index.js'), SLOW_MODULE);
  const plugins = await createPluginRegistry({ pluginPath: [examplesDir, join(scratch, 'plugins')], distributionDirs: [distributionDir], logger: createLogger({ level: 'silent' }) });
  worker = await startTestWorker({ plugins, hooks: { timeoutMs: TIMEOUT_MS } });
  await worker.herder.createConnector('hooked', helloConfig('hooked', { 'hello.webhook.secret': 'hook-secret' }));
  await worker.herder.createConnector('slow', { 'connector.class': 'SlowSink', name: 'slow', topics: 'people' });
  await worker.herder.createConnector('filer', { 'connector.class': 'FileSink', name: 'filer', topics: 'people', file: join(scratch, 'out.jsonl') });
  // Written to the store as it is: whether a placeholder may be created is not what this tests.
  const now = Date.now();
  await worker.store.createConnector({
    name: 'unresolved',
    config: helloConfig('unresolved', { 'hello.webhook.secret': `\${file:${SECRET_FILE}:hello.webhook.secret}` }),
    targetState: 'STARTED',
    taskConfigs: [],
    generation: 1,
    createdAt: now,
    updatedAt: now,
  });
  await worker.app.inject({ method: 'POST', url: '/topics', payload: { name: 'people', shards: 2 } });
  url = await worker.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await worker?.close();
  rmSync(scratch, { recursive: true, force: true });
});

interface Exchange {
  /** Everything the server sent. */
  answer: string;
  /** Whether the server closed the connection. */
  closed: boolean;
}

/** Sends `head` and `body` on a raw connection, then waits for the server to answer or close (at most `waitMs`). */
function exchange(head: string, body: Buffer | string = '', waitMs = 10_000): Promise<Exchange> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket: Socket = connect({ host: hostname, port: Number(port) }, () => {
      socket.write(head);
      if (body.length > 0) socket.write(body);
    });
    let answer = '';
    const done = (closed: boolean) => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, closed });
    };
    const timer = setTimeout(() => done(false), waitMs);
    socket.on('data', (chunk) => {
      answer += chunk.toString('utf8');
      // A whole JSON answer is enough: the rest of the request body is never sent.
      if (/\r\n\r\n[\s\S]*\}$/.test(answer)) done(false);
    });
    socket.on('close', () => done(true));
    socket.on('error', (error: NodeJS.ErrnoException) => (error.code === 'ECONNRESET' ? done(true) : reject(error)));
  });
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.1 (\d{3})/.exec(answer)?.[1]);
const bodyOf = (answer: string) => answer.slice(answer.indexOf('\r\n\r\n') + 4);
const post = (path: string, length: number, type = 'application/json') =>
  `POST ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: ${type}\r\nContent-Length: ${length}\r\n\r\n`;

describe('/hooks/*: before the body', () => {
  it('answers 404 for an unknown connector without reading a 4 MiB body', async () => {
    // Only 1 KiB of the announced 4 MiB is ever sent: the answer cannot wait for the rest.
    const { answer } = await exchange(post('/hooks/nope', 4 * 1024 * 1024), Buffer.alloc(1024, 0x61));
    expect(statusOf(answer)).toBe(404);
    expect(JSON.parse(bodyOf(answer))).toEqual({ error_code: 404, message: 'No such connector, or it has no webhook' });
  });

  it('answers the same for a sink without a webhook, naming nothing', async () => {
    for (const path of ['/hooks/filer', '/hooks/nope/status', '/hooks/%3Cscript%3E']) {
      const response = await worker.app.inject({ method: 'POST', url: path, payload: '{}', headers: { 'content-type': 'application/json' } });
      expect(response.statusCode, path).toBe(404);
      expect(response.json(), path).toEqual({ error_code: 404, message: 'No such connector, or it has no webhook' });
    }
  });

  it('answers 413 to a body over rest.hooks.body.limit.bytes (256 KiB by default) without reading it', async () => {
    const { answer } = await exchange(post('/hooks/slow', 300 * 1024), Buffer.alloc(1024, 0x61));
    expect(statusOf(answer)).toBe(413);
    expect(JSON.parse(bodyOf(answer))).toMatchObject({ error_code: 413 });
    const chunked = await worker.app.inject({ method: 'POST', url: '/hooks/slow', payload: Buffer.alloc(257 * 1024, 0x61), headers: { 'content-type': 'text/plain' } });
    expect(chunked.statusCode).toBe(413);
    const under = await worker.app.inject({ method: 'POST', url: '/hooks/slow', payload: Buffer.alloc(255 * 1024, 0x61), headers: { 'content-type': 'text/plain' } });
    expect(under.json()).toEqual({ bytes: 255 * 1024 });
  });

  it('answers a constant 503 when the connector cannot verify calls, naming neither the secret file nor the key', async () => {
    const response = await worker.app.inject({ method: 'POST', url: '/hooks/unresolved', payload: '{}', headers: { 'content-type': 'application/json' } });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ error_code: 503, message: 'The webhook cannot take calls now; try again later' });
    expect(response.body).not.toContain('hooks.properties');
    expect(response.body).not.toContain('webhook.secret');
    expect(response.body).not.toContain(scratch);
    // The operator learns from the log what to fix.
    expect(await worker.logText()).toContain('webhook unavailable');
  });
});

describe('/hooks/*: timeouts', () => {
  it('cuts off a caller that sends its body too slowly', async () => {
    const started = Date.now();
    const { answer, closed } = await exchange(post('/hooks/slow', 1000, 'text/plain'), 'only part of it', 20_000);
    expect(closed).toBe(true);
    expect(answer).not.toMatch(/^HTTP\/1\.1 2/);
    // Cut off by the hooks timeout, well before the 20 s this test would wait.
    expect(Date.now() - started).toBeLessThan(15_000);
  });

  it('answers a constant 503 when the connector takes longer than rest.hooks.timeout.ms', async () => {
    const response = await worker.app.inject({ method: 'POST', url: `/hooks/slow?sleep=${TIMEOUT_MS * 5}`, payload: 'x', headers: { 'content-type': 'text/plain' } });
    expect(response.statusCode).toBe(503);
    expect(response.json()).toEqual({ error_code: 503, message: 'The webhook did not answer in time; try again later' });
    const quick = await worker.app.inject({ method: 'POST', url: '/hooks/slow?sleep=1', payload: 'x', headers: { 'content-type': 'text/plain' } });
    expect(quick.statusCode).toBe(200);
  });
});

describe('deeply nested JSON', () => {
  const nested = (depth: number) => `${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}`;
  const nestedArrays = (depth: number) => `${'['.repeat(depth)}${']'.repeat(depth)}`;

  it('gets 400 on /hooks before the connector parses it, never 500', async () => {
    for (const body of [nested(1400), nestedArrays(1400), `{"s":"[[[[","v":${nested(100)}}`]) {
      const response = await worker.app.inject({ method: 'POST', url: '/hooks/hooked', payload: body, headers: { 'content-type': 'application/json' } });
      expect(response.statusCode).toBe(400);
      expect(response.json()).toEqual({ error_code: 400, message: 'The JSON body is nested deeper than 64 levels' });
    }
    // Brackets inside strings are not nesting: this one reaches the connector (which checks its signature).
    const strings = await worker.app.inject({
      method: 'POST',
      url: '/hooks/hooked',
      payload: JSON.stringify({ text: '['.repeat(2000), escaped: '\\"[[[[' }),
      headers: { 'content-type': 'application/json' },
    });
    expect(strings.statusCode).toBe(401);
  });

  it('gets 400 everywhere else too (a message value nested 1,400 deep used to overflow the stack: 500)', async () => {
    for (const [method, path, payload] of [
      ['POST', '/topics/people/messages', `{"messages":[{"key":"k","value":${nested(1400)}}]}`],
      ['POST', '/topics/people/messages', `{"messages":[{"key":"k","value":${nestedArrays(5000)}}]}`],
      ['POST', '/connectors', `{"name":"deep","config":${nested(1400)}}`],
      ['PUT', '/connector-plugins/HelloSink/config/validate', nested(1400)],
      ['PUT', '/admin/loggers/omnibus', nested(1400)],
    ] as const) {
      const response = await worker.app.inject({ method, url: path, payload, headers: { 'content-type': 'application/json' } });
      expect(response.statusCode, `${method} ${path}`).toBe(400);
      expect(response.json(), `${method} ${path}`).toMatchObject({ error_code: 400, message: 'The JSON body is nested deeper than 64 levels' });
    }
  });

  it('accepts values nested up to rest.json.max.depth', async () => {
    const response = await worker.app.inject({
      method: 'POST',
      url: '/topics/people/messages',
      payload: `{"messages":[{"key":"k","value":${nested(60)}}]}`,
      headers: { 'content-type': 'application/json' },
    });
    expect(response.statusCode).toBe(202);
  });
});

describe('rest.request.timeout.ms', () => {
  const dir = mkdtempSync(join(tmpdir(), 'omnibus-request-timeout-'));
  let real: Worker;
  beforeAll(async () => {
    real = new Worker(
      workerConfigSpec.parse({ store: `lmdb:${join(dir, 'store')}`, listeners: ['http://127.0.0.1:0'], 'log.level': 'silent', 'rest.request.timeout.ms': 1000 }),
    );
    await real.start();
  });
  afterAll(async () => {
    await real?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  it('answers 408 and disconnects a client that does not finish its request in time', async () => {
    const { hostname, port } = new URL(real.url);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = connect({ host: hostname, port: Number(port) }, () => socket.write(post('/topics', 100) + '{"name":'));
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString('utf8')));
      socket.on('close', () => resolve(text));
      socket.on('error', reject);
      socket.setTimeout(20_000, () => socket.destroy(new Error('never cut off')));
    });
    expect(statusOf(answer)).toBe(408);
  });
});
