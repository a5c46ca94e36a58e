/**
 * Messages people send us (an SMS to our number over SMPP or Twilio, a WhatsApp message),
 * reported by connectors: a STOP keyword (or a provider's own opt-out) suppresses the sender on
 * that channel for every category, a START lifts it, and every message is published to the
 * connector's `inbound.topic` (when set), keyed by the sender, so that any sink can consume it.
 *
 * Each message is handled in order (a STOP then a START in one batch ends lifted), and only
 * then does the connector acknowledge it to the provider: one that could not be stored is
 * asked again. Publishing is idempotent where the provider gives an id (Twilio's MessageSid,
 * WhatsApp's wamid): a provider's retry is kept once.
 */
import { createHash } from 'node:crypto';
import { ALL_CATEGORIES, CATEGORY_PATTERN, consentKeyword, normalizeAddress, type InboundMessage, type InboundSettings, type Logger } from '@omnibus/sdk';
import type { Store, Topic } from '../store/port.ts';
import type { Producer } from './producer.ts';
import { ensureTopic } from './topics.ts';

/** Shards of an inbound topic the bus creates itself. */
export const INBOUND_TOPIC_SHARDS = 16;

/** The value published for an inbound message (documented in the OpenAPI document as InboundMessage). */
export function inboundValue(connector: string, message: InboundMessage, from: string, keyword: 'stop' | 'start' | undefined): Record<string, unknown> {
  return {
    channel: message.channel,
    connector,
    from,
    ...(message.to !== undefined ? { to: message.to } : {}),
    type: message.type,
    ...(message.text !== undefined ? { text: message.text } : {}),
    ...(message.button !== undefined ? { button: message.button } : {}),
    ...(keyword !== undefined ? { keyword } : {}),
    ...(message.providerMessageId !== undefined ? { provider_message_id: message.providerMessageId } : {}),
    received_at: message.receivedAt,
  };
}

/** The bus id of an inbound message the provider gave an id: the same for the provider's retries. */
export function inboundMessageId(connector: string, providerMessageId: string): string {
  return `inbound:${createHash('sha256').update(`${connector}\u0000${providerMessageId}`).digest('hex').slice(0, 40)}`;
}

export class InboundMessages {
  private readonly known = new Map<string, Topic>();

  constructor(
    private readonly store: Store,
    private readonly producer: Producer | undefined,
  ) {}

  async accept(connector: string, settings: InboundSettings, messages: readonly InboundMessage[], logger: Logger): Promise<void> {
    for (const message of messages) {
      const from = typeof message.from === 'string' ? normalizeAddress(message.channel, message.from) : undefined;
      if (!from) {
        logger.warn({ channel: message.channel, type: message.type }, 'an inbound message whose sender cannot be read; acknowledged and dropped');
        continue;
      }
      const keyword = message.consent ?? consentKeyword(message.text, settings);
      const category = message.consent && message.consentCategory && CATEGORY_PATTERN.test(message.consentCategory) ? message.consentCategory : ALL_CATEGORIES;
      if (keyword === 'stop') {
        await this.store.putSuppressions([
          {
            channel: message.channel,
            address: from,
            category,
            reason: 'stop',
            code: message.consent ? message.type : (message.text ?? '').trim().toUpperCase().slice(0, 32),
            connector,
            createdAt: Date.now(),
          },
        ]);
      } else if (keyword === 'start') {
        await this.store.deleteSuppressions(message.channel, from, category);
      }
      if (keyword) logger.info({ channel: message.channel, keyword }, keyword === 'stop' ? 'a sender opted out' : 'a sender opted back in');
      if (settings.topic) await this.publish(settings.topic, connector, message, from, keyword);
    }
  }

  private async publish(topicName: string, connector: string, message: InboundMessage, from: string, keyword: 'stop' | 'start' | undefined): Promise<void> {
    if (!this.producer) return;
    let topic = this.known.get(topicName);
    if (!topic) {
      topic = await ensureTopic(this.store, { name: topicName, shards: INBOUND_TOPIC_SHARDS });
      this.known.set(topicName, topic);
    }
    await this.producer.produce(topic.name, [
      {
        ...(message.providerMessageId ? { id: inboundMessageId(connector, message.providerMessageId) } : {}),
        key: from,
        value: inboundValue(connector, message, from, keyword),
        headers: { 'omnibus.inbound.channel': message.channel, 'omnibus.inbound.connector': connector },
      },
    ]);
  }
}
