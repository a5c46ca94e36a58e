/**
 * SmsSink: text messages to phones, over SMPP 3.4 (an SMSC) or Twilio's Messages API,
 * chosen by `sms.transport`.
 */
import {
  FatalConnectorError,
  checkValue,
  defineSinkConnector,
  type Logger,
  type SinkOutcome,
  type SinkRecord,
  type SinkTask,
  type SinkTaskContext,
} from '@omnibus/sdk';
import { smsConfigSpec, validateSmsConfig, type SmsConfig } from './config.ts';
import { SmsErrorCode } from './errors.ts';
import { SmppTransport } from './smpp/transport.ts';
import { failed, retry, type SmsTransport } from './transport.ts';
import { handleTwilioStatusCallback } from './twilio/webhook.ts';
import { TwilioTransport } from './twilio/transport.ts';
import { smsValueSchema, type SmsValue } from './value.ts';
import { VERSION } from './version.ts';

class SmsSinkTask implements SinkTask<SmsConfig> {
  #transport: SmsTransport | undefined;
  #logger: Logger | undefined;
  /** Set once the provider refused our credentials: no further put sends anything. */
  #fatal: FatalConnectorError | undefined;

  async start(config: SmsConfig, context: SinkTaskContext): Promise<void> {
    const logger = context.logger.child({ transport: config['sms.transport'] });
    const transportContext = {
      config,
      task: context,
      logger,
      atLeastOnce: (config as Record<string, unknown>)['delivery.guarantee'] === 'at-least-once',
    };
    this.#logger = logger;
    this.#transport = config['sms.transport'] === 'smpp' ? new SmppTransport(transportContext) : new TwilioTransport(transportContext);
    try {
      await this.#transport.start();
    } catch (error) {
      await this.#transport.stop().catch(() => undefined);
      throw error;
    }
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
    await this.#transport?.stop();
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
      return await (this.#transport as SmsTransport).send(record, record.value as SmsValue);
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
  createTask: () => new SmsSinkTask(),
  webhook: async (request, config, context) => handleTwilioStatusCallback(request, config, context),
});
