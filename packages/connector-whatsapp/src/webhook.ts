/**
 * The Cloud API's webhook: the subscription handshake (GET) and signed notifications (POST):
 * statuses become delivery updates, users' messages (text, a template's quick-reply button,
 * an interactive reply) inbound messages, and a user's marketing preference (`stop` /
 * `resume` in a `user_preferences` notification) an opt-out or opt-in for marketing. Nothing
 * is believed before the X-Hub-Signature-256 of the raw body checks out.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ConnectorContext, DeliveryUpdate, InboundMessage, WebhookRequest, WebhookResponse } from '@omnibus/sdk';
import type { WhatsAppConfig } from './config.ts';
import { classifyGraphError, suppressionOf } from './errors.ts';

interface StatusError {
  code?: number;
  title?: string;
  message?: string;
  error_data?: { details?: string };
}

interface Status {
  id?: string;
  status?: string;
  timestamp?: string | number;
  recipient_id?: string;
  biz_opaque_callback_data?: string;
  conversation?: { id?: string; origin?: { type?: string } };
  pricing?: { billable?: boolean; category?: string; pricing_model?: string };
  errors?: StatusError[];
}

interface UserMessage {
  from?: string;
  id?: string;
  timestamp?: string | number;
  type?: string;
  text?: { body?: string };
  button?: { payload?: string; text?: string };
  interactive?: { type?: string; button_reply?: { id?: string; title?: string }; list_reply?: { id?: string; title?: string } };
}

interface UserPreference {
  wa_id?: string;
  category?: string;
  value?: string;
  timestamp?: string | number;
}

interface Notification {
  object?: string;
  entry?: Array<{
    id?: string;
    changes?: Array<{
      field?: string;
      value?: {
        metadata?: { phone_number_id?: string; display_phone_number?: string };
        statuses?: Status[];
        errors?: StatusError[];
        messages?: UserMessage[];
        user_preferences?: UserPreference[];
      };
    }>;
  }>;
}

const reject = (status: number, message: string): WebhookResponse => ({ status, body: { error_code: status, message } });

export async function handleWhatsAppWebhook(
  request: WebhookRequest,
  config: WhatsAppConfig,
  context: ConnectorContext,
): Promise<WebhookResponse> {
  switch (request.method.toUpperCase()) {
    case 'GET':
      return verifySubscription(request, config);
    case 'POST':
      return receiveNotification(request, config, context);
    default:
      return { ...reject(405, `${request.method} is not supported; Meta calls this webhook with GET and POST`), headers: { allow: 'GET, POST' } };
  }
}

/** Meta's handshake: echo `hub.challenge` if, and only if, it knows our verify token. */
function verifySubscription(request: WebhookRequest, config: WhatsAppConfig): WebhookResponse {
  const expected = config['whatsapp.verify.token']?.value();
  if (!expected) return reject(403, 'whatsapp.verify.token is not configured, so no subscription can be verified');
  const { 'hub.mode': mode, 'hub.verify_token': token, 'hub.challenge': challenge } = request.query;
  if (mode !== 'subscribe' || token === undefined || !sameSecret(token, expected)) {
    return reject(403, 'verification refused: hub.mode must be subscribe and hub.verify_token must match');
  }
  return { status: 200, body: challenge ?? '', headers: { 'content-type': 'text/plain; charset=utf-8' } };
}

function receiveNotification(request: WebhookRequest, config: WhatsAppConfig, context: ConnectorContext): WebhookResponse {
  const appSecret = config['whatsapp.app.secret']?.value();
  if (!appSecret) return reject(401, 'whatsapp.app.secret is not configured, so no notification can be verified');
  const signature = header(request.headers, 'x-hub-signature-256');
  if (!signature) return reject(401, 'missing X-Hub-Signature-256 header');
  const given = /^sha256=([0-9a-fA-F]{64})$/.exec(signature.trim())?.[1];
  const computed = createHmac('sha256', appSecret).update(request.rawBody).digest();
  if (!given || !timingSafeEqual(Buffer.from(given, 'hex'), computed)) {
    context.logger.warn({ bytes: request.rawBody.length }, 'WhatsApp webhook with a bad signature refused');
    return reject(403, 'X-Hub-Signature-256 does not match the body');
  }

  let notification: Notification;
  try {
    notification = JSON.parse(request.rawBody.toString('utf8')) as Notification;
  } catch {
    return reject(400, 'the body is not JSON');
  }
  if (!notification || typeof notification !== 'object') return reject(400, 'the body is not a JSON object');

  const ours = config['whatsapp.phone.number.id'];
  const updates: DeliveryUpdate[] = [];
  const inbound: InboundMessage[] = [];
  let ignored = 0;
  for (const entry of notification.entry ?? []) {
    for (const change of entry.changes ?? []) {
      const value = change.value;
      if ((change.field !== 'messages' && change.field !== 'user_preferences') || !value) continue;
      // One app's webhook hears every number of the app; only this connector's number is ours to report.
      const numberId = value.metadata?.phone_number_id;
      if (numberId !== undefined && numberId !== ours) {
        ignored += (value.statuses?.length ?? 0) + (value.messages?.length ?? 0) + (value.user_preferences?.length ?? 0);
        continue;
      }
      for (const error of value.errors ?? []) {
        context.logger.warn({ graphCode: error.code, title: error.title, details: error.error_data?.details }, 'WhatsApp reported an error');
      }
      for (const status of value.statuses ?? []) {
        const update = toDeliveryUpdate(status);
        if (update) updates.push(update);
        else ignored += 1;
      }
      for (const message of value.messages ?? []) {
        const received = toInboundMessage(message, numberId);
        if (received) inbound.push(received);
        else ignored += 1;
      }
      for (const preference of value.user_preferences ?? []) {
        const received = toPreference(preference, numberId);
        if (received) inbound.push(received);
        else ignored += 1;
      }
    }
  }
  updates.sort(byTimeThenState);
  return { status: 200, body: { received: updates.length + inbound.length, ignored }, updates, ...(inbound.length > 0 ? { inbound } : {}) };
}

const secondsToMs = (timestamp: string | number | undefined): number => {
  const seconds = Number(timestamp);
  return Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : Date.now();
};

/** A user's message: its text, or the title of the button or list row they chose (its payload or id beside). */
function toInboundMessage(message: UserMessage, numberId: string | undefined): InboundMessage | undefined {
  if (!message.from || !message.type) return undefined;
  const base = {
    channel: 'whatsapp' as const,
    from: message.from,
    ...(numberId ? { to: numberId } : {}),
    type: message.type,
    ...(message.id ? { providerMessageId: message.id } : {}),
    receivedAt: secondsToMs(message.timestamp),
  };
  if (message.type === 'text') return { ...base, text: message.text?.body ?? '' };
  if (message.type === 'button' && message.button) {
    return { ...base, text: message.button.text ?? '', button: { ...(message.button.payload !== undefined ? { payload: message.button.payload } : {}), ...(message.button.text !== undefined ? { text: message.button.text } : {}) } };
  }
  const reply = message.interactive?.button_reply ?? message.interactive?.list_reply;
  if (message.type === 'interactive' && reply) {
    return { ...base, text: reply.title ?? '', button: { ...(reply.id !== undefined ? { payload: reply.id } : {}), ...(reply.title !== undefined ? { text: reply.title } : {}) } };
  }
  return base;
}

/** A user's marketing preference: `stop` opts them out of marketing messages on WhatsApp, `resume` back in. */
function toPreference(preference: UserPreference, numberId: string | undefined): InboundMessage | undefined {
  if (!preference.wa_id || preference.category !== 'marketing_messages') return undefined;
  const consent = preference.value === 'stop' ? 'stop' : preference.value === 'resume' ? 'start' : undefined;
  if (!consent) return undefined;
  return {
    channel: 'whatsapp',
    from: preference.wa_id,
    ...(numberId ? { to: numberId } : {}),
    type: 'opt-out',
    text: preference.value,
    consent,
    consentCategory: 'marketing',
    receivedAt: secondsToMs(preference.timestamp),
  };
}

const STATE_ORDER: Record<DeliveryUpdate['state'], number> = { delivered: 0, read: 1, failed: 2 };

/** Meta does not deliver notifications in order; the output is, by when each thing happened. */
function byTimeThenState(a: DeliveryUpdate, b: DeliveryUpdate): number {
  return (
    a.at - b.at ||
    STATE_ORDER[a.state] - STATE_ORDER[b.state] ||
    (a.messageId ?? a.providerId ?? '').localeCompare(b.messageId ?? b.providerId ?? '')
  );
}

/** `sent` only repeats what the send's answer said; `deleted`/`warning` change nothing we track. */
function toDeliveryUpdate(status: Status): DeliveryUpdate | undefined {
  if (status.status !== 'delivered' && status.status !== 'read' && status.status !== 'failed') return undefined;
  if (!status.id && !status.biz_opaque_callback_data) return undefined;
  const seconds = Number(status.timestamp);
  const update: DeliveryUpdate = {
    state: status.status,
    at: Number.isFinite(seconds) && seconds > 0 ? seconds * 1000 : Date.now(),
  };
  if (status.biz_opaque_callback_data) update.messageId = status.biz_opaque_callback_data;
  if (status.id) update.providerId = status.id;
  const details: Record<string, unknown> = {};
  if (status.recipient_id) details.recipientId = status.recipient_id;
  if (status.conversation?.id) details.conversationId = status.conversation.id;
  if (status.pricing?.category) details.pricingCategory = status.pricing.category;
  if (Object.keys(details).length > 0) update.details = details;
  if (status.status === 'failed') {
    const first = status.errors?.[0];
    const graphCode = typeof first?.code === 'number' ? first.code : undefined;
    const text = [first?.title ?? first?.message ?? 'no reason given', first?.error_data?.details].filter(Boolean).join(' — ');
    update.error = {
      code: classifyGraphError(graphCode, 400).code,
      message: `WhatsApp error ${graphCode ?? 'unknown'}: ${text}`,
    };
    const suppress = suppressionOf(graphCode, status.recipient_id);
    if (suppress) update.suppress = suppress;
  }
  return update;
}

function header(headers: Record<string, string>, name: string): string | undefined {
  for (const [key, value] of Object.entries(headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

/** Constant-time comparison of two secrets of any length (both are hashed to the same size first). */
function sameSecret(given: string, expected: string): boolean {
  const digest = (s: string) => createHash('sha256').update(s, 'utf8').digest();
  return timingSafeEqual(digest(given), digest(expected));
}
