// The browser's reader of GET /metrics, against the text exposition format as prom-client writes it.
import { describe, expect, it } from 'vitest';
import { histogramMean, maxBy, parsePrometheus, rates, sumBy } from '../app/prometheus.ts';

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
});
