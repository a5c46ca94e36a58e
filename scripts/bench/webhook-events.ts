/**
 * Delivery events per second through WebhookSink to a local HTTP receiver: one in-process
 * worker on a fresh LMDB store, N delivery events (the JSON a sink's `delivery.events.topic`
 * carries) produced to an events topic first, then a WebhookSink registered over REST with a
 * signing secret; the figure is the events posted per second from its registration to the last
 * arrival (a backlog drain, as after an application's endpoint was down). The receiver (node's
 * http server, in the same process) checks every signature and counts each event id, so that
 * duplicates, bad signatures and missing events are reported beside the rate. `--batch N` sets
 * `webhook.batch.max.records` (1: one event per POST, the default; above: arrays of N).
 *
 *   node --conditions=omnibus-source --import tsx scripts/bench/webhook-events.ts [--events 5000] [--batch 1]
 */
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { BATCH_HEADER, EVENT_ID_HEADER, SIGNATURE_HEADER, signatureHeader } from '../../packages/connector-webhook/src/sink.ts';
import { loadWorkerConfig } from '../../packages/core/src/runtime/worker-config.ts';
import { Worker } from '../../packages/core/src/worker/worker.ts';
import { restClient, waitUntilRunning } from './channels.ts';
import { BATCH, sleep, withClients } from './workload.ts';

export interface WebhookEventFigures {
  events: number;
  /** Events per POST (webhook.batch.max.records). */
  batch: number;
  /** Registration of the WebhookSink → the last event at the receiver. */
  seconds: number;
  eventsPerSecond: number;
  /** CPU of this process (worker, receiver) per event posted, µs. */
  cpuMicrosPerEvent: number;
  duplicates: number;
  badSignatures: number;
  missing: number;
  settings: string;
}

const SHARDS = 16;
const TASKS = 2;
const IN_FLIGHT = 16;
const TOPIC = 'omnibus.delivery-events';
const SECRET = 'bench-webhook-signing-secret';
/** The events-per-POST settings `pnpm bench --only webhook` measures: one event per POST (the default), and arrays of 100. */
export const WEBHOOK_BATCHES = [1, 100] as const;

/** An event as a sink publishes it (packages/connector-webhook/README.md). */
function deliveryEvent(n: number): { id: string; key: string; value: Record<string, unknown> } {
  const messageId = `msg-${String(n).padStart(7, '0')}`;
  const state = n % 3 === 0 ? 'delivered' : 'sent';
  const eventId = `${messageId}:${state}:5d41402abc4b`;
  return {
    id: eventId,
    key: messageId,
    value: { event_id: eventId, type: `message.${state}`, state, message_id: messageId, topic: 'sms', connector: 'sms-out', at: 1_796_650_981_466 + n, group: 'campaign-42', provider_id: `p-${n}`, attempts: 1, ...(state === 'delivered' ? { receipt: true } : {}) },
  };
}

function startReceiver() {
  const firstAt = new Map<string, number>();
  const counts = new Map<string, number>();
  let badSignatures = 0;
  const server = createServer((request: IncomingMessage, response: ServerResponse) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const signature = String(request.headers[SIGNATURE_HEADER.toLowerCase()] ?? '');
      const t = Number(/t=(\d+)/.exec(signature)?.[1]);
      if (signatureHeader(SECRET, body, t) !== signature) badSignatures += 1;
      const ids = request.headers[BATCH_HEADER.toLowerCase()]
        ? (JSON.parse(body) as Array<{ id: string }>).map((item) => item.id)
        : [String(request.headers[EVENT_ID_HEADER.toLowerCase()] ?? '')];
      const now = Date.now();
      for (const id of ids) {
        counts.set(id, (counts.get(id) ?? 0) + 1);
        if (!firstAt.has(id)) firstAt.set(id, now);
      }
      response.writeHead(204).end();
    });
  });
  return {
    firstAt,
    counts,
    badSignatures: () => badSignatures,
    listen: () => new Promise<string>((resolve) => server.listen(0, '127.0.0.1', () => resolve(`http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/omnibus`))),
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

export async function benchWebhookEvents(options: { events?: number; batch?: number; log?: (line: string) => void } = {}): Promise<WebhookEventFigures> {
  const events = options.events ?? 5_000;
  const batch = options.batch ?? 1;
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const dir = await mkdtemp(join(tmpdir(), 'omnibus-bench-webhook-'));
  const worker = new Worker(loadWorkerConfig({ store: `lmdb:${dir}`, listeners: 'http://127.0.0.1:0', 'log.level': 'warn' }), {
    distributionDirs: [fileURLToPath(new URL('../../packages/omnibus', import.meta.url))],
  });
  const receiver = startReceiver();
  try {
    const url = await receiver.listen();
    await worker.start();
    const api = restClient(worker.url);
    await api.expect('POST', '/topics', { name: TOPIC, shards: SHARDS }, [201]);
    const all = Array.from({ length: events }, (_, n) => deliveryEvent(n));
    const batches: Array<typeof all> = [];
    for (let start = 0; start < events; start += BATCH) batches.push(all.slice(start, start + BATCH));
    await withClients(batches, 2, async (batch) => void (await api.expect('POST', `/topics/${TOPIC}/messages`, { messages: batch }, [202])));
    log(`webhook: ${events} delivery events waiting in ${TOPIC}; registering WebhookSink (tasks.max=${TASKS}, webhook.max.in.flight=${IN_FLIGHT}, webhook.batch.max.records=${batch})`);

    const cpuBefore = process.cpuUsage();
    const startedAt = Date.now();
    const config = { 'connector.class': 'WebhookSink', topics: TOPIC, 'tasks.max': String(TASKS), 'webhook.url': url, 'webhook.signing.secret': SECRET, 'webhook.max.in.flight': String(IN_FLIGHT), 'webhook.batch.max.records': String(batch) };
    await api.expect('POST', '/connectors', { name: 'events-to-app', config }, [201]);
    await waitUntilRunning(api, 'events-to-app', 30_000, TASKS);
    const deadline = Date.now() + 60_000 + events * 20;
    while (receiver.firstAt.size < events && Date.now() < deadline) await sleep(50);
    const lastArrival = Math.max(startedAt, ...receiver.firstAt.values());
    const cpu = process.cpuUsage(cpuBefore);
    const arrived = receiver.firstAt.size;
    const seconds = (lastArrival - startedAt) / 1000;
    return {
      events,
      batch,
      seconds,
      eventsPerSecond: seconds > 0 ? arrived / seconds : NaN,
      cpuMicrosPerEvent: arrived > 0 ? (cpu.user + cpu.system) / arrived : NaN,
      duplicates: [...receiver.counts.values()].filter((count) => count > 1).length,
      badSignatures: receiver.badSignatures(),
      missing: events - arrived,
      settings: `tasks.max=${TASKS}, webhook.max.in.flight=${IN_FLIGHT} per task, ${SHARDS} shards, signed; receiver in the same process`,
    };
  } finally {
    await worker.stop().catch((error: unknown) => log(`webhook: stopping the worker failed: ${String(error)}`));
    await receiver.close();
    await rm(dir, { recursive: true, force: true });
  }
}

export function describeWebhookEvents(f: WebhookEventFigures): string {
  return (
    `WebhookSink to a local receiver, ${f.batch === 1 ? 'one event per POST' : `up to ${f.batch} events per POST`}: ${f.eventsPerSecond.toFixed(0)} events/s (${f.events} events in ${f.seconds.toFixed(2)} s, ${f.cpuMicrosPerEvent.toFixed(0)} µs CPU per event), ` +
    `${f.duplicates} duplicates, ${f.badSignatures} bad signatures, ${f.missing} missing (${f.settings})`
  );
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const { values } = parseArgs({ options: { events: { type: 'string', default: '5000' }, batch: { type: 'string', default: '1' } } });
  console.log(describeWebhookEvents(await benchWebhookEvents({ events: Number(values.events), batch: Number(values.batch) })));
  setTimeout(() => process.exit(), 2000).unref();
}
