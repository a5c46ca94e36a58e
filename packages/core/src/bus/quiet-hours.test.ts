import { describe, expect, it } from 'vitest';
import { parseQuietHours, quietHoursEnd } from './quiet-hours.ts';

const paris = { start: '21:00', end: '08:00', timeZone: 'Europe/Paris' };
const at = (iso: string) => Date.parse(iso);

describe('quiet hours', () => {
  it('a window wrapping midnight: inside before and after midnight ends at the next end; outside is undefined', () => {
    // 22:30 in Paris in winter (UTC+1) → 08:00 the next morning, 07:00Z.
    expect(quietHoursEnd(paris, at('2026-01-15T21:30:00Z'))).toBe(at('2026-01-16T07:00:00Z'));
    // 03:00 in Paris → 08:00 the same day.
    expect(quietHoursEnd(paris, at('2026-01-16T02:00:00Z'))).toBe(at('2026-01-16T07:00:00Z'));
    // 21:00 exactly is inside, 08:00 exactly is outside.
    expect(quietHoursEnd(paris, at('2026-01-15T20:00:00Z'))).toBe(at('2026-01-16T07:00:00Z'));
    expect(quietHoursEnd(paris, at('2026-01-16T07:00:00Z'))).toBeUndefined();
    expect(quietHoursEnd(paris, at('2026-01-16T12:00:00Z'))).toBeUndefined();
  });

  it('follows daylight saving: in summer Paris is UTC+2', () => {
    expect(quietHoursEnd(paris, at('2026-07-15T20:00:00Z'))).toBe(at('2026-07-16T06:00:00Z'));
    // The night the clocks go forward (29 March 2026): 08:00 CEST is 06:00Z.
    expect(quietHoursEnd(paris, at('2026-03-28T22:00:00Z'))).toBe(at('2026-03-29T06:00:00Z'));
    // And back (25 October 2026): 08:00 CET is 07:00Z.
    expect(quietHoursEnd(paris, at('2026-10-24T22:00:00Z'))).toBe(at('2026-10-25T07:00:00Z'));
  });

  it('a window within one day, in a zone west of UTC', () => {
    const lunch = { start: '12:00', end: '14:00', timeZone: 'America/New_York' };
    expect(quietHoursEnd(lunch, at('2026-01-15T17:30:00Z'))).toBe(at('2026-01-15T19:00:00Z'));
    expect(quietHoursEnd(lunch, at('2026-01-15T19:00:00Z'))).toBeUndefined();
    expect(quietHoursEnd(lunch, at('2026-01-15T16:59:00Z'))).toBeUndefined();
  });

  it('parses the JSON shape and names each bad field', () => {
    expect(parseQuietHours({ start: '21:00', end: '08:00', time_zone: 'Europe/Paris' }, 'quiet_hours')).toEqual(paris);
    expect(parseQuietHours({ start: '25:00', end: '8:00', time_zone: 'Mars/Olympus', extra: 1 }, 'quiet_hours')).toEqual([
      { field: 'quiet_hours.extra', message: expect.any(String) },
      { field: 'quiet_hours.start', message: expect.any(String) },
      { field: 'quiet_hours.end', message: expect.any(String) },
      { field: 'quiet_hours.time_zone', message: expect.any(String) },
    ]);
    expect(parseQuietHours({ start: '09:00', end: '09:00', time_zone: 'UTC' }, 'q')).toEqual([{ field: 'q.end', message: 'must differ from start' }]);
    expect(parseQuietHours('21-08', 'quiet_hours')).toEqual([{ field: 'quiet_hours', message: expect.any(String) }]);
  });
});
