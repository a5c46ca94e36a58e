/**
 * What waits, cluster-wide: `GET /connectors/{c}/backlog` and `GET /topics/{t}/backlog` give
 * each sink connector's messages waiting and the age of the oldest, per (topic, shard) and in
 * total — the figures of the lag metrics (metrics.ts), gathered from every live worker. Each
 * worker knows only the shards its tasks hold, so the answering worker asks its peers for
 * theirs (`GET /internal/backlog`, with the credential wake hints carry) and merges them; a
 * peer that does not answer in time is named in `workers_unreachable`. A shard no live worker
 * holds has nothing read waiting (its consumer gave its lease back when idle, or its owner
 * left and the next one has not taken it yet): it shows 0 and no worker.
 */
import type { FastifyPluginAsync } from 'fastify';
import { coreError } from '../errors.ts';
import { totalsByConnector, type ShardBacklogReport } from '../metrics.ts';
import type { Member, Store, Topic } from '../store/port.ts';

export const BACKLOG_PATH = '/internal/backlog';
const DEFAULT_PEER_TIMEOUT_MS = 2000;

export interface BacklogRoutesDeps {
  store: Pick<Store, 'getConnector' | 'getTopic' | 'listConnectors'>;
  /** This worker's shards (Metrics.backlog). */
  local: () => ShardBacklogReport[];
  /** This worker's id, left out of `members`. */
  selfId: () => string;
  /** The live workers as membership last read them. */
  members: () => readonly Pick<Member, 'id' | 'url'>[];
  /** The Authorization header peers require, if any. */
  authorization?: string;
  peerTimeoutMs?: number;
  now?: () => number;
}

/** One shard of one connector, as `GET /internal/backlog` carries it. */
interface WireShard {
  connector: string;
  task: number;
  topic: string;
  shard: number;
  waiting: number;
  oldest_ts: number | null;
}

interface Gathered {
  shards: Array<ShardBacklogReport & { workerId: string }>;
  unreachable: string[];
}

const toWire = (r: ShardBacklogReport): WireShard => ({
  connector: r.connector,
  task: r.task,
  topic: r.topic,
  shard: r.shard,
  waiting: r.waiting,
  oldest_ts: r.oldestTs ?? null,
});

const isWireShard = (v: unknown): v is WireShard => {
  const s = v as Partial<WireShard> | null;
  return (
    typeof s === 'object' &&
    s !== null &&
    typeof s.connector === 'string' &&
    typeof s.topic === 'string' &&
    Number.isInteger(s.task) &&
    Number.isInteger(s.shard) &&
    typeof s.waiting === 'number' &&
    (s.oldest_ts === null || typeof s.oldest_ts === 'number')
  );
};

export function backlogRoutes(deps: BacklogRoutesDeps): FastifyPluginAsync {
  const now = deps.now ?? Date.now;
  const timeoutMs = deps.peerTimeoutMs ?? DEFAULT_PEER_TIMEOUT_MS;

  const askPeer = async (peer: Pick<Member, 'id' | 'url'>): Promise<Array<ShardBacklogReport & { workerId: string }>> => {
    const response = await fetch(`${peer.url.replace(/\/+$/, '')}${BACKLOG_PATH}`, {
      headers: { accept: 'application/json', ...(deps.authorization ? { authorization: deps.authorization } : {}) },
      signal: AbortSignal.timeout(timeoutMs),
    });
    if (!response.ok) throw new Error(`${peer.id} answered ${response.status}`);
    const body = (await response.json()) as { shards?: unknown };
    if (!Array.isArray(body.shards)) throw new Error(`${peer.id} answered no shards`);
    return body.shards.filter(isWireShard).map((s) => ({
      connector: s.connector,
      task: s.task,
      topic: s.topic,
      shard: s.shard,
      waiting: s.waiting,
      oldestTs: s.oldest_ts ?? undefined,
      workerId: peer.id,
    }));
  };

  const gather = async (): Promise<Gathered> => {
    const self = deps.selfId();
    const peers = deps.members().filter((m) => m.id !== self && m.url);
    const answers = await Promise.allSettled(peers.map(askPeer));
    const shards = deps.local().map((r) => ({ ...r, workerId: self }));
    const unreachable: string[] = [];
    answers.forEach((answer, i) => {
      if (answer.status === 'fulfilled') shards.push(...answer.value);
      else unreachable.push(peers[i]!.id);
    });
    return { shards, unreachable };
  };

  /** A connector's shards of `topics`, each with its figures (0 and no worker where none holds it). */
  const shardRows = (connector: string, topics: readonly Topic[], gathered: Gathered, at: number) =>
    topics.flatMap((topic) =>
      Array.from({ length: topic.shards }, (_, shard) => {
        const held = gathered.shards.find((s) => s.connector === connector && s.topic === topic.name && s.shard === shard);
        return {
          topic: topic.name,
          shard,
          task: held?.task ?? null,
          worker_id: held?.workerId ?? null,
          waiting: held?.waiting ?? 0,
          oldest_waiting_ms: ageMs(held?.oldestTs, at),
        };
      }),
    );

  const totals = (connector: string, gathered: Gathered, topics: ReadonlySet<string>, at: number) => {
    const total = totalsByConnector(gathered.shards.filter((s) => s.connector === connector && topics.has(s.topic))).get(connector);
    return { waiting: total?.waiting ?? 0, oldest_waiting_ms: ageMs(total?.oldestTs, at) };
  };

  const topicsOf = (config: Record<string, string>) =>
    (config.topics ?? '')
      .split(',')
      .map((t) => t.trim())
      .filter(Boolean);

  return async (app) => {
    app.get(BACKLOG_PATH, async () => ({ worker_id: deps.selfId(), shards: deps.local().map(toWire) }));

    app.get<{ Params: { connector: string } }>('/connectors/:connector/backlog', async (request) => {
      const name = request.params.connector;
      const record = await deps.store.getConnector(name);
      if (!record) throw coreError('OMNI_ERR_CONNECTOR_NOT_FOUND', { problem: `Connector ${name} not found` });
      const topics = (await Promise.all(topicsOf(record.config).map((t) => deps.store.getTopic(t)))).filter((t): t is Topic => t !== undefined);
      const gathered = await gather();
      const at = now();
      return {
        name,
        ...totals(name, gathered, new Set(topics.map((t) => t.name)), at),
        shards: shardRows(name, topics, gathered, at),
        workers_unreachable: gathered.unreachable,
      };
    });

    app.get<{ Params: { topic: string } }>('/topics/:topic/backlog', async (request) => {
      const topic = await deps.store.getTopic(request.params.topic);
      if (!topic) throw coreError('OMNI_ERR_BUS_TOPIC_NOT_FOUND', { topic: request.params.topic });
      const readers = (await deps.store.listConnectors())
        .filter((c) => topicsOf(c.config).includes(topic.name))
        .map((c) => c.name)
        .sort();
      const gathered = await gather();
      const at = now();
      const only = new Set([topic.name]);
      return {
        topic: topic.name,
        connectors: readers.map((name) => ({ name, ...totals(name, gathered, only, at), shards: shardRows(name, [topic], gathered, at) })),
        workers_unreachable: gathered.unreachable,
      };
    });
  };
}

/** How long ago `ts` was (ms), 0 when nothing waits. */
const ageMs = (ts: number | undefined, at: number) => (ts === undefined ? 0 : Math.max(0, at - ts));
