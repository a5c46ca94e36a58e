import { useState } from 'preact/hooks';
import { enc, get, type MessageReport, type Topic, type TopicMessages } from '../api.ts';
import { ColumnHeads, ErrorBox, formatTime, Link, State } from '../components.tsx';
import { useLoad } from '../hooks.ts';
import { navigate, queryParam } from '../router.ts';

const preview = (value: unknown) => {
  const text = JSON.stringify(value);
  return text.length > 120 ? `${text.slice(0, 120)}…` : text;
};

/** A key's messages on a topic (GET /topics/{t}/messages?key=, oldest first), with its shard; pages on with next_since. */
function KeyResults(props: { topic: string; keyValue: string }) {
  const { topic, keyValue } = props;
  const [pages, setPages] = useState<number[]>([0]);
  const route = useLoad(() => get<{ shard: number; token: string }>(`/topics/${enc(topic)}/route?key=${enc(keyValue)}`), [topic, keyValue]);
  const results = useLoad(
    async () => {
      const all: TopicMessages['messages'] = [];
      let next: number | undefined;
      for (const since of pages) {
        const page = await get<TopicMessages>(`/topics/${enc(topic)}/messages?key=${enc(keyValue)}&since=${since}&limit=50`);
        for (const m of page.messages) if (!all.some((seen) => seen.id === m.id)) all.push(m);
        next = page.next_since;
      }
      return { messages: all, next };
    },
    [topic, keyValue, pages.join(',')],
  );
  return (
    <section aria-label="Messages of the key">
      <h2>
        Key <code>{keyValue}</code> on {topic}
      </h2>
      {route.data && (
        <p class="muted">
          Shard {route.data.shard} (token {route.data.token}): only that shard holds the key's messages, oldest first.
        </p>
      )}
      <ErrorBox error={route.error ?? results.error} />
      {results.data && (
        <table class="key-messages">
          <ColumnHeads names={['Id', 'Created', 'Value']} />
          <tbody>
            {results.data.messages.map((m) => (
              <tr key={m.id} data-message={m.id}>
                <td>
                  <Link href={`/messages/${enc(m.id)}`}>{m.id}</Link>
                </td>
                <td>{formatTime(m.created_at)}</td>
                <td>
                  <code>{preview(m.value)}</code>
                </td>
              </tr>
            ))}
            {results.data.messages.length === 0 && (
              <tr>
                <td colSpan={3} class="muted">
                  No message with this key is held (never produced, or past the topic's retention).
                </td>
              </tr>
            )}
          </tbody>
        </table>
      )}
      {results.data?.next !== undefined && (
        <button type="button" onClick={() => setPages([...pages, results.data!.next!])}>
          More
        </button>
      )}
    </section>
  );
}

function KeyLookup(props: { topic?: string; keyValue?: string }) {
  const topics = useLoad(() => get<Topic[]>('/topics'), []);
  const [topic, setTopic] = useState(props.topic ?? '');
  const [key, setKey] = useState(props.keyValue ?? '');
  const chosen = topic || topics.data?.[0]?.name || '';
  return (
    <form
      class="row"
      role="search"
      aria-label="By key"
      onSubmit={(event) => {
        event.preventDefault();
        if (chosen && key) navigate(`/messages?topic=${enc(chosen)}&key=${enc(key)}`);
      }}
    >
      <label>
        Topic{' '}
        <select name="topic" value={chosen} onChange={(e) => setTopic(e.currentTarget.value)}>
          {topics.data?.map((t) => (
            <option key={t.name} value={t.name}>
              {t.name}
            </option>
          ))}
        </select>
      </label>
      <label>
        Key <input name="key" value={key} onInput={(e) => setKey(e.currentTarget.value)} size={30} spellcheck={false} />
      </label>
      <button type="submit">Find by key</button>
    </form>
  );
}

function errorText(error: MessageReport['deliveries'][number]['last_error']): string {
  if (!error) return '';
  if (typeof error === 'string') return error;
  return [error.code, error.message].filter(Boolean).join(': ');
}

export function MessagePage(props: { id?: string; path?: string }) {
  const byTopic = props.path ? queryParam(props.path, 'topic') : undefined;
  const byKey = props.path ? queryParam(props.path, 'key') : undefined;
  const [id, setId] = useState(props.id ?? '');
  const report = useLoad(async () => (props.id ? get<MessageReport>(`/messages/${enc(props.id)}`) : undefined), [props.id], props.id ? 3000 : undefined);
  const data = report.data;
  return (
    <section>
      <h1>Message</h1>
      <form
        class="row"
        role="search"
        aria-label="By id"
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
      <KeyLookup topic={byTopic} keyValue={byKey} />
      <p class="muted">By id: the id is in the produce answer and in every delivery's log line. By key: the customer's address or number, as the producer keyed it.</p>
      {byTopic && byKey && <KeyResults topic={byTopic} keyValue={byKey} />}
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
