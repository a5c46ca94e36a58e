/**
 * A development emulator of Twilio's Programmable Messaging API, as documented at
 * twilio.com/docs/messaging/api/message-resource and twilio.com/docs/api/errors:
 *
 * - `POST /2010-04-01/Accounts/{AccountSid}/Messages.json`, form-encoded, HTTP basic auth
 *   with the account SID and auth token (401 + error 20003 otherwise);
 * - `To` and `Body` required (21604, 21602), `From` or `MessagingServiceSid` required (21603);
 * - 201 with the Message resource (`sid` SM + 32 hex, `status` queued, or accepted with a
 *   Messaging Service); errors as `{code, message, more_info, status}`;
 * - status callbacks: form-encoded POSTs to the message's StatusCallback, signed with
 *   X-Twilio-Signature, sent only to loopback addresses.
 *
 * - inbound messages: `sendInbound` posts what Twilio posts to a number's messaging webhook
 *   when someone texts it (MessageSid, From, To, Body, SmsStatus=received, and OptOutType
 *   when Twilio's opt-out handling recognised a keyword), signed the same way.
 *
 * Tests script refusals per request (`reply`); by default every message is accepted.
 * Listens on 127.0.0.1 only.
 */
import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { twilioSignature } from '../twilio/signature.ts';

export interface TwilioMessage {
  sid: string;
  to: string;
  from: string | undefined;
  messagingServiceSid: string | undefined;
  body: string;
  statusCallback: string | undefined;
  /** Every parameter as received. */
  params: Record<string, string>;
}

export interface TwilioScriptedError {
  httpStatus: number;
  code: number;
  message: string;
  /** Sent as a Retry-After header (seconds). */
  retryAfterSeconds?: number;
}

export type TwilioCallbackStatus = 'queued' | 'sending' | 'sent' | 'delivered' | 'undelivered' | 'failed' | 'read';

export interface TwilioDevServerOptions {
  port?: number;
  accountSid?: string;
  authToken?: string;
  /** A refusal for this request, or undefined to accept it. `attempt` counts requests with the same To and Body. */
  reply?: (request: { params: Record<string, string>; attempt: number }) => TwilioScriptedError | undefined;
  /** Status callbacks sent after accepting a message that has a StatusCallback (default: none). */
  callbackStatuses?: TwilioCallbackStatus[];
}

export interface TwilioCallback {
  url: string;
  sid: string;
  status: TwilioCallbackStatus;
  /** HTTP status the callback got, or 0 when it could not be delivered. */
  responseStatus: number;
}

export interface TwilioDevServer {
  /** Base URL to put in `twilio.api.url`. */
  readonly url: string;
  readonly port: number;
  readonly accountSid: string;
  readonly authToken: string;
  /** Accepted messages, in order. */
  readonly messages: readonly TwilioMessage[];
  /** Every create request that passed authentication, accepted or refused. */
  readonly requests: ReadonlyArray<Record<string, string>>;
  readonly callbacks: readonly TwilioCallback[];
  countByBody(body: string): number;
  duplicates(): string[];
  /** Sends a signed status callback for an accepted message; resolves with the HTTP status it got. */
  sendStatusCallback(sid: string, status: TwilioCallbackStatus, extra?: Record<string, string>): Promise<number>;
  /** Posts a signed inbound message (someone texted our number) to `webhookUrl`; resolves with the HTTP status it got. */
  sendInbound(webhookUrl: string, message: { from: string; to: string; body: string; optOutType?: 'STOP' | 'START' | 'HELP' }): Promise<number>;
  /** Resolves once every automatic status callback sent so far has been answered. */
  settled(): Promise<void>;
  close(): Promise<void>;
}

const hex = (bytes: number) => randomBytes(bytes).toString('hex');

export async function startTwilioDevServer(options: TwilioDevServerOptions = {}): Promise<TwilioDevServer> {
  const accountSid = options.accountSid ?? `AC${hex(16)}`;
  const authToken = options.authToken ?? hex(16);
  const messages: TwilioMessage[] = [];
  const requests: Array<Record<string, string>> = [];
  const callbacks: TwilioCallback[] = [];
  const attempts = new Map<string, number>();
  const bodyCounts = new Map<string, number>();
  const pendingCallbacks = new Set<Promise<unknown>>();
  const path = `/2010-04-01/Accounts/${accountSid}/Messages.json`;
  const expectedAuthorization = `Basic ${Buffer.from(`${accountSid}:${authToken}`).toString('base64')}`;

  const sendStatusCallback = async (sid: string, status: TwilioCallbackStatus, extra: Record<string, string> = {}): Promise<number> => {
    const message = messages.find((m) => m.sid === sid);
    if (!message?.statusCallback) throw new Error(`message ${sid} is unknown or has no StatusCallback`);
    const target = new URL(message.statusCallback);
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(target.hostname)) {
      throw new Error(`the development server only calls loopback addresses, not ${target.hostname}`);
    }
    const params = new URLSearchParams({
      AccountSid: accountSid,
      ApiVersion: '2010-04-01',
      From: message.from ?? '',
      MessageSid: sid,
      MessageStatus: status,
      SmsSid: sid,
      SmsStatus: status,
      To: message.to,
      ...(message.messagingServiceSid ? { MessagingServiceSid: message.messagingServiceSid } : {}),
      ...extra,
    });
    const responseStatus = await postSigned(message.statusCallback, params);
    callbacks.push({ url: message.statusCallback, sid, status, responseStatus });
    return responseStatus;
  };

  /** A form POST signed with X-Twilio-Signature; the HTTP status it got, or 0 when it could not be delivered. */
  const postSigned = async (url: string, params: URLSearchParams): Promise<number> => {
    try {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': twilioSignature(authToken, url, params) },
        body: params,
      });
      await response.arrayBuffer();
      return response.status;
    } catch {
      return 0;
    }
  };

  const sendInbound: TwilioDevServer['sendInbound'] = async (webhookUrl, message) => {
    if (!['127.0.0.1', 'localhost', '[::1]'].includes(new URL(webhookUrl).hostname)) {
      throw new Error('the development server only calls loopback addresses');
    }
    const sid = `SM${hex(16)}`;
    const params = new URLSearchParams({
      ToCountry: 'US',
      SmsMessageSid: sid,
      NumMedia: '0',
      SmsSid: sid,
      SmsStatus: 'received',
      Body: message.body,
      To: message.to,
      NumSegments: '1',
      MessageSid: sid,
      AccountSid: accountSid,
      From: message.from,
      ApiVersion: '2010-04-01',
      ...(message.optOutType ? { OptOutType: message.optOutType } : {}),
    });
    return postSigned(webhookUrl, params);
  };

  const handle = async (request: IncomingMessage, response: ServerResponse): Promise<void> => {
    const url = new URL(request.url ?? '/', 'http://127.0.0.1');
    if (request.method !== 'POST' || url.pathname !== path) {
      return error(response, { httpStatus: 404, code: 20404, message: `The requested resource ${url.pathname} was not found` });
    }
    if (request.headers.authorization !== expectedAuthorization) {
      return error(response, { httpStatus: 401, code: 20003, message: 'Authenticate' });
    }
    const params = Object.fromEntries(new URLSearchParams((await readBody(request)).toString('utf8')));
    requests.push(params);
    if (!params.To) return error(response, { httpStatus: 400, code: 21604, message: "A 'To' phone number is required." });
    if (!params.Body) return error(response, { httpStatus: 400, code: 21602, message: 'Message body is required.' });
    if (!params.From && !params.MessagingServiceSid) {
      return error(response, { httpStatus: 400, code: 21603, message: "A 'From' phone number is required." });
    }
    const attemptKey = `${params.To}\u0000${params.Body}`;
    const attempt = (attempts.get(attemptKey) ?? 0) + 1;
    attempts.set(attemptKey, attempt);
    const refusal = options.reply?.({ params, attempt });
    if (refusal) return error(response, refusal);

    const message: TwilioMessage = {
      sid: `SM${hex(16)}`,
      to: params.To,
      from: params.From,
      messagingServiceSid: params.MessagingServiceSid,
      body: params.Body,
      statusCallback: params.StatusCallback,
      params,
    };
    messages.push(message);
    bodyCounts.set(message.body, (bodyCounts.get(message.body) ?? 0) + 1);
    const now = new Date().toUTCString();
    json(response, 201, {
      account_sid: accountSid,
      api_version: '2010-04-01',
      body: message.body,
      date_created: now,
      date_sent: null,
      date_updated: now,
      direction: 'outbound-api',
      error_code: null,
      error_message: null,
      from: message.from ?? null,
      messaging_service_sid: message.messagingServiceSid ?? null,
      num_media: '0',
      num_segments: '1',
      price: null,
      price_unit: 'USD',
      sid: message.sid,
      status: message.messagingServiceSid ? 'accepted' : 'queued',
      subresource_uris: { media: `${path.replace('.json', '')}/${message.sid}/Media.json` },
      to: message.to,
      uri: `${path.replace('.json', '')}/${message.sid}.json`,
    });
    if (message.statusCallback && options.callbackStatuses?.length) {
      const statuses = options.callbackStatuses;
      const sending = (async () => {
        for (const status of statuses) await sendStatusCallback(message.sid, status);
      })().catch(() => undefined);
      pendingCallbacks.add(sending);
      void sending.finally(() => pendingCallbacks.delete(sending));
    }
  };

  const server = createServer((request, response) => {
    handle(request, response).catch((failure: Error) => error(response, { httpStatus: 500, code: 20500, message: failure.message }));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    accountSid,
    authToken,
    messages,
    requests,
    callbacks,
    countByBody: (body) => bodyCounts.get(body) ?? 0,
    duplicates: () => [...bodyCounts].filter(([, count]) => count > 1).map(([body]) => body),
    sendStatusCallback,
    sendInbound,
    settled: async () => {
      while (pendingCallbacks.size > 0) await Promise.allSettled([...pendingCallbacks]);
    },
    close: async () => {
      await Promise.allSettled([...pendingCallbacks]);
      await new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      });
    },
  };
}

function error(response: ServerResponse, refusal: TwilioScriptedError): void {
  const headers: Record<string, string> = refusal.retryAfterSeconds === undefined ? {} : { 'retry-after': String(refusal.retryAfterSeconds) };
  json(
    response,
    refusal.httpStatus,
    { code: refusal.code, message: refusal.message, more_info: `https://www.twilio.com/docs/errors/${refusal.code}`, status: refusal.httpStatus },
    headers,
  );
}

function json(response: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const payload = JSON.stringify(body);
  response.writeHead(status, { 'content-type': 'application/json; charset=utf-8', 'content-length': Buffer.byteLength(payload), ...headers });
  response.end(payload);
}

function readBody(request: IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => resolve(Buffer.concat(chunks)));
    request.on('error', reject);
  });
}
