// What a web page the operator visits must not make the REST API do: DNS rebinding (Host
// checks on loopback listeners), cross-site requests that change state (Origin and
// Sec-Fetch-Site checks), and reading answers cross-origin (CORS off unless configured).
import { mkdtempSync, rmSync } from 'node:fs';
import { connect } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '../../src/worker/worker.ts';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';
import { helloConfig, startTestWorker, type TestWorker } from '../rest/harness.ts';

/** One raw HTTP exchange, for requests fetch cannot make (no Host, HTTP/1.0, any Host). */
function rawRequest(url: string, request: string): Promise<string> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname.replace(/^\[|\]$/g, ''), port: Number(port) }, () => socket.write(request));
    let answer = '';
    socket.on('data', (chunk) => (answer += chunk.toString('utf8')));
    socket.on('end', () => resolve(answer));
    socket.on('error', reject);
    socket.setTimeout(10_000, () => socket.destroy(new Error('no answer')));
  });
}

const statusOf = (answer: string) => Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1]);
const bodyOf = (answer: string) => JSON.parse(answer.slice(answer.indexOf('\r\n\r\n') + 4)) as { error_code: number; message: string };

describe('Host on a loopback listener (DNS rebinding)', () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker({ guards: { allowedHosts: ['omnibus.internal', 'Console.Example.'], allowedOrigins: [] } });
  });
  afterAll(async () => worker?.close());

  const get = (host: string) => worker.app.inject({ method: 'GET', url: '/connectors', headers: { host } });

  it('accepts localhost names, loopback addresses in any form, and the configured names', async () => {
    for (const host of [
      'localhost',
      'localhost:8083',
      'LOCALHOST:8083',
      'localhost.:8083',
      'console.localhost',
      'a.b.localhost:9000',
      '127.0.0.1',
      '127.0.0.1:8083',
      '127.1.2.3:8083',
      '[::1]',
      '[::1]:8083',
      '[0:0:0:0:0:0:0:1]:8083',
      '[::ffff:127.0.0.1]:8083',
      'omnibus.internal:8083',
      'OMNIBUS.INTERNAL.',
      'console.example',
    ]) {
      const response = await get(host);
      expect(response.statusCode, host).toBe(200);
    }
  });

  it('refuses every other name with 421 and a clear error body, before authentication', async () => {
    for (const host of [
      'attacker.example',
      'attacker.example:8083',
      'ATTACKER.example.',
      'localhost.attacker.example',
      'localhost.attacker.example.',
      '127.0.0.1.nip.io',
      'localhost@attacker.example',
      'attacker.example/localhost',
      'localhost:8083@attacker.example',
      'localhost, attacker.example',
      '[::2]:8083',
      '0.0.0.0:8083',
      '10.0.0.1',
      'xlocalhost',
      'omnibus.internal.attacker.example',
      'localhost:8083:1',
      'localhost:http',
      'ⓛocalhost',
    ]) {
      const response = await get(host);
      expect(response.statusCode, `${host} ${response.body}`).toBe(421);
      const body = response.json() as { error_code: number; message: string };
      expect(body.error_code, host).toBe(421);
      expect(body.message, host).toMatch(/rest\.allowed\.hosts|Host header is required/);
    }
  });

  it('refuses a rebinding page even on routes that need no credentials, and even /hooks', async () => {
    for (const url of ['/', '/health', '/openapi.json', '/hooks/any', '/metrics', '/no-such-path']) {
      const response = await worker.app.inject({ method: 'GET', url, headers: { host: 'attacker.example' } });
      expect(response.statusCode, url).toBe(421);
    }
  });
});

describe('cross-site requests that change state (CSRF)', () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker();
    await worker.herder.createConnector('hello', helloConfig('hello', { 'hello.webhook.secret': 'hook-secret' }));
  });
  afterAll(async () => worker?.close());

  const restart = (headers: Record<string, string>) =>
    worker.app.inject({ method: 'POST', url: '/connectors/hello/restart', headers: { host: 'localhost:8083', ...headers } });

  it('refuses a body-less cross-site POST /connectors/{c}/restart (a form post or no-cors fetch)', async () => {
    const cases: Array<Record<string, string>> = [
      { origin: 'http://attacker.example' },
      { origin: 'http://attacker.example', 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'cross-site' },
      { 'sec-fetch-site': 'same-site' },
      { origin: 'null' },
      { origin: 'http://localhost:3000' },
      { origin: 'http://localhost:8083.attacker.example' },
      { origin: 'http://localhost:8083', 'sec-fetch-site': 'cross-site' },
      { origin: 'file://' },
      { origin: 'not a url' },
    ];
    for (const headers of cases) {
      const response = await restart(headers);
      expect(response.statusCode, JSON.stringify(headers)).toBe(403);
      expect(response.json(), JSON.stringify(headers)).toMatchObject({ error_code: 403, message: expect.stringContaining('rest.cors.allowed.origins') });
    }
  });

  it('refuses cross-site PUT, PATCH and DELETE, and the data plane\'s POSTs', async () => {
    const origin = 'https://attacker.example';
    for (const [method, url, payload] of [
      ['PUT', '/connectors/hello/config', helloConfig('hello')],
      ['PATCH', '/connectors/hello/config', { 'hello.greeting': 'pwned' }],
      ['DELETE', '/connectors/hello', undefined],
      ['PUT', '/connectors/hello/pause', undefined],
      ['POST', '/topics', { name: 'pwned', shards: 1 }],
      ['PUT', '/admin/loggers/root', { level: 'OFF' }],
    ] as const) {
      const response = await worker.app.inject({ method, url, payload, headers: { host: 'localhost:8083', origin } });
      expect(response.statusCode, `${method} ${url}`).toBe(403);
    }
    expect((await worker.herder.connectorInfo('hello')).config['hello.greeting']).toBeUndefined();
    expect(await worker.store.getTopic('pwned')).toBeUndefined();
  });

  it('lets same-origin pages, programs without Origin, and user-initiated navigation through', async () => {
    const cases: Array<Record<string, string>> = [
      {},
      { origin: 'http://localhost:8083' },
      { origin: 'http://LOCALHOST:8083', 'sec-fetch-site': 'same-origin' },
      { 'sec-fetch-site': 'none' },
    ];
    for (const headers of cases) {
      const response = await restart(headers);
      expect(response.statusCode, JSON.stringify(headers)).toBe(204);
    }
    const other = await worker.app.inject({
      method: 'POST',
      url: '/connectors/hello/restart',
      headers: { host: '127.0.0.1', origin: 'http://127.0.0.1' },
    });
    expect(other.statusCode).toBe(204);
  });

  it('leaves reads alone and sends no CORS header, to any origin', async () => {
    const read = await worker.app.inject({ method: 'GET', url: '/connectors', headers: { origin: 'http://attacker.example', 'sec-fetch-site': 'cross-site' } });
    expect(read.statusCode).toBe(200);
    expect(read.headers['access-control-allow-origin']).toBeUndefined();
    const preflight = await worker.app.inject({
      method: 'OPTIONS',
      url: '/connectors',
      headers: { origin: 'http://attacker.example', 'access-control-request-method': 'POST' },
    });
    expect(preflight.headers['access-control-allow-origin']).toBeUndefined();
    expect(preflight.headers['access-control-allow-methods']).toBeUndefined();
  });

  it('does not apply to /hooks, which providers call server to server (with their signature)', async () => {
    const response = await worker.app.inject({
      method: 'POST',
      url: '/hooks/hello',
      payload: '{}',
      headers: { 'content-type': 'application/json', origin: 'https://provider.example', 'sec-fetch-site': 'cross-site' },
    });
    // The connector's own answer (a bad signature), not the origin check's.
    expect(response.statusCode).toBe(401);
    expect(response.body).not.toContain('rest.cors.allowed.origins');
  });
});

describe('CORS when rest.cors.allowed.origins is set', () => {
  let worker: TestWorker;
  beforeAll(async () => {
    worker = await startTestWorker({
      auth: { bearerTokens: ['console-token'], basicUsers: [] },
      guards: { allowedHosts: [], allowedOrigins: ['https://Console.Example:8443/'] },
    });
    await worker.herder.createConnector('hello', helloConfig('hello'));
  });
  afterAll(async () => worker?.close());

  const console = 'https://console.example:8443';

  it('answers the preflight of an allowed origin without credentials, and only its', async () => {
    const preflight = await worker.app.inject({
      method: 'OPTIONS',
      url: '/connectors/hello/restart',
      headers: { origin: console, 'access-control-request-method': 'POST', 'access-control-request-headers': 'authorization' },
    });
    expect(preflight.statusCode).toBe(204);
    expect(preflight.headers['access-control-allow-origin']).toBe(console);
    expect(preflight.headers['access-control-allow-methods']).toContain('POST');
    expect(preflight.headers['access-control-allow-headers']).toContain('authorization');
    expect(preflight.headers.vary).toContain('Origin');

    const stranger = await worker.app.inject({
      method: 'OPTIONS',
      url: '/connectors/hello/restart',
      headers: { origin: 'https://attacker.example', 'access-control-request-method': 'POST' },
    });
    expect(stranger.statusCode).toBe(401);
    expect(stranger.headers['access-control-allow-origin']).toBeUndefined();

    // A rebinding page is refused before authentication, allowed origin or not.
    const rebound = await worker.app.inject({
      method: 'OPTIONS',
      url: '/connectors/hello/restart',
      headers: { host: 'attacker.example', origin: console, 'access-control-request-method': 'POST' },
    });
    expect(rebound.statusCode).toBe(421);
    expect(rebound.headers['access-control-allow-origin']).toBeUndefined();
  });

  it("lets the allowed origin read and write with credentials, refuses others' writes", async () => {
    const headers = { origin: console, authorization: 'Bearer console-token', 'sec-fetch-site': 'cross-site' };
    const read = await worker.app.inject({ method: 'GET', url: '/connectors', headers });
    expect(read.statusCode).toBe(200);
    expect(read.headers['access-control-allow-origin']).toBe(console);
    const write = await worker.app.inject({ method: 'POST', url: '/connectors/hello/restart', headers });
    expect(write.statusCode).toBe(204);
    const refused = await worker.app.inject({
      method: 'POST',
      url: '/connectors/hello/restart',
      headers: { ...headers, origin: 'https://console.example' },
    });
    expect(refused.statusCode).toBe(403);
    expect(refused.headers['access-control-allow-origin']).toBeUndefined();
  });

  it('"*" allows any origin but never "null"', async () => {
    const any = await startTestWorker({ guards: { allowedHosts: [], allowedOrigins: ['*'] } });
    try {
      await any.herder.createConnector('hello', helloConfig('hello'));
      const write = await any.app.inject({ method: 'POST', url: '/connectors/hello/restart', headers: { origin: 'https://anywhere.example' } });
      expect(write.statusCode).toBe(204);
      expect(write.headers['access-control-allow-origin']).toBe('*');
      const sandboxed = await any.app.inject({ method: 'POST', url: '/connectors/hello/restart', headers: { origin: 'null' } });
      expect(sandboxed.statusCode).toBe(403);
    } finally {
      await any.close();
    }
  });
});

describe('on real listeners', () => {
  const dir = mkdtempSync(join(tmpdir(), 'omnibus-guards-'));
  const workers: Worker[] = [];
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(name: string, settings: Record<string, unknown>): Promise<Worker> {
    const worker = new Worker(workerConfigSpec.parse({ store: `lmdb:${join(dir, name)}`, 'log.level': 'silent', ...settings }));
    workers.push(worker);
    await worker.start();
    return worker;
  }

  it('refuses a request without Host (HTTP/1.0) on a loopback listener, and serves one with it', async () => {
    const worker = await start('loopback', { listeners: ['http://127.0.0.1:0', 'http://[::1]:0'] });
    const missing = await rawRequest(worker.url, 'GET /connectors HTTP/1.0\r\n\r\n');
    expect(statusOf(missing)).toBe(421);
    expect(bodyOf(missing)).toEqual({ error_code: 421, message: 'A Host header is required on this listener' });
    const named = await rawRequest(worker.url, 'GET /connectors HTTP/1.0\r\nHost: localhost\r\n\r\n');
    expect(statusOf(named)).toBe(200);
    const rebound = await rawRequest(worker.url, 'GET /connectors HTTP/1.0\r\nHost: attacker.example\r\n\r\n');
    expect(statusOf(rebound)).toBe(421);
    const empty = await rawRequest(worker.url, 'GET /connectors HTTP/1.1\r\nHost: \r\nConnection: close\r\n\r\n');
    expect(statusOf(empty)).toBe(421);
    // The IPv6 loopback listener is checked the same way.
    const ipv6 = worker.urls[1] as string;
    expect(statusOf(await rawRequest(ipv6, 'GET /connectors HTTP/1.1\r\nHost: attacker.example\r\nConnection: close\r\n\r\n'))).toBe(421);
    expect(statusOf(await rawRequest(ipv6, `GET /connectors HTTP/1.1\r\nHost: ${new URL(ipv6).host}\r\nConnection: close\r\n\r\n`))).toBe(200);
  });

  it('lets peers wake each other: fetch sends neither Origin nor a foreign Host', async () => {
    const worker = await start('peer', { listeners: ['http://127.0.0.1:0'], 'rest.auth.bearer.tokens': 'peer-token' });
    const response = await fetch(`${worker.url}/internal/wake`, {
      method: 'POST',
      headers: { 'content-type': 'application/json', authorization: 'Bearer peer-token' },
      body: JSON.stringify({ shards: [] }),
    });
    expect(response.status).toBeLessThan(300);
  });

  it('accepts any Host on a non-loopback listener unless rest.allowed.hosts is set', async () => {
    const open = await start('open', { listeners: ['http://0.0.0.0:0'], 'rest.auth.bearer.tokens': 'token' });
    const port = new URL(open.urls[0] as string).port;
    const answer = await rawRequest(`http://127.0.0.1:${port}`, 'GET /connectors HTTP/1.1\r\nHost: omnibus.example.com\r\nConnection: close\r\n\r\n');
    expect(statusOf(answer)).toBe(401);

    const restricted = await start('restricted', {
      listeners: ['http://0.0.0.0:0'],
      'rest.auth.bearer.tokens': 'token',
      'rest.allowed.hosts': 'omnibus.example.com',
      'rest.advertised.url': 'http://worker-7.cluster.internal:8083',
    });
    const restrictedPort = new URL(restricted.urls[0] as string).port;
    const ask = (host: string) =>
      rawRequest(`http://127.0.0.1:${restrictedPort}`, `GET /connectors HTTP/1.1\r\nHost: ${host}\r\nAuthorization: Bearer token\r\nConnection: close\r\n\r\n`);
    expect(statusOf(await ask('omnibus.example.com'))).toBe(200);
    expect(statusOf(await ask('worker-7.cluster.internal:8083'))).toBe(200);
    expect(statusOf(await ask('localhost'))).toBe(200);
    expect(statusOf(await ask('attacker.example'))).toBe(421);
  });
});
