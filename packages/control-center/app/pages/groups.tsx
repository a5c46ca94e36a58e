import { useEffect, useRef, useState } from 'preact/hooks';
import { enc, get, type GroupReport } from '../api.ts';
import { Chart, ErrorBox, State, type Series } from '../components.tsx';
import { useLoad } from '../hooks.ts';
import { navigate } from '../router.ts';

const KEEP = 150;

export function GroupsPage(props: { group?: string }) {
  const [group, setGroup] = useState(props.group ?? '');
  const report = useLoad(async () => (props.group ? get<GroupReport>(`/groups/${enc(props.group)}`) : undefined), [props.group], props.group ? 2000 : undefined);
  const history = useRef<Array<{ at: number; byState: Record<string, number> }>>([]);
  const [, redraw] = useState(0);
  useEffect(() => {
    history.current = [];
  }, [props.group]);
  useEffect(() => {
    if (!report.data) return;
    const byState: Record<string, number> = {};
    for (const states of Object.values(report.data.connectors)) for (const [state, n] of Object.entries(states)) byState[state] = (byState[state] ?? 0) + n;
    history.current = [...history.current, { at: Date.now(), byState }].slice(-KEEP);
    redraw((n) => n + 1);
  }, [report.data]);
  const states = [...new Set(history.current.flatMap((h) => Object.keys(h.byState)))].sort();
  const series: Series[] = states.map((state) => ({ name: state, points: history.current.map((h) => [h.at, h.byState[state] ?? 0]) }));
  const data = report.data;
  return (
    <section>
      <h1>Groups</h1>
      <form
        class="row"
        role="search"
        onSubmit={(event) => {
          event.preventDefault();
          if (group.trim()) navigate(`/groups/${enc(group.trim())}`);
        }}
      >
        <label>
          Group{' '}
          <input name="group" value={group} onInput={(e) => setGroup(e.currentTarget.value)} size={30} spellcheck={false} />
        </label>
        <button type="submit" class="primary">
          Watch
        </button>
      </form>
      {props.group && <ErrorBox error={report.error} />}
      {data && (
        <>
          <p>
            <strong data-testid="group-total">{data.messages}</strong> messages{data.truncated ? ' (the first ones only: the report is capped)' : ''} · refreshed every 2 s
          </p>
          <table>
            <thead>
              <tr>
                <th scope="col">Connector</th>
                <th scope="col">Counts by state</th>
                <th scope="col">Done</th>
              </tr>
            </thead>
            <tbody>
              {Object.entries(data.connectors).map(([connector, byState]) => {
                const total = Object.values(byState).reduce((a, b) => a + b, 0);
                const open = (byState.scheduled ?? 0) + (byState.pending ?? 0) + (byState.retrying ?? 0) + (byState.in_flight ?? 0);
                return (
                  <tr key={connector} data-connector={connector}>
                    <td>{connector}</td>
                    <td>
                      {Object.entries(byState).map(([state, n]) => (
                        <span key={state} class="count">
                          <State state={state} /> <span data-state={state}>{n}</span>
                        </span>
                      ))}
                    </td>
                    <td>
                      <meter min={0} max={total || 1} value={total - open} /> {total - open}/{total}
                    </td>
                  </tr>
                );
              })}
            </tbody>
          </table>
          <Chart title="Messages by delivery state, all connectors" series={series} />
        </>
      )}
    </section>
  );
}
