/**
 * WhatsAppSink's config keys, declared once: the parsed type, the validate response and the
 * generated docs all come from this spec.
 */
import { ConfigSpec, type Validator, validators, providerConfigSpec, inboundConfigSpec } from '@omnibus/sdk';

export const API_URL = 'whatsapp.api.url';
export const API_VERSION = 'whatsapp.api.version';
export const PHONE_NUMBER_ID = 'whatsapp.phone.number.id';
export const ACCESS_TOKEN = 'whatsapp.access.token';
export const APP_SECRET = 'whatsapp.app.secret';
export const VERIFY_TOKEN = 'whatsapp.verify.token';
export const RATE_LIMIT_PER_SECOND = 'whatsapp.rate.limit.per.second';
export const PAIR_RATE_LIMIT = 'whatsapp.pair.rate.limit';
export const PAIR_RATE_LIMIT_WINDOW_MS = 'whatsapp.pair.rate.limit.window.ms';
export const REQUEST_TIMEOUT_MS = 'whatsapp.request.timeout.ms';
export const MAX_IN_FLIGHT = 'whatsapp.max.in.flight';

const API_GROUP = 'Cloud API';
const WEBHOOK_GROUP = 'Webhooks';
const LIMITS_GROUP = 'Rate Limits';

const positive: Validator<number> = {
  describe: '(0,...]',
  check: (v) => (v > 0 ? undefined : 'Value must be greater than 0'),
};

export const whatsappConfigSpec = ConfigSpec.builder()
  .string(API_URL, {
    documentation: 'Base URL of the Graph API; the connector posts to {url}/{version}/{phone-number-id}/messages.',
    default: 'https://graph.facebook.com',
    importance: 'LOW',
    group: API_GROUP,
    validator: validators.url(),
  })
  .string(API_VERSION, {
    documentation:
      'Graph API version in the request path. Meta retires old versions (it rejects those older than v22.0 since September 2025), so raise it when Meta deprecates the one in use.',
    default: 'v22.0',
    importance: 'MEDIUM',
    group: API_GROUP,
    validator: validators.pattern(/^v\d+\.\d+$/, 'a Graph API version such as v22.0'),
    recommended: ['v22.0', 'v23.0'],
  })
  .string(PHONE_NUMBER_ID, {
    documentation: 'ID of the registered business phone number that sends (the Graph object id, not the phone number itself).',
    importance: 'HIGH',
    group: API_GROUP,
    validator: validators.pattern(/^\d+$/, 'a numeric Graph object id'),
  })
  .password(ACCESS_TOKEN, {
    documentation:
      'System-user or app access token, sent as a Bearer token. An expired or revoked token (Graph error 190) fails the connector without sending anything.',
    importance: 'HIGH',
    group: API_GROUP,
  })
  .int(REQUEST_TIMEOUT_MS, {
    documentation:
      'Longest wait (ms) for one send request. A timed-out send is retried; the Cloud API may already have accepted it.',
    default: 10_000,
    importance: 'LOW',
    group: API_GROUP,
    validator: validators.range(100, 300_000),
  })
  .int(MAX_IN_FLIGHT, {
    documentation: 'Most send requests one task has open at once; recipients are sent to in parallel, each in order.',
    default: 32,
    importance: 'LOW',
    group: API_GROUP,
    validator: validators.range(1, 1024),
  })
  .password(APP_SECRET, {
    documentation:
      "The Meta app's secret, which signs every status webhook (X-Hub-Signature-256). Without it, webhook POSTs are refused.",
    optional: true,
    importance: 'MEDIUM',
    group: WEBHOOK_GROUP,
  })
  .password(VERIFY_TOKEN, {
    documentation:
      'The verify token entered in the app dashboard; the webhook answers the subscription handshake only when Meta echoes it. Without it, the handshake is refused.',
    optional: true,
    importance: 'MEDIUM',
    group: WEBHOOK_GROUP,
  })
  .double(RATE_LIMIT_PER_SECOND, {
    documentation:
      'Messages per second for the phone number (Cloud API throughput: 80 by default, 1000 after an upgrade, 20 for coexistence numbers). Split evenly across tasks.max tasks; sends are paced, never dropped.',
    default: 80,
    importance: 'MEDIUM',
    group: LIMITS_GROUP,
    validator: positive,
    recommended: [20, 80, 1000],
  })
  .int(PAIR_RATE_LIMIT, {
    documentation:
      'Messages to one recipient per pair window (the Cloud API allows about 1 every 6 s per sender-recipient pair, error 131056 beyond). A message over the limit is retried when its turn comes, not dropped; 0 disables the limit.',
    default: 1,
    importance: 'MEDIUM',
    group: LIMITS_GROUP,
    validator: validators.range(0, 1000),
  })
  .long(PAIR_RATE_LIMIT_WINDOW_MS, {
    documentation: 'Length (ms) of the window the pair rate limit counts over.',
    default: 6_000,
    importance: 'LOW',
    group: LIMITS_GROUP,
    validator: validators.range(1, 3_600_000),
  })
  .merge(providerConfigSpec)
  .merge(inboundConfigSpec);

export type WhatsAppConfig = ReturnType<typeof whatsappConfigSpec.parse>;
