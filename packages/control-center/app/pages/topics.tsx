import { get, type ConnectorsExpanded, type Topic } from '../api.ts';
import { ErrorBox, formatAge, formatDuration, formatRate, formatTime, Link } from '../components.tsx';
import { useLoad, useMetricsHistory } from '../hooks.ts';
import { rates, sumBy, type Sample } from '../prometheus.ts';

/** omnibus_bus_lag_ms of one topic: how far each consumer's watermark is behind now, per shard. */
function lagOf(samples: readonly Sample[], topic: string): Map<string, Map<string, number>> {
  const byConsumer = new Map<string, Map<string, number>>();
  for (const s of samples) {
    if (s.name !== 'omnibus_bus_lag_ms' || s.labels.topic !== topic) continue;
    const consumer = s.labels.consumer ?? '';
    if (!byConsumer.has(consumer)) byConsumer.set(consumer, new Map());
    byConsumer.get(consumer)!.set(s.labels.shard ?? '', s.value);
  }
  return byConsumer;
}

export function TopicsPage() {
  const topics = useLoad(() => get<Topic[]>('/topics'), [], 10_000);
  const connectors = useLoad(() => get<ConnectorsExpanded>('/connectors?expand=info'), [], 10_000);
  const { readings } = useMetricsHistory(2000, 2);
  const last = readings[readings.length - 1];
  const before = readings[readings.length - 2];
  const seconds = last && before ? (last.at - before.at) / 1000 : 0;
  const produced = last && before ? rates(sumBy(before.samples, 'omnibus_bus_messages_produced_total', 'topic'), sumBy(last.samples, 'omnibus_bus_messages_produced_total', 'topic'), seconds) : new Map<string, number>();
  const sent = last && before ? rates(sumBy(before.samples, 'omnibus_sink_records_sent_total', 'connector'), sumBy(last.samples, 'omnibus_sink_records_sent_total', 'connector'), seconds) : new Map<string, number>();
  const readers = new Map<string, string[]>();
  for (const [name, { info }] of Object.entries(connectors.data ?? {})) {
    for (const topic of (info?.config.topics ?? '').split(',').map((t) => t.trim()).filter(Boolean)) readers.set(topic, [...(readers.get(topic) ?? []), name]);
  }
  return (
    <section>
      <h1>Topics</h1>
      <p class="muted">
        In: messages accepted by this worker. Out: messages this worker's sink tasks sent. Lag: how far each consumer's watermark on a shard is behind now, i.e. the age of
        the oldest message it may still have to read (tasks on this worker).
      </p>
      <ErrorBox error={topics.error} />
      {topics.data?.map((topic) => {
        const lag = last ? lagOf(last.samples, topic.name) : new Map<string, Map<string, number>>();
        const out = (readers.get(topic.name) ?? []).reduce((sum, c) => sum + (sent.get(c) ?? 0), 0);
        return (
          <article key={topic.name} class="topic" data-topic={topic.name}>
            <h2>{topic.name}</h2>
            <dl class="facts">
              <dt>Shards</dt>
              <dd>{topic.shards}</dd>
              <dt>Retention</dt>
              <dd>{formatDuration(topic['retention.ms'])}</dd>
              <dt>Created</dt>
              <dd>{formatTime(topic.created_at)}</dd>
              <dt>In</dt>
              <dd>{formatRate(seconds ? (produced.get(topic.name) ?? 0) : undefined)}</dd>
              <dt>Out</dt>
              <dd>{formatRate(seconds ? out : undefined)}</dd>
              <dt>Read by</dt>
              <dd>
                {(readers.get(topic.name) ?? []).map((c) => (
                  <Link key={c} href={`/connectors/${encodeURIComponent(c)}`}>
                    {c}{' '}
                  </Link>
                ))}
              </dd>
            </dl>
            {lag.size > 0 && (
              <table>
                <thead>
                  <tr>
                    <th scope="col">Consumer</th>
                    <th scope="col">Worst shard lag</th>
                    <th scope="col">Per shard</th>
                  </tr>
                </thead>
                <tbody>
                  {[...lag].map(([consumer, shards]) => (
                    <tr key={consumer}>
                      <td>{consumer}</td>
                      <td>{formatAge(Math.max(...shards.values()))}</td>
                      <td>
                        <div class="shards">
                          {[...shards]
                            .sort((a, b) => Number(a[0]) - Number(b[0]))
                            .map(([shard, ms]) => (
                              <span key={shard} title={`shard ${shard}: ${ms} ms`}>
                                {shard}: {formatAge(ms)}
                              </span>
                            ))}
                        </div>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            )}
          </article>
        );
      })}
      {topics.data?.length === 0 && <p class="muted">No topics.</p>}
    </section>
  );
}
