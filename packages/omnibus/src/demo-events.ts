/**
 * Delivery events in `omnibus demo`: the three channel connectors publish every state change
 * of their messages to one events topic (`delivery.events.topic`), and a WebhookSink posts
 * those events, signed, to a small HTTP receiver the demo starts on 127.0.0.1 — what an
 * application's status endpoint would be. The receiver checks every signature as the
 * connector's README tells receivers to, deduplicates by event id (delivery to an endpoint is
 * at least once), and counts what it kept by state. The demo then checks that every message
 * has its `sent` event, and every SMS its `delivered` one.
 */
import { createHmac, randomBytes, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export const EVENTS_TOPIC = 'omnibus.delivery-events';
export const EVENTS_CONNECTOR = 'demo-events';
/** Events per POST: fewer requests for the receiver, as a busy application would want. */
const BATCH_RECORDS = 50;
/** Signatures older than this are refused (replays), as the README's check does. */
const TOLERANCE_SECONDS = 300;

interface EventValue {
  event_id: string;
  state: string;
  message_id: string;
  connector: string;
}

/** One event the demo requires: this message reached this state at this connector. */
export interface ExpectedEvent {
  messageId: string;
  connector: string;
  state: string;
}

export interface EventsStory {
  topic: string;
  /** POSTs the receiver took (each a batch of events). */
  posts: number;
  /** Distinct events kept, after deduplication by event id. */
  received: number;
  byState: Record<string, number>;
  /** Events that arrived again and were dropped by their id. */
  duplicates: number;
  /** POSTs whose signature did not verify (answered 401, nothing kept). */
  badSignatures: number;
  /** Events the demo required (`sent` for every message, `delivered` for every SMS), and those that never came. */
  expected: number;
  missing: number;
  /** A few of the missing ones, to look up with GET /messages/{id}. */
  missingSamples: string[];
}

/** The application side: an HTTP endpoint that verifies, deduplicates and counts delivery events. */
export class EventReceiver {
  /** Per message id, the `<connector> <state>` pairs received. */
  private readonly byMessage = new Map<string, Set<string>>();
  private readonly seen = new Set<string>();
  private readonly states: Record<string, number> = {};
  private posts = 0;
  private duplicates = 0;
  private badSignatures = 0;
  readonly secret = randomBytes(24).toString('hex');

  private constructor(private readonly server: Server) {}

  static async start(): Promise<EventReceiver> {
    const server = createServer();
    const receiver = new EventReceiver(server);
    server.on('request', (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => res.writeHead(receiver.receive(String(req.headers['omnibus-signature'] ?? ''), Buffer.concat(chunks).toString('utf8'))).end());
    });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
    return receiver;
  }

  get url(): string {
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/omnibus-events`;
  }

  /** The WebhookSink that posts the events topic here. */
  connectorConfig(): Record<string, string> {
    return {
      'connector.class': 'WebhookSink',
      topics: EVENTS_TOPIC,
      'webhook.url': this.url,
      'webhook.signing.secret': this.secret,
      'webhook.batch.max.records': String(BATCH_RECORDS),
    };
  }

  /** Answers a POST: 200 once its events are kept, 401 when the signature does not verify, 400 when the body is not what the connector sends. */
  private receive(signature: string, rawBody: string): number {
    this.posts += 1;
    if (!this.verify(signature, rawBody)) {
      this.badSignatures += 1;
      return 401;
    }
    let records: Array<{ id: string; value: EventValue }>;
    try {
      const parsed = JSON.parse(rawBody) as unknown;
      // A batch is an array of {id, value}; a single event is its value.
      records = Array.isArray(parsed) ? (parsed as typeof records) : [{ id: (parsed as EventValue).event_id, value: parsed as EventValue }];
    } catch {
      return 400;
    }
    for (const { id, value } of records) {
      if (this.seen.has(id)) {
        this.duplicates += 1;
        continue;
      }
      this.seen.add(id);
      this.states[value.state] = (this.states[value.state] ?? 0) + 1;
      let pairs = this.byMessage.get(value.message_id);
      if (!pairs) this.byMessage.set(value.message_id, (pairs = new Set()));
      pairs.add(`${value.connector} ${value.state}`);
    }
    return 200;
  }

  /** The check the connector's README gives receivers: HMAC-SHA256 over "<t>.<raw body>", t recent. */
  private verify(header: string, rawBody: string): boolean {
    const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
    const t = Number(parts.t);
    if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > TOLERANCE_SECONDS) return false;
    const expected = createHmac('sha256', this.secret).update(`${t}.${rawBody}`).digest();
    const given = Buffer.from(parts.v1 ?? '', 'hex');
    return given.length === expected.length && timingSafeEqual(given, expected);
  }

  /** The expected events not received yet. */
  missing(expected: readonly ExpectedEvent[]): ExpectedEvent[] {
    return expected.filter((e) => !this.byMessage.get(e.messageId)?.has(`${e.connector} ${e.state}`));
  }

  story(expected: readonly ExpectedEvent[]): EventsStory {
    const missing = this.missing(expected);
    return {
      topic: EVENTS_TOPIC,
      posts: this.posts,
      received: this.seen.size,
      byState: { ...this.states },
      duplicates: this.duplicates,
      badSignatures: this.badSignatures,
      expected: expected.length,
      missing: missing.length,
      missingSamples: missing.slice(0, 3).map((e) => `${e.messageId} ${e.state} at ${e.connector}`),
    };
  }

  async close(): Promise<void> {
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

export function assessEvents(story: EventsStory): string[] {
  const problems: string[] = [];
  if (story.badSignatures > 0) problems.push(`delivery events: ${story.badSignatures} POSTs to the receiver had a signature that did not verify`);
  if (story.missing > 0) {
    problems.push(`delivery events: ${story.missing} of ${story.expected} expected events never reached the receiver (e.g. ${story.missingSamples.join('; ')})`);
  }
  return problems;
}

export function formatEvents(story: EventsStory): string[] {
  const states = Object.entries(story.byState)
    .sort(([, a], [, b]) => b - a)
    .map(([state, n]) => `${state} ${n}`)
    .join(', ');
  return [
    `Delivery events (${story.topic} -> WebhookSink -> local receiver): ${story.received} events in ${story.posts} signed POSTs (${states || 'none'}); ` +
      `${story.duplicates} repeats dropped by event id; ${story.badSignatures} bad signatures; ` +
      `${story.expected - story.missing} of ${story.expected} expected events (sent for every message, delivered for every SMS) arrived.`,
  ];
}
