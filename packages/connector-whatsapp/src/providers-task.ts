/**
 * WhatsAppSink's task over several numbers or accounts (`providers`, `providers.<alias>.*`):
 * one single-number task per provider, each with its own rate limits, tried in order behind
 * its circuit breaker. Without `providers` it is the connector's own number, named `default`.
 */
import {
  breakerSettingsOf,
  FatalConnectorError,
  ProviderChain,
  providerConfigs,
  type SinkOutcome,
  type SinkRecord,
  type SinkTask,
  type SinkTaskContext,
} from '@omnibus/sdk';
import { whatsappConfigSpec, type WhatsAppConfig } from './config.ts';
import { WhatsAppErrors } from './errors.ts';
import { WhatsAppSinkTask } from './task.ts';

export class WhatsAppProvidersTask implements SinkTask<WhatsAppConfig> {
  private chain: ProviderChain<WhatsAppSinkTask> | undefined;
  private maxInFlight = 1;

  async start(config: WhatsAppConfig, context: SinkTaskContext): Promise<void> {
    const numbers = providerConfigs(whatsappConfigSpec, config);
    const started: Array<{ alias: string; provider: WhatsAppSinkTask }> = [];
    for (const { alias, config: own } of numbers) {
      const task = new WhatsAppSinkTask();
      await task.start(own, { ...context, logger: context.logger.child({ provider: alias }) });
      started.push({ alias, provider: task });
      this.maxInFlight = Math.max(this.maxInFlight, own['whatsapp.max.in.flight']);
    }
    this.chain = new ProviderChain(started, {
      breaker: breakerSettingsOf(config).settings,
      atLeastOnce: (config as Record<string, unknown>)['delivery.guarantee'] === 'at-least-once',
      // The Cloud API takes every request as a new message: a send that timed out is not
      // retried under at-most-once (the default), even with one number.
      providerDropsRepeats: false,
      report: (statuses, stateChanged) => {
        if (stateChanged) context.logger.info({ providers: statuses.map((s) => ({ alias: s.alias, state: s.state })) }, 'WhatsApp provider breaker state changed');
        context.reportProviders?.(statuses);
      },
    });
    context.reportProviders?.(this.chain.statuses());
  }

  /** Recipients go in parallel (up to the largest whatsapp.max.in.flight); one recipient's messages in order. */
  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    const outcomes: Array<SinkOutcome | undefined> = records.map(() => undefined);
    const lanes = new Map<string, number[]>();
    records.forEach((record, i) => lanes.set(record.key, [...(lanes.get(record.key) ?? []), i]));
    const queue = [...lanes.values()];
    let fatal: FatalConnectorError | undefined;
    const runLanes = async (): Promise<void> => {
      for (let lane = queue.shift(); lane; lane = queue.shift()) {
        for (const i of lane) {
          if (fatal) return;
          const record = records[i] as SinkRecord;
          try {
            outcomes[i] = await this.chain!.send((number) => number.attempt(record));
          } catch (error) {
            if (!(error instanceof FatalConnectorError)) throw error;
            fatal ??= error;
          }
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.maxInFlight, queue.length) }, runLanes));
    if (fatal) {
      // Throwing promises the runtime that nothing of this batch was sent.
      if (outcomes.every((o) => o === undefined)) throw fatal;
      const notSent: SinkOutcome = { status: 'retry', error: { code: WhatsAppErrors.CONNECTOR_FAILED, message: `held back: ${fatal.message}` } };
      return outcomes.map((o) => o ?? notSent);
    }
    return outcomes as SinkOutcome[];
  }

  async stop(): Promise<void> {
    await Promise.all((this.chain?.providers ?? []).map(({ provider }) => provider.stop()));
  }
}
