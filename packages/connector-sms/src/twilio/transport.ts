/**
 * SMS through Twilio Programmable Messaging: one form-encoded POST to
 * `{twilio.api.url}/2010-04-01/Accounts/{sid}/Messages.json` per message, with basic auth.
 * 201 carries the Message resource (its `sid`, SM…, is the providerId); errors carry
 * `{code, message, more_info, status}` and are mapped by `code` first, HTTP status second.
 */
import { FatalConnectorError, type SinkOutcome, type SinkRecord } from '@omnibus/sdk';
import { SmsErrorCode } from '../errors.ts';
import { failed, inDoubt, retry, sent, type SmsTransport, type TransportContext } from '../transport.ts';
import type { SmsValue } from '../value.ts';
import { SendWindow } from '../window.ts';

/** Twilio error codes (twilio.com/docs/api/errors) this transport treats specially. */
const TwilioCode = {
  AUTHENTICATE: 20003,
  ACCOUNT_NOT_ACTIVE: 20005,
  TOO_MANY_REQUESTS: 20429,
  INVALID_TO: 21211,
  NOT_A_MOBILE_NUMBER: 21614,
  UNSUBSCRIBED: 21610,
} as const;

/** Credentials or account problems: every further request would fail the same way. */
const FATAL_CODES: ReadonlySet<number> = new Set([TwilioCode.AUTHENTICATE, TwilioCode.ACCOUNT_NOT_ACTIVE]);
const INVALID_NUMBER_CODES: ReadonlySet<number> = new Set([TwilioCode.INVALID_TO, TwilioCode.NOT_A_MOBILE_NUMBER]);
/** Errors raised before any byte reached Twilio: safe to retry whatever the delivery guarantee. */
const NOT_SENT_ERRORS: ReadonlySet<string> = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'ENETUNREACH', 'EHOSTUNREACH']);

export interface TwilioErrorBody {
  code?: number;
  message?: string;
  more_info?: string;
  status?: number;
}

export class TwilioTransport implements SmsTransport {
  readonly #context: TransportContext;
  readonly #window: SendWindow;
  readonly #inFlight = new Set<Promise<unknown>>();
  readonly #endpoint: string;
  readonly #authorization: () => string;

  constructor(context: TransportContext) {
    const { config } = context;
    this.#context = context;
    this.#window = new SendWindow(config['twilio.max.concurrent.requests']);
    const sid = config['twilio.account.sid'] ?? '';
    this.#endpoint = `${config['twilio.api.url'].replace(/\/+$/, '')}/2010-04-01/Accounts/${encodeURIComponent(sid)}/Messages.json`;
    const token = config['twilio.auth.token'];
    this.#authorization = () => `Basic ${Buffer.from(`${sid}:${token?.value() ?? ''}`).toString('base64')}`;
  }

  async start(): Promise<void> {
    this.#context.logger.info({ endpoint: this.#endpoint }, 'Twilio transport ready');
  }

  async stop(): Promise<void> {
    await Promise.allSettled([...this.#inFlight]);
  }

  send(record: SinkRecord, value: SmsValue): Promise<SinkOutcome> {
    const sending = this.#send(record, value);
    this.#inFlight.add(sending);
    void sending.finally(() => this.#inFlight.delete(sending)).catch(() => undefined);
    return sending;
  }

  async #send(record: SinkRecord, value: SmsValue): Promise<SinkOutcome> {
    const release = await this.#window.acquire();
    let response: Response;
    let text: string;
    try {
      response = await fetch(this.#endpoint, {
        method: 'POST',
        headers: {
          authorization: this.#authorization(),
          'content-type': 'application/x-www-form-urlencoded',
          accept: 'application/json',
        },
        body: this.#form(record, value),
        signal: AbortSignal.timeout(this.#context.config['twilio.request.timeout.ms']),
      });
      text = await response.text();
    } catch (error) {
      const code = errorCode(error);
      if (code && NOT_SENT_ERRORS.has(code)) return retry(SmsErrorCode.PROVIDER_UNAVAILABLE, `Twilio unreachable (${code})`);
      const why = (error as Error).name === 'TimeoutError' ? `no answer within ${this.#context.config['twilio.request.timeout.ms']} ms` : `request failed (${code ?? (error as Error).message})`;
      return inDoubt(this.#context.atLeastOnce, `Twilio ${why}`);
    } finally {
      release();
    }
    const body = parseJson(text);
    if (response.ok) {
      const sid = typeof body.sid === 'string' ? body.sid : undefined;
      if (!sid) this.#context.logger.warn({ messageId: record.id, status: response.status }, 'Twilio accepted a message but returned no sid');
      this.#context.logger.debug({ messageId: record.id, providerId: sid }, 'sent');
      return sent(sid, { status: body.status, ...(body.num_segments ? { segments: Number(body.num_segments) } : {}) });
    }
    return this.#errorOutcome(response, body as TwilioErrorBody, value);
  }

  #form(record: SinkRecord, value: SmsValue): URLSearchParams {
    const { config } = this.#context;
    const form = new URLSearchParams({ To: value.to, Body: value.text });
    const service = config['twilio.messaging.service.sid'];
    const from = value.from ?? (service ? undefined : config['sms.from']);
    if (from) form.set('From', from);
    if (service) form.set('MessagingServiceSid', service);
    const callback = config['twilio.status.callback.url'];
    if (callback) form.set('StatusCallback', statusCallbackUrl(callback, record.id));
    if (value.validitySeconds) form.set('ValidityPeriod', String(value.validitySeconds));
    return form;
  }

  #errorOutcome(response: Response, body: TwilioErrorBody, value: SmsValue): SinkOutcome {
    const code = typeof body.code === 'number' ? body.code : undefined;
    const described = `Twilio answered HTTP ${response.status}${code ? ` with error ${code}` : ''}: ${body.message ?? response.statusText}`;
    const details = { httpStatus: response.status, ...(code ? { twilioCode: code } : {}), ...(body.more_info ? { moreInfo: body.more_info } : {}) };
    if ((code !== undefined && FATAL_CODES.has(code)) || response.status === 401) {
      throw new FatalConnectorError(SmsErrorCode.AUTH_FAILED, `${described}. Check twilio.account.sid and twilio.auth.token.`);
    }
    if (code === TwilioCode.TOO_MANY_REQUESTS || response.status === 429) {
      return retry(SmsErrorCode.THROTTLED, described, retryAfterMs(response.headers.get('retry-after')));
    }
    if (response.status >= 500) return retry(SmsErrorCode.PROVIDER_UNAVAILABLE, described, retryAfterMs(response.headers.get('retry-after')));
    if (code !== undefined && INVALID_NUMBER_CODES.has(code)) return failed(SmsErrorCode.INVALID_NUMBER, described, details);
    if (code === TwilioCode.UNSUBSCRIBED) {
      // The recipient sent STOP to this sender: Twilio refuses until they send START.
      return failed(SmsErrorCode.OPTED_OUT, described, details, [{ channel: 'sms', address: value.to, reason: 'opted-out', code: String(code) }]);
    }
    // Twilio warns that codes get split and renamed: any other refusal is final for this message.
    return failed(SmsErrorCode.REJECTED, described, details);
  }
}

/** The StatusCallback of one message: the public webhook URL tagged with our message id. */
export function statusCallbackUrl(base: string, messageId: string): string {
  const url = new URL(base);
  url.searchParams.set('mid', messageId);
  return url.toString();
}

/** Retry-After as seconds or as an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(header: string | null, now = Date.now()): number | undefined {
  if (!header) return undefined;
  const trimmed = header.trim();
  if (/^\d+(\.\d+)?$/.test(trimmed)) return Math.round(Number(trimmed) * 1000);
  const at = Date.parse(trimmed);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function parseJson(text: string): Record<string, unknown> {
  try {
    const parsed: unknown = JSON.parse(text);
    return parsed && typeof parsed === 'object' ? (parsed as Record<string, unknown>) : {};
  } catch {
    return {};
  }
}

function errorCode(error: unknown): string | undefined {
  const cause = (error as { cause?: { code?: unknown } })?.cause;
  const code = cause?.code ?? (error as { code?: unknown })?.code;
  return typeof code === 'string' ? code : undefined;
}
