import { enc, get, type ConnectorsExpanded, type Topic, type TopicBacklog } from '../api.ts';
import { ColumnHeads, ErrorBox, formatDuration, formatRate, formatTime, formatWait, Link } from '../components.tsx';
import { useLoad, useMetricsHistory } from '../hooks.ts';
import { rates, sumBy } from '../prometheus.ts';

/** Each reading connector's backlog on the topic, per shard, from every worker (GET /topics/{t}/backlog). */
function Backlog(props: { topic: string }) {
  const backlog = useLoad(() => get<TopicBacklog>(`/topics/${enc(props.topic)}/backlog`), [props.topic], 3000);
  const data = backlog.data;
  if (!data) return <ErrorBox error={backlog.error} />;
  if (data.connectors.length === 0) return <p class="muted">No sink connector reads this topic.</p>;
  return (
    <>
      <ErrorBox error={backlog.error} />
      {data.workers_unreachable.length > 0 && (
        <p class="error" role="alert">
          No answer from {data.workers_unreachable.join(', ')}: the shards they hold show 0.
        </p>
      )}
      <table class="backlog">
        <ColumnHeads names={['Connector', 'Waiting', 'Oldest waiting', 'Per shard (waiting · oldest)']} />
        <tbody>
          {data.connectors.map((c) => (
            <tr key={c.name} data-connector={c.name}>
              <td>
                <Link href={`/connectors/${enc(c.name)}`}>{c.name}</Link>
              </td>
              <td data-testid="waiting">{c.waiting}</td>
              <td>{formatWait(c.oldest_waiting_ms)}</td>
              <td>
                <div class="shards">
                  {c.shards.map((s) => (
                    <span
                      key={s.shard}
                      data-shard={s.shard}
                      class={s.waiting > 0 ? 'busy' : ''}
                      title={s.worker_id ? `shard ${s.shard}: task ${s.task} on ${s.worker_id}` : `shard ${s.shard}: held by no worker (nothing read waits)`}
                    >
                      {s.shard}: {s.waiting}
                      {s.waiting > 0 ? ` · ${formatWait(s.oldest_waiting_ms)}` : ''}
                    </span>
                  ))}
                </div>
              </td>
            </tr>
          ))}
        </tbody>
      </table>
    </>
  );
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
        In: messages accepted by this worker. Out: messages this worker's sink tasks sent. Waiting: messages a connector has not finished (read and queued, being sent or
        retried, or not read yet), over every worker of the cluster, with the age of the oldest.
      </p>
      <ErrorBox error={topics.error} />
      {topics.data?.map((topic) => {
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
                  <Link key={c} href={`/connectors/${enc(c)}`}>
                    {c}{' '}
                  </Link>
                ))}
              </dd>
            </dl>
            <Backlog topic={topic.name} />
          </article>
        );
      })}
      {topics.data?.length === 0 && <p class="muted">No topics.</p>}
    </section>
  );
}
