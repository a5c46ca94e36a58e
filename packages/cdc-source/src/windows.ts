/**
 * Window planning for one vnode's streams, after scylla-cdc-java's TaskAction: a window
 * `[start, end)` of write times is read once every node's clock has certainly passed its end
 * (`now ≥ end + confidence`), so that no write with a timestamp inside it can still arrive.
 *
 * Catching up (a cold start with a long lookback, a connector that was stopped) would take
 * one query per base-size window (scylla-cdc-source-connector#15, scylla-cdc-java#1), so the
 * window doubles while it keeps ending far behind `now − confidence` and stays sparse, up to
 * {@link CATCH_UP_MAX_FACTOR} × the base size; a dense window halves it again, and once caught
 * up the base size comes back, so that latency stays low.
 */

export interface WindowSettings {
  /** `scylla.query.time.window.size`: the base window length, ms. */
  windowMs: number;
  /** `scylla.confidence.window.size`: how far behind `now` a window must end before it is read, ms. */
  confidenceMs: number;
  /** `scylla.minimal.wait.for.window.time`: the least time between two reads of one vnode, ms. */
  minimalWaitMs: number;
}

export const CATCH_UP_MAX_FACTOR = 64;
/** A window with fewer rows may grow while catching up. */
export const GROW_BELOW_ROWS = 2_000;
/** A window with this many rows or more shrinks. */
export const SHRINK_ABOVE_ROWS = 20_000;

export interface WindowCursor {
  /** Start of the next window, ms since the epoch. */
  startMs: number;
  /** Length of the next window, ms. */
  sizeMs: number;
  /** When this vnode was last read (ms), for the minimal wait. */
  lastReadAtMs: number | null;
}

export type WindowPlan =
  | { kind: 'finished' }
  | { kind: 'wait'; readyAtMs: number }
  | { kind: 'read'; startMs: number; endMs: number };

/**
 * What to do next for one vnode of one generation. `generationEndMs` is the start of the next
 * generation, once it is known; a window never crosses it.
 */
export function planWindow(cursor: WindowCursor, generationEndMs: number | undefined, nowMs: number, settings: WindowSettings): WindowPlan {
  if (generationEndMs !== undefined && cursor.startMs >= generationEndMs) return { kind: 'finished' };
  const horizon = nowMs - settings.confidenceMs;
  let endMs = cursor.startMs + Math.max(1, cursor.sizeMs);
  // A grown window never waits: it ends where reading is already safe.
  if (cursor.sizeMs > settings.windowMs) endMs = Math.min(endMs, Math.max(cursor.startMs + settings.windowMs, horizon));
  if (generationEndMs !== undefined) endMs = Math.min(endMs, generationEndMs);
  const readyAtMs = Math.max(endMs + settings.confidenceMs, cursor.lastReadAtMs === null ? -Infinity : cursor.lastReadAtMs + settings.minimalWaitMs);
  if (nowMs < readyAtMs) return { kind: 'wait', readyAtMs };
  return { kind: 'read', startMs: cursor.startMs, endMs };
}

/** The length of the window after one that read `rowsRead` rows and ended at `nextStartMs`. */
export function nextWindowSize(sizeMs: number, rowsRead: number, nextStartMs: number, nowMs: number, settings: WindowSettings): number {
  const base = settings.windowMs;
  const behindMs = nowMs - settings.confidenceMs - nextStartMs;
  if (rowsRead >= SHRINK_ABOVE_ROWS) return Math.max(base, Math.floor(sizeMs / 2));
  if (behindMs < 2 * base) return base;
  if (behindMs >= 2 * sizeMs && rowsRead < GROW_BELOW_ROWS) return Math.min(base * CATCH_UP_MAX_FACTOR, sizeMs * 2);
  return Math.max(base, sizeMs);
}
