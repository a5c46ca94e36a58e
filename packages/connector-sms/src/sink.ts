/**
 * SmsSink: text messages to phones, over SMPP 3.4 (an SMSC) or Twilio's Messages API,
 * chosen by `sms.transport`, or over several of them in order (`providers`, SMPP binds and
 * Twilio accounts mixed, each behind its circuit breaker).
 */
import {
  FatalConnectorError,
  ProviderChain,
  breakerSettingsOf,
  checkValue,
  defineSinkConnector,
  providerConfigs,
  type Logger,
  type ProviderAttempt,
  type SinkOutcome,
  type SinkRecord,
  type SinkTask,
  type SinkTaskContext,
  valueRecipients,
} from '@omnibus/sdk';
import { smsConfigSpec, validateSmsConfig, type SmsConfig } from './config.ts';
import { SmsErrorCode } from './errors.ts';
import { SmppTransport } from './smpp/transport.ts';
import { failed, retry, type SmsTransport } from './transport.ts';
import { handleTwilioStatusCallback } from './twilio/webhook.ts';
import { TwilioTransport } from './twilio/transport.ts';
import { smsValueSchema, type SmsValue } from './value.ts';
import { VERSION } from './version.ts';

/** What tells a provider that certainly did not take a message (so the next one may send it). */
const NOT_TAKEN = new Set<string>([SmsErrorCode.THROTTLED, SmsErrorCode.PROVIDER_BUSY, SmsErrorCode.PROVIDER_UNAVAILABLE, SmsErrorCode.NOT_CONNECTED]);

/** How sure the outcome of one provider's attempt is (see ProviderChain). */
export function attemptOf(outcome: SinkOutcome): ProviderAttempt {
  if (outcome.status === 'sent') return { result: 'taken', outcome };
  if (outcome.error.code === SmsErrorCode.OUTCOME_UNKNOWN) return { result: 'in-doubt', outcome };
  if (outcome.status === 'retry') return { result: NOT_TAKEN.has(outcome.error.code) ? 'not-taken' : 'in-doubt', outcome };
  return { result: 'taken', outcome };
}

class SmsSinkTask implements SinkTask<SmsConfig> {
  #chain: ProviderChain<SmsTransport> | undefined;
  #logger: Logger | undefined;
  /** Set once every provider refused our credentials: no further put sends anything. */
  #fatal: FatalConnectorError | undefined;

  async start(config: SmsConfig, context: SinkTaskContext): Promise<void> {
    const atLeastOnce = (config as Record<string, unknown>)['delivery.guarantee'] === 'at-least-once';
    this.#logger = context.logger;
    // Several providers, SMPP binds and Twilio accounts mixed: each its own transport.
    const providers = providerConfigs(smsConfigSpec, config).map(({ alias, config: own }) => {
      const logger = context.logger.child({ transport: own['sms.transport'], provider: alias });
      const transportContext = { config: own, task: context, logger, atLeastOnce };
      const transport: SmsTransport = own['sms.transport'] === 'smpp' ? new SmppTransport(transportContext) : new TwilioTransport(transportContext);
      return { alias, provider: transport };
    });
    const started: SmsTransport[] = [];
    /** Providers that refused our credentials at start: kept in the chain (their sends fail over), unless every one did. */
    const refused: FatalConnectorError[] = [];
    try {
      for (const { alias, provider } of providers) {
        try {
          await provider.start();
        } catch (error) {
          if (!(error instanceof FatalConnectorError) || providers.length === 1) throw error;
          context.logger.error({ provider: alias, code: error.code }, 'an SMS provider refused the connector at start; the others take its messages');
          refused.push(error);
        }
        started.push(provider);
      }
      if (refused.length === providers.length) throw refused[0];
    } catch (error) {
      await Promise.all([...started, providers[started.length]?.provider].map((t) => t?.stop().catch(() => undefined)));
      throw error;
    }
    this.#chain = new ProviderChain(providers, {
      breaker: breakerSettingsOf(config).settings,
      atLeastOnce,
      report: (statuses, stateChanged) => {
        if (stateChanged) this.#logger?.info({ providers: statuses.map((s) => ({ alias: s.alias, state: s.state })) }, 'SMS provider breaker state changed');
        context.reportProviders?.(statuses);
      },
    });
    context.reportProviders?.(this.#chain.statuses());
  }

  /**
   * Messages to different keys go out concurrently (the transport bounds how many); those
   * of one key go out one after the other, in the order given.
   */
  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    if (this.#fatal) throw this.#fatal;
    const outcomes: SinkOutcome[] = new Array(records.length);
    const byKey = new Map<string, number[]>();
    records.forEach((record, index) => byKey.set(record.key, [...(byKey.get(record.key) ?? []), index]));
    await Promise.all(
      [...byKey.values()].map(async (indexes) => {
        for (const index of indexes) outcomes[index] = await this.#sendOne(records[index] as SinkRecord);
      }),
    );
    // Throwing the fatal error promises that nothing of this batch reached the provider; when
    // some messages did go out, their outcomes are returned and the next put throws instead.
    if (this.#fatal && !outcomes.some((outcome) => outcome.status === 'sent')) throw this.#fatal;
    return outcomes;
  }

  async stop(): Promise<void> {
    await Promise.all((this.#chain?.providers ?? []).map(({ provider }) => provider.stop()));
    this.#logger?.info('SMS task stopped');
  }

  async #sendOne(record: SinkRecord): Promise<SinkOutcome> {
    if (this.#fatal) return retry(this.#fatal.code, this.#fatal.message);
    const problems = checkValue(smsValueSchema, record.value);
    if (problems.length > 0) {
      const message = problems.map((p) => `${p.path} ${p.message}`).join('; ');
      return failed(SmsErrorCode.INVALID_VALUE, `The message value is not an SMS: ${message}`, { problems });
    }
    try {
      return await this.#chain!.send(async (transport) => attemptOf(await transport.send(record, record.value as SmsValue)));
    } catch (error) {
      if (!(error instanceof FatalConnectorError)) throw error;
      this.#fatal ??= error;
      return retry(error.code, error.message);
    }
  }
}

export const SmsSink = defineSinkConnector({
  className: 'SmsSink',
  aliases: ['@omnibus/connector-sms/SmsSink'],
  version: VERSION,
  description:
    'Sends text messages over SMPP 3.4 (bind_transceiver, windowed submit_sm, GSM-7/UCS-2 concatenation, delivery receipts) or the Twilio Messages API (signed status callbacks).',
  config: smsConfigSpec,
  valueSchema: smsValueSchema,
  validate: validateSmsConfig,
  recipients: valueRecipients('sms', ['to']),
  createTask: () => new SmsSinkTask(),
  webhook: async (request, config, context) => {
    // Each Twilio account signs its callbacks with its own token: the first that verifies answers.
    const accounts = providerConfigs(smsConfigSpec, config).filter(({ config: own }) => own['sms.transport'] === 'twilio');
    if (accounts.length <= 1) return handleTwilioStatusCallback(request, accounts[0]?.config ?? config, context);
    let response = handleTwilioStatusCallback(request, accounts[0]!.config, context);
    for (const { config: own } of accounts.slice(1)) {
      if (response.status !== 403) break;
      response = handleTwilioStatusCallback(request, own, context);
    }
    return response;
  },
});
