/**
 * Delivery events end to end: SMS through SmsSink to the SMPP dev SMSC, which sends a
 * DELIVRD receipt for each; the SMS connector publishes its state changes to an events topic;
 * a WebhookSink posts them, signed, to a local receiver that is unavailable for a while in the
 * middle (503, then not listening at all). After deduplication by event id the receiver has
 * exactly one `delivered` event per message.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSmscDevServer, type SmscDevServer } from '@omnibus/connector-sms/dev-server';
import { loadWorkerConfig, Worker } from '@omnibus/core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISTRIBUTION } from '../../src/distribution.ts';

const MESSAGES = 1000;
const SECRET = 'e2e-signing-secret-0123456789';
const EVENTS_TOPIC = 'omnibus.delivery-events';
const SMPP = { systemId: 'e2e-events', password: 'events12' };

interface EventValue {
  event_id: string;
  state: string;
  message_id: string;
  connector: string;
}

function verify(header: string, body: string): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const expected = createHmac('sha256', SECRET).update(`${parts.t}.${body}`).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** A receiver that can answer 503 or stop listening, then come back on the same port. */
class Receiver {
  readonly events = new Map<string, EventValue>();
  calls = 0;
  refusedWith503 = 0;
  badSignatures = 0;
  unavailable = false;
  private server: Server | undefined;
  port = 0;

  async listen(): Promise<void> {
    const server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.calls += 1;
        if (this.unavailable) {
          this.refusedWith503 += 1;
          res.writeHead(503, { 'retry-after': '0' }).end();
          return;
        }
        const body = Buffer.concat(chunks).toString('utf8');
        if (!verify(String(req.headers['omnibus-signature']), body)) {
          this.badSignatures += 1;
          res.writeHead(401).end();
          return;
        }
        const value = JSON.parse(body) as EventValue;
        expect(req.headers['omnibus-event-id']).toBe(value.event_id);
        this.events.set(value.event_id, value);
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve) => server.listen(this.port, '127.0.0.1', resolve));
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  delivered(): EventValue[] {
    return [...this.events.values()].filter((e) => e.state === 'delivered');
  }
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs = 120_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(50);
  }
}

describe('delivery events through WebhookSink', () => {
  let dir: string;
  let worker: Worker;
  let smsc: SmscDevServer;
  const receiver = new Receiver();

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'omnibus-events-'));
    smsc = await startSmscDevServer({ credentials: SMPP });
    await receiver.listen();
    worker = new Worker(loadWorkerConfig({ store: `lmdb:${dir}`, listeners: 'http://127.0.0.1:0', 'log.level': 'error' }), DISTRIBUTION);
    await worker.start();
  }, 60_000);

  afterAll(async () => {
    await worker?.stop();
    await smsc?.close();
    await receiver.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`delivers one 'delivered' event per message (${MESSAGES}) to the receiver, through an outage`, async () => {
    const api = worker.url;
    expect((await call(api, 'POST', '/topics', { name: 'sms', shards: 8 })).status).toBe(201);
    expect((await call(api, 'POST', '/topics', { name: EVENTS_TOPIC, shards: 8 })).status).toBe(201);
    const sms = await call(api, 'POST', '/connectors', {
      name: 'sms-out',
      config: {
        'connector.class': 'SmsSink',
        topics: 'sms',
        'sms.transport': 'smpp',
        'sms.from': 'Omnibus',
        'smpp.host': '127.0.0.1',
        'smpp.port': String(smsc.port),
        'smpp.system.id': SMPP.systemId,
        'smpp.password': SMPP.password,
        'smpp.window.size': '50',
        'smpp.registered.delivery': 'true',
        'delivery.events.topic': EVENTS_TOPIC,
      },
    });
    expect(sms.status).toBe(201);
    const hook = await call(api, 'POST', '/connectors', {
      name: 'events-out',
      config: {
        'connector.class': 'WebhookSink',
        topics: EVENTS_TOPIC,
        'webhook.url': `http://127.0.0.1:${receiver.port}/omnibus`,
        'webhook.signing.secret': SECRET,
        'webhook.timeout.ms': '2000',
        // The receiver's outage must not exhaust the retries.
        'errors.retry.max.attempts': '1000',
        'errors.retry.timeout': '-1',
        'errors.retry.delay.initial.ms': '50',
        'errors.retry.delay.max.ms': '500',
      },
    });
    expect(hook.status).toBe(201);

    const ids: string[] = [];
    for (let i = 0; i < MESSAGES; i += 250) {
      const messages = Array.from({ length: Math.min(250, MESSAGES - i) }, (_, j) => ({ key: `+3361${String(i + j).padStart(7, '0')}`, value: { to: `+3361${String(i + j).padStart(7, '0')}`, text: `code ${i + j}` } }));
      const produced = await call(api, 'POST', '/topics/sms/messages', { messages });
      expect(produced.status).toBe(202);
      ids.push(...(produced.body as { messages: Array<{ id: string }> }).messages.map((m) => m.id));
      if (i === 250) {
        // The outage: some events are through, more keep coming.
        await until(() => receiver.delivered().length > 0, 'the first delivered events');
        receiver.unavailable = true;
        await until(() => receiver.refusedWith503 >= 20, 'calls refused with 503');
        await receiver.close();
        await sleep(1500);
        receiver.unavailable = false;
        await receiver.listen();
      }
    }
    expect(ids).toHaveLength(MESSAGES);

    await until(() => receiver.delivered().length >= MESSAGES, `${MESSAGES} delivered events`);
    await until(() => [...receiver.events.values()].filter((e) => e.state === 'sent').length >= MESSAGES, `${MESSAGES} sent events`);
    const delivered = receiver.delivered();
    expect(delivered).toHaveLength(MESSAGES);
    expect(new Set(delivered.map((e) => e.message_id))).toEqual(new Set(ids));
    expect(delivered.every((e) => e.connector === 'sms-out')).toBe(true);
    expect(receiver.refusedWith503).toBeGreaterThanOrEqual(20);
    expect(receiver.badSignatures).toBe(0);
    // No state but sent and delivered: nothing failed, nothing went unknown.
    expect(new Set([...receiver.events.values()].map((e) => e.state))).toEqual(new Set(['sent', 'delivered']));
  }, 180_000);
});
