/**
 * The sending/sent protocol's outcomes: what a task's `put` answered, checked against its
 * contract, and turned into the rows and events to store (sent, retrying, failed, dead) and
 * what is finished or retried.
 */
import type { SinkRecord } from '@omnibus/sdk';
import type { ChainedOutcome } from '../transforms/bus-records.ts';
import type { CommonConnectorConfig } from './connector-config.ts';
import type { DeliveryChange } from './delivery-events.ts';
import type { Delivery, DeliveryState, Message, MessagePosition, NewMessageEvent, ProviderIdEntry, Suppression } from '../store/port.ts';
import { retryDelay } from './pacing.ts';
import { EXPIRES_AT_HEADER } from './producer.ts';
import type { DeadLetterFailure, DeadLetterResults } from './sink-dead-letters.ts';
import type { Dispatch } from './sink-shard.ts';
import { isGateOutcome, type SuppressedOutcome } from './suppression-gate.ts';

/** What a batch's outcomes mean, to be written and then applied in memory. */
export interface Settlement {
  rows: Delivery[];
  providerIds: ProviderIdEntry[];
  events: NewMessageEvent[];
  /** Done for good (sent, failed, dead): finished once the rows are stored. */
  finished: Dispatch[];
  toRetry: Dispatch[];
  sent: number;
  failed: number;
  /** What held back each suppressed message (no address): for the metrics. */
  suppressed: Array<Pick<Suppression, 'channel' | 'category' | 'reason'>>;
}

/** A settlement with nothing in it. */
export function emptySettlement(): Settlement {
  return { rows: [], providerIds: [], events: [], finished: [], toRetry: [], sent: 0, failed: 0, suppressed: [] };
}

/** Adds `more` to `into`, so that one store write records both; returns `into`. */
export function mergeSettlement(into: Settlement, more: Settlement | undefined): Settlement {
  if (!more) return into;
  for (const key of ['rows', 'providerIds', 'events', 'finished', 'toRetry', 'suppressed'] as const) (into[key] as unknown[]).push(...more[key]);
  into.sent += more.sent;
  into.failed += more.failed;
  return into;
}

/** What deciding a batch's outcomes needs from its runner. */
export interface OutcomeContext {
  common: CommonConnectorConfig;
  connector: string;
  workerId: string;
  deadLetter: (failures: DeadLetterFailure[]) => Promise<DeadLetterResults>;
}

/** What the outcomes of a batch mean: the rows and events to write, what is finished, what is retried. */
export async function decideOutcomes(batch: Dispatch[], outcomes: Array<ChainedOutcome | SuppressedOutcome>, sentAt: number, context: OutcomeContext): Promise<Settlement> {
  const { common, connector, workerId, deadLetter } = context;
  const now = Date.now();
  const settlement = emptySettlement();
  const { rows, events, providerIds, finished, toRetry } = settlement;
  const failed: Array<{ dispatch: Dispatch; error: { code: string; message: string }; exhausted: boolean }> = [];
  const maxAttempts = common['errors.retry.max.attempts'];
  const timeout = common['errors.retry.timeout'];

  for (let i = 0; i < batch.length; i++) {
    const dispatch = batch[i]!;
    const { shard, pending } = dispatch;
    const outcome = outcomes[i]!;
    const attempts = pending.attempts + 1;
    const messageId = pending.message.id;
    if (outcome.status === 'filtered') {
      rows.push(deliveryRow(pending.position, connector, 'filtered', pending.attempts, shard.lease.epoch, workerId, now));
      finished.push(dispatch);
      continue;
    }
    if (outcome.status === 'suppressed') {
      // Kept back by the suppression gate: no provider was called.
      rows.push(deliveryRow(pending.position, connector, 'suppressed', pending.attempts, shard.lease.epoch, workerId, now));
      const { channel, category, reason, code } = outcome.entry;
      events.push({ messageId, topic: pending.position.topic, at: now, type: 'suppressed', connector, workerId, detail: { channel, category, reason, ...(code !== undefined ? { code } : {}) } });
      settlement.suppressed.push({ channel, category, reason });
      finished.push(dispatch);
      continue;
    }
    if (outcome.status === 'sent') {
      const row = deliveryRow(pending.position, connector, 'sent', attempts, shard.lease.epoch, workerId, now);
      if (outcome.providerId) {
        row.providerId = outcome.providerId;
        providerIds.push({ connector, providerId: outcome.providerId, messageId, topic: pending.position.topic });
      }
      rows.push(row);
      if (outcome.details) {
        events.push({ messageId, topic: pending.position.topic, at: now, type: 'sent', connector, workerId, detail: { providerId: outcome.providerId, ...outcome.details } });
      }
      finished.push(dispatch);
      settlement.sent += 1;
      continue;
    }
    if (outcome.status === 'retry') {
      const firstAttemptAt = pending.firstAttemptAt ?? sentAt;
      const delay = retryDelay(attempts, common['errors.retry.delay.initial.ms'], common['errors.retry.delay.max.ms'], outcome.retryAfterMs);
      const nextAttemptAt = now + delay;
      const outOfTime = timeout >= 0 && nextAttemptAt - firstAttemptAt > timeout;
      if (attempts >= maxAttempts || outOfTime) {
        failed.push({ dispatch, error: outcome.error, exhausted: true });
        continue;
      }
      rows.push({ ...pending.position, connector, state: 'retrying', attempts, epoch: shard.lease.epoch, workerId, updatedAt: now, nextAttemptAt, lastError: outcome.error });
      events.push({
        messageId,
        topic: pending.position.topic,
        at: now,
        type: 'retrying',
        connector,
        workerId,
        detail: { attempt: attempts, error: outcome.error, nextAttemptAt, ...(outcome.retryAfterMs !== undefined ? { retryAfterMs: outcome.retryAfterMs } : {}) },
      });
      pending.attempts = attempts;
      pending.firstAttemptAt = firstAttemptAt;
      pending.nextAttemptAt = nextAttemptAt;
      toRetry.push(dispatch);
      continue;
    }
    failed.push({ dispatch, error: outcome.error, exhausted: false });
  }

  if (failed.length > 0) {
    const dead = await deadLetter(failed.map(({ dispatch, error, exhausted }) => ({ pending: dispatch.pending, error, exhausted })));
    for (const { dispatch, error, exhausted } of failed) {
      const { shard, pending } = dispatch;
      const letter = dead.get(pending.message.id);
      const state = letter && 'id' in letter ? 'dead' : 'failed';
      rows.push({
        connector,
        ...pending.position,
        state,
        attempts: pending.attempts + 1,
        epoch: shard.lease.epoch,
        workerId,
        lastError: error,
        updatedAt: now,
      });
      events.push({
        messageId: pending.message.id,
        topic: pending.position.topic,
        at: now,
        type: state,
        connector,
        workerId,
        detail: {
          error,
          attempts: pending.attempts + 1,
          ...(exhausted ? { reason: 'retries exhausted' } : {}),
          ...(letter && 'id' in letter ? { deadLetterTopic: common['errors.deadletterqueue.topic.name'], deadLetterId: letter.id } : {}),
          ...(letter && 'error' in letter ? { deadLetterError: letter.error } : {}),
        },
      });
      finished.push(dispatch);
    }
    settlement.failed = failed.length;
  }
  return settlement;
}

export function toRecord(message: Message, attempt: number): SinkRecord {
  const record: SinkRecord = {
    id: message.id,
    topic: message.topic,
    key: message.key,
    shard: message.shard,
    value: message.value,
    headers: message.headers,
    timestamp: message.createdAt,
    attempt,
  };
  if (message.group !== undefined) record.group = message.group;
  return record;
}

/** `filtered` comes only from the runner's own chain (TransformingSinkTask), `suppressed` from its gate (SuppressionGate), never from a connector. */
export function outcomeProblem(outcomes: unknown, expected: number, chained: boolean): string | undefined {
  if (!Array.isArray(outcomes)) return 'it did not return an array';
  if (outcomes.length !== expected) return `it returned ${outcomes.length} outcomes for ${expected} records`;
  for (const [i, o] of outcomes.entries()) {
    const status = (o as { status?: unknown } | null)?.status;
    if (status === 'sent' || (chained && status === 'filtered') || (status === 'suppressed' && isGateOutcome(o))) continue;
    if ((status === 'retry' || status === 'failed') && typeof (o as { error?: { code?: unknown } }).error?.code === 'string') continue;
    return `outcome ${i} is not {status: 'sent'|'retry'|'failed'} with an error for retry/failed`;
  }
  return undefined;
}

/** A delivery row without optional fields. Every such row has the same shape: cheaper to build, encode and compare. */
export function deliveryRow(
  position: MessagePosition,
  connector: string,
  state: DeliveryState,
  attempts: number,
  epoch: number,
  workerId: string,
  updatedAt: number,
): Delivery {
  const row: Delivery = { messageId: position.messageId, topic: position.topic, shard: position.shard, ts: position.ts, connector, state, attempts, epoch, workerId, updatedAt };
  // The group travels with the row: the store moves the group's tally with it.
  if (position.group !== undefined) row.group = position.group;
  return row;
}

/** The state changes a settlement writes, as delivery events (its rows, with their messages' groups). */
export function deliveryChanges(settlement: Settlement): DeliveryChange[] {
  const groups = new Map<string, string>();
  for (const { pending } of settlement.finished) if (pending.message.group !== undefined) groups.set(pending.message.id, pending.message.group);
  for (const { pending } of settlement.toRetry) if (pending.message.group !== undefined) groups.set(pending.message.id, pending.message.group);
  return settlement.rows.map((row) => {
    const group = groups.get(row.messageId);
    return {
      messageId: row.messageId,
      topic: row.topic,
      connector: row.connector,
      state: row.state,
      at: row.updatedAt,
      attempts: row.attempts,
      ...(group !== undefined ? { group } : {}),
      ...(row.providerId !== undefined ? { providerId: row.providerId } : {}),
      ...(row.lastError !== undefined ? { error: row.lastError } : {}),
    };
  });
}

/** Whether a message's `expires_at` (its omnibus.expires.at header, ms) is at or before `now`; an unreadable one never expires. */
export function isExpired(headers: Readonly<Record<string, string>>, now: number): boolean {
  const raw = headers[EXPIRES_AT_HEADER];
  if (raw === undefined) return false;
  const at = Number(raw);
  return Number.isFinite(at) && at <= now;
}

/** Records past their expires_at: `expired`, done, never handed to the task. */
export function expiredSettlement(expired: readonly Dispatch[], connector: string, workerId: string, now: number): Settlement {
  return skippedSettlement(expired, 'expired', connector, workerId, now, (pending) => ({ expiresAt: Number(pending.message.headers[EXPIRES_AT_HEADER]) }));
}

/** Records cancelled (themselves or through their group) before their hand-off: `cancelled`, done, never handed to the task. */
export function cancelledSettlement(cancelled: readonly Dispatch[], connector: string, workerId: string, now: number): Settlement {
  return skippedSettlement(cancelled, 'cancelled', connector, workerId, now, (pending) => (pending.message.group !== undefined ? { group: pending.message.group } : {}));
}

/** Records settled without a hand-off, in `state`, each with its event. */
function skippedSettlement(
  skipped: readonly Dispatch[],
  state: 'expired' | 'cancelled',
  connector: string,
  workerId: string,
  now: number,
  detail: (pending: Dispatch['pending']) => Record<string, unknown>,
): Settlement {
  const settlement = emptySettlement();
  settlement.finished.push(...skipped);
  for (const { shard, pending } of skipped) {
    settlement.rows.push(deliveryRow(pending.position, connector, state, pending.attempts, shard.lease.epoch, workerId, now));
    settlement.events.push({
      messageId: pending.message.id,
      topic: pending.position.topic,
      at: now,
      type: state,
      connector,
      workerId,
      detail: { ...detail(pending), attempts: pending.attempts },
    });
  }
  return settlement;
}
