// Kafka Connect's CORS keys on a real worker over real HTTP, as a Kafka Connect UI served from
// another origin calls it: the browser's preflight, then the request itself. With only
// access.control.allow.origin set, the origin may list, create and restart connectors (GET and
// POST, Kafka's default methods) and nothing else; access.control.allow.methods widens that;
// other origins stay refused; a method list with a typo is refused at start, naming the key.
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';
import { Worker } from '../../src/worker/worker.ts';
import { examplesDir, helloConfig } from '../rest/harness.ts';

const UI = 'https://connect-ui.example:9000';

interface Answer {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

/** One HTTP exchange with the headers a browser would send (fetch would not let a caller set Origin everywhere). */
function call(url: string, method: string, headers: Record<string, string>, body?: unknown): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request(url, { method, headers: { ...headers, ...(payload ? { 'content-type': 'application/json' } : {}) } }, (res) => {
      let text = '';
      res.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: text }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

describe("Kafka Connect's CORS keys", () => {
  const dir = mkdtempSync(join(tmpdir(), 'omnibus-cors-'));
  const workers: Worker[] = [];
  afterAll(async () => {
    for (const worker of workers) await worker.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  async function start(name: string, settings: Record<string, unknown>): Promise<Worker> {
    const worker = new Worker(
      workerConfigSpec.parse({ store: `lmdb:${join(dir, name)}`, listeners: ['http://127.0.0.1:0'], 'plugin.path': [examplesDir], 'log.level': 'silent', ...settings }),
    );
    workers.push(worker);
    await worker.start();
    return worker;
  }

  /** What a browser sends before a cross-origin request that is not "simple". */
  const preflight = (worker: Worker, path: string, method: string) =>
    call(`${worker.url}${path}`, 'OPTIONS', { origin: UI, 'access-control-request-method': method, 'access-control-request-headers': 'content-type' });
  const fromUi = { origin: UI, 'sec-fetch-site': 'cross-site', 'sec-fetch-mode': 'cors' };

  it('lets the allowed origin list, create and restart connectors, with a preflight for each', async () => {
    const worker = await start('kafka-default', { 'access.control.allow.origin': UI });

    const create = await preflight(worker, '/connectors', 'POST');
    expect(create.status).toBe(204);
    expect(create.headers['access-control-allow-origin']).toBe(UI);
    expect(create.headers['access-control-allow-methods']).toBe('GET, POST, HEAD');
    expect(create.headers['access-control-allow-headers']).toContain('content-type');

    const created = await call(`${worker.url}/connectors`, 'POST', fromUi, { name: 'hello', config: helloConfig('hello') });
    expect(created.status).toBe(201);
    expect(created.headers['access-control-allow-origin']).toBe(UI);

    const listed = await call(`${worker.url}/connectors?expand=status`, 'GET', fromUi);
    expect(listed.status).toBe(200);
    expect(listed.headers['access-control-allow-origin']).toBe(UI);
    expect(Object.keys(JSON.parse(listed.body) as object)).toEqual(['hello']);

    expect((await preflight(worker, '/connectors/hello/restart?includeTasks=true', 'POST')).status).toBe(204);
    const restarted = await call(`${worker.url}/connectors/hello/restart?includeTasks=true`, 'POST', fromUi);
    expect(restarted.status).toBe(202);
    expect(restarted.headers['access-control-allow-origin']).toBe(UI);
  });

  it('holds the allowed origin to the allowed methods, and refuses other origins', async () => {
    const worker = await start('kafka-methods', { 'access.control.allow.origin': UI });
    await call(`${worker.url}/connectors`, 'POST', {}, { name: 'hello', config: helloConfig('hello') });
    // The browser learns DELETE is not among the methods, and would not send it; a page that sends it anyway is refused.
    expect((await preflight(worker, '/connectors/hello', 'DELETE')).headers['access-control-allow-methods']).not.toContain('DELETE');
    const deleted = await call(`${worker.url}/connectors/hello`, 'DELETE', fromUi);
    expect(deleted.status).toBe(403);
    expect(JSON.parse(deleted.body)).toMatchObject({ message: expect.stringContaining('access.control.allow.methods') });
    expect((await call(`${worker.url}/connectors/hello`, 'GET', {})).status).toBe(200);

    const stranger = { origin: 'https://elsewhere.example', 'sec-fetch-site': 'cross-site' };
    const strangerPreflight = await call(`${worker.url}/connectors`, 'OPTIONS', { ...stranger, 'access-control-request-method': 'POST' });
    expect(strangerPreflight.headers['access-control-allow-origin']).toBeUndefined();
    expect((await call(`${worker.url}/connectors/hello/restart`, 'POST', stranger)).status).toBe(403);
  });

  it('widens the methods with access.control.allow.methods', async () => {
    const worker = await start('kafka-widened', { 'access.control.allow.origin': UI, 'access.control.allow.methods': 'GET,POST,PUT,DELETE' });
    await call(`${worker.url}/connectors`, 'POST', {}, { name: 'hello', config: helloConfig('hello') });
    const allowed = await preflight(worker, '/connectors/hello/pause', 'PUT');
    expect(allowed.headers['access-control-allow-methods']).toBe('GET, POST, PUT, DELETE');
    expect((await call(`${worker.url}/connectors/hello/pause`, 'PUT', fromUi)).status).toBe(202);
    const deleted = await call(`${worker.url}/connectors/hello`, 'DELETE', fromUi);
    expect(deleted.status).toBe(204);
    expect(deleted.headers['access-control-allow-origin']).toBe(UI);
  });

  it('is off by default, and a method list with a typo is refused naming the key', async () => {
    const worker = await start('default', {});
    const answer = await preflight(worker, '/connectors', 'POST');
    expect(answer.headers['access-control-allow-origin']).toBeUndefined();
    expect(answer.headers['access-control-allow-methods']).toBeUndefined();
    expect(() => workerConfigSpec.parse({ 'access.control.allow.methods': 'GET,FETCH' })).toThrow(/access\.control\.allow\.methods/);
  });
});
