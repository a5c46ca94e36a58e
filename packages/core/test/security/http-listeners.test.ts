// A careless listener setting: https:// served as TLS with the configured PEM key and
// certificate (or start refused, naming what is missing), every listener served (or start
// refused), and a listener other machines can reach refused without rest.auth.* unless
// rest.auth.none=true.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:net';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Worker } from '../../src/worker/worker.ts';
import { loadWorkerConfig, workerConfigSpec } from '../../src/runtime/worker-config.ts';

const dir = mkdtempSync(join(tmpdir(), 'omnibus-listeners-'));
const keyFile = join(dir, 'key.pem');
const certFile = join(dir, 'cert.pem');
const encryptedKeyFile = join(dir, 'encrypted-key.pem');
const workers: Worker[] = [];
let stores = 0;

beforeAll(() => {
  // A self-signed certificate for localhost and 127.0.0.1, made for this run.
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', keyFile, '-out', certFile, '-days', '1', '-subj', '/CN=localhost',
    '-addext', 'subjectAltName=DNS:localhost,IP:127.0.0.1',
  ], { stdio: 'ignore' });
  execFileSync('openssl', ['pkey', '-in', keyFile, '-out', encryptedKeyFile, '-aes-256-cbc', '-passout', 'pass:key-passphrase'], { stdio: 'ignore' });
});
afterAll(async () => {
  for (const worker of workers) await worker.stop();
  rmSync(dir, { recursive: true, force: true });
});

function workerWith(settings: Record<string, unknown>): Worker {
  stores += 1;
  const worker = new Worker(workerConfigSpec.parse({ store: `lmdb:${join(dir, `store-${stores}`)}`, 'log.level': 'silent', ...settings }));
  workers.push(worker);
  return worker;
}

async function startFailure(settings: Record<string, unknown>): Promise<string> {
  const worker = workerWith(settings);
  try {
    await worker.start();
  } catch (error) {
    return (error as Error).message;
  }
  throw new Error('expected the worker to refuse to start');
}

/** GET over TLS, trusting only the test's certificate. */
function httpsGet(url: string): Promise<{ status: number; body: string; protocol: string }> {
  return new Promise((resolve, reject) => {
    const request = httpsRequest(url, { ca: readFileSync(certFile) }, (response) => {
      let body = '';
      const protocol = (response.socket as unknown as { getProtocol(): string | null }).getProtocol() ?? '';
      response.on('data', (chunk) => (body += chunk));
      response.on('end', () => resolve({ status: response.statusCode ?? 0, body, protocol }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe('https:// listeners', () => {
  it('serve TLS with the configured key and certificate, beside a plain http listener', async () => {
    const worker = workerWith({
      listeners: ['https://127.0.0.1:0', 'http://127.0.0.1:0'],
      'listeners.https.ssl.key.location': keyFile,
      'listeners.https.ssl.certificate.location': certFile,
    });
    await worker.start();
    expect(worker.urls).toHaveLength(2);
    const [secure, plain] = worker.urls as [string, string];
    expect(secure).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(worker.url).toBe(secure);

    const answer = await httpsGet(`${secure}/connectors`);
    expect(answer.status).toBe(200);
    expect(JSON.parse(answer.body)).toEqual([]);
    expect(answer.protocol).toMatch(/^TLSv1\.[23]$/);
    // The name in the certificate works too, and the Host check holds over TLS.
    const byName = await httpsGet(`https://localhost:${new URL(secure).port}/`);
    expect(byName.status).toBe(200);

    // Plain HTTP on the TLS port gets no API answer.
    const cleartext = await fetch(`http://127.0.0.1:${new URL(secure).port}/connectors`).then(
      (response) => response.status,
      () => 'refused',
    );
    expect(cleartext).not.toBe(200);
    // The second listener is served as well.
    expect((await fetch(`${plain}/connectors`)).status).toBe(200);
  });

  it('serve with an encrypted key and its passphrase (listeners.https.ssl.key.password)', async () => {
    const worker = workerWith({
      listeners: ['https://127.0.0.1:0'],
      'listeners.https.ssl.key.location': encryptedKeyFile,
      'listeners.https.ssl.certificate.location': certFile,
      'listeners.https.ssl.key.password': 'key-passphrase',
    });
    await worker.start();
    expect((await httpsGet(`${worker.url}/`)).status).toBe(200);
  });

  it('refuse to start without a key or certificate, naming the missing settings', async () => {
    const neither = await startFailure({ listeners: ['https://127.0.0.1:0'] });
    expect(neither).toContain('listeners.https.ssl.key.location and listeners.https.ssl.certificate.location');
    const noCert = await startFailure({ listeners: ['http://127.0.0.1:0', 'https://127.0.0.1:0'], 'listeners.https.ssl.key.location': keyFile });
    expect(noCert).toMatch(/set listeners\.https\.ssl\.certificate\.location$/);
  });

  it('refuse to start with an unreadable or unusable key, naming the setting, never the key', async () => {
    const missing = await startFailure({
      listeners: ['https://127.0.0.1:0'],
      'listeners.https.ssl.key.location': join(dir, 'no-such-key.pem'),
      'listeners.https.ssl.certificate.location': certFile,
    });
    expect(missing).toContain('listeners.https.ssl.key.location');
    expect(missing).toContain('ENOENT');

    writeFileSync(join(dir, 'garbage.pem'), 'not a key');
    const garbage = await startFailure({
      listeners: ['https://127.0.0.1:0'],
      'listeners.https.ssl.key.location': join(dir, 'garbage.pem'),
      'listeners.https.ssl.certificate.location': certFile,
    });
    expect(garbage).toContain('cannot be used');

    const wrongPassphrase = await startFailure({
      listeners: ['https://127.0.0.1:0'],
      'listeners.https.ssl.key.location': encryptedKeyFile,
      'listeners.https.ssl.certificate.location': certFile,
      'listeners.https.ssl.key.password': 'wrong-passphrase',
    });
    expect(wrongPassphrase).toContain('cannot be used');
    expect(wrongPassphrase).not.toContain('wrong-passphrase');
  });

  it('are reachable through OMNIBUS_* environment variables and a worker.json', () => {
    const config = loadWorkerConfig(
      {},
      {
        env: {
          OMNIBUS_LISTENERS: 'https://127.0.0.1:8443',
          OMNIBUS_LISTENERS_HTTPS_SSL_KEY_LOCATION: keyFile,
          OMNIBUS_LISTENERS_HTTPS_SSL_CERTIFICATE_LOCATION: certFile,
          OMNIBUS_REST_AUTH_NONE: 'true',
          OMNIBUS_REST_ALLOWED_HOSTS: 'omnibus.internal',
          OMNIBUS_REST_CORS_ALLOWED_ORIGINS: 'https://console.example',
          OMNIBUS_REST_HOOKS_BODY_LIMIT_BYTES: '65536',
        },
      },
    );
    expect(config).toMatchObject({
      listeners: ['https://127.0.0.1:8443'],
      'listeners.https.ssl.key.location': keyFile,
      'listeners.https.ssl.certificate.location': certFile,
      'rest.auth.none': true,
      'rest.allowed.hosts': ['omnibus.internal'],
      'rest.cors.allowed.origins': ['https://console.example'],
      'rest.hooks.body.limit.bytes': 65536,
    });
    const file = join(dir, 'worker.json');
    writeFileSync(file, JSON.stringify({ 'rest.hooks.timeout.ms': 2000, 'rest.json.max.depth': 32, 'rest.request.timeout.ms': 5000 }));
    expect(loadWorkerConfig({}, { file, env: {} })).toMatchObject({ 'rest.hooks.timeout.ms': 2000, 'rest.json.max.depth': 32, 'rest.request.timeout.ms': 5000 });
    // The defaults.
    expect(loadWorkerConfig({}, { env: {} })).toMatchObject({
      'rest.auth.none': false,
      'rest.allowed.hosts': [],
      'rest.cors.allowed.origins': [],
      'rest.hooks.body.limit.bytes': 256 * 1024,
      'rest.hooks.timeout.ms': 10_000,
      'rest.json.max.depth': 64,
      'rest.request.timeout.ms': 30_000,
    });
  });
});

describe('every listener is served or start is refused', () => {
  it('refuses a listener whose port is taken, closing the ones it opened', async () => {
    const listenOn = async (port: number) => {
      const server: Server = createServer();
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, '127.0.0.1', resolve);
      });
      return { server, port: (server.address() as { port: number }).port };
    };
    const blocker = await listenOn(0);
    const probe = await listenOn(0);
    const free = probe.port;
    await new Promise((resolve) => probe.server.close(resolve));
    try {
      const message = await startFailure({ listeners: [`http://127.0.0.1:${free}`, `http://127.0.0.1:${blocker.port}`] });
      expect(message).toContain(`listener http://127.0.0.1:${blocker.port} cannot be served`);
      expect(message).toContain('EADDRINUSE');
      // The first listener, opened before the second failed, was closed again.
      const again = await listenOn(free);
      await new Promise((resolve) => again.server.close(resolve));
    } finally {
      blocker.server.close();
    }
  });

  it('refuses listener URLs it cannot serve as written', async () => {
    expect(await startFailure({ listeners: ['ftp://127.0.0.1:8083'] })).toContain('is not a listener URL');
    expect(await startFailure({ listeners: ['http://127.0.0.1:8083/api'] })).toContain('is not a listener URL');
    expect(await startFailure({ listeners: ['http://user@127.0.0.1:8083'] })).toContain('is not a listener URL');
    expect(await startFailure({ listeners: ['http://127.0.0.1:70000'] })).toContain('out of range');
    expect(await startFailure({ listeners: ['http://127.0.0.1:18083', 'http://127.0.0.1:18083'] })).toContain('configured twice');
  });

  it('serves http://host without a port on 8083 and an explicit :80 on 80 (not 8083)', async () => {
    // Parsing only: binding port 80 needs privileges, so the listener the worker would open is checked.
    const { parseListener } = await import('../../src/rest/listeners.ts');
    expect(parseListener('http://127.0.0.1').port).toBe(8083);
    expect(parseListener('http://127.0.0.1:80').port).toBe(80);
    expect(parseListener('https://[::1]:443')).toMatchObject({ host: '::1', port: 443, protocol: 'https', loopback: true });
  });
});

describe('listeners other machines can reach', () => {
  it('refuse to start without rest.auth.*, whatever the address form', async () => {
    for (const listener of ['http://0.0.0.0:0', 'http://[::]:0', 'http://10.1.2.3:0', 'http://omnibus.example.com:0', 'https://0.0.0.0:0']) {
      const message = await startFailure({ listeners: ['http://127.0.0.1:0', listener] });
      expect(message, listener).toContain('no rest.auth.* credential is set');
      expect(message, listener).toContain('rest.auth.none=true');
    }
  });

  it('start with credentials, or with an explicit rest.auth.none=true', async () => {
    const withToken = workerWith({ listeners: ['http://0.0.0.0:0'], 'rest.auth.bearer.tokens': 'token' });
    await withToken.start();
    const port = new URL(withToken.urls[0] as string).port;
    expect((await fetch(`http://127.0.0.1:${port}/connectors`)).status).toBe(401);

    const explicit = workerWith({ listeners: ['http://0.0.0.0:0'], 'rest.auth.none': true });
    await explicit.start();
    expect((await fetch(`http://127.0.0.1:${new URL(explicit.urls[0] as string).port}/connectors`)).status).toBe(200);
  });

  it('count localhost names and every loopback address as loopback', async () => {
    const { isLoopbackAddress } = await import('../../src/rest/listeners.ts');
    for (const host of ['localhost', 'LOCALHOST', 'api.localhost', '127.0.0.1', '127.9.9.9', '::1', '[::1]', '0:0:0:0:0:0:0:1', '::ffff:127.0.0.1']) {
      expect(isLoopbackAddress(host), host).toBe(true);
    }
    for (const host of ['0.0.0.0', '::', '10.0.0.1', '128.0.0.1', 'localhost.example.com', 'mylocalhost', '::2', '::ffff:10.0.0.1']) {
      expect(isLoopbackAddress(host), host).toBe(false);
    }
  });
});
