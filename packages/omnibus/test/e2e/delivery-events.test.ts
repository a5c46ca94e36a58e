/**
 * Delivery events end to end: 10,000 SMS through SmsSink to the SMPP dev SMSC, which sends a
 * DELIVRD receipt for each; the SMS connector publishes its state changes to an events topic;
 * a WebhookSink posts them, signed, over HTTPS (a self-signed certificate made for the run,
 * trusted through webhook.tls.ca) to a local receiver that stops listening for 60 s in the
 * middle of the run and then comes back on the same port. After deduplication by event id the
 * receiver has exactly one `delivered` event per message, every signature verifies, and each
 * message's `sent` event came before its `delivered` one (the SMSC holds its receipts back a
 * few seconds, so the events topic has them in that order; the sink must keep it through the
 * retries).
 */
import { createHmac, timingSafeEqual } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { startSmscDevServer, type SmscDevServer } from '@omnibus/connector-sms/dev-server';
import { loadWorkerConfig, Worker } from '@omnibus/core';
import { selfSignedCertificate, type SelfSignedCertificate } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DISTRIBUTION } from '../../src/distribution.ts';

const MESSAGES = 10_000;
const PRODUCE_BATCH = 500;
/** Messages produced before the receiver goes down; the rest are produced while it is down. */
const BEFORE_OUTAGE = 2_000;
const OUTAGE_MS = 60_000;
const SECRET = 'e2e-signing-secret-0123456789';
const EVENTS_TOPIC = 'omnibus.delivery-events';
const SMPP = { systemId: 'e2e-events', password: 'events12' };

interface EventValue {
  event_id: string;
  state: string;
  message_id: string;
  connector: string;
}

/** The check the connector's README gives receivers (signature over "<t>.<raw body>", recent t). */
function verify(header: string, rawBody: string, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', SECRET).update(`${t}.${rawBody}`).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

/** An HTTPS receiver that deduplicates by event id and keeps each message's events in arrival order. */
class Receiver {
  readonly events = new Map<string, EventValue>();
  /** Per message id, its event ids in the order they first arrived. */
  readonly arrivals = new Map<string, string[]>();
  posts = 0;
  repeats = 0;
  badSignatures = 0;
  idMismatches = 0;
  port = 0;
  private server: Server | undefined;

  constructor(private readonly tls: SelfSignedCertificate) {}

  async listen(): Promise<void> {
    const server = createServer({ key: this.tls.key, cert: this.tls.cert }, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.posts += 1;
        const body = Buffer.concat(chunks).toString('utf8');
        if (!verify(String(req.headers['omnibus-signature']), body)) {
          this.badSignatures += 1;
          res.writeHead(401).end();
          return;
        }
        const value = JSON.parse(body) as EventValue;
        if (req.headers['omnibus-event-id'] !== value.event_id) this.idMismatches += 1;
        if (this.events.has(value.event_id)) this.repeats += 1;
        else {
          this.events.set(value.event_id, value);
          const list = this.arrivals.get(value.message_id);
          if (list) list.push(value.state);
          else this.arrivals.set(value.message_id, [value.state]);
        }
        res.writeHead(204).end();
      });
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(this.port, '127.0.0.1', () => resolve());
    });
    this.port = (server.address() as AddressInfo).port;
    this.server = server;
  }

  /** Stops listening and drops every open connection: the sink's POSTs are refused. */
  async close(): Promise<void> {
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  }

  /** What arrived so far, for a failure's message. */
  summary(): string {
    const states = new Map<string, number>();
    for (const event of this.events.values()) states.set(event.state, (states.get(event.state) ?? 0) + 1);
    return `(received: ${JSON.stringify(Object.fromEntries(states))}, ${this.posts} POSTs, ${this.repeats} repeats)`;
  }

  count(state: string): number {
    let n = 0;
    for (const event of this.events.values()) if (event.state === state) n += 1;
    return n;
  }
}

async function call(base: string, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown; text: string }> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  const json = response.headers.get('content-type')?.includes('json') && text ? (JSON.parse(text) as unknown) : undefined;
  return { status: response.status, body: json, text };
}

async function until(check: () => boolean | Promise<boolean>, what: string, timeoutMs: number, progress: () => string = () => ''): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what} ${progress()}`);
    await sleep(100);
  }
}

/** A counter of the worker's /metrics for one connector (0 when absent). */
async function connectorCounter(api: string, metric: string, connector: string): Promise<number> {
  const { text } = await call(api, 'GET', '/metrics');
  const line = text.split('\n').find((l) => l.startsWith(`${metric}{`) && l.includes(`connector="${connector}"`));
  return line ? Number(line.split(' ').pop()) : 0;
}

describe('delivery events through WebhookSink', () => {
  let dir: string;
  let worker: Worker;
  let smsc: SmscDevServer;
  let receiver: Receiver;
  let tls: SelfSignedCertificate;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'omnibus-events-'));
    tls = selfSignedCertificate();
    // Receipts a few seconds after the submit: the message's `sent` event is published first.
    smsc = await startSmscDevServer({ credentials: SMPP, receiptDelayMs: 5_000 });
    receiver = new Receiver(tls);
    await receiver.listen();
    // One worker: a long membership lease costs nothing here, and a starved machine must not stop its tasks mid-run.
    worker = new Worker(loadWorkerConfig({ store: `lmdb:${dir}`, listeners: 'http://127.0.0.1:0', 'log.level': 'error', 'lease.ttl.ms': 60_000 }), DISTRIBUTION);
    await worker.start();
  }, 120_000);

  afterAll(async () => {
    await worker?.stop();
    await smsc?.close();
    await receiver?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it(`delivers one 'delivered' event per message (${MESSAGES}) over HTTPS, in order per message, through a ${OUTAGE_MS / 1000} s outage of the receiver`, async () => {
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
        'batch.size': '100',
        'delivery.events.topic': EVENTS_TOPIC,
      },
    });
    expect(sms.status).toBe(201);
    const hook = await call(api, 'POST', '/connectors', {
      name: 'events-out',
      config: {
        'connector.class': 'WebhookSink',
        topics: EVENTS_TOPIC,
        'webhook.url': `https://127.0.0.1:${receiver.port}/omnibus`,
        'webhook.tls.ca': tls.cert,
        'webhook.signing.secret': SECRET,
        'webhook.timeout.ms': '10000',
        // The receiver's outage must not exhaust the retries.
        'errors.retry.max.attempts': '1000',
        'errors.retry.timeout': '-1',
        'errors.retry.delay.initial.ms': '200',
        'errors.retry.delay.max.ms': '3000',
      },
    });
    expect(hook.status).toBe(201);

    const ids: string[] = [];
    let refusedFrom = 0;
    for (let i = 0; i < MESSAGES; i += PRODUCE_BATCH) {
      if (i === BEFORE_OUTAGE) {
        // The outage, in the middle: some events are through, more keep coming while it lasts.
        await until(() => receiver.count('delivered') > 0, 'the first delivered events', 300_000);
        await receiver.close();
        refusedFrom = Date.now();
      }
      const messages = Array.from({ length: Math.min(PRODUCE_BATCH, MESSAGES - i) }, (_, j) => {
        const to = `+3361${String(i + j).padStart(7, '0')}`;
        return { key: to, value: { to, text: `code ${i + j}` } };
      });
      const produced = await call(api, 'POST', '/topics/sms/messages', { messages });
      expect(produced.status).toBe(202);
      ids.push(...(produced.body as { messages: Array<{ id: string }> }).messages.map((m) => m.id));
    }
    expect(ids).toHaveLength(MESSAGES);
    const down = Date.now() - refusedFrom;
    if (down < OUTAGE_MS) await sleep(OUTAGE_MS - down);
    const deliveredDuringOutage = receiver.count('delivered');
    const retriedDuringOutage = await connectorCounter(api, 'omnibus_sink_records_retried_total', 'events-out');
    await receiver.listen();

    await until(() => receiver.count('delivered') >= MESSAGES && receiver.count('sent') >= MESSAGES, `${MESSAGES} delivered and sent events`, 900_000, () => receiver.summary());
    // Anything still in flight lands now, or shows as a surplus below.
    await sleep(2_000);

    expect(deliveredDuringOutage).toBeLessThan(MESSAGES);
    expect(retriedDuringOutage).toBeGreaterThan(0);
    expect(receiver.badSignatures).toBe(0);
    expect(receiver.idMismatches).toBe(0);
    expect(receiver.count('delivered')).toBe(MESSAGES);
    const delivered = [...receiver.events.values()].filter((e) => e.state === 'delivered');
    expect(new Set(delivered.map((e) => e.message_id))).toEqual(new Set(ids));
    expect(delivered.every((e) => e.connector === 'sms-out')).toBe(true);
    // No state but sent and delivered: nothing failed, nothing went unknown.
    expect(new Set([...receiver.events.values()].map((e) => e.state))).toEqual(new Set(['sent', 'delivered']));
    // In order per message: each message's sent event arrived (first) before its delivered one.
    const outOfOrder = ids.filter((id) => receiver.arrivals.get(id)?.join(',') !== 'sent,delivered');
    expect(outOfOrder).toEqual([]);
  }, 1_200_000);
});
