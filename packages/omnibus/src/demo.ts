/**
 * `omnibus demo`: the whole product on one machine, in seconds. It starts a worker on
 * LMDB, local servers for the three channels (an SMTP server, an SMPP SMSC and a WhatsApp
 * Cloud API emulator), registers topics and connectors through the REST API exactly as an
 * operator would, produces a few thousand messages, waits until each reached a final state,
 * and checks at the servers that every message arrived exactly once. The email connector has
 * two SMTP relays, and the first refuses mail for a while mid-run: the demo shows the mail
 * moving to the second and back (demo-failover.ts). Every WhatsApp message carries an SMS
 * fallback (demo-fallback.ts); every state change goes out as a signed delivery event to a
 * local receiver (demo-events.ts); and beside the main SMS batch, held SMS, cancelled ones,
 * high-priority passwords and an expired one show scheduling, cancel, priorities and expiry
 * (demo-scheduling.ts).
 *
 * Everything goes through the public REST API except what only the servers can tell: how
 * many times each message reached them, and when.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { InvalidArgumentError, type Command } from 'commander';
import type { SmtpDevServer } from '@omnibus/connector-email/dev-server';
import { startSmscDevServer, type SmscDevServer } from '@omnibus/connector-sms/dev-server';
import { startWhatsAppDevServer, type WhatsAppDevServer } from '@omnibus/connector-whatsapp/dev-server';
import { loadWorkerConfig, Worker } from '@omnibus/core';
import { DISTRIBUTION } from './distribution.ts';
import { formatFailover, RelayFailover, type FailoverStory } from './demo-failover.ts';
import { assessEvents, EVENTS_CONNECTOR, EVENTS_TOPIC, EventReceiver, formatEvents, type EventsStory, type ExpectedEvent } from './demo-events.ts';
import { assessFallback, fallbackOriginalOf, fallbackStory, formatFallback, phoneOffline, smsFallback, whatsAppRecipient, type FallbackStory } from './demo-fallback.ts';
import { assessScheduling, formatScheduling, SmsScheduling, type CancelStory, type ExpiryStory, type PriorityStory, type SchedulingStory } from './demo-scheduling.ts';

export const CHANNELS = ['email', 'sms', 'whatsapp'] as const;
export type Channel = (typeof CHANNELS)[number];

export interface DemoOptions {
  /** Messages in all, split over the three channels. Default 3000. */
  messages?: number;
  /** `lmdb:<dir>` (or any store URL); a fresh temporary LMDB directory by default. */
  store?: string;
  /** Leave the worker and servers up after the summary (the caller stops them with `stop()`). */
  keepRunning?: boolean;
  /** How long to wait for every message to settle before giving up. Default 120 s. */
  timeoutMs?: number;
  /** Where progress goes. Default process.stderr. */
  progress?: NodeJS.WritableStream;
  /** The worker's log level. Default warn: the demo prints its own story. */
  logLevel?: string;
}

export interface ChannelSummary {
  channel: Channel;
  topic: string;
  connector: string;
  group: string;
  produced: number;
  /** Distinct messages the channel's server received. */
  received: number;
  /** Messages the server received more than once. */
  duplicates: number;
  /** Produced messages the server never received. */
  missing: number;
  /** Final delivery states as the API reports them (GET /groups/{group}). */
  states: Record<string, number>;
  /** Messages per second, from the first produce request to the last arrival at the server. */
  throughput: number;
  /** From the produce request to the server's receipt, in ms. */
  latencyMs: { p50: number; p99: number; max: number };
  /** A few message ids, to look up with GET /messages/{id}. */
  sampleIds: string[];
}

export interface DemoSummary {
  /** Every message reached its server exactly once, and the API shows each one handled, none failed. */
  ok: boolean;
  /** Why not, when not ok. */
  problems: string[];
  /** What is worth knowing but does not fail the run (receipts still to come). */
  notes: string[];
  store: string;
  workerUrl: string;
  runId: string;
  messages: number;
  elapsedMs: number;
  throughput: number;
  channels: ChannelSummary[];
  /** What each SMTP relay received while relay A refused mail for a while. */
  failover: FailoverStory;
  /** The WhatsApp messages whose recipient's phone stayed offline, and the SMS that went instead. */
  fallback: FallbackStory;
  /** The delivery events the local receiver got from the WebhookSink. */
  events: EventsStory;
  /** SMS held until their send_at. */
  scheduling: SchedulingStory;
  /** Held SMS cancelled before they came due. */
  cancel: CancelStory;
  /** High-priority SMS produced while the main batch was queued. */
  priority: PriorityStory;
  /** A produce whose expires_at had passed. */
  expiry: ExpiryStory;
}

export interface DemoServers {
  /** Relay A, the email connector's first provider. */
  smtp: SmtpDevServer;
  /** Relay B, where the mail goes while relay A refuses it. */
  smtpBackup: SmtpDevServer;
  relays: RelayFailover;
  smsc: SmscDevServer;
  whatsapp: WhatsAppDevServer;
  /** The application endpoint the delivery events are posted to. */
  events: EventReceiver;
}

export interface DemoRun {
  summary: DemoSummary;
  worker: Worker;
  servers: DemoServers;
  /** Ids produced on each channel, in produce order. */
  ids: Record<Channel, string[]>;
  /** Stops the worker and the servers and removes the temporary store (idempotent). */
  stop(): Promise<void>;
}

const DEFAULT_MESSAGES = 3000;
const SHARDS = 16;
const TASKS = 2;
const BATCH_SIZE = 250;
/** Produce requests in flight at once. */
const PRODUCE_CONCURRENCY = 3;
const EMAIL_FROM = 'Omnibus Demo <demo@example.org>';
const MESSAGE_ID_DOMAIN = 'example.org';
const SMPP_CREDENTIALS = { systemId: 'omnibus-demo', password: 'demo1234' };

const topicOf = (channel: Channel) => `demo.${channel}`;
const connectorOf = (channel: Channel) => `demo-${channel}`;

/** States after which the runtime never hands the message to the connector again. */
const HANDLED = ['sent', 'delivered', 'read', 'failed', 'dead', 'unknown'];
const UNSUCCESSFUL = ['failed', 'dead', 'unknown'];

/** What a message ends as on each channel when all goes well. */
const FINAL_STATE: Record<Channel, string> = {
  // SMTP has no delivery receipts: handing the mail to the server is the end of the story.
  email: 'sent',
  // The SMSC answers every submit with a delivery receipt (DELIVRD).
  sms: 'delivered',
  // The emulator posts signed `delivered` then `read` status webhooks.
  whatsapp: 'read',
};

/**
 * Receipts follow a send within moments; once every message is handled, the demo stops
 * waiting for receipts when none has come for this long.
 */
const RECEIPT_GRACE_MS = 3000;

export function registerDemoCommand(program: Command): void {
  program
    .command('demo')
    .description('run a worker, local SMTP/SMPP/WhatsApp servers and a few thousand messages through all three channels')
    .option('--messages <n>', 'messages to send, split over the three channels', positiveInt, DEFAULT_MESSAGES)
    .option('--store <url>', 'lmdb:<dir> or cql://… (default: a fresh temporary LMDB directory)')
    .option('--keep-running', 'leave the worker and the servers up after the summary')
    .option('--timeout <seconds>', 'give up when messages have not settled after this long', positiveInt, 120)
    .option('--json', 'print the summary as one JSON object on stdout')
    .action(async (options: { messages: number; store?: string; keepRunning?: boolean; timeout: number; json?: boolean }) => {
      const run = await runDemo({
        messages: options.messages,
        store: options.store,
        keepRunning: options.keepRunning,
        timeoutMs: options.timeout * 1000,
        // With --json, stdout must stay one JSON document: keep the worker's log (on stdout) to errors.
        logLevel: options.json ? 'error' : 'warn',
      });
      process.stdout.write(options.json ? `${JSON.stringify(run.summary)}\n` : formatSummary(run.summary));
      if (options.keepRunning) {
        if (!options.json) process.stdout.write(formatKeepRunning(run));
        const shutdown = () => void run.stop().then(() => process.exit(run.summary.ok ? 0 : 1));
        process.once('SIGINT', shutdown);
        process.once('SIGTERM', shutdown);
        return;
      }
      process.exitCode = run.summary.ok ? 0 : 1;
      // Everything is closed; a socket some library keeps alive must not hold the prompt back.
      setTimeout(() => process.exit(), 2000).unref();
    });
}

/**
 * Runs the demo and resolves with its summary. With `keepRunning` the worker and servers
 * stay up for the caller to explore (and stop); otherwise they are stopped before it resolves.
 * Throws only when the demo could not be set up (a connector that does not start, a port
 * taken); delivery problems are reported in `summary.ok` and `summary.problems`.
 */
export async function runDemo(options: DemoOptions = {}): Promise<DemoRun> {
  const total = options.messages ?? DEFAULT_MESSAGES;
  if (!Number.isInteger(total) || total < CHANNELS.length) throw new Error(`--messages must be an integer of at least ${CHANNELS.length}`);
  const out = options.progress ?? process.stderr;
  const say = (line: string) => void out.write(`${line}\n`);
  const runId = `demo-${new Date().toISOString().slice(0, 19).replace(/\D/g, '')}-${randomBytes(2).toString('hex')}`;

  const temporaryDir = options.store ? undefined : mkdtempSync(join(tmpdir(), 'omnibus-demo-'));
  const store = options.store ?? `lmdb:${temporaryDir}`;
  const cleanups: Array<() => Promise<void>> = [];
  let stopped = false;
  const stop = async () => {
    if (stopped) return;
    stopped = true;
    // In start order: the worker stops before the servers it talks to, so it does not see them vanish.
    for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    if (temporaryDir) rmSync(temporaryDir, { recursive: true, force: true });
  };

  try {
    say(`Omnibus demo: ${total} messages over email, SMS and WhatsApp (store ${store})`);
    const worker = new Worker(loadWorkerConfig({ store, listeners: 'http://127.0.0.1:0', 'log.level': options.logLevel ?? 'warn' }), DISTRIBUTION);
    cleanups.push(() => worker.stop());
    await worker.start();
    const api = restClient(worker.url);
    say(`  worker        ${worker.url}`);

    const arrivals = new ArrivalClock();
    const plan = planMessages(runId, total);
    const scheduling = new SmsScheduling(runId, topicOf('sms'), connectorOf('sms'));
    const servers = await startServers(worker.url, arrivals, cleanups, plan.ids.email.length);
    say(`  SMTP relays   A smtp://127.0.0.1:${servers.smtp.port}, B smtp://127.0.0.1:${servers.smtpBackup.port} (A refuses mail for a while)`);
    say(`  SMSC (SMPP)   smpp://127.0.0.1:${servers.smsc.port}`);
    say(`  WhatsApp API  ${servers.whatsapp.url} (status webhooks to ${worker.url}/hooks/${connectorOf('whatsapp')})`);
    say(`  events        ${servers.events.url} (delivery events, signed, from WebhookSink ${EVENTS_CONNECTOR})`);

    for (const topic of [...CHANNELS.map(topicOf), EVENTS_TOPIC]) await createTopic(api, topic);
    for (const channel of CHANNELS) await applyConnector(api, connectorOf(channel), connectorConfig(channel, servers));
    await applyConnector(api, EVENTS_CONNECTOR, { ...servers.events.connectorConfig(), 'tasks.max': String(TASKS) });
    for (const name of [...CHANNELS.map(connectorOf), EVENTS_CONNECTOR]) await waitUntilRunning(api, name);
    say(`  topics ${CHANNELS.map(topicOf).join(', ')}, ${EVENTS_TOPIC} (${SHARDS} shards); connectors ${CHANNELS.map(connectorOf).join(', ')}, ${EVENTS_CONNECTOR} (${TASKS} tasks each) RUNNING`);

    // Held SMS first, so that they come due while the main batch flows.
    await scheduling.produceHeld(api);
    const producedAt = new Map<string, number>();
    const startedAt = Date.now();
    // The passwords go once half the batch is produced: behind a queue of normal SMS.
    await produceAll(api, plan, producedAt, new ProgressBar('producing', total, out), () => scheduling.producePasswords(api));

    const deadline = startedAt + (options.timeoutMs ?? 120_000);
    const receivedCount = () => CHANNELS.reduce((sum, channel) => sum + countReceived(channel, plan, servers).received, 0);
    const delivering = new ProgressBar('delivering', total, out);
    while (receivedCount() < total && Date.now() < deadline) {
      delivering.update(receivedCount());
      await sleep(100);
    }
    delivering.update(receivedCount());
    delivering.finish();

    const states = await waitForFinalStates(api, plan, deadline, out);
    await scheduling.waitUntilSettled(api, arrivals, deadline);
    const expectedEvents = [...mainEvents(plan), ...scheduling.expectedEvents()];
    await waitForEvents(servers.events, expectedEvents, deadline);
    // The WhatsApp emulator keeps arrival times itself.
    for (const entry of servers.whatsapp.received) if (entry.httpStatus === 200) arrivals.arrived(entry.callbackData, entry.at);
    // The main batch's end: the held and priority SMS beside it are timed on their own.
    const finishedAt = Math.max(startedAt, arrivals.latest(CHANNELS.flatMap((c) => plan.ids[c])));
    const channels = CHANNELS.map((channel) =>
      summarizeChannel(channel, plan, servers, producedAt, arrivals, states.get(channel) ?? { messages: 0, counts: {}, fallbacks: {} }),
    );
    const { problems, notes } = assess(channels, states);
    const fallback = fallbackStory(servers.whatsapp, servers.smsc, smsRefOf);
    const fallbackAssessment = assessFallback(fallback);
    problems.push(...fallbackAssessment.problems);
    notes.push(...fallbackAssessment.notes);
    const failover = servers.relays.story();
    if (failover.movedToB === 0) problems.push('email: no mail moved to relay B while relay A refused it');
    if (failover.movedToB > 0 && failover.backOnA === 0) notes.push('email: relay A was not used again before the last mail was sent');
    const events = servers.events.story(expectedEvents);
    problems.push(...assessEvents(events));
    const sms = channels.find((c) => c.channel === 'sms')!;
    const timing = scheduling.stories(servers.smsc, arrivals, { p50: sms.latencyMs.p50, p99: sms.latencyMs.p99 });
    problems.push(...assessScheduling(timing));
    const summary: DemoSummary = {
      ok: problems.length === 0,
      problems,
      notes,
      store,
      workerUrl: worker.url,
      runId,
      messages: total,
      elapsedMs: finishedAt - startedAt,
      throughput: rate(total, finishedAt - startedAt),
      channels,
      failover,
      fallback,
      events,
      ...timing,
    };
    const run: DemoRun = { summary, worker, servers, ids: plan.ids, stop };
    if (!options.keepRunning) await stop();
    return run;
  } catch (error) {
    await stop();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------
// Servers and connectors

/**
 * When each message first reached its server, by bus message id. The servers count arrivals
 * themselves; the clock only adds the time, through their per-message hooks.
 */
class ArrivalClock {
  private readonly firstAt = new Map<string, number>();

  arrived(id: string | undefined, at = Date.now()): void {
    if (id !== undefined && !this.firstAt.has(id)) this.firstAt.set(id, at);
  }

  at(id: string): number | undefined {
    return this.firstAt.get(id);
  }

  /** The last first arrival among these ids (0 when none arrived). */
  latest(ids: readonly string[]): number {
    let latest = 0;
    for (const id of ids) latest = Math.max(latest, this.firstAt.get(id) ?? 0);
    return latest;
  }
}

async function startServers(workerUrl: string, arrivals: ArrivalClock, cleanups: Array<() => Promise<void>>, mails: number): Promise<DemoServers> {
  // SMTP and SMPP arrivals are timed through the servers' per-message hooks; the WhatsApp
  // emulator times its own (see runDemo).
  const relays = await RelayFailover.start(mails, (id) => arrivals.arrived(id));
  cleanups.push(() => relays.close());
  const smsc = await startSmscDevServer({
    credentials: SMPP_CREDENTIALS,
    // Every demo text carries its message id (see smsText), so the SMSC's count by text is a count by id.
    // A fallback SMS is not one of the run's own: its arrival says nothing of the SMS channel's latency.
    answerSubmit: (submit) => {
      const ref = smsRefOf(submit.text);
      if (fallbackOriginalOf(ref) === undefined) arrivals.arrived(ref);
      return undefined;
    },
  });
  cleanups.push(() => smsc.close());
  const whatsapp = await startWhatsAppDevServer({
    webhookUrl: `${workerUrl}/hooks/${connectorOf('whatsapp')}`,
    statuses: ['delivered', 'read'],
    withholdDelivery: phoneOffline,
  });
  cleanups.push(() => whatsapp.stop());
  const events = await EventReceiver.start();
  cleanups.push(() => events.close());
  return { smtp: relays.relayA, smtpBackup: relays.relayB, relays, smsc, whatsapp, events };
}

function connectorConfig(channel: Channel, servers: DemoServers): Record<string, string> {
  // Every state change of the channel's messages goes out as a delivery event (demo-events.ts).
  const common = { 'tasks.max': String(TASKS), topics: topicOf(channel), 'delivery.events.topic': EVENTS_TOPIC };
  switch (channel) {
    case 'email':
      return {
        'connector.class': 'EmailSink',
        ...common,
        'smtp.host': '127.0.0.1',
        ...servers.relays.connectorConfig(),
        // The local server offers no TLS; a real relay would use STARTTLS (the default).
        'smtp.starttls': 'never',
        'smtp.pool.size': '5',
        'email.from': EMAIL_FROM,
        'email.message.id.domain': MESSAGE_ID_DOMAIN,
      };
    case 'sms':
      return {
        'connector.class': 'SmsSink',
        ...common,
        'sms.transport': 'smpp',
        'sms.from': 'Omnibus',
        'smpp.host': '127.0.0.1',
        'smpp.port': String(servers.smsc.port),
        'smpp.system.id': SMPP_CREDENTIALS.systemId,
        'smpp.password': SMPP_CREDENTIALS.password,
        'smpp.window.size': '50',
        'smpp.registered.delivery': 'true',
      };
    case 'whatsapp':
      return {
        'connector.class': 'WhatsAppSink',
        ...common,
        'whatsapp.api.url': servers.whatsapp.url,
        'whatsapp.phone.number.id': servers.whatsapp.phoneNumberId,
        'whatsapp.access.token': servers.whatsapp.accessToken,
        'whatsapp.app.secret': servers.whatsapp.appSecret,
        'whatsapp.verify.token': 'omnibus-demo-verify',
        // A number upgraded to Meta's 1000 msg/s tier; the default (80) would make the demo crawl.
        'whatsapp.rate.limit.per.second': '1000',
      };
  }
}

async function createTopic(api: RestClient, name: string): Promise<void> {
  const response = await api.call('POST', '/topics', { name, shards: SHARDS });
  // 409: the topic is there from an earlier run on the same --store.
  if (response.status !== 201 && response.status !== 409) throw api.error(response, `creating topic ${name}`);
}

async function applyConnector(api: RestClient, name: string, config: Record<string, string>): Promise<void> {
  const created = await api.call('POST', '/connectors', { name, config: { name, ...config } });
  if (created.status === 201) return;
  if (created.status !== 409) throw api.error(created, `creating connector ${name}`);
  // From an earlier run on the same --store: point it at this run's servers.
  const updated = await api.call('PUT', `/connectors/${encodeURIComponent(name)}/config`, { name, ...config });
  if (updated.status !== 200 && updated.status !== 201) throw api.error(updated, `updating connector ${name}`);
}

interface ConnectorStatus {
  connector?: { state?: string; trace?: string };
  tasks?: Array<{ id: number; state?: string; trace?: string }>;
}

async function waitUntilRunning(api: RestClient, name: string, timeoutMs = 30_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last: ConnectorStatus | undefined;
  while (Date.now() < deadline) {
    const response = await api.call('GET', `/connectors/${encodeURIComponent(name)}/status`);
    if (response.status === 200) {
      last = response.body as ConnectorStatus;
      const failed = [last.connector, ...(last.tasks ?? [])].find((s) => s?.state === 'FAILED');
      if (failed) throw new Error(`connector ${name} FAILED: ${firstLine(failed.trace) ?? 'no trace'}`);
      const tasks = last.tasks ?? [];
      if (last.connector?.state === 'RUNNING' && tasks.length === TASKS && tasks.every((t) => t.state === 'RUNNING')) return;
    }
    await sleep(200);
  }
  throw new Error(`connector ${name} is not RUNNING after ${timeoutMs / 1000} s (last status: ${JSON.stringify(last ?? null)})`);
}

// ---------------------------------------------------------------------------------------
// Messages

interface PlannedMessage {
  id: string;
  key: string;
  value: Record<string, unknown>;
  fallback?: Record<string, unknown>;
}

interface MessagePlan {
  /** Produce requests, interleaved across channels so that all three flow at once. */
  batches: Array<{ channel: Channel; group: string; messages: PlannedMessage[] }>;
  ids: Record<Channel, string[]>;
  groups: Record<Channel, string>;
  /** The SMSC counts messages by text: each SMS's text, by id. */
  smsTexts: Map<string, string>;
  /** WhatsApp messages to a phone that stays offline: they fall back to an SMS. */
  offline: number;
}

const FIRST_NAMES = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Margaret', 'Ken', 'Frances', 'Dennis', 'Radia', 'Linus', 'Hedy', 'Tim', 'Sophie', 'Niklaus'];
const LAST_NAMES = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Hamilton', 'Thompson', 'Allen', 'Ritchie', 'Perlman', 'Torvalds', 'Lamarr', 'Berners-Lee', 'Wilson', 'Wirth'];
const EMAILS = [
  (n: number, first: string) => ({ subject: `Your order #${n} has shipped`, text: `Hello ${first},\n\nGood news: order #${n} is on its way and should arrive within 2 days.\n\nThe Omnibus Store` }),
  (n: number, first: string) => ({ subject: `Receipt for order #${n}`, text: `Hello ${first},\n\nThank you for your purchase. Your receipt for order #${n} is attached to your account.\n\nThe Omnibus Store` }),
  (n: number, first: string) => ({ subject: 'Reset your password', text: `Hello ${first},\n\nSomeone asked to reset your password. Your reset code is ${100000 + (n % 900000)}; it expires in 15 minutes.\n\nThe Omnibus Team` }),
  (_n: number, first: string) => ({ subject: 'Welcome to Omnibus', text: `Hello ${first},\n\nWelcome aboard! Reply to this mail if you have any question.\n\nThe Omnibus Team` }),
];

/** A small deterministic generator, so that every run sends the same kind of traffic. */
function seededRandom(seed: number): () => number {
  let state = seed >>> 0;
  return () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** The SMS text names its message id: texts are unique, so the SMSC's count by text is a count by message. */
const smsText = (code: number, id: string) => `Omnibus: your verification code is ${code}. It expires in 10 minutes. Ref ${id}`;
const smsRefOf = (text: string) => /Ref (\S+)$/.exec(text)?.[1];

function planMessages(runId: string, total: number): MessagePlan {
  const random = seededRandom(20_240_601);
  const pick = <T>(items: readonly T[]): T => items[Math.floor(random() * items.length)]!;
  // Customers receive several mails and texts each, as they would; WhatsApp recipients are
  // distinct because the Cloud API allows about one message per recipient every 6 s.
  const customers = Math.max(10, Math.ceil(total / 6));
  const perChannel = CHANNELS.map((_, i) => Math.floor(total / CHANNELS.length) + (i < total % CHANNELS.length ? 1 : 0));
  const ids = { email: [], sms: [], whatsapp: [] } as Record<Channel, string[]>;
  const groups = Object.fromEntries(CHANNELS.map((c) => [c, `${runId}.${c}`])) as Record<Channel, string>;
  const smsTexts = new Map<string, string>();
  let offline = 0;
  const messagesOf = CHANNELS.map((channel, c) =>
    Array.from({ length: perChannel[c]! }, (_, i): PlannedMessage => {
      const id = `${runId}.${channel}.${String(i + 1).padStart(6, '0')}`;
      ids[channel].push(id);
      const customer = Math.floor(random() * customers);
      const first = FIRST_NAMES[customer % FIRST_NAMES.length]!;
      const last = LAST_NAMES[Math.floor(customer / FIRST_NAMES.length) % LAST_NAMES.length]!;
      switch (channel) {
        case 'email': {
          const to = `${first.toLowerCase()}.${last.toLowerCase()}.${customer}@example.com`;
          return { id, key: to, value: { to: `${first} ${last} <${to}>`, ...pick(EMAILS)(10_000 + i, first) } };
        }
        case 'sms': {
          const to = `+336${String(10_000_000 + customer * 7919).slice(-8)}`;
          const text = smsText(100_000 + Math.floor(random() * 900_000), id);
          smsTexts.set(id, text);
          return { id, key: to, value: { to, text } };
        }
        case 'whatsapp': {
          const to = whatsAppRecipient(i);
          if (phoneOffline(to)) offline += 1;
          const time = `${18 + (i % 4)}:${i % 2 ? '30' : '00'}`;
          const body = `Hi ${first}, your table for ${2 + (i % 5)} is confirmed for ${time} tonight. Reply CANCEL to cancel.`;
          const fallback = smsFallback(id, to, (ref) => `Omnibus: your table is confirmed for ${time} tonight. Ref ${ref}`, connectorOf('whatsapp'));
          return { id, key: to, value: { to, type: 'text', text: { body } }, fallback };
        }
      }
    }),
  );
  const batches: MessagePlan['batches'] = [];
  const rounds = Math.max(...messagesOf.map((m) => Math.ceil(m.length / BATCH_SIZE)));
  for (let round = 0; round < rounds; round++) {
    CHANNELS.forEach((channel, c) => {
      const messages = messagesOf[c]!.slice(round * BATCH_SIZE, (round + 1) * BATCH_SIZE);
      if (messages.length > 0) batches.push({ channel, group: groups[channel], messages });
    });
  }
  return { batches, ids, groups, smsTexts, offline };
}

/** Produces the plan's batches; `atHalf` runs (beside the batches) once half of them have been sent. */
async function produceAll(api: RestClient, plan: MessagePlan, producedAt: Map<string, number>, bar: ProgressBar, atHalf: () => Promise<void>): Promise<void> {
  let next = 0;
  let done = 0;
  let halfway: Promise<void> | undefined;
  const sender = async () => {
    while (next < plan.batches.length) {
      if (!halfway && next >= Math.floor(plan.batches.length / 2)) {
        halfway = atHalf();
        // Awaited below; a failure must not count as unhandled meanwhile.
        halfway.catch(() => undefined);
      }
      const batch = plan.batches[next++]!;
      const sentAt = Date.now();
      for (const message of batch.messages) producedAt.set(message.id, sentAt);
      // Producer-supplied ids make the produce idempotent: a retried batch adds nothing twice.
      const response = await api.call('POST', `/topics/${encodeURIComponent(topicOf(batch.channel))}/messages`, {
        group: batch.group,
        messages: batch.messages,
      });
      if (response.status !== 202) throw api.error(response, `producing to ${topicOf(batch.channel)}`);
      done += batch.messages.length;
      bar.update(done);
    }
  };
  await Promise.all(Array.from({ length: PRODUCE_CONCURRENCY }, sender));
  await (halfway ?? atHalf());
  bar.finish();
}

/** The events every message of the main batch must have: `sent` at its connector, and `delivered` for an SMS (the SMSC receipts every one). */
function mainEvents(plan: MessagePlan): ExpectedEvent[] {
  return CHANNELS.flatMap((channel) =>
    plan.ids[channel].flatMap((messageId) => (channel === 'sms' ? ['sent', 'delivered'] : ['sent']).map((state) => ({ messageId, connector: connectorOf(channel), state }))),
  );
}

/** Waits until the receiver has every expected event, or the deadline. */
async function waitForEvents(receiver: EventReceiver, expected: readonly ExpectedEvent[], deadline: number): Promise<void> {
  let pending = receiver.missing(expected);
  while (pending.length > 0 && Date.now() < deadline) {
    await sleep(250);
    pending = receiver.missing(pending);
  }
}

// ---------------------------------------------------------------------------------------
// Outcome

interface GroupReport {
  messages: number;
  truncated?: boolean;
  /** Messages by delivery state, for the channel's connector. */
  counts: Record<string, number>;
  /** The group's fallback SMS (they join their original's group) by state, at the SMS connector; WhatsApp's group only. */
  fallbacks: Record<string, number>;
}

const countIn = (counts: Record<string, number>, states: readonly string[]) =>
  Object.entries(counts).reduce((total, [state, n]) => total + (states.includes(state) ? n : 0), 0);

/**
 * Polls GET /groups/{g} until every message has its channel's final state, or every message
 * is handled and no receipt has come for a while, or the deadline passes.
 */
async function waitForFinalStates(api: RestClient, plan: MessagePlan, deadline: number, out: NodeJS.WritableStream): Promise<Map<Channel, GroupReport>> {
  const reports = new Map<Channel, GroupReport>();
  const total = sum(CHANNELS, (c) => plan.ids[c].length);
  const final = (channel: Channel) => {
    const report = reports.get(channel);
    if (!report) return 0;
    const done = countIn(report.counts, [FINAL_STATE[channel], ...UNSUCCESSFUL]);
    if (channel !== 'whatsapp') return done;
    // A message to an offline phone stays `sent` on WhatsApp: it is done once its fallback SMS is handled.
    return done + Math.min(countIn(report.counts, ['sent']), countIn(report.fallbacks, HANDLED), plan.offline);
  };
  const bar = new ProgressBar('final state', total, out);
  let lastFinal = -1;
  let lastProgressAt = Date.now();
  for (;;) {
    for (const channel of CHANNELS) {
      if (reports.has(channel) && final(channel) === plan.ids[channel].length) continue;
      const response = await api.call('GET', `/groups/${encodeURIComponent(plan.groups[channel])}`);
      if (response.status !== 200) throw api.error(response, `reading group ${plan.groups[channel]}`);
      const body = response.body as { messages: number; truncated?: boolean; connectors?: Record<string, Record<string, number>> };
      reports.set(channel, {
        messages: body.messages,
        truncated: body.truncated,
        counts: body.connectors?.[connectorOf(channel)] ?? {},
        fallbacks: channel === 'whatsapp' ? (body.connectors?.[connectorOf('sms')] ?? {}) : {},
      });
    }
    const finalNow = sum(CHANNELS, final);
    const handled = sum([...reports.values()], (r) => countIn(r.counts, HANDLED) + countIn(r.fallbacks, HANDLED));
    bar.update(finalNow);
    const now = Date.now();
    if (finalNow > lastFinal) {
      lastFinal = finalNow;
      lastProgressAt = now;
    }
    if (finalNow === total || now >= deadline) break;
    if (handled >= total + plan.offline && now - lastProgressAt > RECEIPT_GRACE_MS) break;
    await sleep(500);
  }
  bar.finish();
  return reports;
}

/** How many times the channel's server took each message, from the server's own counters. */
function countReceived(channel: Channel, plan: MessagePlan, servers: DemoServers): { received: number; duplicates: number } {
  const timesReceived = (id: string): number => {
    switch (channel) {
      case 'email':
        return servers.relays.timesReceived(id, MESSAGE_ID_DOMAIN);
      case 'sms':
        return servers.smsc.countByText(plan.smsTexts.get(id) ?? '');
      case 'whatsapp':
        return servers.whatsapp.accepted.get(id) ?? 0;
    }
  };
  let received = 0;
  let duplicates = 0;
  for (const id of plan.ids[channel]) {
    const count = timesReceived(id);
    if (count > 0) received += 1;
    if (count > 1) duplicates += 1;
  }
  return { received, duplicates };
}

function summarizeChannel(
  channel: Channel,
  plan: MessagePlan,
  servers: DemoServers,
  producedAt: ReadonlyMap<string, number>,
  arrivals: ArrivalClock,
  report: GroupReport,
): ChannelSummary {
  const ids = plan.ids[channel];
  const { received, duplicates } = countReceived(channel, plan, servers);
  const latencies: number[] = [];
  let first = Number.POSITIVE_INFINITY;
  let last = Number.NEGATIVE_INFINITY;
  for (const id of ids) {
    const sent = producedAt.get(id);
    const arrived = arrivals.at(id);
    if (sent === undefined || arrived === undefined) continue;
    latencies.push(arrived - sent);
    first = Math.min(first, sent);
    last = Math.max(last, arrived);
  }
  latencies.sort((a, b) => a - b);
  const step = Math.max(1, Math.floor(ids.length / 3));
  return {
    channel,
    topic: topicOf(channel),
    connector: connectorOf(channel),
    group: plan.groups[channel],
    produced: ids.length,
    received,
    duplicates,
    missing: ids.length - received,
    states: report.counts,
    throughput: latencies.length > 0 ? rate(latencies.length, last - first) : 0,
    latencyMs: { p50: percentile(latencies, 0.5), p99: percentile(latencies, 0.99), max: latencies.at(-1) ?? 0 },
    sampleIds: [ids[0], ids[step], ids[ids.length - 1]].filter((id): id is string => id !== undefined),
  };
}

/** What makes the run fail (problems), and what is worth saying without failing it (notes). */
function assess(channels: ChannelSummary[], reports: Map<Channel, GroupReport>): { problems: string[]; notes: string[] } {
  const problems: string[] = [];
  const notes: string[] = [];
  for (const c of channels) {
    const report = reports.get(c.channel) ?? { messages: 0, counts: {}, fallbacks: {} };
    // WhatsApp's group also holds the fallback SMS its messages produced.
    const grouped = c.produced + sum(Object.values(report.fallbacks), (n) => n);
    if (c.missing > 0) problems.push(`${c.channel}: ${c.missing} of ${c.produced} messages never reached the server`);
    if (c.duplicates > 0) problems.push(`${c.channel}: ${c.duplicates} messages reached the server more than once`);
    if (report.truncated) notes.push(`${c.channel}: GET /groups/${c.group} counted only its first ${report.messages} messages`);
    else if (report.messages !== grouped) {
      problems.push(`${c.channel}: GET /groups/${c.group} counts ${report.messages} messages, ${grouped} were produced`);
    }
    const unhandled = c.produced - countIn(c.states, HANDLED);
    if (unhandled > 0) problems.push(`${c.channel}: ${unhandled} messages were not handled in time (${formatStates(c.states)})`);
    const unsuccessful = countIn(c.states, UNSUCCESSFUL);
    if (unsuccessful > 0) problems.push(`${c.channel}: ${unsuccessful} messages failed or ended unknown (${formatStates(c.states)})`);
    // Offline phones never send WhatsApp's receipt: those messages fell back to SMS instead.
    const awaitingReceipt = FINAL_STATE[c.channel] === 'sent' ? 0 : countIn(c.states, ['sent']) - (c.channel === 'whatsapp' ? countIn(report.fallbacks, HANDLED) : 0);
    if (awaitingReceipt > 0) {
      notes.push(`${c.channel}: ${awaitingReceipt} messages are still "sent": their ${FINAL_STATE[c.channel]} receipt has not been applied`);
    }
  }
  return { problems, notes };
}

// ---------------------------------------------------------------------------------------
// Printing

export function formatSummary(summary: DemoSummary): string {
  const rows = [
    ['channel', 'produced', 'at server', 'duplicates', 'msg/s', 'p50 ms', 'p99 ms', 'final states (API)'],
    ...summary.channels.map((c) => [
      c.channel,
      String(c.produced),
      String(c.received),
      String(c.duplicates),
      c.throughput.toFixed(0),
      c.latencyMs.p50.toFixed(0),
      c.latencyMs.p99.toFixed(0),
      formatStates(c.states),
    ]),
    [
      'total',
      String(sum(summary.channels, (c) => c.produced)),
      String(sum(summary.channels, (c) => c.received)),
      String(sum(summary.channels, (c) => c.duplicates)),
      summary.throughput.toFixed(0),
      '',
      '',
      '',
    ],
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) =>
    row
      .map((cell, i) => (i === 0 || i === row.length - 1 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!)))
      .join('  ')
      .trimEnd();
  const verdict = summary.ok
    ? `Every message reached its server exactly once, in ${(summary.elapsedMs / 1000).toFixed(1)} s end to end.`
    : `FAILED:\n${summary.problems.map((p) => `  - ${p}`).join('\n')}`;
  return [
    '',
    line(rows[0]!),
    ...rows.slice(1, -1).map(line),
    line(rows.at(-1)!),
    '',
    'msg/s: from the first produce request to the last arrival at the server; latency: produce request to arrival.',
    ...formatFailover(summary.failover),
    ...formatFallback(summary.fallback),
    ...formatScheduling(summary),
    ...formatEvents(summary.events),
    ...summary.notes.map((note) => `Note: ${note}`),
    verdict,
    '',
  ].join('\n');
}

function formatKeepRunning(run: DemoRun): string {
  const { worker, servers, summary } = run;
  const sms = summary.channels.find((c) => c.channel === 'sms');
  return [
    'Still running (Ctrl+C stops everything):',
    `  worker        ${worker.url}   store ${summary.store}`,
    `  SMTP relays   A smtp://127.0.0.1:${servers.smtp.port}, B smtp://127.0.0.1:${servers.smtpBackup.port}`,
    `  SMSC (SMPP)   smpp://127.0.0.1:${servers.smsc.port}`,
    `  WhatsApp API  ${servers.whatsapp.url}`,
    '',
    'Try:',
    `  curl -s ${worker.url}/connectors?expand=status`,
    `  curl -s ${worker.url}/connectors/${connectorOf('email')}/providers`,
    `  curl -s ${worker.url}/groups/${sms?.group ?? ''}`,
    `  curl -s ${worker.url}/messages/${sms?.sampleIds[0] ?? ''}`,
    `  curl -s -X POST ${worker.url}/topics/demo.sms/messages -H 'content-type: application/json' \\`,
    `       -d '{"messages":[{"key":"+33612345678","value":{"to":"+33612345678","text":"Hello from Omnibus"}}]}'`,
    `  omnibus messages produce demo.sms --url ${worker.url} --key +33612345678 --priority high --send-at $(( $(date +%s) * 1000 + 30000 )) \\`,
    `       --value '{"to":"+33612345678","text":"Your code is 424242"}'`,
    `  omnibus messages show <id> --url ${worker.url}`,
    `  omnibus groups show ${summary.cancel.group} --url ${worker.url}`,
    '',
  ].join('\n');
}

const formatStates = (states: Record<string, number>) =>
  Object.entries(states)
    .sort(([, a], [, b]) => b - a)
    .map(([state, n]) => `${state} ${n}`)
    .join(', ') || 'none';

/**
 * A one-line progress bar on a terminal; elsewhere (CI logs, pipes) a line at every 10 %,
 * so that a log file is not flooded with redraws.
 */
class ProgressBar {
  private readonly tty: boolean;
  private readonly startedAt = Date.now();
  private lastDrawAt = 0;
  private lastDecile = -1;
  private done = 0;
  private finished = false;

  constructor(
    private readonly label: string,
    readonly total: number,
    private readonly out: NodeJS.WritableStream,
  ) {
    this.tty = (out as NodeJS.WriteStream).isTTY === true;
  }

  update(done: number): void {
    this.done = Math.min(done, this.total);
    if (this.tty) {
      const now = Date.now();
      if (now - this.lastDrawAt >= 100 || this.done === this.total) {
        this.lastDrawAt = now;
        this.out.write(`\r${this.render()}`);
      }
      return;
    }
    const decile = Math.floor((this.done / Math.max(1, this.total)) * 10);
    if (decile > this.lastDecile) {
      this.lastDecile = decile;
      this.out.write(`${this.render()}\n`);
    }
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.tty) this.out.write(`\r${this.render()}\n`);
    else if (this.lastDecile < 10) this.out.write(`${this.render()}\n`);
  }

  private render(): string {
    const width = 30;
    const fraction = this.done / Math.max(1, this.total);
    const filled = Math.round(fraction * width);
    const seconds = (Date.now() - this.startedAt) / 1000;
    return (
      `${this.label.padEnd(11)} [${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${String(Math.floor(fraction * 100)).padStart(3)}% ` +
      `${String(this.done).padStart(String(this.total).length)}/${this.total}  ${seconds.toFixed(1)} s`
    );
  }
}

// ---------------------------------------------------------------------------------------
// Small helpers

interface RestResponse {
  status: number;
  body: unknown;
}

interface RestClient {
  call(method: string, path: string, body?: unknown): Promise<RestResponse>;
  error(response: RestResponse, doing: string): Error;
}

function restClient(baseUrl: string): RestClient {
  return {
    async call(method, path, body) {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: body === undefined ? { accept: 'application/json' } : { accept: 'application/json', 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      let parsed: unknown = text;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        // Not JSON: keep the text for the error message.
      }
      return { status: response.status, body: parsed };
    },
    error(response, doing) {
      const body = response.body as { error_code?: unknown; message?: unknown } | undefined;
      const detail = typeof body?.message === 'string' ? body.message : JSON.stringify(body);
      return new Error(`${doing} failed: HTTP ${response.status} ${detail}`);
    },
  };
}

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive integer');
  return n;
}

/** Nearest-rank percentile of sorted values. */
function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(p * sorted.length) - 1))]!;
}

const rate = (count: number, ms: number) => (ms > 0 ? (count * 1000) / ms : 0);
const sum = <T>(items: readonly T[], of: (item: T) => number) => items.reduce((total, item) => total + of(item), 0);
const firstLine = (text: string | undefined) => text?.split('\n')[0];
