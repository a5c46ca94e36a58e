/**
 * The Cloud API's webhook: the subscription handshake (GET) and signed status notifications
 * (POST). Nothing is believed before the X-Hub-Signature-256 of the raw body checks out.
 */
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import type { ConnectorContext, DeliveryUpdate, WebhookRequest, WebhookResponse } from '@omnibus/sdk';
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

interface Notification {
  object?: string;
  entry?: Array<{
    id?: string;
    changes?: Array<{
      field?: string;
      value?: {
        metadata?: { phone_number_id?: string };
        statuses?: Status[];
        errors?: StatusError[];
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
  let ignored = 0;
  for (const entry of notification.entry ?? []) {
    for (const change of entry.changes ?? []) {
      const value = change.value;
      if (change.field !== 'messages' || !value) continue;
      // One app's webhook hears every number of the app; only this connector's number is ours to report.
      const numberId = value.metadata?.phone_number_id;
      if (numberId !== undefined && numberId !== ours) {
        ignored += value.statuses?.length ?? 0;
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
    }
  }
  updates.sort(byTimeThenState);
  return { status: 200, body: { received: updates.length, ignored }, updates };
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
