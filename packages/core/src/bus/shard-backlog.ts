/**
 * What a consumer of one (topic, shard) has not finished: how many messages wait, and since
 * when the oldest has waited. Computed from what the consumer already knows, not by reading the
 * shard at every scrape:
 *
 * - messages read and not finished (queued, sending, retrying, held behind a retrying one of
 *   their key) are the consumer's tracked entries, counted and dated in memory;
 * - a consumer that keeps up (its last hot read was not full) has nothing unread: that is all;
 * - a consumer behind a backlog (its last hot read was full, or it is paused) has entries past
 *   its read position. Those are counted, positions only, each entry once: the count goes on
 *   from where the previous one stopped, and every entry the hot read then takes from the
 *   counted range is subtracted. So a backlog costs one count of what it held when it began and
 *   then of what arrives, at most every `countEveryMs`, in pages of `countPageLimit` positions,
 *   `countPagesPerRound` pages at a time (a backlog larger than a round is counted over several).
 *
 * A store that counts a range natively (LMDB: `countBuffer`) is asked for the whole range at
 * once, which decodes nothing; others give positions, page by page. A count is not awaited by the
 * read loop: hot reads may take entries of the range being counted meanwhile, and those are
 * subtracted when the count lands (a count overtaken by a reset of the range is dropped, and
 * the next round counts afresh).
 *
 * The oldest unread entry is not read either: it is no older than the read position, which is
 * what is given. Writes that land late below the counted range are not counted until they are
 * read; the count starts afresh whenever the consumer catches up.
 */
import type { MessagePosition } from '../store/port.ts';

export interface ShardBacklogOptions {
  /** Least time between two counts of a shard's unread entries (ms). */
  countEveryMs: number;
  /** Positions per count request. */
  countPageLimit: number;
  /** Count requests per round, at most. */
  countPagesPerRound: number;
}

export const DEFAULT_SHARD_BACKLOG_OPTIONS: ShardBacklogOptions = { countEveryMs: 1000, countPageLimit: 10_000, countPagesPerRound: 10 };

/** A shard's backlog as a consumer sees it. */
export interface Backlog {
  /** Messages not finished: read and waiting, or not read yet. */
  waiting: number;
  /** Time (ms since the epoch) of the oldest of them; undefined when none waits. */
  oldestTs: number | undefined;
}

type Scan = (fromTs: number, toTs: number, limit: number) => Promise<MessagePosition[]>;
type CountRange = (fromTs: number, toTs: number) => Promise<number>;

export class UnreadCount {
  /** Entries counted past the read position and not read since. */
  private unread = 0;
  /** Entries with ts up to this (inclusive) have been counted; the next count starts after it. */
  private countedTo = -Infinity;
  private behind = false;
  private countedAt = -Infinity;
  /** Bumped whenever the counted range starts afresh: a count begun before it is dropped. */
  private generation = 0;
  /** While a count runs: times of the entries hot reads took past `countedTo` (the count may include them). */
  private takenWhileCounting: number[] | undefined;
  /** The read position last given. */
  private readPosition = -Infinity;

  constructor(
    private readonly scan: Scan,
    private readonly options: ShardBacklogOptions = DEFAULT_SHARD_BACKLOG_OPTIONS,
    /** The store's native count of a range, when it has one. */
    private readonly countRange?: CountRange,
  ) {}

  /** Whether entries past the read position are known to wait. */
  get isBehind(): boolean {
    return this.behind;
  }

  get count(): number {
    return this.unread;
  }

  /**
   * After a hot read that started at `from` and left the read position at `readFrom`: `full`
   * when it stopped on its limit (more entries follow). `taken` are the times of the entries
   * it handed over for the first time (needed only when behind and full: see `isBehind`).
   */
  afterHotRead(full: boolean, readFrom: number, taken: readonly number[]): void {
    if (!full) {
      this.behind = false;
      this.restart(readFrom);
      return;
    }
    if (!this.behind) {
      // A backlog begins: what lies past this read is counted from here.
      this.behind = true;
      this.restart(readFrom);
      this.countedAt = -Infinity;
      return;
    }
    let counted = 0;
    for (const ts of taken) {
      if (ts <= this.countedTo) counted++;
      else this.takenWhileCounting?.push(ts);
    }
    this.unread = Math.max(0, this.unread - counted);
    this.passed(readFrom);
  }

  /** Nothing counted: the range starts after `readFrom`. */
  private restart(readFrom: number): void {
    this.unread = 0;
    this.countedTo = this.readPosition = readFrom;
    this.generation++;
  }

  /**
   * The read position went past the counted range: everything counted has been read. While a
   * count runs, the range it counts still starts where it did (what hot reads take of it is
   * subtracted when it lands, and the position is looked at again then).
   */
  private passed(readFrom: number): void {
    this.readPosition = readFrom;
    if (readFrom <= this.countedTo) return;
    if (this.takenWhileCounting) this.unread = 0;
    else this.restart(readFrom);
  }

  /** Whether `refresh` would count now: behind (or `assumeBehind`), no count running, and the last one old enough. */
  due(now: number, assumeBehind = false): boolean {
    return !this.takenWhileCounting && (this.behind || assumeBehind) && now - this.countedAt >= this.options.countEveryMs;
  }

  /**
   * Counts what arrived past the counted range, up to `toTs`, when behind (or when `assumeBehind`:
   * a paused consumer reads nothing, yet its shard fills) and the last count is old enough.
   */
  async refresh(now: number, toTs: number, readFrom: number, assumeBehind = false): Promise<void> {
    if (!this.due(now, assumeBehind)) return;
    if (!this.behind) {
      this.behind = true;
      this.restart(readFrom);
    }
    this.passed(readFrom);
    this.takenWhileCounting = [];
    this.countedAt = now;
    try {
      if (this.countRange) {
        const countRange = this.countRange;
        await this.add(async (from) => ({ entries: from > toTs ? 0 : await countRange(from, toTs), upTo: toTs }));
      } else await this.scanRound(toTs);
    } finally {
      this.takenWhileCounting = undefined;
    }
  }

  /** Counts positions page by page, `countPagesPerRound` at most. */
  private async scanRound(toTs: number): Promise<void> {
    let limit = this.options.countPageLimit;
    for (let page = 0; page < this.options.countPagesPerRound && this.countedTo < toTs; page++) {
      const added = await this.add(async (from) => {
        const positions = await this.scan(from, toTs, limit);
        if (positions.length < limit) return { entries: positions.length, upTo: toTs };
        // A full page: count what lies before its last millisecond, and go on from that millisecond
        // (paging is by time). A page all of one millisecond is read again, larger.
        const lastTs = positions[positions.length - 1]!.ts;
        let before = positions.length;
        while (before > 0 && positions[before - 1]!.ts === lastTs) before--;
        return before === 0 ? undefined : { entries: before, upTo: lastTs - 1 };
      });
      if (added === 'dropped') return;
      if (added === 'widen') limit *= 4;
    }
  }

  /**
   * Runs one count from past the counted range and adds what it found, less what hot reads took
   * of it meanwhile. `undefined` from the count: nothing could be counted (widen the page).
   */
  private async add(count: (fromTs: number) => Promise<{ entries: number; upTo: number } | undefined>): Promise<'added' | 'widen' | 'dropped'> {
    const generation = this.generation;
    const from = this.countedTo + 1;
    const result = await count(from);
    if (generation !== this.generation) return 'dropped';
    if (!result) return 'widen';
    const taken = this.takenWhileCounting!;
    let takenMeanwhile = 0;
    const later: number[] = [];
    for (const ts of taken) {
      if (ts > result.upTo) later.push(ts);
      else if (ts >= from) takenMeanwhile++;
    }
    this.takenWhileCounting = later;
    this.unread = Math.max(0, this.unread + result.entries - takenMeanwhile);
    this.countedTo = result.upTo;
    if (this.readPosition <= this.countedTo) return 'added';
    // Hot reads went past all of it meanwhile: it has been read.
    this.restart(this.readPosition);
    return 'dropped';
  }
}
