/**
 * The suppression check, in front of every sink task: before the records reach the task (after
 * the connector's transformations), the gate reads the suppression list for the recipients the
 * connector declares (`recipients` of its definition, from the SDK) and keeps back every record
 * to a suppressed address, answering `suppressed` for it: no provider is called. A third-party
 * connector gets the check by declaring its recipients, without a line of its own.
 *
 * After the task answered, what providers said about addresses (outcomes' `suppress`: opted
 * out, hard bounce, blocked) is stored, so the next message to them is kept back.
 */
import { normalizeAddress, type Logger, type RecipientDeclaration, type SinkOutcome, type SinkRecord, type SinkTask, type SinkTaskContext } from '@omnibus/sdk';
import type { Store, Suppression } from '../store/port.ts';
import { blockingEntry, messageConsent, recordSuppressions } from './consent.ts';

/** A record the gate kept back: it ends `suppressed`. */
export interface SuppressedOutcome {
  status: 'suppressed';
  entry: Suppression;
}

/** Outcomes the gate made itself: a connector never returns `suppressed`. */
const gateOutcomes = new WeakSet<object>();

export function isGateOutcome(outcome: unknown): outcome is SuppressedOutcome {
  return typeof outcome === 'object' && outcome !== null && gateOutcomes.has(outcome);
}

export class SuppressionGate implements SinkTask<unknown> {
  constructor(
    private readonly task: SinkTask<unknown>,
    private readonly store: Store,
    private readonly connector: string,
    private readonly declaration: RecipientDeclaration | undefined,
    private readonly logger: Logger,
  ) {}

  start(config: unknown, context: SinkTaskContext): Promise<void> {
    return this.task.start(config, context);
  }

  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    const held = this.declaration ? await this.heldBack(records, this.declaration) : new Map<number, SuppressedOutcome>();
    let answered: SinkOutcome[];
    if (held.size === 0) answered = await this.task.put(records);
    else {
      const passed = records.filter((_, i) => !held.has(i));
      const fromTask = passed.length > 0 ? await this.task.put(passed) : [];
      // A task that breaks its contract is reported by the runner, which checks what it gets.
      if (!Array.isArray(fromTask) || fromTask.length !== passed.length) return fromTask;
      answered = [];
      let next = 0;
      for (let i = 0; i < records.length; i++) answered.push((held.get(i) as SinkOutcome | undefined) ?? (fromTask[next++] as SinkOutcome));
    }
    if (Array.isArray(answered)) {
      const requests = answered.flatMap((outcome) => (outcome && 'suppress' in outcome && Array.isArray(outcome.suppress) ? outcome.suppress : []));
      await recordSuppressions(this.store, requests, this.connector, this.logger);
    }
    return answered;
  }

  stop(): Promise<void> {
    return this.task.stop();
  }

  /** The records to keep back, by index, with the entry that holds each. */
  private async heldBack(records: readonly SinkRecord[], declaration: RecipientDeclaration): Promise<Map<number, SuppressedOutcome>> {
    const recipients = records.map((record) => {
      let raw: unknown;
      try {
        raw = declaration.recipients(record);
      } catch {
        raw = [];
      }
      const list = Array.isArray(raw) ? raw : [];
      return list.flatMap((address) => {
        const normalized = typeof address === 'string' ? normalizeAddress(declaration.channel, address) : undefined;
        return normalized ? [normalized] : [];
      });
    });
    const held = new Map<number, SuppressedOutcome>();
    const all = [...new Set(recipients.flat())];
    if (all.length === 0) return held;
    const entries = await this.store.findSuppressions(declaration.channel, all);
    if (entries.length === 0) return held;
    const byAddress = new Map<string, Suppression[]>();
    for (const entry of entries) byAddress.set(entry.address, [...(byAddress.get(entry.address) ?? []), entry]);
    records.forEach((record, index) => {
      const { category, critical } = messageConsent(record.headers);
      for (const address of recipients[index]!) {
        const entry = blockingEntry(byAddress.get(address) ?? [], category, critical);
        if (!entry) continue;
        const outcome: SuppressedOutcome = { status: 'suppressed', entry };
        gateOutcomes.add(outcome);
        held.set(index, outcome);
        break;
      }
    });
    return held;
  }
}
