import { ApiError, get, type ConnectorsExpanded, type WorkerInfo } from '../api.ts';
import { ErrorBox, formatAge, formatTime, Link, State } from '../components.tsx';
import { useLoad } from '../hooks.ts';

interface WorkerView {
  id: string;
  info?: WorkerInfo;
  connectors: Array<{ name: string; state: string }>;
  tasks: Array<{ connector: string; id: number; state: string }>;
}

/** The live workers (GET /workers), with what the statuses say each one runs. */
export function workersOf(connectors: ConnectorsExpanded, live: WorkerInfo[]): WorkerView[] {
  const workers = new Map<string, WorkerView>(live.map((info) => [info.worker_id, { id: info.worker_id, info, connectors: [], tasks: [] }]));
  const worker = (id: string) => {
    let view = workers.get(id);
    if (!view) workers.set(id, (view = { id, connectors: [], tasks: [] }));
    return view;
  };
  for (const [name, { status }] of Object.entries(connectors)) {
    if (!status) continue;
    if (status.connector.worker_id) worker(status.connector.worker_id).connectors.push({ name, state: status.connector.state });
    for (const task of status.tasks) if (task.worker_id) worker(task.worker_id).tasks.push({ connector: name, id: task.id, state: task.state });
  }
  return [...workers.values()].sort((a, b) => a.id.localeCompare(b.id));
}

export function ClusterPage() {
  const root = useLoad(() => get<{ version: string; kafka_cluster_id: string }>('/'), []);
  const connectors = useLoad(() => get<ConnectorsExpanded>('/connectors?expand=status'), [], 3000);
  // A worker of an older version has no GET /workers: the statuses still name the busy ones.
  const live = useLoad(
    () => get<{ workers: WorkerInfo[] }>('/workers').catch((error: unknown) => (error instanceof ApiError && error.status === 404 ? { workers: [] } : Promise.reject(error))),
    [],
    3000,
  );
  const workers = connectors.data ? workersOf(connectors.data, live.data?.workers ?? []) : [];
  const states = new Map<string, number>();
  for (const { status } of Object.values(connectors.data ?? {})) {
    for (const task of status?.tasks ?? []) states.set(task.state, (states.get(task.state) ?? 0) + 1);
  }
  const failed = Object.entries(connectors.data ?? {}).filter(
    ([, { status }]) => status && (status.connector.state === 'FAILED' || status.tasks.some((t) => t.state === 'FAILED')),
  );
  return (
    <section>
      <h1>Cluster</h1>
      <p class="muted">
        Cluster {root.data?.kafka_cluster_id ?? '…'} · this page is served by {location.host} · refreshed every 3 s
      </p>
      <ErrorBox error={connectors.error ?? live.error} />
      <div class="cards">
        <div class="card">
          <strong>{workers.length}</strong> workers
        </div>
        <div class="card">
          <strong>{Object.keys(connectors.data ?? {}).length}</strong> connectors
        </div>
        {[...states].map(([state, n]) => (
          <div class="card" key={state}>
            <strong>{n}</strong> tasks <State state={state} />
          </div>
        ))}
      </div>
      {failed.length > 0 && (
        <div class="alert" role="alert">
          Failed:{' '}
          {failed.map(([name]) => (
            <Link key={name} href={`/connectors/${encodeURIComponent(name)}`}>
              {name}{' '}
            </Link>
          ))}
        </div>
      )}
      <h2>Workers</h2>
      <p class="muted">Live members of the cluster (their heartbeat has not expired), and what their statuses say they run.</p>
      <table>
        <thead>
          <tr>
            <th scope="col">Worker</th>
            <th scope="col">Heartbeat</th>
            <th scope="col">Up since</th>
            <th scope="col">Connectors</th>
            <th scope="col">Tasks</th>
          </tr>
        </thead>
        <tbody>
          {workers.map((w) => (
            <tr key={w.id} data-worker={w.id}>
              <td>
                <a href={`${location.protocol}//${w.id}/ui/`}>{w.id}</a>
              </td>
              <td>{w.info ? `${formatAge(w.info.heartbeat_age_ms)} ago` : <span class="muted">not a live member</span>}</td>
              <td>{w.info ? formatTime(w.info.started_at) : ''}</td>
              <td>
                {w.connectors.map((c) => (
                  <div key={c.name}>
                    <Link href={`/connectors/${encodeURIComponent(c.name)}`}>{c.name}</Link> <State state={c.state} />
                  </div>
                ))}
              </td>
              <td>
                {w.tasks.map((t) => (
                  <div key={`${t.connector}-${t.id}`}>
                    {t.connector}-{t.id} <State state={t.state} />
                  </div>
                ))}
              </td>
            </tr>
          ))}
          {workers.length === 0 && !connectors.loading && (
            <tr>
              <td colSpan={5} class="muted">
                No live worker.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}
