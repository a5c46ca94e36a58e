/**
 * A local WhatsApp Cloud API for tests, demos and benchmarks. It follows the documented
 * contract (reference/channels.md §1): `POST /{version}/{phone-number-id}/messages` with a
 * Bearer token (190 with Graph's OAuthException body otherwise), the request body checked
 * as Meta checks it (error 100), `{messaging_product, contacts, messages:[{id:'wamid…'}]}` on
 * success, Graph error bodies for scripted failures per recipient, an optional throughput
 * limit per calendar second (130429), and signed (X-Hub-Signature-256) status webhooks that
 * echo `biz_opaque_callback_data`. It listens on 127.0.0.1 only and calls back loopback only.
 */
import { createHmac, randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';

/** How the emulator answers one scripted message. */
export interface ScriptedAnswer {
  /** Graph error code, e.g. 130429, 131056, 131047, 131026, 190. */
  code?: number;
  /** HTTP status; by default 401 for 190, 500 for Meta-side trouble (1, 2, 131000, 131016), 400 otherwise. */
  httpStatus?: number;
  message?: string;
  details?: string;
  /** Adds a Retry-After header (seconds). */
  retryAfterSeconds?: number;
  /** Answer with this body as text/html instead of a Graph error (a proxy's 502 page). */
  rawBody?: string;
  /** Hold the answer back this long (ms), e.g. past the client's timeout. */
  delayMs?: number;
}

export interface WhatsAppDevServerOptions {
  /** 0 (default) picks a free port. */
  port?: number;
  accessToken?: string;
  phoneNumberId?: string;
  /** Signs the status webhooks. */
  appSecret?: string;
  /** Where to post status webhooks (loopback only); none are posted without it. */
  webhookUrl?: string;
  /** Which statuses to report for each accepted message. */
  statuses?: Array<'sent' | 'delivered' | 'read'>;
  /**
   * Recipients (the request's `to`) whose messages are accepted, with a message id and a `sent`
   * status, but never reported `delivered` or `read`: a phone that stays offline. Deterministic
   * by recipient, e.g. `(to) => Number(to.slice(-4)) % 5 === 0` for every fifth number.
   */
  withholdDelivery?: (to: string) => boolean;
  /** Status notifications posted at once, at most (default 4); the others wait their turn in order. */
  webhookConcurrency?: number;
  /** How long a webhook that is not answered 2xx is tried again before it is given up (ms). Default 60 s. */
  webhookRetryForMs?: number;
  /** Pending statuses are posted in batches this often (ms). */
  webhookIntervalMs?: number;
  /** Report each message's statuses newest first, as Meta sometimes does. */
  outOfOrder?: boolean;
  /** Answer 130429 beyond this many messages per calendar second. */
  throughputPerSecond?: number;
  /** Delay before every answer (ms), to stand in for network and API latency. */
  latencyMs?: number;
}

export interface ReceivedMessage {
  /** Arrival, ms since the epoch. */
  at: number;
  path: string;
  to: string | undefined;
  type: string | undefined;
  callbackData: string | undefined;
  body: Record<string, unknown> | undefined;
  httpStatus: number;
  graphCode?: number;
  wamid?: string;
}

export interface WhatsAppDevServer {
  /** Base URL for `whatsapp.api.url`. */
  readonly url: string;
  readonly port: number;
  readonly accessToken: string;
  readonly phoneNumberId: string;
  readonly appSecret: string;
  /** Accepted messages, counted by `biz_opaque_callback_data` (a count above 1 is a duplicate send). */
  readonly accepted: Map<string, number>;
  /** The `biz_opaque_callback_data` of accepted messages whose delivery was withheld (`withholdDelivery`). */
  readonly withheld: Set<string>;
  /** Every message request that got past authentication, in arrival order. */
  readonly received: ReceivedMessage[];
  /** Message requests per calendar second of arrival (second → count). */
  requestsPerSecond(): Map<number, number>;
  /** Queues answers for the next messages to `to`, one per message; later ones are accepted. */
  script(to: string, ...answers: ScriptedAnswer[]): void;
  /** Status webhooks posted and answered 2xx, and those given up on. */
  readonly webhooks: { posted: number; statuses: number; failed: number };
  /** Posts every pending status now. */
  flushWebhooks(): Promise<void>;
  /**
   * Posts what Meta posts when a user writes to the number (a `messages` notification with the
   * user's contact: text, a template's quick-reply button, an interactive reply) or changes
   * their marketing preference (a `user_preferences` notification), signed; true once answered 2xx.
   */
  sendInbound(message: WhatsAppInbound): Promise<boolean>;
  stop(): Promise<void>;
}

/** What a WhatsApp user sends the business. `from` is their wa_id (digits, no `+`). */
export type WhatsAppInbound =
  | { from: string; text: string }
  | { from: string; button: { payload: string; text: string } }
  | { from: string; reply: { id: string; title: string } }
  | { from: string; marketingPreference: 'stop' | 'resume' };

const WABA_ID = '200000000000001';
const DISPLAY_NUMBER = '15550000000';

const TITLES: Record<number, string> = {
  1: 'API Unknown',
  2: 'API Service',
  100: 'Invalid parameter',
  130429: 'Rate limit hit',
  131000: 'Something went wrong',
  131016: 'Service unavailable',
  131026: 'Message undeliverable',
  131047: 'Re-engagement message',
  131048: 'Spam rate limit hit',
  131050: 'User has opted out of marketing messages',
  131051: 'Unsupported message type',
  131056: '(Business Account, Consumer Account) pair rate limit hit',
  190: 'Error validating access token: Session has expired',
};

const DETAILS: Record<number, string> = {
  130429: 'Cloud API message throughput has been reached.',
  131026: 'Message failed to send because the recipient is not a WhatsApp user or cannot receive this message.',
  131047: 'Message failed to send because more than 24 hours have passed since the customer last replied to this number.',
  131056: 'Too many messages sent from the sender phone number to the same recipient phone number in a short period of time.',
};

export async function startWhatsAppDevServer(options: WhatsAppDevServerOptions = {}): Promise<WhatsAppDevServer> {
  const accessToken = options.accessToken ?? 'dev-access-token';
  const phoneNumberId = options.phoneNumberId ?? '100000000000001';
  const appSecret = options.appSecret ?? 'dev-app-secret';
  const statusesToSend = options.statuses ?? ['delivered', 'read'];
  const webhookUrl = options.webhookUrl ? loopbackOnly(options.webhookUrl) : undefined;

  const accepted = new Map<string, number>();
  const withheld = new Set<string>();
  const received: ReceivedMessage[] = [];
  const scripts = new Map<string, ScriptedAnswer[]>();
  const perSecond = new Map<number, number>();
  const webhooks = { posted: 0, statuses: 0, failed: 0 };
  let pendingStatuses: Array<Record<string, unknown>> = [];
  const posting = new Set<Promise<void>>();
  let closed = false;

  const graphError = (code: number, extra: Partial<ScriptedAnswer> = {}) => ({
    error: {
      message: `(#${code}) ${extra.message ?? TITLES[code] ?? 'Error'}`,
      type: 'OAuthException',
      code,
      error_data: { messaging_product: 'whatsapp', details: extra.details ?? DETAILS[code] ?? TITLES[code] ?? 'Error' },
      fbtrace_id: randomBytes(9).toString('base64url'),
    },
  });

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const arrivedAt = Date.now();
    const raw = await readBody(req);
    if (options.latencyMs) await delay(options.latencyMs);
    const path = new URL(req.url ?? '/', 'http://127.0.0.1').pathname;
    const route = /^\/(v\d+\.\d+)\/([^/]+)\/messages$/.exec(path);
    if (req.method !== 'POST' || !route) {
      return json(res, 400, graphError(100, { message: `Unsupported ${req.method} request.`, details: `Unknown path ${path}` }));
    }
    if (req.headers.authorization !== `Bearer ${accessToken}`) {
      const message = 'Invalid OAuth access token - Cannot parse access token';
      return json(res, 401, graphError(190, { message, details: 'Invalid OAuth access token' }));
    }
    if (route[2] !== phoneNumberId) {
      const message = `Unsupported post request. Object with ID '${route[2]}' does not exist`;
      return json(res, 400, graphError(100, { message, details: 'Unknown phone number id' }));
    }

    const now = arrivedAt;
    const second = Math.floor(now / 1000);
    perSecond.set(second, (perSecond.get(second) ?? 0) + 1);
    const body = parseObject(raw);
    const to = typeof body?.to === 'string' ? body.to : undefined;
    const callbackData = typeof body?.biz_opaque_callback_data === 'string' ? body.biz_opaque_callback_data : undefined;
    const type = typeof body?.type === 'string' ? body.type : undefined;
    const entry: ReceivedMessage = { at: now, path, to, type, callbackData, body, httpStatus: 200 };
    received.push(entry);
    const answer = (status: number, payload: unknown, headers: Record<string, string> = {}) => {
      entry.httpStatus = status;
      const code = (payload as { error?: { code?: number } }).error?.code;
      if (code !== undefined) entry.graphCode = code;
      json(res, status, payload, headers);
    };

    if (!/^application\/json\b/i.test(req.headers['content-type'] ?? '')) {
      return answer(400, graphError(100, { details: 'The request body must be application/json.' }));
    }
    const problem = body ? checkMessage(body) : { details: 'The request body is not a JSON object.' };
    if (problem) return answer(400, graphError(problem.code ?? 100, { details: problem.details }));

    const scripted = to ? scripts.get(to)?.shift() : undefined;
    if (scripted) {
      if (scripted.delayMs) await delay(scripted.delayMs);
      const headers: Record<string, string> = scripted.retryAfterSeconds !== undefined ? { 'retry-after': String(scripted.retryAfterSeconds) } : {};
      if (scripted.rawBody !== undefined) {
        entry.httpStatus = scripted.httpStatus ?? 502;
        res.writeHead(entry.httpStatus, { 'content-type': 'text/html', ...headers }).end(scripted.rawBody);
        return;
      }
      if (scripted.code !== undefined) {
        const status = scripted.httpStatus ?? (scripted.code === 190 ? 401 : [1, 2, 131000, 131016].includes(scripted.code) ? 500 : 400);
        return answer(status, graphError(scripted.code, scripted), headers);
      }
    }
    if (options.throughputPerSecond !== undefined && (perSecond.get(second) ?? 0) > options.throughputPerSecond) {
      return answer(400, graphError(130429));
    }

    const wamid = `wamid.${randomBytes(24).toString('base64url')}`;
    entry.wamid = wamid;
    if (callbackData !== undefined) accepted.set(callbackData, (accepted.get(callbackData) ?? 0) + 1);
    const waId = (to as string).replace(/\D/g, '');
    answer(200, { messaging_product: 'whatsapp', contacts: [{ input: to, wa_id: waId }], messages: [{ id: wamid }] });
    const withhold = options.withholdDelivery?.(to as string) === true;
    if (withhold && callbackData !== undefined) withheld.add(callbackData);
    if (webhookUrl) queueStatuses(wamid, waId, callbackData, second, withhold ? ['sent'] : statusesToSend);
  };

  const queueStatuses = (wamid: string, waId: string, callbackData: string | undefined, second: number, reported: readonly string[]) => {
    const statuses = reported.map((status, i) => ({
      id: wamid,
      status,
      timestamp: String(second + i),
      recipient_id: waId,
      ...(callbackData !== undefined ? { biz_opaque_callback_data: callbackData } : {}),
      conversation: { id: `conv-${waId}`, origin: { type: 'utility' } },
      pricing: { billable: true, pricing_model: 'CBP', category: 'utility' },
    }));
    pendingStatuses.push(...(options.outOfOrder ? statuses.reverse() : statuses));
  };

  const postBatch = async (statuses: Array<Record<string, unknown>>): Promise<void> => {
    if (await postNotification('messages', { statuses })) {
      webhooks.posted += 1;
      webhooks.statuses += statuses.length;
      return;
    }
    webhooks.failed += 1;
  };

  /** Posts one signed notification of `field` to the webhook; true once it was answered 2xx. */
  const postNotification = async (field: string, value: Record<string, unknown>): Promise<boolean> => {
    if (!webhookUrl) throw new Error('the emulator has no webhookUrl to post to');
    const payload = JSON.stringify({
      object: 'whatsapp_business_account',
      entry: [
        {
          id: WABA_ID,
          changes: [
            {
              field,
              value: {
                messaging_product: 'whatsapp',
                metadata: { display_phone_number: DISPLAY_NUMBER, phone_number_id: phoneNumberId },
                ...value,
              },
            },
          ],
        },
      ],
    });
    const signature = `sha256=${createHmac('sha256', appSecret).update(payload).digest('hex')}`;
    // Meta retries a webhook that is not answered 200, less and less often, for days; here for
    // `webhookRetryForMs`, so that a receiver busy for a while (a loaded machine) loses nothing.
    const giveUpAt = Date.now() + (options.webhookRetryForMs ?? 60_000);
    for (let attempt = 0; ; attempt++) {
      try {
        const response = await fetch(webhookUrl as string, {
          method: 'POST',
          headers: { 'content-type': 'application/json', 'x-hub-signature-256': signature },
          body: payload,
        });
        await response.arrayBuffer();
        if (response.ok) return true;
      } catch {
        // The receiver is not up yet or went away: try again below.
      }
      if (closed || Date.now() >= giveUpAt) break;
      await delay(Math.min(100 * 2 ** attempt, 5000));
    }
    return false;
  };

  const sendInbound = async (message: WhatsAppInbound): Promise<boolean> => {
    const timestamp = String(Math.floor(Date.now() / 1000));
    const contacts = [{ profile: { name: 'Dev User' }, wa_id: message.from }];
    if ('marketingPreference' in message) {
      const preference = { wa_id: message.from, detail: `User requested to ${message.marketingPreference} marketing messages`, category: 'marketing_messages', value: message.marketingPreference, timestamp };
      return postNotification('user_preferences', { contacts, user_preferences: [preference] });
    }
    const base = { from: message.from, id: `wamid.${randomBytes(12).toString('hex')}`, timestamp };
    const body =
      'text' in message
        ? { ...base, type: 'text', text: { body: message.text } }
        : 'button' in message
          ? { ...base, type: 'button', button: message.button }
          : { ...base, type: 'interactive', interactive: { type: 'button_reply', button_reply: message.reply } };
    return postNotification('messages', { contacts, messages: [body] });
  };

  // A few notifications in flight at once, the rest waiting in order: a slow receiver is not
  // flooded with parallel calls that all time out and come back as retries.
  const inFlight = options.webhookConcurrency ?? 4;
  const flushWebhooks = async (): Promise<void> => {
    for (;;) {
      while (pendingStatuses.length > 0 && posting.size < inFlight) {
        const batch = pendingStatuses.slice(0, 200);
        pendingStatuses = pendingStatuses.slice(200);
        const post = postBatch(batch);
        posting.add(post);
        void post.finally(() => posting.delete(post));
      }
      if (posting.size === 0) return;
      await Promise.race([...posting]);
    }
  };

  const flushTimer = webhookUrl
    ? setInterval(() => {
        if (pendingStatuses.length > 0) void flushWebhooks();
      }, options.webhookIntervalMs ?? 50)
    : undefined;
  flushTimer?.unref();

  const server: Server = createServer((req, res) => {
    handle(req, res).catch((error: unknown) => {
      if (!res.headersSent) json(res, 500, graphError(1, { details: String(error) }));
    });
  });
  server.keepAliveTimeout = 30_000;
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;

  return {
    url: `http://127.0.0.1:${port}`,
    port,
    accessToken,
    phoneNumberId,
    appSecret,
    accepted,
    withheld,
    received,
    webhooks,
    requestsPerSecond: () => new Map(perSecond),
    script(to, ...answers) {
      scripts.set(to, [...(scripts.get(to) ?? []), ...answers]);
    },
    flushWebhooks,
    sendInbound,
    async stop() {
      closed = true;
      if (flushTimer) clearInterval(flushTimer);
      await Promise.allSettled([...posting]);
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

/** What Meta would refuse in a message body, as a Graph error code and details. */
function checkMessage(body: Record<string, unknown>): { code?: number; details: string } | undefined {
  if (body.messaging_product !== 'whatsapp') return { details: 'messaging_product must be "whatsapp".' };
  if (body.recipient_type !== undefined && body.recipient_type !== 'individual') return { details: 'recipient_type must be "individual".' };
  if (typeof body.to !== 'string' || !/^\+?\d{5,15}$/.test(body.to)) return { details: 'to must be a phone number.' };
  const callback = body.biz_opaque_callback_data;
  if (callback !== undefined && (typeof callback !== 'string' || callback.length > 512)) {
    return { details: 'biz_opaque_callback_data must be a string of at most 512 characters.' };
  }
  if (body.type === 'text') {
    const text = body.text as { body?: unknown } | undefined;
    if (typeof text?.body !== 'string' || text.body.length === 0) return { details: 'text.body is required.' };
    if (text.body.length > 4096) return { details: 'text.body is longer than 4096 characters.' };
    return undefined;
  }
  if (body.type === 'template') {
    const template = body.template as { name?: unknown; language?: { code?: unknown } } | undefined;
    if (typeof template?.name !== 'string' || template.name === '') return { details: 'template.name is required.' };
    if (typeof template.language?.code !== 'string') return { details: 'template.language.code is required.' };
    return undefined;
  }
  return { code: 131051, details: `Message type ${String(body.type)} is not supported.` };
}

function loopbackOnly(url: string): string {
  const host = new URL(url).hostname;
  if (!['127.0.0.1', 'localhost', '[::1]', '::1'].includes(host)) {
    throw new Error(`webhookUrl must point at this machine (127.0.0.1), not ${host}`);
  }
  return url;
}

function json(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers }).end(JSON.stringify(payload));
}

function parseObject(raw: Buffer): Record<string, unknown> | undefined {
  try {
    const value: unknown = JSON.parse(raw.toString('utf8'));
    return value && typeof value === 'object' && !Array.isArray(value) ? (value as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms).unref());
