/**
 * EmailSink's config keys. `topics` and the runtime's keys (retries, dead letters, the
 * cluster-wide `rate.limit.per.second`) are common to every connector and declared by core.
 */
import { ConfigSpec, DEFAULT_PROVIDER, providerConfigSpec, providerConfigs, providerProblems, validators, type ParsedConfig } from '@omnibus/sdk';

export const STARTTLS_MODES = ['opportunistic', 'require', 'never'] as const;
export type StartTlsMode = (typeof STARTTLS_MODES)[number];

const CONNECTION = 'SMTP Connection';
const AUTH = 'SMTP Authentication';
const THROUGHPUT = 'Throughput';
const MESSAGE = 'Message';

/**
 * One address, bare or with a display name (`Ops <ops@example.org>`); never a header break.
 * Matched up to the first @ so that it runs in linear time (`[^\r\n]*@` backtracks over every @).
 */
export const ADDRESS_PATTERN = /^[^\r\n@]*@[^\r\n]+$/;
const DOMAIN_PATTERN = /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

export const emailSinkConfig = ConfigSpec.builder()
  .string('smtp.host', {
    documentation: 'Host name or IP address of the SMTP server (relay or submission server) that mail is handed to.',
    importance: 'HIGH',
    group: CONNECTION,
    displayName: 'SMTP host',
    width: 'LONG',
    validator: validators.nonEmptyString(),
  })
  .int('smtp.port', {
    documentation: 'TCP port of the SMTP server: 587 for submission with STARTTLS, 465 for implicit TLS, 25 for relays.',
    default: 587,
    importance: 'HIGH',
    group: CONNECTION,
    displayName: 'SMTP port',
    width: 'SHORT',
    validator: validators.range(1, 65535),
    recommended: [587, 465, 25, 2525],
  })
  .boolean('smtp.secure', {
    documentation: 'Open the connection with TLS right away (implicit TLS, usually port 465). When false, STARTTLS applies as `smtp.starttls` says.',
    default: false,
    importance: 'HIGH',
    group: CONNECTION,
    displayName: 'Implicit TLS',
    width: 'SHORT',
    dependents: ['smtp.starttls'],
  })
  .string('smtp.starttls', {
    documentation:
      'Upgrade of a plain connection: `require` refuses to send (and to authenticate) unless the server offers STARTTLS and the upgrade succeeds; ' +
      '`opportunistic` upgrades when the server offers STARTTLS and otherwise goes on in clear text (an attacker on the path can strip the offer); ' +
      '`never` stays in clear text (local relays and tests only). ' +
      'Default: `require` when `smtp.user` is set and `smtp.secure` is false, so that the password never crosses the network in clear; `opportunistic` otherwise.',
    optional: true,
    importance: 'HIGH',
    group: CONNECTION,
    displayName: 'STARTTLS',
    width: 'SHORT',
    validator: validators.oneOf(...STARTTLS_MODES),
    recommended: [...STARTTLS_MODES],
  })
  .boolean('smtp.tls.reject.unauthorized', {
    documentation: 'Refuse servers whose TLS certificate does not verify. Turn off only for a relay with a self-signed certificate you trust.',
    default: true,
    importance: 'LOW',
    group: CONNECTION,
    displayName: 'Verify TLS certificate',
    width: 'SHORT',
  })
  .string('smtp.tls.ca', {
    documentation:
      'PEM certificate(s) of the authorities that sign the server\'s certificate, trusted instead of the system\'s (a private CA, a self-signed relay). ' +
      'Give the PEM text with its line breaks (a JSON string keeps them); to keep it in a file, use a config provider such as `${file:/etc/omnibus/tls.json:smtp.ca}` (a JSON object whose value is the PEM text).',
    optional: true,
    importance: 'LOW',
    group: CONNECTION,
    displayName: 'Trusted CA certificates (PEM)',
    width: 'LONG',
    validator: validators.pattern(/-----BEGIN CERTIFICATE-----/, 'PEM text with at least one "-----BEGIN CERTIFICATE-----" block'),
  })
  .long('smtp.timeout.ms', {
    documentation:
      'Longest wait (ms) for the connection, the greeting and each reply. A send that times out is retried; the stable Message-ID lets receivers drop a duplicate.',
    default: 30_000,
    importance: 'MEDIUM',
    group: CONNECTION,
    displayName: 'Timeout (ms)',
    width: 'SHORT',
    validator: validators.range(100, 600_000),
    recommended: [10_000, 30_000, 60_000],
  })
  .string('smtp.user', {
    documentation: 'User name for SMTP AUTH (PLAIN/LOGIN). Leave unset for a relay that does not authenticate.',
    optional: true,
    importance: 'HIGH',
    group: AUTH,
    displayName: 'User',
    width: 'MEDIUM',
  })
  .password('smtp.password', {
    documentation: 'Password for SMTP AUTH. Use a config provider (`${env:SMTP_PASSWORD}`) to keep it out of the stored config.',
    optional: true,
    importance: 'HIGH',
    group: AUTH,
    displayName: 'Password',
    width: 'MEDIUM',
  })
  .int('smtp.pool.size', {
    documentation: 'Pooled SMTP connections per task, which is also how many records a task sends at once (records with the same key are sent one after another, in order).',
    default: 5,
    importance: 'MEDIUM',
    group: THROUGHPUT,
    displayName: 'Connection pool size',
    width: 'SHORT',
    validator: validators.range(1, 100),
    recommended: [1, 5, 10, 20],
  })
  .double('smtp.rate.limit.per.second', {
    documentation:
      "Most messages per second one task hands to the SMTP server, shared by the task's pooled connections; 0 for no limit. The runtime's `rate.limit.per.second` is the cluster-wide limit.",
    default: 0,
    importance: 'MEDIUM',
    group: THROUGHPUT,
    displayName: 'SMTP rate limit (msg/s)',
    width: 'SHORT',
    validator: validators.range(0, 100_000),
  })
  .string('email.from', {
    documentation: 'Sender of every message whose value has no `from`, e.g. `Omnibus <noreply@example.org>`.',
    importance: 'HIGH',
    group: MESSAGE,
    displayName: 'From',
    width: 'LONG',
    validator: validators.pattern(ADDRESS_PATTERN, 'an e-mail address, optionally with a display name'),
  })
  .string('email.message.id.domain', {
    documentation:
      "Domain part of the Message-ID (`<message id@domain>`) built from the bus message id, so that every attempt of one message carries the same Message-ID. Default: the domain of `email.from`.",
    optional: true,
    importance: 'LOW',
    group: MESSAGE,
    displayName: 'Message-ID domain',
    width: 'MEDIUM',
    validator: validators.pattern(DOMAIN_PATTERN, 'a domain name'),
  })
  .merge(providerConfigSpec);

export type EmailSinkConfig = ParsedConfig<typeof emailSinkConfig>;

/** The domain of a sender such as `Name <user@example.org>` (lower-cased), if it has one. */
export function domainOf(address: string): string | undefined {
  const match = /@([A-Za-z0-9.-]+)>?\s*$/.exec(address);
  return match?.[1]?.toLowerCase();
}

/** The Message-ID domain this config gives, explicit or taken from `email.from`. */
export function messageIdDomainOf(config: EmailSinkConfig): string | undefined {
  return config['email.message.id.domain'] || domainOf(config['email.from']);
}

/**
 * The STARTTLS mode in effect: the configured one, else `require` whenever credentials would be
 * sent over a connection that does not start with TLS.
 */
export function startTlsModeOf(config: Pick<EmailSinkConfig, 'smtp.starttls' | 'smtp.user' | 'smtp.secure'>): StartTlsMode {
  if (config['smtp.starttls'] !== undefined) return config['smtp.starttls'] as StartTlsMode;
  return config['smtp.user'] && !config['smtp.secure'] ? 'require' : 'opportunistic';
}

/**
 * Checks between keys, beyond what each key's validator sees, for every provider
 * (`providers.<alias>.*` laid over the connector's keys).
 */
export function crossCheck(config: EmailSinkConfig): Record<string, string[]> {
  const problems = providerProblems(emailSinkConfig, config);
  if (Object.keys(problems).length > 0) return problems;
  for (const { alias, config: own } of providerConfigs(emailSinkConfig, config)) {
    for (const [key, list] of Object.entries(providerCrossCheck(own))) {
      problems[alias === DEFAULT_PROVIDER ? key : `providers.${alias}.${key}`] = list;
    }
  }
  return problems;
}

function providerCrossCheck(config: EmailSinkConfig): Record<string, string[]> {
  const problems: Record<string, string[]> = {};
  const add = (key: string, problem: string) => (problems[key] ??= []).push(problem);
  if (config['smtp.password'] !== undefined && !config['smtp.user']) {
    add('smtp.user', 'smtp.user is required when smtp.password is set.');
  }
  if (config['smtp.user'] && config['smtp.password'] === undefined) {
    add('smtp.password', 'smtp.password is required when smtp.user is set.');
  }
  if (config['smtp.secure'] && config['smtp.starttls'] === 'require') {
    add('smtp.starttls', 'STARTTLS cannot be required on an implicit TLS connection (smtp.secure=true); use opportunistic.');
  }
  const domain = messageIdDomainOf(config);
  if (!domain || !DOMAIN_PATTERN.test(domain)) {
    add('email.message.id.domain', `email.from has no usable domain for Message-IDs; set email.message.id.domain.`);
  }
  return problems;
}
