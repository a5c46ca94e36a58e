import { describe, expect, it } from 'vitest';
import { CATCH_UP_MAX_FACTOR, GROW_BELOW_ROWS, SHRINK_ABOVE_ROWS, nextWindowSize, planWindow, type WindowSettings } from './windows.ts';

const settings: WindowSettings = { windowMs: 1_000, confidenceMs: 500, minimalWaitMs: 0 };
const T = 1_000_000;

describe('planWindow', () => {
  it('reads a window only once now is past its end plus the confidence window', () => {
    const cursor = { startMs: T, sizeMs: 1_000, lastReadAtMs: null };
    expect(planWindow(cursor, undefined, T + 1_499, settings)).toEqual({ kind: 'wait', readyAtMs: T + 1_500 });
    expect(planWindow(cursor, undefined, T + 1_500, settings)).toEqual({ kind: 'read', startMs: T, endMs: T + 1_000 });
  });

  it('never crosses the end of the generation, and finishes there', () => {
    const cursor = { startMs: T, sizeMs: 1_000, lastReadAtMs: null };
    expect(planWindow(cursor, T + 300, T + 10_000, settings)).toEqual({ kind: 'read', startMs: T, endMs: T + 300 });
    expect(planWindow({ ...cursor, startMs: T + 300 }, T + 300, T + 10_000, settings)).toEqual({ kind: 'finished' });
  });

  it('honours the minimal wait between two reads of a vnode', () => {
    const cursor = { startMs: T, sizeMs: 1_000, lastReadAtMs: T + 5_000 };
    const slow = { ...settings, minimalWaitMs: 2_000 };
    expect(planWindow(cursor, undefined, T + 6_000, slow)).toEqual({ kind: 'wait', readyAtMs: T + 7_000 });
    expect(planWindow(cursor, undefined, T + 7_000, slow).kind).toBe('read');
  });

  it('a grown window ends where reading is safe now, rather than waiting', () => {
    const cursor = { startMs: T, sizeMs: 16_000, lastReadAtMs: null };
    expect(planWindow(cursor, undefined, T + 5_500, settings)).toEqual({ kind: 'read', startMs: T, endMs: T + 5_000 });
    expect(planWindow(cursor, undefined, T + 100_000, settings)).toEqual({ kind: 'read', startMs: T, endMs: T + 16_000 });
  });
});

describe('nextWindowSize', () => {
  it('doubles while far behind and sparse, up to the cap', () => {
    let size = settings.windowMs;
    const sizes: number[] = [];
    for (let i = 0; i < 10; i++) {
      size = nextWindowSize(size, 10, T, T + 10_000_000, settings);
      sizes.push(size);
    }
    expect(sizes.slice(0, 3)).toEqual([2_000, 4_000, 8_000]);
    expect(sizes.at(-1)).toBe(settings.windowMs * CATCH_UP_MAX_FACTOR);
  });

  it('does not grow a dense window, and halves a very dense one', () => {
    expect(nextWindowSize(8_000, GROW_BELOW_ROWS, T, T + 10_000_000, settings)).toBe(8_000);
    expect(nextWindowSize(8_000, SHRINK_ABOVE_ROWS, T, T + 10_000_000, settings)).toBe(4_000);
    expect(nextWindowSize(1_000, SHRINK_ABOVE_ROWS, T, T + 10_000_000, settings)).toBe(1_000);
  });

  it('returns to the base size once caught up', () => {
    expect(nextWindowSize(32_000, 0, T, T + 1_000, settings)).toBe(settings.windowMs);
  });
});
