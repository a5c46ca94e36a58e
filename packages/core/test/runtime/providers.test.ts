// A real worker (LMDB store, reconcile loop, task runners) running EmailSink with two SMTP relays
// (real SMTP dev servers): the delivery record names the relay used, and the worker shows each
// relay's circuit breaker through GET /connectors/{c}/providers and its metrics.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startSmtpDevServer, type SmtpDevServer } from '../../../connector-email/src/dev-server.ts';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';
import { Worker } from '../../src/worker/worker.ts';
import { distributionDir } from '../rest/harness.ts';
import { expectDocumented } from '../rest/openapi-check.ts';
import { eventually, FAST_CLUSTER } from './helpers.ts';

let dir: string;
let worker: Worker;
let backup: SmtpDevServer;
let primaryPort: number;

const request = async (method: string, path: string, body?: unknown) => {
  const response = await fetch(`${worker.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, text, body: text && response.headers.get('content-type')?.includes('json') ? (JSON.parse(text) as unknown) : undefined };
};

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-providers-'));
  // The primary relay is down: its port refuses connections.
  const closed = await startSmtpDevServer();
  primaryPort = closed.port;
  await closed.close();
  backup = await startSmtpDevServer();
  worker = new Worker(
    workerConfigSpec.parse({
      store: `lmdb:${join(dir, 'data')}`,
      listeners: ['http://127.0.0.1:0'],
      'log.level': process.env.OMNIBUS_TEST_LOG_LEVEL ?? 'silent',
      ...FAST_CLUSTER,
    }),
    { distributionDirs: [distributionDir] },
  );
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  await backup?.close();
  await rm(dir, { recursive: true, force: true });
});

describe('provider failover in a running worker', () => {
  it('records the relay used, and shows each relay\'s breaker and figures', async () => {
    expect((await request('POST', '/topics', { name: 'mail', shards: 2 })).status).toBe(201);
    const created = await request('POST', '/connectors', {
      name: 'email',
      config: {
        'connector.class': 'EmailSink',
        'tasks.max': '1',
        topics: 'mail',
        'smtp.host': '127.0.0.1',
        'smtp.port': String(primaryPort),
        'smtp.starttls': 'never',
        'email.from': 'Omnibus <noreply@omnibus.test>',
        providers: 'primary,backup',
        'providers.backup.smtp.port': String(backup.port),
        'provider.breaker.consecutive.failures': '2',
        'provider.breaker.cooldown.ms': '600000',
      },
    });
    expect(created.status).toBe(201);

    const messages = Array.from({ length: 4 }, (_, i) => ({ key: `r${i}@example.org`, value: { to: `r${i}@example.org`, subject: `s${i}`, text: 'hello' } }));
    const produced = await request('POST', '/topics/mail/messages', { messages });
    expect(produced.status).toBe(202);
    const ids = (produced.body as { messages: Array<{ id: string }> }).messages.map((m) => m.id);

    for (const id of ids) {
      const record = await eventually(
        () => request('GET', `/messages/${encodeURIComponent(id)}`),
        (r) => JSON.stringify(r.body).includes('"sent"'),
        `message ${id} to be sent`,
      );
      expect(record.text).toContain('"provider":"backup"');
    }
    expect(backup.acceptedCount).toBe(4);

    const providers = await request('GET', '/connectors/email/providers');
    expect(providers.status).toBe(200);
    expect(providers.body).toMatchObject({
      name: 'email',
      tasks: [{ task: 0, providers: [{ alias: 'primary', state: 'open' }, { alias: 'backup', state: 'closed', sent: 4 }] }],
    });
    expectDocumented('GET', '/connectors/email/providers', { statusCode: providers.status, body: providers.text, headers: {} });

    const metrics = (await request('GET', '/metrics')).text;
    expect(metrics).toMatch(/omnibus_provider_breaker_state\{connector="email",task="0",provider="primary"\} 2/);
    expect(metrics).toMatch(/omnibus_provider_breaker_state\{connector="email",task="0",provider="backup"\} 0/);
    expect(metrics).toMatch(/omnibus_provider_records_total\{connector="email",provider="backup",outcome="sent"\} 4/);

    expect((await request('GET', '/connectors/nobody/providers')).status).toBe(404);
  });

  it('refuses a provider list with duplicate names, naming the key, and stores nothing', async () => {
    const response = await request('POST', '/connectors', {
      name: 'email-dup',
      config: {
        'connector.class': 'EmailSink',
        topics: 'mail',
        'smtp.host': '127.0.0.1',
        'email.from': 'Omnibus <noreply@omnibus.test>',
        providers: 'a,a',
      },
    });
    expect(response.status).toBe(400);
    expect(response.text).toContain('providers');
    expect(response.text).toContain('providers names \\"a\\" more than once');
    expect((await request('GET', '/connectors/email-dup')).status).toBe(404);
  });
});
