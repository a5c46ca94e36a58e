import type { SuppressionRequest } from '@omnibus/sdk';

/**
 * WhatsAppSink's error registry and how Graph API error codes map onto it. Meta asks
 * integrators to key on `error.code` (plus `error_data.details`), not on the HTTP status or
 * the deprecated subcode, so the table below is by code; the HTTP status only decides for
 * codes it does not list.
 */

export const WhatsAppErrors = {
  /** Cloud API throughput for the phone number reached (130429), or app/WABA call limits (4, 80007). */
  RATE_LIMITED: 'OMNI_ERR_WHATSAPP_RATE_LIMITED',
  /** Too many messages to one recipient (131056), or the connector's own pair limit held the message back. */
  PAIR_RATE_LIMITED: 'OMNI_ERR_WHATSAPP_PAIR_RATE_LIMITED',
  /** More than 24 h since the customer last wrote (131047): only a template can reach them. */
  REENGAGEMENT_REQUIRED: 'OMNI_ERR_WHATSAPP_REENGAGEMENT_REQUIRED',
  /** Not on WhatsApp, old app, terms not accepted, blocked… (131026). */
  UNDELIVERABLE: 'OMNI_ERR_WHATSAPP_UNDELIVERABLE',
  /** The user opted out of marketing messages (131050). */
  OPTED_OUT: 'OMNI_ERR_WHATSAPP_OPTED_OUT',
  /** Meta chose not to deliver (spam rate limit 131048, ecosystem protection 131049). */
  NOT_DELIVERED_BY_META: 'OMNI_ERR_WHATSAPP_NOT_DELIVERED_BY_META',
  /** Invalid or missing parameter, unsupported message type (100, 131008, 131009, 131051), or a value off our schema. */
  INVALID_MESSAGE: 'OMNI_ERR_WHATSAPP_INVALID_MESSAGE',
  /** Meta-side trouble (131000, 131016, 1, 2, 131057, HTTP 5xx). */
  PROVIDER_UNAVAILABLE: 'OMNI_ERR_WHATSAPP_PROVIDER_UNAVAILABLE',
  /** No answer within whatsapp.request.timeout.ms. */
  TIMEOUT: 'OMNI_ERR_WHATSAPP_TIMEOUT',
  /** The Cloud API could not be reached. */
  UNREACHABLE: 'OMNI_ERR_WHATSAPP_UNREACHABLE',
  /** Access token expired or invalid (190), or missing permission (0, 10, 200-299). */
  AUTH_FAILED: 'OMNI_ERR_WHATSAPP_AUTH_FAILED',
  /** The WhatsApp Business account is restricted or locked (368, 131031). */
  ACCOUNT_RESTRICTED: 'OMNI_ERR_WHATSAPP_ACCOUNT_RESTRICTED',
  /** Any other rejection the Cloud API gave. */
  REJECTED: 'OMNI_ERR_WHATSAPP_REJECTED',
  /** The task was stopping, so the message was not sent; it stays pending. */
  TASK_STOPPED: 'OMNI_ERR_WHATSAPP_TASK_STOPPED',
  /** The send was held back because the connector had already met a fatal error. */
  CONNECTOR_FAILED: 'OMNI_ERR_WHATSAPP_CONNECTOR_FAILED',
} as const;

export type WhatsAppErrorCode = (typeof WhatsAppErrors)[keyof typeof WhatsAppErrors];

/**
 * What to do about one Graph error. `scope` says which limiter to slow down; `retryAfterMs`
 * is our default wait when the response carries no Retry-After.
 */
export type GraphErrorClass =
  | { action: 'retry'; code: WhatsAppErrorCode; scope?: 'number' | 'pair'; retryAfterMs?: number }
  | { action: 'fail'; code: WhatsAppErrorCode }
  | { action: 'fatal'; code: WhatsAppErrorCode };

const byGraphCode = new Map<number, GraphErrorClass>([
  [130429, { action: 'retry', code: WhatsAppErrors.RATE_LIMITED, scope: 'number' }],
  [4, { action: 'retry', code: WhatsAppErrors.RATE_LIMITED, scope: 'number' }],
  [80007, { action: 'retry', code: WhatsAppErrors.RATE_LIMITED, scope: 'number' }],
  [131056, { action: 'retry', code: WhatsAppErrors.PAIR_RATE_LIMITED, scope: 'pair' }],
  [131047, { action: 'fail', code: WhatsAppErrors.REENGAGEMENT_REQUIRED }],
  [131026, { action: 'fail', code: WhatsAppErrors.UNDELIVERABLE }],
  [131050, { action: 'fail', code: WhatsAppErrors.OPTED_OUT }],
  [131048, { action: 'fail', code: WhatsAppErrors.NOT_DELIVERED_BY_META }],
  [131049, { action: 'fail', code: WhatsAppErrors.NOT_DELIVERED_BY_META }],
  [100, { action: 'fail', code: WhatsAppErrors.INVALID_MESSAGE }],
  [131008, { action: 'fail', code: WhatsAppErrors.INVALID_MESSAGE }],
  [131009, { action: 'fail', code: WhatsAppErrors.INVALID_MESSAGE }],
  [131051, { action: 'fail', code: WhatsAppErrors.INVALID_MESSAGE }],
  [131000, { action: 'retry', code: WhatsAppErrors.PROVIDER_UNAVAILABLE }],
  [131016, { action: 'retry', code: WhatsAppErrors.PROVIDER_UNAVAILABLE }],
  [1, { action: 'retry', code: WhatsAppErrors.PROVIDER_UNAVAILABLE }],
  [2, { action: 'retry', code: WhatsAppErrors.PROVIDER_UNAVAILABLE }],
  // Meta puts a number in maintenance for about a minute while it raises its throughput.
  [131057, { action: 'retry', code: WhatsAppErrors.PROVIDER_UNAVAILABLE, scope: 'number', retryAfterMs: 60_000 }],
  [190, { action: 'fatal', code: WhatsAppErrors.AUTH_FAILED }],
  [0, { action: 'fatal', code: WhatsAppErrors.AUTH_FAILED }],
  [10, { action: 'fatal', code: WhatsAppErrors.AUTH_FAILED }],
  [368, { action: 'fatal', code: WhatsAppErrors.ACCOUNT_RESTRICTED }],
  [131031, { action: 'fatal', code: WhatsAppErrors.ACCOUNT_RESTRICTED }],
]);

/**
 * What a Graph error code says about the recipient (Meta's documented codes): 131050, they
 * opted out of marketing messages; 131026, undeliverable to them (not on WhatsApp, or they
 * blocked the business). The address is suppressed on the whatsapp channel for that scope.
 */
export function suppressionOf(graphCode: number | undefined, address: string | undefined): SuppressionRequest[] | undefined {
  if (!address) return undefined;
  if (graphCode === 131050) return [{ channel: 'whatsapp', address, reason: 'opted-out', code: '131050', category: 'marketing' }];
  if (graphCode === 131026) return [{ channel: 'whatsapp', address, reason: 'blocked', code: '131026' }];
  return undefined;
}

/** Classifies a Graph error by its code, falling back on the HTTP status for codes not listed. */
export function classifyGraphError(graphCode: number | undefined, httpStatus: number): GraphErrorClass {
  if (graphCode !== undefined) {
    const known = byGraphCode.get(graphCode);
    if (known) return known;
    if (graphCode >= 200 && graphCode <= 299) return { action: 'fatal', code: WhatsAppErrors.AUTH_FAILED };
  }
  if (httpStatus === 429) return { action: 'retry', code: WhatsAppErrors.RATE_LIMITED, scope: 'number' };
  if (httpStatus === 408 || httpStatus >= 500) return { action: 'retry', code: WhatsAppErrors.PROVIDER_UNAVAILABLE };
  // A 401 without a Graph body still means the token was refused (a proxy in front rarely says so).
  if (httpStatus === 401 && graphCode === undefined) return { action: 'fatal', code: WhatsAppErrors.AUTH_FAILED };
  return { action: 'fail', code: WhatsAppErrors.REJECTED };
}
