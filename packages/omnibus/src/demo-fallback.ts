/**
 * Channel fallback in `omnibus demo`: every WhatsApp message carries an SMS fallback (topic
 * `demo.sms`, sent if the WhatsApp message is not `delivered` or `read` within
 * FALLBACK_AFTER_MS), and the WhatsApp emulator withholds `delivered` for every tenth recipient
 * (their phone stays offline: the send is answered with a message id and a `sent` status, and
 * nothing after). Those recipients get one SMS each; the others' fallbacks are cancelled. The
 * demo prints that story from what the SMSC received.
 */
import type { SmscDevServer } from '@omnibus/connector-sms/dev-server';
import type { WhatsAppDevServer } from '@omnibus/connector-whatsapp/dev-server';

/**
 * Short, so that the demo stays quick (in production a minute or more is usual), yet long enough
 * for WhatsApp's receipts on a busy machine: a receipt that comes later sends the SMS too.
 */
export const FALLBACK_AFTER_MS = 10_000;
const OFFLINE_EVERY = 10;
const FALLBACK_SUFFIX = ':fallback';

/** The WhatsApp number of the demo's `n`-th WhatsApp message (0-based). */
export const whatsAppRecipient = (n: number) => `+4915${100_000_000 + n}`;

/** Whether a WhatsApp recipient's phone stays offline in the demo (the emulator's rule, by number). */
export const phoneOffline = (to: string) => Number(to.slice(-9)) % OFFLINE_EVERY === OFFLINE_EVERY / 2;

/** The fallback SMS of a WhatsApp message: its text names the fallback's id (`<id>:fallback`), so the SMSC's texts say whose it is. */
export function smsFallback(id: string, to: string, text: (ref: string) => string, connector: string): Record<string, unknown> {
  return { topic: 'demo.sms', key: to, value: { to, text: text(`${id}${FALLBACK_SUFFIX}`) }, after_ms: FALLBACK_AFTER_MS, connector };
}

/** The WhatsApp message a fallback SMS stands in for, from the ref its text names; undefined for an SMS of its own. */
export const fallbackOriginalOf = (ref: string | undefined) => (ref?.endsWith(FALLBACK_SUFFIX) ? ref.slice(0, -FALLBACK_SUFFIX.length) : undefined);

export interface FallbackStory {
  afterMs: number;
  /** WhatsApp messages the emulator accepted, each with a fallback. */
  messages: number;
  /** WhatsApp messages the emulator never reported delivered (the recipient's phone was offline). */
  withheld: number;
  /** WhatsApp messages that fell back to an SMS, as the SMSC saw them. */
  texted: number;
  /** Of those, messages whose phone was online but whose `delivered` came after the deadline. */
  late: number;
  /** Offline recipients the SMSC never got an SMS for. */
  missing: number;
  /** Fallback SMS the SMSC received more than once. */
  duplicates: number;
}

/** What the servers saw: the emulator's withheld deliveries against the SMSC's fallback texts. */
export function fallbackStory(whatsapp: WhatsAppDevServer, smsc: SmscDevServer, refOf: (text: string) => string | undefined): FallbackStory {
  const texts = new Map<string, number>();
  for (const message of smsc.messages) {
    const original = fallbackOriginalOf(refOf(message.text));
    if (original !== undefined) texts.set(original, (texts.get(original) ?? 0) + 1);
  }
  const withheld = whatsapp.withheld;
  return {
    afterMs: FALLBACK_AFTER_MS,
    messages: whatsapp.accepted.size,
    withheld: withheld.size,
    texted: texts.size,
    late: [...texts.keys()].filter((id) => !withheld.has(id)).length,
    missing: [...withheld].filter((id) => !texts.has(id)).length,
    duplicates: [...texts.values()].filter((n) => n > 1).length,
  };
}

/** What makes the run fail, and what is only worth saying. */
export function assessFallback(story: FallbackStory): { problems: string[]; notes: string[] } {
  const problems: string[] = [];
  const notes: string[] = [];
  if (story.withheld === 0) problems.push('fallback: no WhatsApp message was left undelivered, so no fallback was shown');
  if (story.missing > 0) problems.push(`fallback: ${story.missing} WhatsApp messages never delivered got no SMS`);
  if (story.duplicates > 0) problems.push(`fallback: ${story.duplicates} fallback SMS reached the SMSC more than once`);
  if (story.late > 0) notes.push(`fallback: ${story.late} WhatsApp messages were delivered only after the ${story.afterMs / 1000} s deadline, so their SMS went out too`);
  return { problems, notes };
}

/** The story in a few lines, for the demo's summary. */
export function formatFallback(story: FallbackStory): string[] {
  return [
    `Channel fallback (WhatsApp -> SMS): ${story.withheld} WhatsApp recipients' phones stayed offline (no "delivered" within ${story.afterMs / 1000} s); ` +
      `${story.texted} fallback SMS reached the SMSC, ${story.duplicates === 0 ? 'each once' : `${story.duplicates} more than once`}; ` +
      `the other ${story.messages - story.texted} WhatsApp messages were delivered in time and their fallbacks cancelled.`,
  ];
}
