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

export class UnreadCount {
  /** Entries counted past the read position and not read since. */
  private unread = 0;
  /** Entries with ts up to this (inclusive) have been counted; the next count starts after it. */
  private countedTo = -Infinity;
  private behind = false;
  private countedAt = -Infinity;
  private counting = false;

  constructor(
    private readonly scan: Scan,
    private readonly options: ShardBacklogOptions = DEFAULT_SHARD_BACKLOG_OPTIONS,
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
   * it handed over for the first time.
   */
  afterHotRead(full: boolean, readFrom: number, taken: readonly number[]): void {
    if (!full) {
      this.behind = false;
      this.unread = 0;
      this.countedTo = readFrom;
      return;
    }
    if (!this.behind) {
      // A backlog begins: what lies past this read is counted from here.
      this.behind = true;
      this.unread = 0;
      this.countedTo = readFrom;
      this.countedAt = -Infinity;
      return;
    }
    let counted = 0;
    for (const ts of taken) if (ts <= this.countedTo) counted++;
    this.unread = Math.max(0, this.unread - counted);
    this.passed(readFrom);
  }

  /** The read position went past the counted range: everything counted has been read. */
  private passed(readFrom: number): void {
    if (readFrom <= this.countedTo) return;
    this.unread = 0;
    this.countedTo = readFrom;
  }

  /**
   * Counts what arrived past the counted range, up to `toTs`, when behind (or when `assumeBehind`:
   * a paused consumer reads nothing, yet its shard fills) and the last count is old enough.
   */
  async refresh(now: number, toTs: number, readFrom: number, assumeBehind = false): Promise<void> {
    if (this.counting || (!this.behind && !assumeBehind) || now - this.countedAt < this.options.countEveryMs) return;
    if (!this.behind) {
      this.behind = true;
      this.unread = 0;
      this.countedTo = readFrom;
    }
    this.passed(readFrom);
    this.counting = true;
    this.countedAt = now;
    try {
      let limit = this.options.countPageLimit;
      for (let page = 0; page < this.options.countPagesPerRound && this.countedTo < toTs; page++) {
        const positions = await this.scan(this.countedTo + 1, toTs, limit);
        if (positions.length < limit) {
          this.unread += positions.length;
          this.countedTo = toTs;
          break;
        }
        // A full page: count what lies before its last millisecond, and go on from that millisecond
        // (paging is by time). A page all of one millisecond is read again, larger.
        const lastTs = positions[positions.length - 1]!.ts;
        let before = positions.length;
        while (before > 0 && positions[before - 1]!.ts === lastTs) before--;
        if (before === 0) {
          limit *= 4;
          continue;
        }
        this.unread += before;
        this.countedTo = lastTs - 1;
      }
    } finally {
      this.counting = false;
    }
  }
}
