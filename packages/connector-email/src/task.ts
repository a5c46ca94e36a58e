/**
 * EmailSink's task: one pooled nodemailer transport per SMTP relay (`providers`, tried in
 * order, each behind its circuit breaker); each record becomes one e-mail whose Message-ID
 * derives from the bus message id, so every attempt of a message, through any relay, is the
 * same e-mail to the receiving servers.
 */
import net from 'node:net';
import nodemailer from 'nodemailer';
import type SMTPPool from 'nodemailer/lib/smtp-pool/index.js';
import {
  breakerSettingsOf,
  checkValue,
  ConfigError,
  FatalConnectorError,
  providerConfigs,
  ProviderChain,
  type Logger,
  type ProviderAttempt,
  type SinkOutcome,
  type SinkRecord,
  type SinkTask,
  type SinkTaskContext,
} from '@omnibus/sdk';
import { emailSinkConfig, messageIdDomainOf, startTlsModeOf, type EmailSinkConfig } from './config.ts';
import { EMAIL_ERROR_CODES, failureCertainty, failureOutcome, sentOutcome, type SmtpError, type SmtpSentInfo } from './outcome.ts';
import { emailValueSchema, mailFor, type EmailValue } from './value.ts';

/** nodemailer's pool limits by window: `rateLimit` messages per `rateDelta` ms. */
function rateWindow(perSecond: number): { rateLimit: number; rateDelta: number } | undefined {
  if (perSecond <= 0) return undefined;
  const rateLimit = Math.max(1, Math.ceil(perSecond));
  return { rateLimit, rateDelta: Math.round((1000 * rateLimit) / perSecond) };
}

type SocketCallback = (error: Error | null, socket?: { connection: net.Socket }) => void;

/**
 * Opens the pool's TCP connections with Nagle's algorithm off. nodemailer leaves it on, and
 * its small writes at the end of each message then wait for the server's delayed ACK: about
 * 40 ms per message and connection, a fourfold loss of throughput on a fast link.
 */
function connectWithoutDelay(timeoutMs: number) {
  return (options: { host?: string; port?: number }, callback: SocketCallback): void => {
    const socket = net.connect({ host: options.host, port: options.port ?? 25, noDelay: true });
    const fail = (error: Error & { code?: string }) => {
      socket.destroy();
      callback(error);
    };
    socket.setTimeout(timeoutMs, () =>
      fail(Object.assign(new Error(`Connection timeout to ${options.host}:${options.port}`), { code: 'ETIMEDOUT', command: 'CONN' })),
    );
    socket.once('error', fail);
    socket.once('connect', () => {
      socket.setTimeout(0);
      socket.off('error', fail);
      callback(null, { connection: socket });
    });
  };
}

/** `maxRequeues` is a pool option that @types/nodemailer does not declare. */
type PoolOptions = SMTPPool.Options & { maxRequeues: number };

export function transportOptions(config: EmailSinkConfig): PoolOptions {
  const timeout = config['smtp.timeout.ms'];
  const user = config['smtp.user'];
  const password = config['smtp.password'];
  const starttls = startTlsModeOf(config);
  const ca = config['smtp.tls.ca'];
  return {
    pool: true,
    host: config['smtp.host'],
    port: config['smtp.port'],
    secure: config['smtp.secure'],
    requireTLS: starttls === 'require',
    ignoreTLS: starttls === 'never',
    tls: { rejectUnauthorized: config['smtp.tls.reject.unauthorized'], ...(ca ? { ca } : {}) },
    auth: user ? { user, pass: password?.value() } : undefined,
    maxConnections: config['smtp.pool.size'],
    ...rateWindow(config['smtp.rate.limit.per.second']),
    connectionTimeout: timeout,
    greetingTimeout: timeout,
    socketTimeout: timeout,
    // nodemailer would silently resend a message whose connection closed mid-send; the
    // runtime decides about resends instead (delivery.guarantee), so report it as a retry.
    maxRequeues: 0,
    getSocket: connectWithoutDelay(timeout),
    logger: false,
  };
}

/** One SMTP relay of the connector's `providers`, with its own config and pool. */
interface Relay {
  config: EmailSinkConfig;
  transport: nodemailer.Transporter<SmtpSentInfo>;
}

export class EmailSinkTask implements SinkTask<EmailSinkConfig> {
  private chain: ProviderChain<Relay> | undefined;
  private config!: EmailSinkConfig;
  private logger!: Logger;
  private messageIdDomain!: string;

  async start(config: EmailSinkConfig, context: SinkTaskContext): Promise<void> {
    this.config = config;
    this.logger = context.logger;
    const domain = messageIdDomainOf(config);
    if (!domain) throw new ConfigError({ 'email.message.id.domain': ['email.from has no domain for Message-IDs; set email.message.id.domain.'] });
    this.messageIdDomain = domain;
    const relays = providerConfigs(emailSinkConfig, config).map(({ alias, config: own }) => ({
      alias,
      provider: { config: own, transport: nodemailer.createTransport(transportOptions(own)) as nodemailer.Transporter<SmtpSentInfo> },
    }));
    this.chain = new ProviderChain(relays, {
      breaker: breakerSettingsOf(config).settings,
      atLeastOnce: (config as Record<string, unknown>)['delivery.guarantee'] === 'at-least-once',
      report: (statuses, stateChanged) => {
        if (stateChanged) this.logger.info({ providers: statuses.map((s) => ({ alias: s.alias, state: s.state })) }, 'SMTP provider breaker state changed');
        context.reportProviders?.(statuses);
      },
    });
    context.reportProviders?.(this.chain.statuses());
    for (const { alias, provider } of relays) {
      const own = provider.config;
      this.logger.info(
        {
          provider: alias,
          host: own['smtp.host'],
          port: own['smtp.port'],
          secure: own['smtp.secure'],
          starttls: startTlsModeOf(own),
          auth: Boolean(own['smtp.user']),
          poolSize: own['smtp.pool.size'],
          ratePerSecond: own['smtp.rate.limit.per.second'],
        },
        'email task started',
      );
    }
  }

  /**
   * Sends up to `smtp.pool.size` records at once. Records with the same key go one after
   * another, in batch order, so that one recipient's messages leave in the order given.
   */
  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    const outcomes: Array<SinkOutcome | undefined> = records.map(() => undefined);
    const lanes = new Map<string, number[]>();
    records.forEach((record, index) => {
      const lane = lanes.get(record.key);
      if (lane) lane.push(index);
      else lanes.set(record.key, [index]);
    });
    const waiting = [...lanes.values()];
    let fatal: FatalConnectorError | undefined;

    const runLanes = async () => {
      for (let lane = waiting.shift(); lane; lane = waiting.shift()) {
        for (const index of lane) {
          if (fatal) return;
          const result = await this.send(records[index] as SinkRecord);
          if (result instanceof FatalConnectorError) fatal ??= result;
          else outcomes[index] = result;
        }
      }
    };
    const runners = Math.min(this.config['smtp.pool.size'], lanes.size);
    await Promise.all(Array.from({ length: runners }, runLanes));

    if (fatal) {
      // Throwing promises the runtime that nothing of this batch reached the server.
      if (outcomes.every((o) => o === undefined)) throw fatal;
      this.logger.error({ code: fatal.code }, fatal.message);
      const notSent: SinkOutcome = { status: 'retry', error: { code: fatal.code, message: fatal.message } };
      return outcomes.map((o) => o ?? notSent);
    }
    return outcomes as SinkOutcome[];
  }

  private async send(record: SinkRecord): Promise<SinkOutcome | FatalConnectorError> {
    const problems = checkValue(emailValueSchema, record.value);
    if (problems.length > 0) {
      const message = `the message value is not an e-mail: ${problems.map((p) => `${p.path} ${p.message}`).join('; ')}`;
      return { status: 'failed', error: { code: EMAIL_ERROR_CODES.invalidValue, message } };
    }
    const mail = mailFor(record as SinkRecord<EmailValue>, { from: this.config['email.from'], messageIdDomain: this.messageIdDomain });
    try {
      return await this.chain!.send((relay, alias) => this.sendThrough(relay, alias, record, mail));
    } catch (error) {
      if (error instanceof FatalConnectorError) return error;
      throw error;
    }
  }

  private async sendThrough(relay: Relay, alias: string, record: SinkRecord, mail: nodemailer.SendMailOptions): Promise<ProviderAttempt> {
    try {
      const info = await relay.transport.sendMail(mail);
      const outcome = sentOutcome(info);
      if (outcome.status === 'sent' && outcome.details?.rejected) {
        this.logger.warn({ messageId: record.id, provider: alias, rejected: outcome.details.rejected }, 'some recipients were refused');
      }
      return { result: 'taken', outcome };
    } catch (error) {
      const smtpError = error as SmtpError;
      const result = failureOutcome(smtpError, {
        host: relay.config['smtp.host'],
        port: relay.config['smtp.port'],
        user: relay.config['smtp.user'],
      });
      if (result instanceof FatalConnectorError) throw result;
      this.logger.debug(
        { messageId: record.id, provider: alias, status: result.status, code: smtpError.code, responseCode: smtpError.responseCode, command: smtpError.command },
        result.error.message,
      );
      if (result.status === 'failed') return { result: result.error.code === EMAIL_ERROR_CODES.unsendable ? 'skipped' : 'taken', outcome: result };
      return { result: failureCertainty(smtpError), outcome: result };
    }
  }

  async stop(): Promise<void> {
    for (const { provider } of this.chain?.providers ?? []) provider.transport.close();
    this.chain = undefined;
    this.logger?.info('email task stopped');
  }
}
