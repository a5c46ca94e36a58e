import { useState } from 'preact/hooks';
import { enc, get, type MessageReport } from '../api.ts';
import { ErrorBox, formatTime, Link, State } from '../components.tsx';
import { useLoad } from '../hooks.ts';
import { navigate } from '../router.ts';

function errorText(error: MessageReport['deliveries'][number]['last_error']): string {
  if (!error) return '';
  if (typeof error === 'string') return error;
  return [error.code, error.message].filter(Boolean).join(': ');
}

export function MessagePage(props: { id?: string }) {
  const [id, setId] = useState(props.id ?? '');
  const report = useLoad(async () => (props.id ? get<MessageReport>(`/messages/${enc(props.id)}`) : undefined), [props.id], props.id ? 3000 : undefined);
  const data = report.data;
  return (
    <section>
      <h1>Message</h1>
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
          <input name="id" value={id} onInput={(e) => setId(e.currentTarget.value)} size={40} spellcheck={false} autoFocus={!props.id} />
        </label>
        <button type="submit" class="primary">
          Look up
        </button>
      </form>
      <p class="muted">The API finds messages by id (GET /messages/{'{id}'}); the id is in the produce answer and in every delivery's log line.</p>
      {props.id && <ErrorBox error={report.error} />}
      {data && (
        <>
          <dl class="facts">
            <dt>Id</dt>
            <dd>
              <code>{data.message.id}</code>
            </dd>
            <dt>Topic</dt>
            <dd>{data.message.topic}</dd>
            <dt>Key</dt>
            <dd>
              <code>{data.message.key}</code>
            </dd>
            <dt>Shard</dt>
            <dd>{data.message.shard}</dd>
            <dt>Created</dt>
            <dd>{formatTime(data.message.created_at)}</dd>
            {data.message.group !== undefined && (
              <>
                <dt>Group</dt>
                <dd>
                  <Link href={`/groups/${enc(data.message.group)}`}>{data.message.group}</Link>
                </dd>
              </>
            )}
          </dl>
          <h2>Value</h2>
          <pre class="value">{JSON.stringify(data.message.value, null, 2)}</pre>
          {Object.keys(data.message.headers ?? {}).length > 0 && (
            <>
              <h2>Headers</h2>
              <table class="config">
                <tbody>
                  {Object.entries(data.message.headers).map(([k, v]) => (
                    <tr key={k}>
                      <th scope="row">{k}</th>
                      <td>
                        <code>{v}</code>
                      </td>
                    </tr>
                  ))}
                </tbody>
              </table>
            </>
          )}
          <h2>Deliveries</h2>
          <table class="deliveries">
            <thead>
              <tr>
                <th scope="col">Connector</th>
                <th scope="col">State</th>
                <th scope="col">Attempts</th>
                <th scope="col">Provider id</th>
                <th scope="col">Worker</th>
                <th scope="col">Updated</th>
                <th scope="col">Last error</th>
              </tr>
            </thead>
            <tbody>
              {data.deliveries.map((d) => (
                <tr key={d.connector} data-connector={d.connector}>
                  <td>
                    <Link href={`/connectors/${enc(d.connector)}`}>{d.connector}</Link>
                  </td>
                  <td>
                    <State state={d.state} />
                    {d.next_attempt_at !== undefined && <div class="muted">next attempt {formatTime(d.next_attempt_at)}</div>}
                  </td>
                  <td>{d.attempts}</td>
                  <td>
                    <code>{d.provider_id ?? '—'}</code>
                  </td>
                  <td>{d.worker_id}</td>
                  <td>{formatTime(d.updated_at)}</td>
                  <td>{errorText(d.last_error)}</td>
                </tr>
              ))}
              {data.deliveries.length === 0 && (
                <tr>
                  <td colSpan={7} class="muted">
                    No connector has recorded a delivery of it yet.
                  </td>
                </tr>
              )}
            </tbody>
          </table>
          <h2>Timeline</h2>
          <ol class="timeline">
            {data.events.map((e, i) => (
              <li key={i}>
                <time dateTime={new Date(e.at).toISOString()}>{formatTime(e.at)}</time> <strong>{e.type}</strong>
                {e.connector && <> · {e.connector}</>}
                {e.worker_id && <span class="muted"> · {e.worker_id}</span>}
                {e.detail && <pre class="detail">{JSON.stringify(e.detail)}</pre>}
              </li>
            ))}
            {data.events.length === 0 && <li class="muted">No events recorded.</li>}
          </ol>
        </>
      )}
    </section>
  );
}
