// The browser's reader of GET /metrics, against the text exposition format as prom-client writes it.
import { describe, expect, it } from 'vitest';
import { histogramMean, histogramQuantile, maxBy, parsePrometheus, rates, sumBy } from '../app/prometheus.ts';

const EXPOSITION = `# HELP sent_total sent
# TYPE sent_total counter
sent_total{connector="mail"} 3
sent_total{connector="odd \\"name\\"\\\\x"} 2

# HELP latency_seconds latency
# TYPE latency_seconds histogram
latency_seconds_bucket{le="0.1"} 1
latency_seconds_bucket{le="1"} 2
latency_seconds_bucket{le="+Inf"} 2
latency_seconds_sum 0.55
latency_seconds_count 2
up 1 1700000000000
`;

describe('parsePrometheus', () => {
  it('reads samples, labels with escapes, and timestamps', () => {
    const samples = parsePrometheus(EXPOSITION);
    expect(sumBy(samples, 'sent_total', 'connector')).toEqual(new Map([['mail', 3], ['odd "name"\\x', 2]]));
    expect(samples.find((s) => s.name === 'latency_seconds_bucket' && s.labels.le === '+Inf')?.value).toBe(2);
    expect(sumBy(samples, 'latency_seconds_count').get('')).toBe(2);
    expect(sumBy(samples, 'up').get('')).toBe(1);
    expect(samples.filter((s) => s.name.startsWith('#'))).toEqual([]);
  });

  it('turns two readings into rates, means and maxima', () => {
    const before = parsePrometheus('a_total{k="x"} 10\na_total{k="y"} 5\nh_sum 1\nh_count 2\n');
    const after = parsePrometheus('# HELP a_total a\na_total{k="x"} 30\na_total{k="y"} 1\nh_sum 4\nh_count 5\nlag{c="p",shard="0"} 7\nlag{c="p",shard="1"} 9\n');
    // y went down: a restarted worker; its new value is what it counted since.
    expect(rates(sumBy(before, 'a_total', 'k'), sumBy(after, 'a_total', 'k'), 2)).toEqual(new Map([['x', 10], ['y', 0.5]]));
    expect(histogramMean(before, after, 'h')).toBe(1);
    expect(histogramMean(after, after, 'h')).toBeUndefined();
    expect(maxBy(after, 'lag', 'c')).toEqual(new Map([['p', 9]]));
  });

  it('estimates a quantile from the bucket deltas of two readings, over every matching series', () => {
    const reading = (fast: number, slow: number, inf: number) =>
      parsePrometheus(
        ['a', 'b']
          .map((c) => `h_bucket{connector="${c}",le="0.1"} ${fast}\nh_bucket{connector="${c}",le="1"} ${slow}\nh_bucket{connector="${c}",le="+Inf"} ${inf}`)
          .join('\n'),
      );
    const before = reading(10, 10, 10);
    // Per series 90 more under 0.1 s, 10 between 0.1 and 1 s: 200 in all, 180 of them fast.
    const after = reading(100, 110, 110);
    expect(histogramQuantile(before, after, 'h', 0.5)).toBeCloseTo(0.1 * (100 / 180));
    expect(histogramQuantile(before, after, 'h', 0.99)).toBeCloseTo(0.1 + 0.9 * (18 / 20));
    expect(histogramQuantile(before, after, 'h', 0.5, { connector: 'a' })).toBeCloseTo(0.1 * (50 / 90));
    expect(histogramQuantile(after, after, 'h', 0.5)).toBeUndefined();
    // Beyond the last finite bound: that bound.
    expect(histogramQuantile(reading(0, 0, 0), reading(0, 0, 4), 'h', 0.5)).toBe(1);
  });
});
