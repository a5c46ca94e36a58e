/**
 * Channel fallback end to end: 2,000 WhatsApp messages, each with an SMS fallback, through
 * `omnibus start` worker processes on one LMDB store, the first-party WhatsAppSink against the
 * Cloud API emulator and SmsSink against the development SMSC (SMPP over TCP).
 *
 * The emulator withholds `delivered` (and `read`) for every fifth recipient: it still answers the
 * send with a message id and posts `sent`, as for a phone that stays offline. Each fallback waits
 * 60 s and is cancelled by `delivered` or `read`. Exactly the withheld fifth must reach the
 * SMSC, each once, and nobody else.
 *
 * The second run has two workers, and SIGKILLs the one holding the scheduler (which holds the
 * fallbacks until their deadline) once a quarter of the WhatsApp messages went out, every
 * fallback still held. The WhatsApp connector runs at-least-once there: a send the killed worker
 * left in doubt is sent again by the new owner, so no recipient misses WhatsApp and gets an SMS
 * for it; under at-most-once such a message would end `unknown`, undelivered, and its SMS would
 * rightly go out.
 *
 * Status webhooks reach the workers through a small front in the test (a load balancer's
 * part): it passes each one to the first worker that answers.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { WorkerProcess } from '@omnibus/test-support';
import { afterEach, describe, expect, it } from 'vitest';
// Core depends on no connector package; the workspace's emulators are read from their sources.
import { startSmscDevServer, type SmscDevServer } from '../../../connector-sms/src/dev/smsc.ts';
import { startWhatsAppDevServer, type WhatsAppDevServer } from '../../../connector-whatsapp/src/dev-server.ts';
import { fallbackIdOf } from '../../src/bus/fallback.ts';
import { SCHEDULER_LEASE } from '../../src/bus/scheduler.ts';
import { LmdbStore } from '../../src/store/lmdb.ts';
import { eventually } from '../runtime/helpers.ts';

const RECIPIENTS = 2000;
const BATCH = 250;
/** Every fifth recipient's phone never reports `delivered`. */
const WITHHELD_EVERY = 5;
/** SMS if not delivered or read within 60 s: the deadline has to outlast the sending and its receipts on a loaded machine. */
const FALLBACK_AFTER_MS = 60_000;
const SETTLE_TIMEOUT_MS = 240_000;

const recipientOf = (n: number) => `+4915${100_000_000 + n}`;
/** The emulator's rule, by recipient: 100,000,000 is a multiple of 5, so this is n % 5. */
const withholds = (to: string) => Number(to.slice(-9)) % WITHHELD_EVERY === 0;
const idOf = (n: number) => `wa-fb-${String(n).padStart(4, '0')}`;
const smsText = (id: string) => `Your table is confirmed for 19:30 tonight. Ref ${id}`;
const refOf = (text: string) => /Ref (\S+)$/.exec(text)?.[1];

type Body = Record<string, unknown>;

interface Run {
  dir: string;
  workers: WorkerProcess[];
  front?: Server;
  smsc?: SmscDevServer;
  whatsapp?: WhatsAppDevServer;
}

let run: Run | undefined;

afterEach(async () => {
  if (!run) return;
  await Promise.all(run.workers.map((w) => w.kill()));
  await run.whatsapp?.stop();
  await run.smsc?.close();
  await new Promise((resolve) => run!.front?.close(resolve) ?? resolve(undefined));
  await rm(run.dir, { recursive: true, force: true });
  run = undefined;
});

/**
 * `omnibus start` with leases longer than the other process tests' (5 s, not 2 s): on a machine
 * loaded by parallel runs, a 2 s lease lapsed now and then without any crash.
 */
function startWorker(store: string, name: string): Promise<WorkerProcess> {
  return WorkerProcess.start({ store, name, env: { OMNIBUS_HEARTBEAT_INTERVAL_MS: '500', OMNIBUS_LEASE_TTL_MS: '5000' } });
}

/** Passes each webhook call to the first live worker that answers it, as a load balancer would. */
async function startFront(workers: () => WorkerProcess[]): Promise<Server> {
  const server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      void (async () => {
        const headers = Object.fromEntries(Object.entries(req.headers).filter((e): e is [string, string] => typeof e[1] === 'string' && !['host', 'connection', 'content-length', 'transfer-encoding'].includes(e[0])));
        for (const worker of workers().filter((w) => w.alive)) {
          try {
            const answer = await fetch(`${worker.url}${req.url}`, { method: req.method, headers, body: Buffer.concat(chunks) });
            res.writeHead(answer.status, { 'content-type': answer.headers.get('content-type') ?? 'application/json' }).end(Buffer.from(await answer.arrayBuffer()));
            return;
          } catch {
            // That worker is gone: the next one.
          }
        }
        res.writeHead(502).end();
      })();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return server;
}

async function setUp(workerCount: number, whatsappGuarantee: 'at-most-once' | 'at-least-once'): Promise<Run> {
  const dir = await mkdtemp(join(tmpdir(), 'omnibus-fallback-'));
  run = { dir, workers: [] };
  const storeUrl = `lmdb:${join(dir, 'data')}`;
  run.workers.push(...(await Promise.all(Array.from({ length: workerCount }, (_, i) => startWorker(storeUrl, `worker-${i}`)))));
  const current = run;
  run.front = await startFront(() => current.workers);
  run.smsc = await startSmscDevServer({ credentials: { systemId: 'omnibus', password: 'secret12' } });
  run.whatsapp = await startWhatsAppDevServer({
    webhookUrl: `http://127.0.0.1:${(run.front.address() as AddressInfo).port}/hooks/wa`,
    statuses: ['sent', 'delivered', 'read'],
    withholdDelivery: withholds,
  });
  const api = run.workers[0]!;
  await api.requestExpecting('POST', '/topics', { name: 'wa', shards: 8 }, 201);
  await api.requestExpecting('POST', '/topics', { name: 'sms', shards: 8 }, 201);
  await api.requestExpecting(
    'POST',
    '/connectors',
    {
      name: 'wa',
      config: {
        'connector.class': 'WhatsAppSink',
        'tasks.max': '2',
        topics: 'wa',
        'delivery.guarantee': whatsappGuarantee,
        'whatsapp.api.url': run.whatsapp.url,
        'whatsapp.phone.number.id': run.whatsapp.phoneNumberId,
        'whatsapp.access.token': run.whatsapp.accessToken,
        'whatsapp.app.secret': run.whatsapp.appSecret,
        'whatsapp.rate.limit.per.second': '1000',
        // The subject is fallback, not the breaker: a loaded machine's slow answers must not park the sends for a cool-down.
        'provider.breaker.consecutive.failures': '1000',
        'provider.breaker.failure.rate': '1',
      },
    },
    201,
  );
  await api.requestExpecting(
    'POST',
    '/connectors',
    {
      name: 'sms',
      config: {
        'connector.class': 'SmsSink',
        'tasks.max': '2',
        topics: 'sms',
        'sms.transport': 'smpp',
        'sms.from': 'Omnibus',
        'smpp.host': '127.0.0.1',
        'smpp.port': String(run.smsc.port),
        'smpp.system.id': 'omnibus',
        'smpp.password': 'secret12',
      },
    },
    201,
  );
  for (const connector of ['wa', 'sms']) {
    await eventually(
      async () => (await api.requestExpecting('GET', `/connectors/${connector}/status`, undefined, 200)) as { tasks: Array<{ state: string }> },
      (s) => s.tasks.length === 2 && s.tasks.every((t) => t.state === 'RUNNING'),
      `${connector} running`,
      120_000,
    );
  }
  return run;
}

/** The 2,000 messages, each with its SMS fallback, in batches spread over the workers; resolves with the last deadline. */
async function produceAll(workers: WorkerProcess[], afterMs: number): Promise<number> {
  for (let start = 0; start < RECIPIENTS; start += BATCH) {
    const messages = Array.from({ length: BATCH }, (_, i) => {
      const n = start + i;
      const to = recipientOf(n);
      return {
        id: idOf(n),
        key: to,
        value: { to, type: 'text', text: { body: `Hi! Your table is confirmed for 19:30 tonight (${n}).` } },
        fallback: { topic: 'sms', key: to, value: { to, text: smsText(idOf(n)) }, after_ms: afterMs, connector: 'wa' },
      };
    });
    await workers[(start / BATCH) % workers.length]!.requestExpecting('POST', '/topics/wa/messages', { messages }, 202);
  }
  return Date.now() + afterMs;
}

const messageOf = async (worker: WorkerProcess, id: string) => (await worker.request('GET', `/messages/${encodeURIComponent(id)}`)) as { status: number; body: Body };

/** Each original's fallback decision (its `fallback` or `fallback_cancelled` events), read through the API. */
async function decisions(worker: WorkerProcess): Promise<Map<string, string[]>> {
  const ids = Array.from({ length: RECIPIENTS }, (_, n) => idOf(n));
  const found = new Map<string, string[]>();
  for (let i = 0; i < ids.length; i += 20) {
    await Promise.all(
      ids.slice(i, i + 20).map(async (id) => {
        const { body } = await messageOf(worker, id);
        const types = ((body.events as Body[] | undefined) ?? []).map((e) => e.type as string).filter((t) => t === 'fallback' || t === 'fallback_cancelled');
        found.set(id, types);
      }),
    );
  }
  return found;
}

/** Every original's decision, read once every deadline has passed (reading 2,000 messages is no load to add to the run). */
async function allDecisions(reader: WorkerProcess, dueBy: number): Promise<Map<string, string[]>> {
  await sleep(Math.max(0, dueBy - Date.now()));
  const deadline = Date.now() + SETTLE_TIMEOUT_MS;
  for (;;) {
    const found = await decisions(reader);
    const undecided = [...found].filter(([, types]) => types.length === 0).map(([id]) => id);
    if (undecided.length === 0) return found;
    if (Date.now() > deadline) throw new Error(`no fallback decision for ${undecided.length} messages, e.g. ${undecided.slice(0, 5).join(', ')}`);
    await sleep(2000);
  }
}

/** Waits for every decision, then checks the SMSC and the API: exactly the withheld fifth got one SMS each. */
async function expectExactlyTheWithheldTexted(current: Run, reader: WorkerProcess, dueBy: number): Promise<void> {
  const { smsc, whatsapp } = current as Required<Run>;
  const withheldIds = new Set(Array.from({ length: RECIPIENTS }, (_, n) => n).filter((n) => n % WITHHELD_EVERY === 0).map(idOf));
  expect(withheldIds.size).toBe(RECIPIENTS / WITHHELD_EVERY);

  const decided = await allDecisions(reader, dueBy);
  await eventually(async () => smsc.messages.length, (n) => n >= withheldIds.size, 'the withheld recipients’ SMS at the SMSC', SETTLE_TIMEOUT_MS);

  // Every message reached WhatsApp; the emulator withheld delivery for exactly every fifth recipient.
  expect(whatsapp.accepted.size).toBe(RECIPIENTS);
  expect(new Set(whatsapp.withheld)).toEqual(withheldIds);
  // One decision each: produced for the withheld, cancelled for the others.
  for (const [id, types] of decided) expect(types, id).toEqual([withheldIds.has(id) ? 'fallback' : 'fallback_cancelled']);
  // At the SMSC: the withheld ones, each once, to the right number, and nobody else.
  expect(smsc.duplicates()).toEqual([]);
  const texted = smsc.messages.map((m) => refOf(m.text)!);
  expect(texted.length).toBe(withheldIds.size);
  expect(new Set(texted)).toEqual(withheldIds);
  for (const m of smsc.messages) expect(m.to.replace(/\D/g, '')).toBe(recipientOf(Number(refOf(m.text)!.slice(-4))).slice(1));

  // The chain reads both ways for a sample; a cancelled fallback was never produced.
  for (const n of [0, 5, 995, 1995]) {
    const original = await messageOf(reader, idOf(n));
    expect(original.body.fallback_id).toBe(fallbackIdOf(idOf(n)));
    const fallback = await messageOf(reader, fallbackIdOf(idOf(n)));
    expect(fallback.status).toBe(200);
    expect(fallback.body.fallback_of).toBe(idOf(n));
    expect(fallback.body.message).toMatchObject({ topic: 'sms', key: recipientOf(n) });
    const smsStates = ((fallback.body.deliveries as Body[]) ?? []).map((d) => [d.connector, d.state]);
    expect(smsStates).toEqual([['sms', expect.stringMatching(/^(sent|delivered)$/)]]);
    const waState = ((original.body.deliveries as Body[]) ?? []).find((d) => d.connector === 'wa')?.state;
    expect(waState).toBe('sent');
  }
  for (const n of [1, 999, 1999]) {
    const original = await messageOf(reader, idOf(n));
    expect(original.body.fallback_id).toBe(fallbackIdOf(idOf(n)));
    expect(((original.body.deliveries as Body[]) ?? []).find((d) => d.connector === 'wa')?.state).toMatch(/^(delivered|read)$/);
    expect((await messageOf(reader, fallbackIdOf(idOf(n)))).status).toBe(404);
  }
}

describe('WhatsApp first, SMS when not delivered in time (2,000 recipients, worker processes on LMDB)', () => {
  it('exactly the recipients whose delivery was withheld get an SMS, each once', async () => {
    const current = await setUp(1, 'at-most-once');
    const dueBy = await produceAll(current.workers, FALLBACK_AFTER_MS);
    await expectExactlyTheWithheldTexted(current, current.workers[0]!, dueBy);
  }, 420_000);

  it('the same with the worker holding the fallbacks SIGKILLed during the run (2 processes sharing the store)', async () => {
    const current = await setUp(2, 'at-least-once');
    const [a, b] = current.workers as [WorkerProcess, WorkerProcess];
    const store = new LmdbStore(join(current.dir, 'data'), { sweepIntervalMs: 0 });
    await store.init();
    try {
      const holder = await eventually(
        async () => (await store.listLeases(SCHEDULER_LEASE)).find((l) => l.owner !== '')?.owner,
        (owner) => owner === a.id || owner === b.id,
        'a scheduler holder',
        60_000,
      );
      const [victim, survivor] = holder === a.id ? [a, b] : [b, a];
      const dueBy = await produceAll(current.workers, FALLBACK_AFTER_MS);
      // Killed once a quarter of the WhatsApp messages went out, every fallback still held (60 s).
      await eventually(async () => current.whatsapp!.accepted.size, (n) => n >= RECIPIENTS / 4, 'a quarter of the WhatsApp messages sent', 120_000);
      await victim.kill();
      const fallbackIds = Array.from({ length: RECIPIENTS }, (_, n) => fallbackIdOf(idOf(n)));
      // The survivor took the scheduler over and decided every held fallback.
      await eventually(async () => (await store.getScheduled(fallbackIds)).size, (held) => held === 0, 'every fallback decided', SETTLE_TIMEOUT_MS);
      expect((await store.listLeases(SCHEDULER_LEASE))[0]?.owner).toBe(survivor.id);
      await expectExactlyTheWithheldTexted(current, survivor, dueBy);
      // Sends the killed worker left in doubt were made again (at-least-once): duplicates are WhatsApp's only.
      const again = [...current.whatsapp!.accepted.values()].filter((n) => n > 1).length;
      expect(again).toBeLessThanOrEqual(RECIPIENTS / 4);
    } finally {
      await store.close();
    }
  }, 600_000);
});
