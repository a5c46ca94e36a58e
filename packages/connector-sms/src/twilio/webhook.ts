/**
 * Twilio status callbacks and inbound messages on `/hooks/{connector}`. Nothing is believed
 * before the X-Twilio-Signature verifies; then delivered, read, undelivered and failed become
 * delivery updates, and a `received` message becomes an inbound message. Intermediate statuses (queued, sending, sent, accepted…) change nothing: the
 * message is already `sent` from the API's answer.
 */
import type { ConnectorContext, DeliveryUpdate, InboundMessage, WebhookRequest, WebhookResponse } from '@omnibus/sdk';
import type { SmsConfig } from '../config.ts';
import { SmsErrorCode } from '../errors.ts';
import { parseReceiptDate } from '../receipt.ts';
import { verifyTwilioSignature } from './signature.ts';

const FINAL_STATES: Record<string, DeliveryUpdate['state']> = {
  delivered: 'delivered',
  read: 'read',
  undelivered: 'failed',
  failed: 'failed',
};

export function handleTwilioStatusCallback(request: WebhookRequest, config: SmsConfig, context: ConnectorContext): WebhookResponse {
  if (config['sms.transport'] !== 'twilio') {
    return reject(404, SmsErrorCode.WEBHOOK_UNSUPPORTED, 'This connector sends over SMPP: its receipts come on the SMPP session, not as webhooks.');
  }
  if (request.method.toUpperCase() !== 'POST') {
    return { ...reject(405, SmsErrorCode.WEBHOOK_INVALID, 'Status callbacks are POST requests.'), headers: { allow: 'POST' } };
  }
  const signature = header(request, 'x-twilio-signature');
  const authToken = config['twilio.auth.token']?.value();
  const params = new URLSearchParams(request.rawBody.toString('utf8'));
  if (!signature || !authToken || !verifyTwilioSignature(authToken, signature, signedUrlCandidates(request, config), params)) {
    // Worth an operator's eye: a misconfigured public URL or someone forging callbacks.
    context.logger.warn({ url: request.url, signed: Boolean(signature) }, 'refused a Twilio status callback: bad X-Twilio-Signature');
    return reject(403, SmsErrorCode.WEBHOOK_SIGNATURE, 'The X-Twilio-Signature header is missing or does not match this request.');
  }

  const providerId = params.get('MessageSid') ?? params.get('SmsSid');
  const status = params.get('MessageStatus') ?? params.get('SmsStatus');
  if (status?.toLowerCase() === 'received' && providerId) return inboundMessage(params, providerId);
  if (!providerId || !status) return reject(400, SmsErrorCode.WEBHOOK_INVALID, 'A status callback needs MessageSid and MessageStatus.');
  const state = FINAL_STATES[status.toLowerCase()];
  if (!state) return { status: 204, updates: [] };

  const messageId = request.query.mid ?? new URL(request.url, 'http://localhost').searchParams.get('mid') ?? undefined;
  const errorCode = params.get('ErrorCode') || undefined;
  const errorMessage = params.get('ErrorMessage') || undefined;
  const update: DeliveryUpdate = {
    ...(messageId ? { messageId } : {}),
    providerId,
    state,
    // Twilio adds the carrier's receipt date to SMS callbacks; it is the best "when" there is.
    at: parseReceiptDate(params.get('RawDlrDoneDate') ?? undefined) ?? Date.now(),
    details: { status },
  };
  if (state === 'failed') {
    update.error = {
      code: errorCode ?? SmsErrorCode.UNDELIVERED,
      message: errorMessage ?? (errorCode ? `Twilio error ${errorCode} (https://www.twilio.com/docs/api/errors/${errorCode})` : `Twilio reported ${status}`),
    };
  }
  return { status: 204, updates: [update] };
}

/** Twilio's recognised opt-out keywords (Advanced Opt-Out): its word on consent, whatever the text. */
const OPT_OUT_TYPES: Record<string, 'stop' | 'start'> = { STOP: 'stop', START: 'start' };

/**
 * Someone texted our number: Twilio posts it to the number's messaging webhook (this URL too),
 * and expects TwiML back; an empty <Response/> sends no reply.
 */
function inboundMessage(params: URLSearchParams, providerId: string): WebhookResponse {
  const consent = OPT_OUT_TYPES[(params.get('OptOutType') ?? '').toUpperCase()];
  const message: InboundMessage = {
    channel: 'sms',
    from: params.get('From') ?? '',
    type: 'text',
    text: params.get('Body') ?? '',
    providerMessageId: providerId,
    receivedAt: Date.now(),
    ...(params.get('To') ? { to: params.get('To') as string } : {}),
    ...(consent ? { consent } : {}),
  };
  return { status: 200, body: '<?xml version="1.0" encoding="UTF-8"?><Response></Response>', headers: { 'content-type': 'text/xml; charset=utf-8' }, inbound: [message] };
}

/**
 * The URL Twilio signed. Behind a proxy the worker sees another URL than the public one, so
 * besides the URL as received, the configured public callback URL is tried with the
 * received path below it and the received query.
 */
function signedUrlCandidates(request: WebhookRequest, config: SmsConfig): string[] {
  const candidates = [request.url];
  const base = config['twilio.status.callback.url'];
  if (base) {
    const received = new URL(request.url, 'http://localhost');
    const publicUrl = new URL(base);
    if (request.path && request.path !== '/') publicUrl.pathname = `${publicUrl.pathname.replace(/\/+$/, '')}${request.path}`;
    publicUrl.search = received.search;
    candidates.push(publicUrl.toString());
  }
  return candidates;
}

function header(request: WebhookRequest, name: string): string | undefined {
  for (const [key, value] of Object.entries(request.headers)) if (key.toLowerCase() === name) return value;
  return undefined;
}

function reject(status: number, code: string, message: string): WebhookResponse {
  return { status, body: { error_code: status, code, message } };
}
