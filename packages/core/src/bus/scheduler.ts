/**
 * The scheduler: moves held messages (a `send_at` in the future, quiet hours) into their topics'
 * buffers once they are due. One worker of the cluster at a time runs it, under the lease
 * `scheduler` (taken with an LWT, renewed, fenced by its epoch: a holder that cannot renew
 * stops before the lease could expire, so two never release at once), and any worker takes it
 * over when its holder dies.
 *
 * What it reads: only what is due. Each pass reads the held messages due from its cursor (less
 * an overlap, for messages held by a worker whose clock is behind) up to now, releases them,
 * then peeks at the next due time within `idlePollMs` and sleeps until then. A produce that
 * holds a message wakes it (here directly, on the other workers through the wake hints), so a
 * message held for the next second is not left to the idle poll; a message held for next year
 * costs nothing until its minute comes.
 *
 * A release is idempotent by message id: a message is appended to the buffer, then no longer
 * held. A holder that dies in between leaves it held; the next one finds it already in the
 * buffer (by id) and only stops holding it. Nothing is appended twice.
 *
 * The cursor is kept in the store (a watermark), so a new holder (a restart, a failover)
 * starts where the previous one was, however long ago: messages due meanwhile go out at once.
 */
import type { Logger } from '@omnibus/sdk';
import type { Metrics } from '../metrics.ts';
import type { Message, NewMessageEvent, ScheduledMessage, Store } from '../store/port.ts';
import { decideFallback } from './fallback.ts';
import { HeldLease } from './lease.ts';
import { SCHEDULED_SIGNAL, type Producer } from './producer.ts';
import type { ShardSignals } from './signals.ts';

export const SCHEDULER_LEASE = 'scheduler';
/** Where the cursor is kept: every held message due before it (less the overlap) has been released. */
export const SCHEDULER_WATERMARK = { consumer: 'omnibus.scheduler', topic: '', shard: 0 } as const;
/** A store with no cursor yet (no scheduler ever ran on it) is read from this long ago. */
const FIRST_LOOKBACK_MS = 60 * 60_000;
/** The cursor is written back at most this often while messages are released… */
const CURSOR_WRITE_MS = 1000;
/** …and this often while none is: a new holder then re-reads at most this much of an empty span. */
const IDLE_CURSOR_WRITE_MS = 60_000;

export interface SchedulerOptions {
  store: Store;
  producer: Pick<Producer, 'releaseScheduled'>;
  /** Where produces announce held messages (SCHEDULED_SIGNAL). */
  signals?: ShardSignals;
  workerId: string;
  leaseTtlMs: number;
  logger: Logger;
  /** Counts the fallbacks it decides (omnibus_fallbacks_total). */
  metrics?: Pick<Metrics, 'fallbacks'>;
  /** The clock that says what is due (tests inject one). */
  clock?: () => number;
  /** Held messages read and released per step. */
  pageSize?: number;
  /** How far behind its cursor each pass reads again (ms): covers produces on a worker whose clock is behind. */
  overlapMs?: number;
  /** Longest sleep between passes while nothing is due (ms): the safety net for a lost wake-up. */
  idlePollMs?: number;
}

export const DEFAULT_SCHEDULER = { pageSize: 500, overlapMs: 2000, idlePollMs: 10_000 } as const;

export class Scheduler {
  private readonly lease: HeldLease;
  private readonly clock: () => number;
  private readonly settings: { pageSize: number; overlapMs: number; idlePollMs: number };
  private cursor: number | undefined;
  private writtenCursor = 0;
  private releasedSinceWrite = false;
  private lastRenewAt = 0;
  private lastAcquireAt = -Infinity;
  private timer: NodeJS.Timeout | undefined;
  private running: Promise<void> | undefined;
  private rerun = false;
  private stopped = true;
  private unsubscribe: (() => void) | undefined;
  /** Messages released by this worker (tests and the bench read it). */
  released = 0;

  constructor(private readonly options: SchedulerOptions) {
    this.clock = options.clock ?? Date.now;
    this.settings = {
      pageSize: options.pageSize ?? DEFAULT_SCHEDULER.pageSize,
      overlapMs: options.overlapMs ?? DEFAULT_SCHEDULER.overlapMs,
      idlePollMs: options.idlePollMs ?? DEFAULT_SCHEDULER.idlePollMs,
    };
    this.lease = new HeldLease(options.store, SCHEDULER_LEASE, options.workerId, options.leaseTtlMs, Math.ceil(options.leaseTtlMs / 3));
  }

  /** Whether this worker holds the scheduler's lease now. */
  get holding(): boolean {
    return this.lease.held;
  }

  start(): void {
    if (!this.stopped) return;
    this.stopped = false;
    this.unsubscribe = this.options.signals?.subscribe(SCHEDULED_SIGNAL.topic, SCHEDULED_SIGNAL.shard, () => this.wake());
    this.wake();
  }

  /** Runs a pass now (or right after the one running). */
  wake(): void {
    if (this.stopped) return;
    if (this.running) {
      this.rerun = true;
      return;
    }
    clearTimeout(this.timer);
    this.timer = undefined;
    this.running = this.pass()
      .catch((error: unknown) => {
        this.options.logger.warn({ err: error }, 'the scheduler pass failed; retrying');
        return 1000;
      })
      .then((sleepMs) => {
        this.running = undefined;
        if (this.stopped) return;
        if (this.rerun) {
          this.rerun = false;
          this.wake();
          return;
        }
        this.timer = setTimeout(() => this.wake(), Math.max(0, sleepMs));
        this.timer.unref();
      });
  }

  async stop(): Promise<void> {
    this.stopped = true;
    this.unsubscribe?.();
    clearTimeout(this.timer);
    await this.running;
    await this.lease.release().catch(() => undefined);
  }

  /** One pass; resolves with how long to sleep before the next. */
  private async pass(): Promise<number> {
    const { store } = this.options;
    const retryMs = Math.ceil(this.options.leaseTtlMs / 3);
    if (!this.lease.held) {
      this.cursor = undefined;
      // Wake-ups come with every held produce: a worker without the lease tries for it at its own pace.
      // The lease can change hands only once it expires: trying twice per TTL is enough.
      const acquireEveryMs = Math.ceil(this.options.leaseTtlMs / 2);
      const sinceAttempt = Date.now() - this.lastAcquireAt;
      if (sinceAttempt < acquireEveryMs) return acquireEveryMs - sinceAttempt;
      this.lastAcquireAt = Date.now();
      if (!(await this.lease.acquire())) return acquireEveryMs;
      this.lastRenewAt = Date.now();
      this.options.logger.info({ epoch: this.lease.epoch }, 'this worker runs the scheduler');
    } else if (Date.now() - this.lastRenewAt >= retryMs) {
      const renewed = await this.lease.renew();
      if (renewed === 'lost') return retryMs;
      if (renewed === 'renewed') this.lastRenewAt = Date.now();
    }
    if (!this.lease.safe()) return 250;
    if (this.cursor === undefined) {
      const { consumer, topic, shard } = SCHEDULER_WATERMARK;
      this.cursor = (await store.getWatermark(consumer, topic, shard)) ?? this.clock() - FIRST_LOOKBACK_MS;
      this.writtenCursor = this.cursor;
    }
    const { pageSize, overlapMs, idlePollMs } = this.settings;
    let next: ScheduledMessage | undefined;
    for (;;) {
      // One read gives what is due and, after it, the next due time within the idle poll.
      const now = this.clock();
      const page = await store.readDueScheduled(this.cursor - overlapMs, now + idlePollMs, pageSize);
      const due = page.filter((e) => e.dueAt <= now);
      if (due.length > 0) {
        if (!this.lease.safe()) return 250;
        await this.release(due, now);
        this.releasedSinceWrite = true;
      }
      if (due.length < pageSize) {
        this.cursor = Math.max(this.cursor, now);
        next = page[due.length];
        break;
      }
      this.cursor = Math.max(this.cursor, due.at(-1)!.dueAt);
      // Renewals keep pace on a long backlog.
      if (Date.now() - this.lastRenewAt >= retryMs) return 0;
    }
    const advanced = this.cursor - this.writtenCursor;
    if ((this.releasedSinceWrite && advanced >= CURSOR_WRITE_MS) || advanced >= IDLE_CURSOR_WRITE_MS) {
      const { consumer, topic, shard } = SCHEDULER_WATERMARK;
      await store.setWatermark(consumer, topic, shard, this.cursor);
      this.writtenCursor = this.cursor;
      this.releasedSinceWrite = false;
    }
    const untilRenewal = this.lastRenewAt + retryMs - Date.now();
    return Math.min(next ? next.dueAt - this.clock() : idlePollMs, Math.max(0, untilRenewal));
  }

  private async release(due: ScheduledMessage[], now: number): Promise<void> {
    const { store, producer, workerId } = this.options;
    const ids = due.map((e) => e.message.id);
    const inBuffer = await store.locateMessages(ids, [...new Set(due.map((e) => e.message.topic))]);
    const pending = due.filter((e) => !inBuffer.has(e.message.id));
    const events: NewMessageEvent[] = [];
    const dropped = new Set<string>();
    const toAppend = await this.withoutCancelledFallbacks(pending, now, events, dropped);
    const appended = await producer.releaseScheduled(toAppend);
    this.released += appended.length;
    const byId = new Map(due.map((e) => [e.message.id, e]));
    for (const m of appended) {
      const entry = byId.get(m.id)!;
      events.push({ messageId: m.id, topic: m.topic, at: now, type: 'released', workerId, detail: { send_at: entry.dueAt, reason: entry.reason, epoch: this.lease.epoch } });
      if (entry.fallback) {
        const { of, topic } = entry.fallback;
        events.push({ messageId: of, topic, at: now, type: 'fallback', workerId, detail: { fallback_id: m.id, fallback_topic: m.topic } });
      }
    }
    if (events.length > 0) await store.appendEvents(events);
    await store.removeScheduled(due.map((e) => ({ id: e.message.id, dueAt: e.dueAt })));
    this.countFallbacks(due, appended, events, dropped);
  }

  /** Fallbacks decided in a pass: produced (appended now), cancelled (their event), dropped (neither). */
  private countFallbacks(due: ScheduledMessage[], appended: readonly Message[], events: readonly NewMessageEvent[], dropped: ReadonlySet<string>): void {
    const counter = this.options.metrics?.fallbacks;
    if (!counter) return;
    const produced = new Set(appended.map((m) => m.id));
    const cancelled = new Set(events.filter((e) => e.type === 'fallback_cancelled').map((e) => e.detail?.fallback_id));
    for (const entry of due) {
      if (!entry.fallback) continue;
      const { id, topic } = entry.message;
      // One already in the buffer (released by an earlier holder) was counted there.
      const outcome = produced.has(id) ? 'produced' : cancelled.has(id) ? 'cancelled' : dropped.has(id) ? 'dropped' : undefined;
      if (outcome) counter.inc({ topic, outcome });
    }
  }

  /** The entries to append: all but the fallbacks whose originals cancel them (their events added to `events`) or were never stored (added to `dropped`). */
  private async withoutCancelledFallbacks(entries: ScheduledMessage[], now: number, events: NewMessageEvent[], dropped: Set<string>): Promise<ScheduledMessage[]> {
    if (!entries.some((e) => e.fallback)) return entries;
    const { store, workerId } = this.options;
    const connectors = await store.listConnectors();
    const sinksOf = (topic: string) =>
      connectors.filter((c) => (c.config.topics ?? '').split(',').some((t) => t.trim() === topic)).map((c) => c.name);
    const out: ScheduledMessage[] = [];
    for (const entry of entries) {
      if (!entry.fallback) {
        out.push(entry);
        continue;
      }
      const decision = await decideFallback(store, entry.fallback, sinksOf);
      if (decision.release) out.push(entry);
      else if (decision.why === 'cancelled') {
        const { of, topic } = entry.fallback;
        events.push({ messageId: of, topic, at: now, type: 'fallback_cancelled', workerId, detail: { fallback_id: entry.message.id, state: decision.state, connector: decision.connector } });
      } else {
        dropped.add(entry.message.id);
        this.options.logger.debug({ fallback: entry.message.id }, 'a fallback whose original was never stored is dropped');
      }
    }
    return out;
  }
}
