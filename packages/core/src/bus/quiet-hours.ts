/**
 * Quiet hours: a daily window, in the recipient's time zone, during which a message is not
 * sent; one produced inside it is held until the window ends (bus/scheduler.ts).
 *
 * Shape (a produce item's `quiet_hours`, or a topic's): `{"start": "21:00", "end": "08:00",
 * "time_zone": "Europe/Paris"}`: 24-hour `HH:MM` wall-clock times, `start` inclusive, `end`
 * exclusive, the window wrapping midnight when `end` is before `start`; `time_zone` an IANA
 * zone name, resolved by the runtime's own Intl data (daylight saving included). A wall time
 * that a clock change skips (02:30 on a spring-forward night) ends the window at the first
 * instant after the gap.
 */
import type { QuietHours } from '../store/port.ts';

const HH_MM = /^([01]\d|2[0-3]):([0-5]\d)$/;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

/** Formatters per zone: building one costs far more than using it. */
const formatters = new Map<string, Intl.DateTimeFormat>();

function formatterFor(timeZone: string): Intl.DateTimeFormat | undefined {
  let formatter = formatters.get(timeZone);
  if (!formatter) {
    try {
      formatter = new Intl.DateTimeFormat('en-US', {
        timeZone,
        hourCycle: 'h23',
        year: 'numeric',
        month: 'numeric',
        day: 'numeric',
        hour: 'numeric',
        minute: 'numeric',
        second: 'numeric',
      });
    } catch {
      return undefined;
    }
    if (formatters.size > 1000) formatters.clear();
    formatters.set(timeZone, formatter);
  }
  return formatter;
}

/** Quiet hours from JSON, or the problems by field (under `field`, e.g. `quiet_hours.time_zone`). */
export function parseQuietHours(raw: unknown, field: string): QuietHours | Array<{ field: string; message: string }> {
  if (!isObject(raw)) return [{ field, message: 'must be an object {start: "HH:MM", end: "HH:MM", time_zone: "Area/City"}' }];
  const problems: Array<{ field: string; message: string }> = [];
  for (const name of Object.keys(raw)) {
    if (!['start', 'end', 'time_zone'].includes(name)) problems.push({ field: `${field}.${name}`, message: 'is not a field of quiet hours (start, end, time_zone)' });
  }
  const { start, end, time_zone: timeZone } = raw;
  if (typeof start !== 'string' || !HH_MM.test(start)) problems.push({ field: `${field}.start`, message: 'must be a 24-hour time HH:MM (e.g. 21:00)' });
  if (typeof end !== 'string' || !HH_MM.test(end)) problems.push({ field: `${field}.end`, message: 'must be a 24-hour time HH:MM (e.g. 08:00)' });
  else if (end === start) problems.push({ field: `${field}.end`, message: 'must differ from start' });
  if (typeof timeZone !== 'string' || timeZone.length === 0 || !formatterFor(timeZone)) {
    problems.push({ field: `${field}.time_zone`, message: 'must be an IANA time zone name (e.g. Europe/Paris)' });
  }
  if (problems.length > 0) return problems;
  return { start: start as string, end: end as string, timeZone: timeZone as string };
}

interface WallTime {
  year: number;
  month: number;
  day: number;
  minutes: number;
}

function wallTime(at: number, timeZone: string): WallTime {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone)!.formatToParts(at)) if (part.type !== 'literal') parts[part.type] = Number(part.value);
  return { year: parts.year!, month: parts.month!, day: parts.day!, minutes: parts.hour! * 60 + parts.minute! };
}

/** How far the zone's wall clock is ahead of UTC at `at` (ms). */
function offsetAt(at: number, timeZone: string): number {
  const parts: Record<string, number> = {};
  for (const part of formatterFor(timeZone)!.formatToParts(at)) if (part.type !== 'literal') parts[part.type] = Number(part.value);
  const asUtc = Date.UTC(parts.year!, parts.month! - 1, parts.day!, parts.hour!, parts.minute!, parts.second!);
  return asUtc - Math.floor(at / 1000) * 1000;
}

/** The instant a wall-clock time of a local date shows in the zone (the first after it, in a gap). */
function instantOf(year: number, month: number, day: number, minutes: number, timeZone: string): number {
  const local = Date.UTC(year, month - 1, day, Math.floor(minutes / 60), minutes % 60);
  // Two rounds settle the offset, even across a change on that day.
  let guess = local - offsetAt(local, timeZone);
  guess = local - offsetAt(guess, timeZone);
  return guess;
}

const toMinutes = (hhmm: string) => Number(hhmm.slice(0, 2)) * 60 + Number(hhmm.slice(3, 5));

/** When the quiet hours around `at` end, or undefined when `at` is outside them. */
export function quietHoursEnd(quiet: QuietHours, at: number): number | undefined {
  const start = toMinutes(quiet.start);
  const end = toMinutes(quiet.end);
  const now = wallTime(at, quiet.timeZone);
  const wraps = end < start;
  const inside = wraps ? now.minutes >= start || now.minutes < end : now.minutes >= start && now.minutes < end;
  if (!inside) return undefined;
  // The end is today unless the window started today and wraps past midnight.
  const nextDay = wraps && now.minutes >= start;
  const date = new Date(Date.UTC(now.year, now.month - 1, now.day + (nextDay ? 1 : 0)));
  const endsAt = instantOf(date.getUTCFullYear(), date.getUTCMonth() + 1, date.getUTCDate(), end, quiet.timeZone);
  return endsAt > at ? endsAt : at;
}
