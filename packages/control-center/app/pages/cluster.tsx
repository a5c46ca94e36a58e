import { get, type ConnectorsExpanded } from '../api.ts';
import { ErrorBox, Link, State } from '../components.tsx';
import { useLoad } from '../hooks.ts';

interface WorkerView {
  id: string;
  connectors: Array<{ name: string; state: string }>;
  tasks: Array<{ connector: string; id: number; state: string }>;
}

/** Workers as the statuses name them: every worker that runs a connector or a task. */
export function workersOf(connectors: ConnectorsExpanded): WorkerView[] {
  const workers = new Map<string, WorkerView>();
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
  const workers = connectors.data ? workersOf(connectors.data) : [];
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
      <ErrorBox error={connectors.error} />
      <div class="cards">
        <div class="card">
          <strong>{workers.length}</strong> workers running work
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
      <p class="muted">
        The REST API names workers through the statuses of what they run (worker_id, their advertised host:port); a worker with nothing assigned
        does not appear.
      </p>
      <table>
        <thead>
          <tr>
            <th scope="col">Worker</th>
            <th scope="col">Connectors</th>
            <th scope="col">Tasks</th>
          </tr>
        </thead>
        <tbody>
          {workers.map((w) => (
            <tr key={w.id}>
              <td>
                <a href={`${location.protocol}//${w.id}/ui/`}>{w.id}</a>
              </td>
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
              <td colSpan={3} class="muted">
                No connector runs yet. <Link href="/connectors/new">Create one</Link>.
              </td>
            </tr>
          )}
        </tbody>
      </table>
    </section>
  );
}
