/**
 * A reader of the Prometheus text exposition format (what GET /metrics answers), enough for
 * the control center's charts: samples with their labels; comments and timestamps ignored.
 */

export interface Sample {
  name: string;
  labels: Record<string, string>;
  value: number;
}

const SAMPLE = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(?:\{(.*)\})?\s+(\S+)/;
const LABEL = /([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"/g;

export function parsePrometheus(text: string): Sample[] {
  const samples: Sample[] = [];
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const match = SAMPLE.exec(line);
    if (!match) continue;
    const labels: Record<string, string> = {};
    for (const [, name, raw] of (match[2] ?? '').matchAll(LABEL)) {
      labels[name!] = raw!.replace(/\\(.)/g, (_, c: string) => (c === 'n' ? '\n' : c));
    }
    const value = Number(match[3] === '+Inf' ? Infinity : match[3] === '-Inf' ? -Infinity : match[3]);
    samples.push({ name: match[1]!, labels, value });
  }
  return samples;
}

/** Sum of the samples of a metric whose labels include `where`, grouped by one label (or all under ''). */
export function sumBy(samples: readonly Sample[], name: string, by?: string, where: Record<string, string> = {}): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name) continue;
    if (Object.entries(where).some(([k, v]) => s.labels[k] !== v)) continue;
    const key = by ? (s.labels[by] ?? '') : '';
    out.set(key, (out.get(key) ?? 0) + s.value);
  }
  return out;
}

export function maxBy(samples: readonly Sample[], name: string, by?: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const s of samples) {
    if (s.name !== name) continue;
    const key = by ? (s.labels[by] ?? '') : '';
    out.set(key, Math.max(out.get(key) ?? -Infinity, s.value));
  }
  return out;
}

/** Per-second rates between two readings of counters (a counter that went down was reset: its new value counts). */
export function rates(before: Map<string, number>, after: Map<string, number>, seconds: number): Map<string, number> {
  const out = new Map<string, number>();
  if (seconds <= 0) return out;
  for (const [key, value] of after) {
    const previous = before.get(key) ?? 0;
    out.set(key, (value >= previous ? value - previous : value) / seconds);
  }
  return out;
}

/** Mean of a histogram over an interval, from its _sum and _count deltas; undefined when nothing was observed. */
export function histogramMean(before: readonly Sample[], after: readonly Sample[], name: string, where: Record<string, string> = {}): number | undefined {
  const total = (samples: readonly Sample[], suffix: string) => sumBy(samples, `${name}${suffix}`, undefined, where).get('') ?? 0;
  const count = total(after, '_count') - total(before, '_count');
  if (count <= 0) return undefined;
  return (total(after, '_sum') - total(before, '_sum')) / count;
}

/**
 * A quantile (0..1) of what a histogram observed between two readings, from its cumulative
 * `_bucket` deltas summed over the series matching `where`, interpolated linearly inside the
 * bucket it falls in (as Prometheus's histogram_quantile). Undefined when nothing was observed;
 * the highest finite bound when it falls in the +Inf bucket.
 */
export function histogramQuantile(
  before: readonly Sample[],
  after: readonly Sample[],
  name: string,
  quantile: number,
  where: Record<string, string> = {},
): number | undefined {
  const cumulative = (samples: readonly Sample[]) => sumBy(samples, `${name}_bucket`, 'le', where);
  const earlier = cumulative(before);
  const buckets = [...cumulative(after)]
    .map(([le, count]) => ({ le: le === '+Inf' ? Infinity : Number(le), count: count - (earlier.get(le) ?? 0) }))
    .sort((a, b) => a.le - b.le);
  const total = buckets[buckets.length - 1]?.count ?? 0;
  if (total <= 0) return undefined;
  const rank = quantile * total;
  let lowerBound = 0;
  let lowerCount = 0;
  for (const { le, count } of buckets) {
    if (count >= rank) {
      if (le === Infinity) return lowerBound;
      return lowerBound + ((le - lowerBound) * (rank - lowerCount)) / Math.max(1, count - lowerCount);
    }
    lowerBound = le;
    lowerCount = count;
  }
  return lowerBound;
}
