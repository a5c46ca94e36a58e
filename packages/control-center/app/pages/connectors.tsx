import { Fragment } from 'preact';
import { api, enc, get, type ConnectorBacklogReport, type ConnectorInfo, type ConnectorsExpanded, type ConnectorStatus } from '../api.ts';
import { ConfirmButton, ErrorBox, formatRate, formatWait, Link, State } from '../components.tsx';
import { useLoad, useMetricsHistory, type MetricsReading } from '../hooks.ts';
import { rates, sumBy } from '../prometheus.ts';
import { navigate } from '../router.ts';

/** Per-connector rates of a counter between the last two readings of /metrics. */
function connectorRates(readings: MetricsReading[], metric: string): Map<string, number> {
  const last = readings[readings.length - 1];
  const before = readings[readings.length - 2];
  if (!last || !before) return new Map();
  return rates(sumBy(before.samples, metric, 'connector'), sumBy(last.samples, metric, 'connector'), (last.at - before.at) / 1000);
}

export function ConnectorsPage() {
  const list = useLoad(() => get<ConnectorsExpanded>('/connectors?expand=status&expand=info'), [], 3000);
  const { readings } = useMetricsHistory(3000, 2);
  const sent = connectorRates(readings, 'omnibus_sink_records_sent_total');
  const failed = connectorRates(readings, 'omnibus_sink_records_failed_total');
  const polled = connectorRates(readings, 'omnibus_source_records_polled_total');
  const entries = Object.entries(list.data ?? {});
  return (
    <section>
      <div class="row">
        <h1>Connectors</h1>
        <span class="spacer" />
        <Link href="/connectors/new" class="button primary">
          New connector
        </Link>
      </div>
      <p class="muted">Rates are this worker's (GET /metrics); each worker counts the tasks it runs.</p>
      <ErrorBox error={list.error} />
      <table>
        <thead>
          <tr>
            <th scope="col">Name</th>
            <th scope="col">Class</th>
            <th scope="col">State</th>
            <th scope="col">Tasks</th>
            <th scope="col">Sent or polled</th>
            <th scope="col">Failed</th>
          </tr>
        </thead>
        <tbody>
          {entries.map(([name, { status, info }]) => {
            const running = status?.tasks.filter((t) => t.state === 'RUNNING').length ?? 0;
            return (
              <tr key={name} data-connector={name}>
                <td>
                  <Link href={`/connectors/${enc(name)}`}>{name}</Link>
                </td>
                <td>{info?.config['connector.class']}</td>
                <td>{status && <State state={status.connector.state} />}</td>
                <td>
                  {running}/{status?.tasks.length ?? 0} running
                  {status?.tasks.some((t) => t.state === 'FAILED') && (
                    <>
                      {' '}
                      <State state="FAILED" />
                    </>
                  )}
                </td>
                <td>{formatRate(info?.type === 'source' ? polled.get(name) : sent.get(name))}</td>
                <td>{formatRate(failed.get(name))}</td>
              </tr>
            );
          })}
          {entries.length === 0 && !list.loading && (
            <tr>
              <td colSpan={6} class="muted">
                No connectors.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}

/** What waits for a sink connector over the cluster (GET /connectors/{c}/backlog): the first thing to look at when it is behind. */
function ConnectorBacklog(props: { name: string }) {
  const backlog = useLoad(() => get<ConnectorBacklogReport>(`/connectors/${enc(props.name)}/backlog`), [props.name], 3000);
  const busy = backlog.data?.shards.filter((s) => s.waiting > 0) ?? [];
  return (
    <>
      <h2>Backlog</h2>
      <ErrorBox error={backlog.error} />
      {backlog.data && (
        <p data-testid="backlog">
          {backlog.data.waiting} waiting{backlog.data.waiting > 0 ? `, the oldest for ${formatWait(backlog.data.oldest_waiting_ms)}` : ''}
          {busy.length > 0 && <> · {busy.map((s) => `${s.topic}/${s.shard}: ${s.waiting}`).join(', ')}</>}
          {backlog.data.workers_unreachable.length > 0 && <span class="error"> · no answer from {backlog.data.workers_unreachable.join(', ')}</span>}
        </p>
      )}
    </>
  );
}

export function ConnectorPage(props: { name: string }) {
  const path = `/connectors/${enc(props.name)}`;
  const status = useLoad(() => get<ConnectorStatus>(`${path}/status`), [props.name], 2000);
  const info = useLoad(() => get<ConnectorInfo>(path), [props.name]);
  const topics = useLoad(() => get<Record<string, { topics: string[] }>>(`${path}/topics`), [props.name]);
  const act = async (method: string, suffix: string) => {
    await api(method, `${path}${suffix}`);
    status.reload();
  };
  const state = status.data?.connector.state;
  return (
    <section>
      <div class="row">
        <h1>{props.name}</h1>
        {state && <State state={state} />}
        <span class="spacer" />
        <Link href={`${path}/edit`} class="button">
          Edit
        </Link>
      </div>
      <ErrorBox error={status.error ?? info.error} />
      <div class="actions" role="group" aria-label="Connector actions">
        <button type="button" onClick={() => act('PUT', '/pause')} disabled={state === 'PAUSED'}>
          Pause
        </button>
        <button type="button" onClick={() => act('PUT', '/resume')} disabled={state === 'RUNNING'}>
          Resume
        </button>
        <ConfirmButton label="Restart" question="Restart the connector and all its tasks?" onConfirm={() => act('POST', '/restart?includeTasks=true')} />
        <ConfirmButton label="Stop" question="Stop the connector (its tasks are shut down)?" onConfirm={() => act('PUT', '/stop')} />
        <ConfirmButton
          label="Delete"
          danger
          question={`Delete ${props.name}? Its config and offsets are removed.`}
          onConfirm={async () => {
            await api('DELETE', path);
            navigate('/connectors');
          }}
        />
      </div>
      {status.data?.connector.trace && (
        <>
          <h2>Connector failure</h2>
          <pre class="trace">{status.data.connector.trace}</pre>
        </>
      )}
      <h2>Tasks</h2>
      <table>
        <thead>
          <tr>
            <th scope="col">Task</th>
            <th scope="col">State</th>
            <th scope="col">Worker</th>
            <th scope="col" />
          </tr>
        </thead>
        <tbody>
          {status.data?.tasks.map((task) => (
            <Fragment key={task.id}>
              <tr>
                <td>{task.id}</td>
                <td>
                  <State state={task.state} />
                </td>
                <td>{task.worker_id}</td>
                <td>
                  <button type="button" onClick={() => act('POST', `/tasks/${task.id}/restart`)}>
                    Restart task
                  </button>
                </td>
              </tr>
              {task.trace && (
                <tr>
                  <td colSpan={4}>
                    <pre class="trace" aria-label={`Trace of task ${task.id}`}>
                      {task.trace}
                    </pre>
                  </td>
                </tr>
              )}
            </Fragment>
          ))}
        </tbody>
      </table>
      {info.data?.type === 'sink' && <ConnectorBacklog name={props.name} />}
      <h2>Topics</h2>
      <p>{topics.data?.[props.name]?.topics.join(', ') || <span class="muted">none recorded yet</span>}</p>
      <h2>Config</h2>
      <p class="muted">Secrets are shown as [hidden]: the API never returns them.</p>
      <table class="config">
        <tbody>
          {Object.entries(info.data?.config ?? {})
            .sort(([a], [b]) => a.localeCompare(b))
            .map(([key, value]) => (
              <tr key={key}>
                <th scope="row">{key}</th>
                <td>
                  <code>{value}</code>
                </td>
              </tr>
            ))}
        </tbody>
      </table>
    </section>
  );
}
