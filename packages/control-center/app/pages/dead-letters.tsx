/**
 * Dead letters: the messages of a dead-letter topic (GET /topics/{topic}/messages) with the
 * error headers the sink wrote (omnibus.errors.*), and a re-send of one or a selection to the
 * topic each came from: a new message (new id) produced with POST /topics/{topic}/messages,
 * carrying `omnibus.resent.from` (the dead letter's id) and `omnibus.resent.original.id`.
 */
import { useEffect, useState } from 'preact/hooks';
import { api, enc, get, type ConnectorsExpanded, type Topic, type TopicMessages } from '../api.ts';
import { ConfirmButton, ErrorBox, formatTime, Link } from '../components.tsx';
import { useLoad } from '../hooks.ts';
import { navigate, queryParam } from '../router.ts';

type Letter = TopicMessages['messages'][number];

const ERROR_PREFIX = 'omnibus.errors.';
const PAGE = 100;

/** The message to produce again: the original headers (without the error ones), linked to the dead letter. */
export function resendOf(letter: Letter): { topic: string; item: Record<string, unknown> } | undefined {
  const topic = letter.headers[`${ERROR_PREFIX}topic`];
  if (!topic) return undefined;
  const headers: Record<string, string> = {};
  for (const [name, value] of Object.entries(letter.headers)) if (!name.startsWith(ERROR_PREFIX)) headers[name] = value;
  headers['omnibus.resent.from'] = letter.id;
  const original = letter.headers[`${ERROR_PREFIX}message.id`];
  if (original) headers['omnibus.resent.original.id'] = original;
  return { topic, item: { key: letter.key, value: letter.value, headers, ...(letter.group !== undefined ? { group: letter.group } : {}) } };
}

export function DeadLettersPage(props: { path: string }) {
  const chosen = queryParam(props.path, 'topic');
  const connectors = useLoad(() => get<ConnectorsExpanded>('/connectors?expand=info'), []);
  const topics = useLoad(() => get<Topic[]>('/topics'), []);
  const queues = new Map<string, string[]>();
  for (const [name, { info }] of Object.entries(connectors.data ?? {})) {
    const topic = info?.config['errors.deadletterqueue.topic.name'];
    if (topic) queues.set(topic, [...(queues.get(topic) ?? []), name]);
  }
  const topic = chosen ?? [...queues.keys()][0];
  return (
    <section>
      <h1>Dead letters</h1>
      <ErrorBox error={connectors.error ?? topics.error} />
      <form class="row" onSubmit={(e) => e.preventDefault()}>
        <label>
          Topic{' '}
          <select name="topic" value={topic ?? ''} onChange={(e) => navigate(`/dead-letters?topic=${enc(e.currentTarget.value)}`, true)}>
            {!topic && <option value="">choose a topic</option>}
            {(topics.data ?? [])
              .map((t) => t.name)
              .sort((a, b) => Number(queues.has(b)) - Number(queues.has(a)) || a.localeCompare(b))
              .map((name) => (
                <option key={name} value={name}>
                  {name}
                  {queues.has(name) ? ` (dead letters of ${queues.get(name)!.join(', ')})` : ''}
                </option>
              ))}
          </select>
        </label>
      </form>
      {queues.size === 0 && !connectors.loading && <p class="muted">No connector sets errors.deadletterqueue.topic.name.</p>}
      {topic && <Letters key={topic} topic={topic} />}
    </section>
  );
}

function Letters(props: { topic: string }) {
  const [letters, setLetters] = useState<Letter[]>([]);
  const [next, setNext] = useState<number | undefined>(0);
  const [error, setError] = useState<Error>();
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [resent, setResent] = useState<Array<{ from: string; id: string; topic: string }>>([]);

  const load = async (since: number, replace: boolean) => {
    try {
      const page = await get<TopicMessages>(`/topics/${enc(props.topic)}/messages?since=${since}&limit=${PAGE}`);
      setLetters((current) => {
        const base = replace ? [] : current;
        const seen = new Set(base.map((l) => l.id));
        const fresh = page.messages.filter((m) => !seen.has(m.id));
        // A page of nothing new at the same time would repeat forever: stop there.
        setNext(page.next_since !== undefined && fresh.length > 0 ? page.next_since : undefined);
        return [...base, ...fresh];
      });
      setError(undefined);
    } catch (e) {
      setError(e as Error);
    }
  };
  useEffect(() => void load(0, true), [props.topic]);

  const resend = async (chosen: Letter[]) => {
    const done: Array<{ from: string; id: string; topic: string }> = [];
    try {
      for (const letter of chosen) {
        const plan = resendOf(letter);
        if (!plan) throw new Error(`${letter.id} names no original topic (header ${ERROR_PREFIX}topic)`);
        const answer = await api<{ messages: Array<{ id: string }> }>('POST', `/topics/${enc(plan.topic)}/messages`, { messages: [plan.item] });
        done.push({ from: letter.id, id: answer.messages[0]!.id, topic: plan.topic });
      }
      setSelected(new Set());
      setError(undefined);
    } catch (e) {
      setError(e as Error);
    } finally {
      setResent((r) => [...done, ...r]);
    }
  };

  const toggle = (id: string) =>
    setSelected((s) => {
      const copy = new Set(s);
      if (!copy.delete(id)) copy.add(id);
      return copy;
    });
  const picked = letters.filter((l) => selected.has(l.id));

  return (
    <>
      <ErrorBox error={error} />
      <div class="actions">
        <span>
          {letters.length} message{letters.length === 1 ? '' : 's'}
          {next !== undefined ? ' so far' : ''}
        </span>
        <button type="button" onClick={() => void load(0, true)}>
          Reload
        </button>
        {picked.length > 0 && (
          <ConfirmButton
            label={`Re-send ${picked.length}`}
            question={`Produce ${picked.length} message${picked.length === 1 ? '' : 's'} again to the original topic, with new ids?`}
            onConfirm={() => resend(picked)}
          />
        )}
      </div>
      {resent.length > 0 && (
        <ul class="resent" aria-label="Re-sent">
          {resent.map((r) => (
            <li key={r.id}>
              {r.from} re-sent to {r.topic} as <Link href={`/messages/${enc(r.id)}`}>{r.id}</Link>
            </li>
          ))}
        </ul>
      )}
      <table class="letters">
        <thead>
          <tr>
            <th scope="col">
              <input
                type="checkbox"
                aria-label="Select all"
                checked={letters.length > 0 && picked.length === letters.length}
                onChange={(e) => setSelected(e.currentTarget.checked ? new Set(letters.map((l) => l.id)) : new Set())}
              />
            </th>
            <th scope="col">Dead letter</th>
            <th scope="col">From</th>
            <th scope="col">Error</th>
            <th scope="col">Value</th>
          </tr>
        </thead>
        <tbody>
          {letters.map((l) => {
            const h = l.headers;
            return (
              <tr key={l.id} data-letter={l.id}>
                <td>
                  <input type="checkbox" aria-label={`Select ${l.id}`} checked={selected.has(l.id)} onChange={() => toggle(l.id)} />
                </td>
                <td>
                  <Link href={`/messages/${enc(l.id)}`}>{l.id}</Link>
                  <div class="muted">{formatTime(l.created_at)}</div>
                </td>
                <td>
                  {h[`${ERROR_PREFIX}connector.name`] ?? '—'} · {h[`${ERROR_PREFIX}topic`] ?? '?'}
                  {h[`${ERROR_PREFIX}message.id`] && (
                    <div>
                      original <Link href={`/messages/${enc(h[`${ERROR_PREFIX}message.id`]!)}`}>{h[`${ERROR_PREFIX}message.id`]}</Link>
                    </div>
                  )}
                </td>
                <td>
                  <code>{h[`${ERROR_PREFIX}code`]}</code> {h[`${ERROR_PREFIX}message`]}
                  <div class="muted">
                    {h[`${ERROR_PREFIX}reason`]}
                    {h[`${ERROR_PREFIX}attempts`] ? `, ${h[`${ERROR_PREFIX}attempts`]} attempts` : ''}
                  </div>
                </td>
                <td>
                  <pre class="detail">{JSON.stringify(l.value)}</pre>
                </td>
              </tr>
            );
          })}
          {letters.length === 0 && (
            <tr>
              <td colSpan={5} class="muted">
                No messages in {props.topic}.
              </td>
            </tr>
          )}
        </tbody>
      </table>
      {next !== undefined && (
        <button type="button" onClick={() => void load(next, false)}>
          Load more
        </button>
      )}
    </>
  );
}
