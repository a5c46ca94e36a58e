/**
 * Suppression and consent, as a connector takes part in them: the runtime keeps one
 * suppression list per address, channel and category, shared by every worker, and checks it
 * before a record reaches a sink that declares who the record goes to ({@link RecipientDeclaration}).
 * A connector reports what its provider says about an address (opted out, hard bounce,
 * blocked) as {@link SuppressionRequest}s, and what people send back as {@link InboundMessage}s;
 * the runtime stores the first, publishes the second to the connector's `inbound.topic` and
 * reads STOP / START keywords in them.
 */
import { ConfigSpec, validators, type RawConfig } from './config.ts';
import type { SinkRecord } from './connector.ts';

/** The channels a suppression can name. */
export const CONSENT_CHANNELS = ['email', 'sms', 'whatsapp'] as const;
export type ConsentChannel = (typeof CONSENT_CHANNELS)[number];

/** The category of a suppression that covers every message on its channel (a STOP, a hard bounce). */
export const ALL_CATEGORIES = 'all';

/** Headers a produce sets from the item's `category` and `critical` fields. */
export const CATEGORY_HEADER = 'omnibus.category';
export const CRITICAL_HEADER = 'omnibus.critical';

/** A message category: lower-case letters, digits, `.`, `_` and `-`, e.g. `marketing`, `transactional`, `security.otp`. */
export const CATEGORY_PATTERN = /^[a-z0-9][a-z0-9._-]{0,63}$/;

/** A sink that sends to people says on which channel and to whom each record goes. */
export interface RecipientDeclaration {
  channel: ConsentChannel;
  /**
   * The addresses the record goes to, as the value gives them (the runtime normalises them).
   * The record is not sent when any of them is suppressed. Called after the connector's
   * transformations; an invalid value may return an empty list (the connector refuses it).
   */
  recipients(record: SinkRecord): string[];
}

/** Why a provider says an address must not be sent to again on the channel. */
export type SuppressionReason = 'stop' | 'opted-out' | 'hard-bounce' | 'blocked' | 'manual';

/** A provider's word that an address must not be sent to again on a channel (all categories). */
export interface SuppressionRequest {
  channel: ConsentChannel;
  /** As the provider gives it; the runtime normalises it (an unreadable one is logged and dropped). */
  address: string;
  reason: SuppressionReason;
  /** The provider's code: `21610`, `550 5.1.1`, `131050`… */
  code?: string;
  /** Only messages of this category (WhatsApp's marketing opt-out); every category when absent. */
  category?: string;
}

/** A message someone sent us: an SMS to our number (SMPP deliver_sm, Twilio), a WhatsApp message. */
export interface InboundMessage {
  channel: ConsentChannel;
  /** The sender, as the provider gives it (normalised by the runtime: E.164 for phones). */
  from: string;
  /** Our number, short code or phone number id it was sent to. */
  to?: string;
  /** `text`, `button` (a quick-reply button), `interactive` (a list or reply button), `opt-out`… */
  type: string;
  text?: string;
  /** A button reply: its payload (or id) and its title. */
  button?: { payload?: string; text?: string };
  /** The provider's own id for it (Twilio MessageSid, WhatsApp wamid): producing it twice keeps one. */
  providerMessageId?: string;
  /** When the provider received it, ms since the epoch. */
  receivedAt: number;
  /** The provider itself says the sender opted out (`stop`) or back in (`start`), whatever the text. */
  consent?: 'stop' | 'start';
  /** With `consent`: only for this category (WhatsApp's marketing opt-out); every category when absent. */
  consentCategory?: string;
}

// ---------------------------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------------------------

/**
 * A phone number in E.164 (`+` and 7 to 15 digits, no leading 0), from the forms providers and
 * people write: spaces, dashes, dots and brackets are dropped, `00` and `tel:` / `whatsapp:`
 * prefixes read as `+`, and digits alone as an international number (SMPP's international
 * TON, WhatsApp's wa_id). Undefined when it is not one (a national number such as 0612345678).
 */
export function normalizePhone(raw: string): string | undefined {
  let digits = raw.trim().replace(/^(tel|whatsapp|sms):/i, '').replace(/[\s().-]/g, '');
  if (digits.startsWith('00')) digits = digits.slice(2);
  else if (digits.startsWith('+')) digits = digits.slice(1);
  return /^[1-9][0-9]{6,14}$/.test(digits) ? `+${digits}` : undefined;
}

/** An e-mail address, lower-cased, from a bare address or `Name <address>`. Undefined when it is not one. */
export function normalizeEmail(raw: string): string | undefined {
  const bracketed = /<([^<>]*)>\s*$/.exec(raw);
  const address = (bracketed ? bracketed[1]! : raw).trim().toLowerCase();
  if (address.length > 254) return undefined;
  return /^[^\s@<>(),;:"]+@[^\s@<>(),;:"]+\.[^\s@<>(),;:".]+$/.test(address) ? address : undefined;
}

/** The address as the suppression list keeps it on that channel, or undefined when it cannot be read. */
export function normalizeAddress(channel: ConsentChannel, raw: string): string | undefined {
  if (typeof raw !== 'string') return undefined;
  return channel === 'email' ? normalizeEmail(raw) : normalizePhone(raw);
}

export function isConsentChannel(value: unknown): value is ConsentChannel {
  return typeof value === 'string' && (CONSENT_CHANNELS as readonly string[]).includes(value);
}

// ---------------------------------------------------------------------------------------------
// Inbound settings: merged into the spec of a connector that receives messages
// ---------------------------------------------------------------------------------------------

export const INBOUND_KEYS = {
  topic: 'inbound.topic',
  stopKeywords: 'inbound.stop.keywords',
  startKeywords: 'inbound.start.keywords',
} as const;

/** Carriers' opt-out keywords (CTIA; what Twilio honours by default). */
export const DEFAULT_STOP_KEYWORDS = ['STOP', 'STOPALL', 'UNSUBSCRIBE', 'CANCEL', 'END', 'QUIT'] as const;
export const DEFAULT_START_KEYWORDS = ['START', 'UNSTOP'] as const;

const INBOUND_GROUP = 'Inbound';

export const inboundConfigSpec = ConfigSpec.builder()
  .string(INBOUND_KEYS.topic, {
    documentation:
      'Topic that receives the messages people send to this connector\'s numbers (SMS, WhatsApp), one message each, keyed by the sender; created with 16 shards if missing. Empty (default): they are not published (STOP and START still act).',
    default: '',
    importance: 'MEDIUM',
    group: INBOUND_GROUP,
    validator: validators.pattern(/^(|[A-Za-z0-9._-]{1,249})$/, 'empty or a topic name ([A-Za-z0-9._-], at most 249 characters)'),
  })
  .list(INBOUND_KEYS.stopKeywords, {
    documentation:
      'A message whose whole text is one of these words (any letter case, surrounding spaces and punctuation ignored) suppresses its sender on this channel, for every category.',
    default: [...DEFAULT_STOP_KEYWORDS],
    group: INBOUND_GROUP,
  })
  .list(INBOUND_KEYS.startKeywords, {
    documentation: "A message whose whole text is one of these words lifts its sender's suppression on this channel (the one a STOP set).",
    default: [...DEFAULT_START_KEYWORDS],
    group: INBOUND_GROUP,
  });

export interface InboundSettings {
  topic: string;
  stopKeywords: ReadonlySet<string>;
  startKeywords: ReadonlySet<string>;
}

const keywordList = (given: unknown, fallback: readonly string[]): ReadonlySet<string> => {
  if (given === undefined || given === null || given === '') return new Set(fallback);
  const list = Array.isArray(given) ? given.map(String) : String(given).split(',');
  return new Set(list.map((word) => word.trim().toUpperCase()).filter((word) => word !== ''));
};

/** The inbound settings of a raw or parsed config, defaults for what it leaves out. */
export function inboundSettingsOf(config: RawConfig): InboundSettings {
  const topic = config[INBOUND_KEYS.topic];
  return {
    topic: typeof topic === 'string' ? topic.trim() : '',
    stopKeywords: keywordList(config[INBOUND_KEYS.stopKeywords], DEFAULT_STOP_KEYWORDS),
    startKeywords: keywordList(config[INBOUND_KEYS.startKeywords], DEFAULT_START_KEYWORDS),
  };
}

/** `stop` or `start` when the text is one of the keywords, alone (carriers match the whole message). */
export function consentKeyword(text: string | undefined, settings: Pick<InboundSettings, 'stopKeywords' | 'startKeywords'>): 'stop' | 'start' | undefined {
  if (!text) return undefined;
  const word = text
    .trim()
    .replace(/^[\s\p{P}]+|[\s\p{P}]+$/gu, '')
    .toUpperCase();
  if (settings.stopKeywords.has(word)) return 'stop';
  if (settings.startKeywords.has(word)) return 'start';
  return undefined;
}

/** Recipients read from fields of the record's value, each a string or an array of strings (`to`, `cc`, `bcc`). */
export function valueRecipients(channel: ConsentChannel, fields: readonly string[]): RecipientDeclaration {
  return {
    channel,
    recipients: (record) => {
      const value = record.value as Record<string, unknown> | null;
      if (typeof value !== 'object' || value === null) return [];
      return fields.flatMap((field) => {
        const given = value[field];
        if (typeof given === 'string') return [given];
        return Array.isArray(given) ? given.filter((item): item is string => typeof item === 'string') : [];
      });
    },
  };
}
