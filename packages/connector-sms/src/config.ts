/**
 * SmsSink's configuration: one spec for both transports. Keys of the transport not chosen
 * are ignored; `validateSmsConfig` requires the chosen transport's own keys.
 */
import { ConfigSpec, DEFAULT_PROVIDER, inboundConfigSpec, providerConfigSpec, providerConfigs, providerProblems, validators, type ParsedConfig, type Validator } from '@omnibus/sdk';
import { SENDER_PATTERN } from './value.ts';

export const TRANSPORTS = ['smpp', 'twilio'] as const;
export type Transport = (typeof TRANSPORTS)[number];

const SMS = 'SMS';
const SMPP = 'SMPP';
const TWILIO = 'Twilio';

const sidOf = (prefix: string): Validator<string> =>
  validators.pattern(new RegExp(`^${prefix}[0-9a-fA-F]{32}$`), `"${prefix}" followed by 32 hexadecimal digits`);

export const smsConfigSpec = ConfigSpec.builder()
  .string('sms.transport', {
    documentation: 'How messages leave: "smpp" binds to an SMSC over SMPP 3.4; "twilio" calls the Twilio Programmable Messaging API.',
    importance: 'HIGH',
    group: SMS,
    validator: validators.oneOf(...TRANSPORTS),
    recommended: [...TRANSPORTS],
    dependents: ['smpp.host', 'twilio.account.sid'],
  })
  .string('sms.from', {
    documentation:
      'Default sender, used when a message has no "from": an E.164 number ("+33612345678"), a short code or an alphanumeric sender ID (up to 11 letters, digits or spaces). Over SMPP it may be left out for the SMSC to choose; with Twilio it may be replaced by twilio.messaging.service.sid.',
    optional: true,
    importance: 'HIGH',
    group: SMS,
    validator: validators.pattern(new RegExp(SENDER_PATTERN), 'an E.164 number, a 3-8 digit short code or an alphanumeric sender ID of 1-11 characters'),
  })

  .string('smpp.host', {
    documentation: 'Host name or address of the SMSC. Required when sms.transport=smpp.',
    optional: true,
    importance: 'HIGH',
    group: SMPP,
  })
  .int('smpp.port', {
    documentation: 'TCP port of the SMSC.',
    default: 2775,
    importance: 'HIGH',
    group: SMPP,
    validator: validators.range(1, 65535),
  })
  .boolean('smpp.tls', {
    documentation:
      'Connect to the SMSC over TLS (SMPP over TLS, often port 3550) instead of plain TCP. Without it the bind password and every message ' +
      'cross the network in clear text: use it, or a private link, whenever the SMSC is not on a trusted network.',
    default: false,
    importance: 'HIGH',
    group: SMPP,
    dependents: ['smpp.tls.ca', 'smpp.tls.reject.unauthorized'],
  })
  .string('smpp.tls.ca', {
    documentation:
      "PEM certificate(s) of the authorities that sign the SMSC's certificate, trusted instead of the system's (a private CA, a self-signed SMSC). " +
      'Give the PEM text with its line breaks (a JSON string keeps them); to keep it in a file, use a config provider such as `${file:/etc/omnibus/tls.json:smpp.ca}` (a JSON object whose value is the PEM text).',
    optional: true,
    importance: 'MEDIUM',
    group: SMPP,
    validator: validators.pattern(/-----BEGIN CERTIFICATE-----/, 'PEM text with at least one "-----BEGIN CERTIFICATE-----" block'),
  })
  .boolean('smpp.tls.reject.unauthorized', {
    documentation:
      "Refuse an SMSC whose certificate does not verify (against smpp.tls.ca or the system's authorities) or does not name smpp.host. " +
      'Turn off only for a test SMSC: anyone on the path could then read the bind password.',
    default: true,
    importance: 'MEDIUM',
    group: SMPP,
  })
  .string('smpp.system.id', {
    documentation: 'system_id to bind with (the ESME account). Required when sms.transport=smpp.',
    optional: true,
    importance: 'HIGH',
    group: SMPP,
    validator: validators.pattern(/^[\x20-\x7e]{1,15}$/, 'printable ASCII, 1-15 characters (SMPP 3.4 limit)'),
  })
  .password('smpp.password', {
    documentation: 'Password to bind with (at most 8 characters in SMPP 3.4). Use a config provider such as ${env:SMPP_PASSWORD}.',
    optional: true,
    importance: 'HIGH',
    group: SMPP,
  })
  .string('smpp.system.type', {
    documentation: 'system_type sent in bind_transceiver; most SMSCs want it empty.',
    default: '',
    importance: 'LOW',
    group: SMPP,
  })
  .int('smpp.window.size', {
    documentation:
      'Most submit_sm PDUs awaiting their submit_sm_resp at once. Keep it near 2-3x the messages per second the SMSC grants, or time-outs turn into retries. Throttling replies shrink the window; successes grow it back.',
    default: 10,
    importance: 'MEDIUM',
    group: SMPP,
    validator: validators.range(1, 1000),
  })
  .long('smpp.enquire.link.interval.ms', {
    documentation: 'How often an idle-or-not session is checked with enquire_link; a check left unanswered for smpp.request.timeout.ms drops and rebinds the session.',
    default: 30_000,
    importance: 'LOW',
    group: SMPP,
    validator: validators.range(10, 3_600_000),
  })
  .long('smpp.request.timeout.ms', {
    documentation:
      'Longest wait for the answer to a PDU (bind, submit_sm, enquire_link). A submit_sm left unanswered has an unknown outcome (see delivery.guarantee).',
    default: 10_000,
    importance: 'LOW',
    group: SMPP,
    validator: validators.range(10, 600_000),
  })
  .long('smpp.reconnect.backoff.initial.ms', {
    documentation: 'First wait before reconnecting after the session closed; doubled after each failed attempt, with jitter.',
    default: 1_000,
    importance: 'LOW',
    group: SMPP,
    validator: validators.range(1, 3_600_000),
  })
  .long('smpp.reconnect.backoff.max.ms', {
    documentation: 'Longest wait between two reconnection attempts.',
    default: 60_000,
    importance: 'LOW',
    group: SMPP,
    validator: validators.range(1, 3_600_000),
  })
  .long('smpp.throttle.backoff.ms', {
    documentation:
      'After ESME_RTHROTTLED or ESME_RMSGQFUL: how long no new submit_sm is sent, and the retry delay given back for the refused message.',
    default: 1_000,
    importance: 'MEDIUM',
    group: SMPP,
    validator: validators.range(1, 600_000),
  })
  .boolean('smpp.registered.delivery', {
    documentation: 'Ask the SMSC for a final delivery receipt (registered_delivery=1); receipts move messages to delivered or failed.',
    default: true,
    importance: 'MEDIUM',
    group: SMPP,
  })
  .string('smpp.concatenation', {
    documentation:
      'How long texts are split: "udh" puts the concatenation header in the short_message (esm_class 0x40, understood by every SMSC); "sar" sends sar_* TLVs and lets the SMSC build it.',
    default: 'udh',
    importance: 'LOW',
    group: SMPP,
    validator: validators.oneOf('udh', 'sar'),
    recommended: ['udh', 'sar'],
  })
  .string('smpp.receipt.id.conversion', {
    documentation:
      'How the SMSC writes message ids in receipts compared with submit_sm_resp: "none", "hex-to-decimal" (answers hex, reports decimal) or "decimal-to-hex".',
    default: 'none',
    importance: 'LOW',
    group: SMPP,
    validator: validators.oneOf('none', 'hex-to-decimal', 'decimal-to-hex'),
    recommended: ['none', 'hex-to-decimal', 'decimal-to-hex'],
  })

  .string('twilio.account.sid', {
    documentation: 'Account SID (AC…). Required when sms.transport=twilio.',
    optional: true,
    importance: 'HIGH',
    group: TWILIO,
    validator: sidOf('AC'),
  })
  .password('twilio.auth.token', {
    documentation: 'Auth token of the account: authenticates API calls and verifies X-Twilio-Signature on status callbacks. Required when sms.transport=twilio.',
    optional: true,
    importance: 'HIGH',
    group: TWILIO,
  })
  .string('twilio.api.url', {
    documentation: 'Base URL of the API; change it only to reach a test double.',
    default: 'https://api.twilio.com',
    importance: 'LOW',
    group: TWILIO,
    validator: validators.url(),
  })
  .string('twilio.messaging.service.sid', {
    documentation: 'Messaging Service (MG…) to send through; it picks the sender from its pool unless a message names its own "from".',
    optional: true,
    importance: 'MEDIUM',
    group: TWILIO,
    validator: sidOf('MG'),
  })
  .string('twilio.status.callback.url', {
    documentation:
      'Public URL at which Twilio reaches this connector\'s webhook (the worker\'s /hooks/{connector}). When set, every message asks for status callbacks there, tagged with its message id.',
    optional: true,
    importance: 'MEDIUM',
    group: TWILIO,
    validator: validators.url(),
  })
  .long('twilio.request.timeout.ms', {
    documentation: 'Longest wait for the API to answer one request; a request left unanswered has an unknown outcome (see delivery.guarantee).',
    default: 10_000,
    importance: 'LOW',
    group: TWILIO,
    validator: validators.range(10, 600_000),
  })
  .int('twilio.max.concurrent.requests', {
    documentation: 'Most API requests in flight at once per task (Twilio limits concurrent requests per account).',
    default: 10,
    importance: 'LOW',
    group: TWILIO,
    validator: validators.range(1, 100),
  })
  .merge(providerConfigSpec)
  .merge(inboundConfigSpec);

export type SmsConfig = ParsedConfig<typeof smsConfigSpec>;

/** Cross-key checks, for every provider (`providers.<alias>.*` over the connector's keys). */
export function validateSmsConfig(config: SmsConfig): Record<string, string[]> {
  const problems = providerProblems(smsConfigSpec, config);
  if (Object.keys(problems).length > 0) return problems;
  for (const { alias, config: own } of providerConfigs(smsConfigSpec, config)) {
    for (const [key, list] of Object.entries(validateProvider(own))) problems[alias === DEFAULT_PROVIDER ? key : `providers.${alias}.${key}`] = list;
  }
  return problems;
}

/** Cross-key checks of one provider: the chosen transport's keys must be there. */
function validateProvider(config: SmsConfig): Record<string, string[]> {
  const problems: Record<string, string[]> = {};
  const requireKey = (key: keyof SmsConfig & string, why: string) => {
    if (config[key] === undefined || config[key] === '') (problems[key] ??= []).push(`Missing required configuration "${key}": ${why}.`);
  };
  if (config['sms.transport'] === 'smpp') {
    requireKey('smpp.host', 'the SMPP transport needs the SMSC host');
    requireKey('smpp.system.id', 'the SMPP transport binds with a system_id');
    if (config['smpp.reconnect.backoff.initial.ms'] > config['smpp.reconnect.backoff.max.ms']) {
      problems['smpp.reconnect.backoff.initial.ms'] = ['Value must not exceed smpp.reconnect.backoff.max.ms'];
    }
  }
  if (config['sms.transport'] === 'twilio') {
    requireKey('twilio.account.sid', 'the Twilio transport needs the account');
    requireKey('twilio.auth.token', 'the Twilio transport needs the account\'s auth token');
    if (config['sms.from'] === undefined && config['twilio.messaging.service.sid'] === undefined) {
      problems['sms.from'] = ['Set sms.from or twilio.messaging.service.sid: Twilio needs a sender for messages without "from".'];
    }
  }
  return problems;
}
