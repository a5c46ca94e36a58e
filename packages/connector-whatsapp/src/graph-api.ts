/**
 * The one Cloud API call the sink makes: POST /{version}/{phone-number-id}/messages, and the
 * shapes of its answers. Uses Node's global fetch; nothing here logs.
 */
import type { WhatsAppMessage } from './schema.ts';

/** The error body Graph answers with. */
export interface GraphError {
  message?: string;
  type?: string;
  code?: number;
  error_subcode?: number;
  fbtrace_id?: string;
  error_data?: { messaging_product?: string; details?: string };
}

export interface SendRequest {
  endpoint: string;
  accessToken: string;
  message: WhatsAppMessage;
  /** Comes back as `biz_opaque_callback_data` on every status webhook of this message. */
  callbackData: string;
  signal: AbortSignal;
}

export type SendResult =
  | { kind: 'accepted'; wamid: string | undefined; waId: string | undefined }
  | { kind: 'rejected'; httpStatus: number; error: GraphError | undefined; retryAfterMs: number | undefined }
  /** No HTTP answer. `maybeSent`: the request may have reached the API (timeout, reset) as opposed to never leaving. */
  | { kind: 'no-answer'; timedOut: boolean; maybeSent: boolean; reason: string };

export function messagesEndpoint(baseUrl: string, version: string, phoneNumberId: string): string {
  return `${baseUrl.replace(/\/+$/, '')}/${encodeURIComponent(version)}/${encodeURIComponent(phoneNumberId)}/messages`;
}

/** Connection errors that prove the request never left this machine. */
const NEVER_SENT = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EHOSTUNREACH', 'ENETUNREACH', 'UND_ERR_CONNECT_TIMEOUT']);

export async function sendMessage(request: SendRequest): Promise<SendResult> {
  const body = JSON.stringify({
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    ...request.message,
    biz_opaque_callback_data: request.callbackData,
  });
  let response: Response;
  let text: string;
  try {
    response = await fetch(request.endpoint, {
      method: 'POST',
      headers: {
        authorization: `Bearer ${request.accessToken}`,
        'content-type': 'application/json',
        accept: 'application/json',
      },
      body,
      signal: request.signal,
    });
    text = await response.text();
  } catch (error) {
    const timedOut = request.signal.aborted;
    const code = errorCode(error);
    return {
      kind: 'no-answer',
      timedOut,
      maybeSent: timedOut || !code || !NEVER_SENT.has(code),
      reason: timedOut ? 'no answer in time' : code ? `${code}: ${errorMessage(error)}` : errorMessage(error),
    };
  }
  const parsed = parseJson(text);
  if (response.ok) {
    const answer = parsed as { messages?: Array<{ id?: unknown }>; contacts?: Array<{ wa_id?: unknown }> } | undefined;
    const wamid = answer?.messages?.[0]?.id;
    const waId = answer?.contacts?.[0]?.wa_id;
    return { kind: 'accepted', wamid: typeof wamid === 'string' ? wamid : undefined, waId: typeof waId === 'string' ? waId : undefined };
  }
  const error = (parsed as { error?: GraphError } | undefined)?.error;
  return {
    kind: 'rejected',
    httpStatus: response.status,
    error: error && typeof error === 'object' ? error : undefined,
    retryAfterMs: parseRetryAfter(response.headers.get('retry-after')),
  };
}

/** Retry-After as seconds or an HTTP date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\s*\d+\s*$/.test(value)) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

function parseJson(text: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    return undefined;
  }
}

function errorCode(error: unknown): string | undefined {
  // undici wraps the socket error: TypeError('fetch failed', { cause: { code } }).
  for (let e: unknown = error, depth = 0; e && depth < 4; e = (e as { cause?: unknown }).cause, depth++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string') return code;
  }
  return undefined;
}

function errorMessage(error: unknown): string {
  const cause = (error as { cause?: unknown })?.cause;
  if (cause instanceof Error) return cause.message;
  return error instanceof Error ? error.message : String(error);
}
