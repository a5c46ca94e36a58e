/**
 * Per-channel throughput through the real runtime: one in-process worker on a fresh LMDB
 * store, the connector packages' local servers (SMTP, SMPP SMSC, Twilio and WhatsApp Cloud API
 * emulators), each connector registered over REST as an operator would, N messages produced
 * in REST batches to distinct recipients. Channels run one after another, so that a slow
 * connector shows instead of hiding behind the others.
 *
 * Measured per channel: messages/s from the first produce request to the last arrival at the
 * server; p50/p99 from a message's produce request to its arrival at the server (the servers'
 * per-message hooks and the WhatsApp emulator's own arrival times, keyed by our message id);
 * duplicates from the servers' own counters.
 *
 *   node --import tsx scripts/bench/channels.ts [--messages 2000]
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { messageIdFor } from '../../packages/connector-email/src/index.ts';
import { startSmtpDevServer } from '../../packages/connector-email/src/dev-server.ts';
import { startSmscDevServer, startTwilioDevServer } from '../../packages/connector-sms/src/dev-server.ts';
import { startWhatsAppDevServer } from '../../packages/connector-whatsapp/src/dev-server.ts';
import { Worker } from '../../packages/core/src/worker/worker.ts';
import { loadWorkerConfig } from '../../packages/core/src/runtime/worker-config.ts';
import { BATCH, percentile, sleep, withClients } from './workload.ts';

export interface ChannelFigures {
  channel: string;
  /** Messages produced. */
  messages: number;
  /** First produce request → last arrival at the server. */
  seconds: number;
  messagesPerSecond: number;
  /** Produce request → arrival at the server. */
  p50Ms: number;
  p99Ms: number;
  /** Messages the server received more than once. */
  duplicates: number;
  /** Messages the server had not received when the channel's time ran out. */
  missing: number;
  /** The settings that shape the figure. */
  settings: string;
}

export interface ChannelBenchOptions {
  /** Messages per channel. Default 2000. */
  messages?: number;
  log?: (line: string) => void;
}

const DEFAULT_MESSAGES = 2000;
const SHARDS = 16;
const TASKS = 2;
const PRODUCE_CLIENTS = 2;
const MESSAGE_ID_DOMAIN = 'bench.example.org';
const SMPP_CREDENTIALS = { systemId: 'omnibus-bench', password: 'bench123' };

/** One channel's server, how to reach it, and what it can tell about our messages. */
interface ChannelHarness {
  /** The connector's own keys (the common ones are added by the bench). */
  config: Record<string, string>;
  settings: string;
  message(n: number, id: string): { key: string; value: Record<string, unknown> };
  /** How many times the server accepted this message, by its own counters. */
  timesReceived(id: string): number;
  /** When the server first received each message, by message id. */
  arrivals(): ReadonlyMap<string, number>;
  close(): Promise<void>;
}

interface ChannelDefinition {
  channel: string;
  start(): Promise<ChannelHarness>;
}

/** First arrival per message id, fed by a server's per-message hook. */
function arrivalClock() {
  const firstAt = new Map<string, number>();
  return {
    firstAt,
    arrived(id: string | undefined) {
      if (id !== undefined && !firstAt.has(id)) firstAt.set(id, Date.now());
    },
  };
}

/** The SMSC and the Twilio emulator count by text: each text names its message id. */
const smsText = (n: number, id: string) => `Omnibus: your code is ${100000 + (n % 900000)}. It expires in 10 minutes. Ref ${id}`;
const smsRefOf = (text: string | undefined) => (text === undefined ? undefined : /Ref (\S+)$/.exec(text)?.[1]);
const phone = (prefix: string, n: number) => `${prefix}${String(n).padStart(8, '0')}`;

const CHANNELS: ChannelDefinition[] = [
  {
    channel: 'email (SMTP)',
    async start() {
      const clock = arrivalClock();
      // No reply given: every mail is accepted; the hook only notes when it came.
      const smtp = await startSmtpDevServer({ dataReply: (mail) => void clock.arrived(mail.omnibusId) });
      return {
        config: {
          'connector.class': 'EmailSink',
          'smtp.host': '127.0.0.1',
          'smtp.port': String(smtp.port),
          'smtp.starttls': 'never',
          'smtp.pool.size': '5',
          'email.from': 'Omnibus Bench <bench@example.org>',
          'email.message.id.domain': MESSAGE_ID_DOMAIN,
        },
        settings: 'smtp.pool.size=5 per task',
        message: (n) => {
          const to = `customer-${n}@example.com`;
          return { key: to, value: { to, subject: `Your order #${n} has shipped`, text: `Hello,\n\nOrder #${n} is on its way.\n\nThe Omnibus Store` } };
        },
        timesReceived: (id) => smtp.countsByMessageId.get(messageIdFor(id, MESSAGE_ID_DOMAIN)) ?? 0,
        arrivals: () => clock.firstAt,
        close: () => smtp.close(),
      };
    },
  },
  {
    channel: 'sms (SMPP)',
    async start() {
      const clock = arrivalClock();
      const smsc = await startSmscDevServer({
        credentials: SMPP_CREDENTIALS,
        answerSubmit: (submit) => void clock.arrived(smsRefOf(submit.text)),
      });
      const texts = new Map<string, string>();
      return {
        config: {
          'connector.class': 'SmsSink',
          'sms.transport': 'smpp',
          'sms.from': 'Omnibus',
          'smpp.host': '127.0.0.1',
          'smpp.port': String(smsc.port),
          'smpp.system.id': SMPP_CREDENTIALS.systemId,
          'smpp.password': SMPP_CREDENTIALS.password,
          'smpp.window.size': '50',
          'smpp.registered.delivery': 'true',
        },
        settings: 'smpp.window.size=50 per task, delivery receipts on',
        message: (n, id) => {
          const to = phone('+3361', n);
          const text = smsText(n, id);
          texts.set(id, text);
          return { key: to, value: { to, text } };
        },
        timesReceived: (id) => smsc.countByText(texts.get(id) ?? ''),
        arrivals: () => clock.firstAt,
        close: () => smsc.close(),
      };
    },
  },
  {
    channel: 'sms (Twilio API)',
    async start() {
      const clock = arrivalClock();
      // No refusal given: every request is accepted; the hook only notes when it came.
      const twilio = await startTwilioDevServer({ reply: ({ params }) => void clock.arrived(smsRefOf(params.Body)) });
      const texts = new Map<string, string>();
      return {
        config: {
          'connector.class': 'SmsSink',
          'sms.transport': 'twilio',
          'sms.from': '+15005550006',
          'twilio.api.url': twilio.url,
          'twilio.account.sid': twilio.accountSid,
          'twilio.auth.token': twilio.authToken,
        },
        settings: 'twilio.max.concurrent.requests=10 per task (default)',
        message: (n, id) => {
          const to = phone('+3362', n);
          const text = smsText(n, id);
          texts.set(id, text);
          return { key: to, value: { to, text } };
        },
        timesReceived: (id) => twilio.countByBody(texts.get(id) ?? ''),
        arrivals: () => clock.firstAt,
        close: () => twilio.close(),
      };
    },
  },
  {
    channel: 'whatsapp (Cloud API)',
    async start() {
      // No webhook URL: the emulator posts no statuses, the bench measures the send path only.
      const whatsapp = await startWhatsAppDevServer();
      return {
        config: {
          'connector.class': 'WhatsAppSink',
          'whatsapp.api.url': whatsapp.url,
          'whatsapp.phone.number.id': whatsapp.phoneNumberId,
          'whatsapp.access.token': whatsapp.accessToken,
          // Far above Meta's documented throughput (80 msg/s, 1000 upgraded) and with the
          // per-recipient pair limit off, so that the connector path is measured, not Meta's limit.
          'whatsapp.rate.limit.per.second': '10000',
          'whatsapp.pair.rate.limit': '0',
        },
        settings: "whatsapp.rate.limit.per.second=10000, pair limit off (Meta's limit is 80 or 1000 msg/s: this measures the connector path)",
        message: (n) => {
          const to = phone('+4915', n);
          return { key: to, value: { to, type: 'text', text: { body: `Your table for ${2 + (n % 5)} is confirmed for tonight. Reply CANCEL to cancel.` } } };
        },
        timesReceived: (id) => whatsapp.accepted.get(id) ?? 0,
        arrivals: () => {
          // The emulator keeps arrival times itself; the connector sends our id as biz_opaque_callback_data.
          const firstAt = new Map<string, number>();
          for (const entry of whatsapp.received) {
            if (entry.httpStatus === 200 && entry.callbackData !== undefined && !firstAt.has(entry.callbackData)) firstAt.set(entry.callbackData, entry.at);
          }
          return firstAt;
        },
        close: () => whatsapp.stop(),
      };
    },
  },
];

export async function benchChannels(options: ChannelBenchOptions = {}): Promise<ChannelFigures[]> {
  const messages = options.messages ?? DEFAULT_MESSAGES;
  if (!Number.isInteger(messages) || messages < 1) throw new Error(`messages must be a positive integer, not ${messages}`);
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const dir = await mkdtemp(join(tmpdir(), 'omnibus-bench-channels-'));
  // The first-party connectors, as the omnibus command finds them: its package's dependencies.
  const worker = new Worker(loadWorkerConfig({ store: `lmdb:${dir}`, listeners: 'http://127.0.0.1:0', 'log.level': 'warn' }), {
    distributionDirs: [fileURLToPath(new URL('../../packages/omnibus', import.meta.url))],
  });
  // Servers close after the worker: a deleted connector's task may still be unbinding from its server.
  const servers: ChannelHarness[] = [];
  const figures: ChannelFigures[] = [];
  try {
    await worker.start();
    const api = restClient(worker.url);
    const tasksOf = (connector: string) => worker.reconciler.localTasks().filter((t) => t.connector === connector).length;
    log(`channels: worker ${worker.url} on lmdb (temporary), ${messages} messages per channel, ${SHARDS} shards, tasks.max=${TASKS}, REST batches of ${BATCH}`);
    for (const [index, definition] of CHANNELS.entries()) {
      const harness = await definition.start();
      servers.push(harness);
      const result = await benchChannel(api, definition.channel, harness, `bench-ch${index}`, messages, tasksOf, log);
      figures.push(result);
      log(
        `channels: ${result.channel}: ${fmt(result.messagesPerSecond)} msg/s, p50 ${fmt(result.p50Ms)} ms, p99 ${fmt(result.p99Ms)} ms, ` +
          `${result.duplicates} duplicates, ${result.missing} missing (${result.settings})`,
      );
    }
    return figures;
  } finally {
    await worker.stop().catch((error: unknown) => log(`channels: stopping the worker failed: ${String(error)}`));
    for (const server of servers) await server.close().catch((error: unknown) => log(`channels: closing a server failed: ${String(error)}`));
    await rm(dir, { recursive: true, force: true });
  }
}

async function benchChannel(
  api: RestClient,
  channel: string,
  harness: ChannelHarness,
  name: string,
  messages: number,
  tasksOf: (connector: string) => number,
  log: (line: string) => void,
): Promise<ChannelFigures> {
  await api.expect('POST', '/topics', { name, shards: SHARDS }, [201]);
  const config = { name, topics: name, 'tasks.max': String(TASKS), ...harness.config };
  await api.expect('POST', '/connectors', { name, config }, [201]);
  await waitUntilRunning(api, name);

  const ids = Array.from({ length: messages }, (_, n) => `${name}-${String(n).padStart(6, '0')}`);
  const batches: Array<Array<{ id: string; key: string; value: Record<string, unknown> }>> = [];
  for (let start = 0; start < messages; start += BATCH) {
    batches.push(ids.slice(start, start + BATCH).map((id, i) => ({ id, ...harness.message(start + i, id) })));
  }
  const producedAt = new Map<string, number>();
  await withClients(batches, PRODUCE_CLIENTS, async (batch) => {
    const at = Date.now();
    for (const m of batch) producedAt.set(m.id, at);
    await api.expect('POST', `/topics/${name}/messages`, { messages: batch }, [202]);
  });

  // Generous: a connector far slower than this is a finding, reported as missing messages.
  const deadline = Date.now() + 60_000 + messages * 30;
  while (harness.arrivals().size < messages && Date.now() < deadline) await sleep(50);

  const arrivals = harness.arrivals();
  const firstProduce = Math.min(...producedAt.values());
  let lastArrival = firstProduce;
  const latencies: number[] = [];
  let duplicates = 0;
  for (const id of ids) {
    const arrived = arrivals.get(id);
    if (arrived !== undefined) {
      latencies.push(arrived - producedAt.get(id)!);
      lastArrival = Math.max(lastArrival, arrived);
    }
    if (harness.timesReceived(id) > 1) duplicates += 1;
  }
  latencies.sort((a, b) => a - b);
  const seconds = (lastArrival - firstProduce) / 1000;
  if (latencies.length < messages) log(`channels: ${channel}: only ${latencies.length} of ${messages} messages reached the server in time`);
  // Stop the connector's tasks before the next channel, so that it does not share the CPU with them.
  await api.expect('DELETE', `/connectors/${name}`, undefined, [204]);
  for (const until = Date.now() + 10_000; tasksOf(name) > 0 && Date.now() < until; ) await sleep(20);
  return {
    channel,
    messages,
    seconds,
    messagesPerSecond: seconds > 0 ? latencies.length / seconds : NaN,
    p50Ms: percentile(latencies, 50),
    p99Ms: percentile(latencies, 99),
    duplicates,
    missing: messages - latencies.length,
    settings: harness.settings,
  };
}

export interface RestClient {
  /** Calls the worker and returns the parsed body; any status not in `ok` is an error that says what failed. */
  expect(method: string, path: string, body: unknown, ok: number[]): Promise<unknown>;
}

export function restClient(baseUrl: string): RestClient {
  return {
    async expect(method, path, body, ok) {
      const response = await fetch(`${baseUrl}${path}`, {
        method,
        headers: body === undefined ? {} : { 'content-type': 'application/json' },
        ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      if (!ok.includes(response.status)) throw new Error(`${method} ${path} answered HTTP ${response.status}: ${text.slice(0, 500)}`);
      return text ? (JSON.parse(text) as unknown) : undefined;
    },
  };
}

export async function waitUntilRunning(api: RestClient, name: string, timeoutMs = 30_000, taskCount = TASKS): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let status: { connector?: { state?: string }; tasks?: Array<{ state?: string; trace?: string }> } = {};
  while (Date.now() < deadline) {
    status = (await api.expect('GET', `/connectors/${name}/status`, undefined, [200])) as typeof status;
    const tasks = status.tasks ?? [];
    const failed = tasks.find((t) => t.state === 'FAILED');
    if (status.connector?.state === 'FAILED' || failed) throw new Error(`connector ${name} FAILED: ${failed?.trace?.split('\n')[0] ?? JSON.stringify(status)}`);
    if (status.connector?.state === 'RUNNING' && tasks.length === taskCount && tasks.every((t) => t.state === 'RUNNING')) return;
    await sleep(100);
  }
  throw new Error(`connector ${name} is not RUNNING after ${timeoutMs / 1000} s: ${JSON.stringify(status)}`);
}

const fmt = (n: number) => (Number.isFinite(n) ? n.toFixed(0) : 'n/a');

export function formatChannelTable(figures: readonly ChannelFigures[]): string {
  const rows = [
    ['channel', 'messages', 'seconds', 'msg/s', 'p50 ms', 'p99 ms', 'duplicates', 'missing'],
    ...figures.map((f) => [f.channel, String(f.messages), f.seconds.toFixed(2), fmt(f.messagesPerSecond), fmt(f.p50Ms), fmt(f.p99Ms), String(f.duplicates), String(f.missing)]),
  ];
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((row) => row[i]!.length)));
  const line = (row: string[]) => row.map((cell, i) => (i === 0 ? cell.padEnd(widths[i]!) : cell.padStart(widths[i]!))).join('  ');
  return [
    ...rows.map(line),
    '',
    'msg/s: first produce request to last arrival at the local server; latency: produce request to arrival.',
    ...figures.map((f) => `${f.channel}: ${f.settings}`),
    `One process holds the worker (LMDB), the servers and the producer; tasks.max=${TASKS}, ${SHARDS} shards.`,
  ].join('\n');
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const flag = process.argv.indexOf('--messages');
  const messages = flag === -1 ? undefined : Number(process.argv[flag + 1]);
  const figures = await benchChannels({ messages });
  process.stdout.write(`${formatChannelTable(figures)}\n`);
  // Everything is closed; a socket some library keeps alive must not hold the prompt back.
  setTimeout(() => process.exit(), 2000).unref();
}
