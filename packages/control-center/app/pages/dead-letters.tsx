import { useState } from 'preact/hooks';
import { enc, get, type ConnectorsExpanded } from '../api.ts';
import { ErrorBox, formatRate, Link } from '../components.tsx';
import { useLoad, useMetricsHistory } from '../hooks.ts';
import { rates, sumBy } from '../prometheus.ts';
import { navigate } from '../router.ts';

/**
 * Dead letters as far as the REST API shows them: which connectors send failures to which
 * topic, how fast they arrive, and any dead letter by id (its value and error headers on the
 * Message page). The API has no endpoint yet that lists a topic's messages or re-sends one.
 */
export function DeadLettersPage(_props: { path: string }) {
  const connectors = useLoad(() => get<ConnectorsExpanded>('/connectors?expand=info'), [], 10_000);
  const { readings } = useMetricsHistory(3000, 2);
  const [id, setId] = useState('');
  const last = readings[readings.length - 1];
  const before = readings[readings.length - 2];
  const produced =
    last && before
      ? rates(sumBy(before.samples, 'omnibus_bus_messages_produced_total', 'topic'), sumBy(last.samples, 'omnibus_bus_messages_produced_total', 'topic'), (last.at - before.at) / 1000)
      : new Map<string, number>();
  const failed = last ? sumBy(last.samples, 'omnibus_sink_records_failed_total', 'connector') : new Map<string, number>();
  const queues = Object.entries(connectors.data ?? {})
    .map(([name, { info }]) => ({ name, topic: info?.config['errors.deadletterqueue.topic.name'] ?? '' }))
    .filter((q) => q.topic !== '');
  return (
    <section>
      <h1>Dead letters</h1>
      <ErrorBox error={connectors.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Connector</th>
            <th scope="col">Dead-letter topic</th>
            <th scope="col">Arriving</th>
            <th scope="col">Failed for good (this worker, since start)</th>
          </tr>
        </thead>
        <tbody>
          {queues.map((q) => (
            <tr key={q.name}>
              <td>
                <Link href={`/connectors/${enc(q.name)}`}>{q.name}</Link>
              </td>
              <td>{q.topic}</td>
              <td>{formatRate(before ? (produced.get(q.topic) ?? 0) : undefined)}</td>
              <td>{failed.get(q.name) ?? 0}</td>
            </tr>
          ))}
          {queues.length === 0 && !connectors.loading && (
            <tr>
              <td colSpan={4} class="muted">
                No connector sets errors.deadletterqueue.topic.name.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      <h2>Open a dead letter</h2>
      <form
        class="row"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          if (id.trim()) navigate(`/messages/${enc(id.trim())}`);
        }}
      >
        <label>
          Message id{' '}
          <input name="id" value={id} onInput={(e) => setId(e.currentTarget.value)} size={40} spellcheck={false} />
        </label>
        <button type="submit">Open</button>
      </form>
      <p class="muted">
        Its value and error headers show on the Message page. Browsing a topic's messages and re-sending one need REST endpoints this worker does not offer yet; produce
        the value again with POST /topics/{'{topic}'}/messages.
      </p>
    </section>
  );
}
