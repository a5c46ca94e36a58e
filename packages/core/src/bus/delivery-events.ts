/**
 * Delivery events out: every state change of a message for a connector (sent, retrying,
 * delivered, read, failed, dead, unknown, filtered) is produced as a message to the topic the
 * connector names in `delivery.events.topic` (off when empty), so that any sink — a
 * WebhookSink, a FileSink, another cluster's source — can consume it.
 *
 * An event's message id is derived from the message, the connector and the state (and the
 * attempt, for `retrying`), so producing it again (a store write retried, a receipt sent twice)
 * keeps one copy: the producer answers a known id from the stored message. Events are keyed by
 * the message id, so the events of one message stay in order on one shard.
 */
import { createHash } from 'node:crypto';
import type { Store, Topic } from '../store/port.ts';
import type { Producer } from './producer.ts';
import { ensureTopic } from './topics.ts';

/** One state change of a message for a connector, as published. */
export interface DeliveryChange {
  messageId: string;
  /** The message's topic. */
  topic: string;
  connector: string;
  state: string;
  /** When the change happened (ms since the epoch): the provider's time for a receipt. */
  at: number;
  group?: string;
  providerId?: string;
  attempts?: number;
  error?: { code: string; message: string };
  /** The change came from a provider's receipt (webhook or SMPP deliver_sm). */
  receipt?: boolean;
}

/** Shards of an events topic the bus creates itself (when it does not exist yet). */
export const DELIVERY_EVENTS_SHARDS = 16;

/**
 * The event's id: `<message id>:<state>:<12 hex of sha256(connector)>` (with `.<attempt>` after
 * `retrying`), or a digest of all of it when that exceeds the 128-character id limit.
 */
export function deliveryEventId(messageId: string, connector: string, state: string, attempt?: number): string {
  const stateTag = state === 'retrying' && attempt !== undefined ? `${state}.${attempt}` : state;
  const digest = createHash('sha256').update(connector).digest('hex').slice(0, 12);
  const id = `${messageId}:${stateTag}:${digest}`;
  return id.length <= 128 ? id : `evt:${createHash('sha256').update(`${messageId}\u0000${connector}\u0000${stateTag}`).digest('hex')}`;
}

/** The event's value (snake_case, as the data plane's answers). */
export function deliveryEventValue(eventId: string, change: DeliveryChange): Record<string, unknown> {
  return {
    event_id: eventId,
    type: `message.${change.state}`,
    state: change.state,
    message_id: change.messageId,
    topic: change.topic,
    connector: change.connector,
    at: change.at,
    ...(change.group !== undefined ? { group: change.group } : {}),
    ...(change.providerId !== undefined ? { provider_id: change.providerId } : {}),
    ...(change.attempts !== undefined ? { attempts: change.attempts } : {}),
    ...(change.error !== undefined ? { error: { code: change.error.code, message: change.error.message } } : {}),
    ...(change.receipt ? { receipt: true } : {}),
  };
}

/** Produces delivery changes to an events topic (created on first use), in produce-sized chunks. */
export class DeliveryEventPublisher {
  private readonly known = new Map<string, Topic>();

  constructor(
    private readonly store: Store,
    private readonly producer: Producer,
  ) {}

  async publish(eventsTopic: string, changes: readonly DeliveryChange[]): Promise<void> {
    if (!eventsTopic || changes.length === 0) return;
    let topic = this.known.get(eventsTopic);
    if (!topic) {
      topic = await ensureTopic(this.store, { name: eventsTopic, shards: DELIVERY_EVENTS_SHARDS });
      this.known.set(eventsTopic, topic);
    }
    // One batch may not repeat an id: the last change of a message to a state wins.
    // No `group` on the event itself: a group lists the messages produced to it, not their events.
    const items = new Map<string, { id: string; key: string; value: unknown; headers: Record<string, string> }>();
    for (const change of changes) {
      const id = deliveryEventId(change.messageId, change.connector, change.state, change.attempts);
      items.set(id, {
        id,
        key: change.messageId,
        value: deliveryEventValue(id, change),
        headers: { 'omnibus.event.state': change.state, 'omnibus.event.connector': change.connector },
      });
    }
    const all = [...items.values()];
    const chunk = this.producer.limits.maxMessages;
    for (let i = 0; i < all.length; i += chunk) await this.producer.produce(topic.name, all.slice(i, i + chunk));
  }
}
