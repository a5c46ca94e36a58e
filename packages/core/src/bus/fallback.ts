/**
 * Channel fallback: a produce item may carry another message for another topic (say an SMS for
 * a WhatsApp message), held until a deadline and then produced once, unless the original has
 * reached a cancelling state (`delivered`, `read` by default) at its connectors by then; a
 * permanent failure of the original (`failed`, `dead`) releases it at once.
 *
 * The fallback lives on the due-time store (bus/scheduler.ts) under an id derived from the
 * original's (`<id>:fallback`), so it is appended at most once whatever the retries, restarts
 * and takeovers: the scheduler appends by id and finds an id already appended. The original
 * carries the header `omnibus.fallback.id`, the fallback `omnibus.fallback.of`: the chain reads
 * both ways.
 */
import { createHash } from 'node:crypto';
import type { DeliveryState, FallbackCondition, MessagePosition, ScheduledMessage, Store } from '../store/port.ts';
import { parseInstant, SCHEDULED_SIGNAL } from './producer.ts';
import type { ShardSignals } from './signals.ts';

export const FALLBACK_ID_HEADER = 'omnibus.fallback.id';
export const FALLBACK_OF_HEADER = 'omnibus.fallback.of';
/** States of the original that may cancel a fallback. */
export const CANCELLING_STATES: readonly DeliveryState[] = ['sent', 'delivered', 'read'];
const DEFAULT_UNLESS: DeliveryState[] = ['delivered', 'read'];
/** States of the original after which waiting is pointless: the fallback goes at once. */
export const PERMANENT_FAILURES: ReadonlySet<DeliveryState> = new Set(['failed', 'dead']);
const MAX_AFTER_MS = 30 * 24 * 3600_000;
const ID_SUFFIX = ':fallback';
const MAX_ID = 128;

/** The fallback's id: derived from the original's, the same on every worker and every retry. */
export function fallbackIdOf(id: string): string {
  if (id.length + ID_SUFFIX.length <= MAX_ID) return `${id}${ID_SUFFIX}`;
  return `${createHash('sha256').update(id).digest('hex')}${ID_SUFFIX}`;
}

/** A produce item's `fallback`, its shape checked (its topic and value are checked by the producer). */
export interface FallbackSpec {
  topic: string;
  value: unknown;
  key?: string;
  afterMs?: number;
  deadline?: number;
  unless: DeliveryState[];
  connector?: string;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** The spec, or its problems by field (`fallback.…`). */
export function parseFallback(raw: unknown, now: number): FallbackSpec | Array<{ field: string; message: string }> {
  if (!isObject(raw)) return [{ field: 'fallback', message: 'must be an object {topic, value, key?, after_ms | deadline, unless?, connector?}' }];
  const problems: Array<{ field: string; message: string }> = [];
  const known = ['topic', 'value', 'key', 'after_ms', 'deadline', 'unless', 'connector'];
  for (const name of Object.keys(raw)) if (!known.includes(name)) problems.push({ field: `fallback.${name}`, message: `is not a field of a fallback (${known.join(', ')})` });
  const { topic, value, key, after_ms: afterMs, deadline, unless, connector } = raw;
  if (typeof topic !== 'string' || topic.length === 0) problems.push({ field: 'fallback.topic', message: 'must be a topic name' });
  if (value === undefined) problems.push({ field: 'fallback.value', message: 'is required' });
  if (key !== undefined && (typeof key !== 'string' || key.length === 0)) problems.push({ field: 'fallback.key', message: 'must be a non-empty string' });
  let at: number | undefined;
  if ((afterMs === undefined) === (deadline === undefined)) problems.push({ field: 'fallback.after_ms', message: 'give either after_ms or deadline' });
  else if (afterMs !== undefined) {
    if (typeof afterMs !== 'number' || !Number.isInteger(afterMs) || afterMs < 0 || afterMs > MAX_AFTER_MS) {
      problems.push({ field: 'fallback.after_ms', message: `must be an integer from 0 to ${MAX_AFTER_MS}` });
    }
  } else {
    const parsed = parseInstant(deadline);
    if (typeof parsed === 'string') problems.push({ field: 'fallback.deadline', message: parsed });
    else if (parsed <= now) problems.push({ field: 'fallback.deadline', message: 'is in the past' });
    else at = parsed;
  }
  let states = DEFAULT_UNLESS;
  if (unless !== undefined) {
    if (!Array.isArray(unless) || unless.length === 0 || !unless.every((s) => CANCELLING_STATES.includes(s as DeliveryState))) {
      problems.push({ field: 'fallback.unless', message: `must be a non-empty list of ${CANCELLING_STATES.join(', ')}` });
    } else states = unless as DeliveryState[];
  }
  if (connector !== undefined && (typeof connector !== 'string' || connector.length === 0)) problems.push({ field: 'fallback.connector', message: 'must be a connector name' });
  if (problems.length > 0) return problems;
  return {
    topic: topic as string,
    value,
    unless: states,
    ...(key !== undefined ? { key: key as string } : {}),
    ...(afterMs !== undefined ? { afterMs: afterMs as number } : {}),
    ...(at !== undefined ? { deadline: at } : {}),
    ...(connector !== undefined ? { connector: connector as string } : {}),
  };
}

export type FallbackDecision = { release: true } | { release: false; why: 'cancelled'; state: DeliveryState; connector: string } | { release: false; why: 'no original' };

/**
 * Whether a due fallback goes: not when its original was never stored (its produce failed
 * half-way and was not acknowledged), nor when the original reached a cancelling state.
 * `sinksOf` names the sink connectors reading a topic.
 */
export async function decideFallback(store: Store, condition: FallbackCondition, sinksOf: (topic: string) => string[]): Promise<FallbackDecision> {
  const position: MessagePosition | undefined = (await store.locateMessages([condition.of], [condition.topic])).get(condition.of);
  if (!position) {
    // Still held itself (a send_at later than the fallback's deadline): not cancelled by anything yet.
    return (await store.getScheduled([condition.of])).has(condition.of) ? { release: true } : { release: false, why: 'no original' };
  }
  const connectors = condition.connector ? [condition.connector] : sinksOf(position.topic);
  for (const connector of connectors) {
    const delivery = (await store.getDeliveries(connector, [position])).get(condition.of);
    if (delivery && condition.unless.includes(delivery.state)) return { release: false, why: 'cancelled', state: delivery.state, connector };
  }
  return { release: true };
}

/**
 * Makes the held fallbacks of these originals due now (they failed for good): the scheduler
 * releases them at its next pass, woken through `signals`. One read per original; nothing for
 * one without a fallback or whose fallback is gone already.
 */
export async function expediteFallbacks(store: Store, originals: readonly string[], signals?: ShardSignals, now = Date.now()): Promise<number> {
  if (originals.length === 0) return 0;
  const held = await store.getScheduled(originals.map(fallbackIdOf));
  const due: ScheduledMessage[] = [];
  for (const entry of held.values()) {
    if (entry.reason !== 'fallback' || entry.dueAt <= now) continue;
    due.push({ ...entry, dueAt: now });
  }
  if (due.length === 0) return 0;
  await store.putScheduled(due);
  signals?.notify(SCHEDULED_SIGNAL.topic, SCHEDULED_SIGNAL.shard);
  return due.length;
}
