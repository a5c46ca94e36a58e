import { Chart, ErrorBox, type Series } from '../components.tsx';
import { useMetricsHistory, type MetricsReading } from '../hooks.ts';
import { histogramMean, histogramQuantile, maxBy, rates, sumBy } from '../prometheus.ts';

/** One series per label value of a counter's rate, over the kept readings. */
function rateSeries(readings: MetricsReading[], metric: string, by: string | undefined, label = (key: string) => key || 'all'): Series[] {
  const series = new Map<string, Series>();
  for (let i = 1; i < readings.length; i++) {
    const before = readings[i - 1]!;
    const after = readings[i]!;
    const perKey = rates(sumBy(before.samples, metric, by), sumBy(after.samples, metric, by), (after.at - before.at) / 1000);
    for (const [key, value] of perKey) {
      if (!series.has(key)) series.set(key, { name: label(key), points: [] });
      series.get(key)!.points.push([after.at, value]);
    }
  }
  return [...series.values()];
}

function gaugeSeries(readings: MetricsReading[], metric: string, by: string): Series[] {
  const series = new Map<string, Series>();
  for (const reading of readings) {
    for (const [key, value] of maxBy(reading.samples, metric, by)) {
      if (!series.has(key)) series.set(key, { name: key, points: [] });
      series.get(key)!.points.push([reading.at, value]);
    }
  }
  return [...series.values()];
}

function meanSeries(readings: MetricsReading[], metric: string, name: string, where: Record<string, string> = {}): Series[] {
  const points: Array<[number, number]> = [];
  for (let i = 1; i < readings.length; i++) {
    const mean = histogramMean(readings[i - 1]!.samples, readings[i]!.samples, metric, where);
    points.push([readings[i]!.at, (mean ?? 0) * 1000]);
  }
  return [{ name, points }];
}

/** Quantiles of a histogram (seconds) per interval between readings, in ms, over every series. */
function quantileSeries(readings: MetricsReading[], metric: string, quantiles: readonly number[]): Series[] {
  return quantiles.map((q) => {
    const points: Array<[number, number]> = [];
    for (let i = 1; i < readings.length; i++) {
      const value = histogramQuantile(readings[i - 1]!.samples, readings[i]!.samples, metric, q);
      if (value !== undefined) points.push([readings[i]!.at, value * 1000]);
    }
    return { name: `p${Math.round(q * 100)}`, points };
  });
}

const perSecond = (v: number) => `${Number(v.toPrecision(3))}/s`;
const millis = (v: number) => `${Number(v.toPrecision(3))} ms`;
const seconds = (v: number) => `${Number(v.toPrecision(3))} s`;
const count = (v: number) => String(Math.round(v));

export function LivePage() {
  const { readings, error } = useMetricsHistory(2000, 150);
  return (
    <section>
      <h1>Live</h1>
      <p class="muted">From this worker's GET /metrics every 2 s, kept while this page is open (the last 5 minutes).</p>
      <ErrorBox error={error} />
      <div class="charts">
        <Chart title="Produced, by topic" series={rateSeries(readings, 'omnibus_bus_messages_produced_total', 'topic')} format={perSecond} />
        <Chart title="Sent by sink tasks, by connector" series={rateSeries(readings, 'omnibus_sink_records_sent_total', 'connector')} format={perSecond} />
        <Chart title="Failed for good, by connector" series={rateSeries(readings, 'omnibus_sink_records_failed_total', 'connector')} format={perSecond} />
        <Chart title="Retries scheduled, by connector" series={rateSeries(readings, 'omnibus_sink_records_retried_total', 'connector')} format={perSecond} />
        <Chart title="Hand-off latency: produce → sink task, p50 and p99" series={quantileSeries(readings, 'omnibus_sink_handoff_seconds', [0.5, 0.99])} format={millis} />
        <Chart title="Messages waiting, by connector" series={gaugeSeries(readings, 'omnibus_sink_waiting_messages', 'connector')} format={count} />
        <Chart title="Oldest waiting message, by connector" series={gaugeSeries(readings, 'omnibus_sink_oldest_waiting_seconds', 'connector')} format={seconds} />
        <Chart title="Mean REST answer time" series={meanSeries(readings, 'omnibus_rest_request_duration_seconds', 'all routes')} format={millis} />
        <Chart title="Mean store operation time" series={meanSeries(readings, 'omnibus_store_operation_seconds', 'all operations')} format={millis} />
      </div>
    </section>
  );
}
