/**
 * Read-only views an operator needs that Kafka Connect's API has no place for: the live workers
 * of the cluster with their heartbeats (`GET /workers`), and a topic's messages in time order
 * (`GET /topics/{topic}/messages`), which is how a dead-letter topic is browsed, or one key's
 * messages (`?key=`: the key's shard only). Behind
 * control-plane auth like every other route; nothing here writes.
 */
import type { FastifyPluginAsync } from 'fastify';
import { coreError } from '../errors.ts';
import { routeKey } from '../bus/shard.ts';
import type { Message, Store, Topic } from '../store/port.ts';
import { messageView } from './data-plane.ts';

export interface BrowseRoutesDeps {
  store: Pick<Store, 'readCluster' | 'getTopic' | 'readBuffer'>;
  /** The clock heartbeat ages are measured against (tests freeze it). */
  now?: () => number;
}

export const BROWSE_DEFAULT_LIMIT = 100;
export const BROWSE_MAX_LIMIT = 500;
/** Messages read per page when looking for a key's, and at most per request. */
const KEY_SCAN_PAGE = 1000;
const KEY_SCAN_LIMIT = 20_000;
/** Shards read at once when a page spans a topic's shards. */
const SHARD_READS_IN_FLIGHT = 8;

function integerParam(value: unknown, name: string, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  const text = String(value);
  const number = /^\d+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(number) || number < min || number > max) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: `${name} must be an integer from ${min} to ${max}, not "${text}"` });
  return number;
}

export function browseRoutes(deps: BrowseRoutesDeps): FastifyPluginAsync {
  const { store } = deps;
  const now = deps.now ?? Date.now;

  /**
   * A key's messages: only its shard is read (routeKey), in pages, at most KEY_SCAN_LIMIT
   * messages per request however few match; `next_since` goes on from where the scan stopped.
   */
  const messagesOfKey = async (topic: Topic, key: string, since: number, limit: number) => {
    const { shard } = routeKey(key, topic.shards);
    const found: Message[] = [];
    let from = since;
    let scanned = 0;
    let more = false;
    while (found.length < limit) {
      const page = await store.readBuffer(topic.name, shard, from, Number.MAX_SAFE_INTEGER, KEY_SCAN_PAGE);
      const seen = new Set(found.map((m) => m.id));
      for (const m of page) if (m.key === key && !seen.has(m.id) && found.length < limit) found.push(m);
      scanned += page.length;
      more = page.length === KEY_SCAN_PAGE;
      if (!more) break;
      const lastTs = page[page.length - 1]!.createdAt;
      // Pages go on from the last message's time, inclusive: a page all of one millisecond cannot move on.
      if (lastTs === from || scanned >= KEY_SCAN_LIMIT) break;
      from = lastTs;
    }
    const last = found.length === limit ? found[found.length - 1]!.createdAt : from;
    return { messages: found.map(messageView), ...(more || found.length === limit ? { next_since: last } : {}) };
  };

  return async (app) => {
    app.get('/workers', async () => {
      const at = now();
      const { members } = await store.readCluster(at);
      const workers = members
        .map((m) => ({
          worker_id: new URL(m.url).host,
          url: m.url,
          started_at: m.startedAt,
          heartbeat_at: m.heartbeatAt,
          heartbeat_age_ms: Math.max(0, at - m.heartbeatAt),
          worker_groups: m.groups ?? [],
        }))
        .sort((a, b) => a.worker_id.localeCompare(b.worker_id));
      return { workers };
    });

    app.get<{ Params: { topic: string }; Querystring: { since?: string; limit?: string; key?: string | string[] } }>('/topics/:topic/messages', async (request) => {
      const topic = await store.getTopic(request.params.topic);
      if (!topic) throw coreError('OMNI_ERR_BUS_TOPIC_NOT_FOUND', { topic: request.params.topic });
      const since = integerParam(request.query.since, 'since', 0, 0, Number.MAX_SAFE_INTEGER);
      const limit = integerParam(request.query.limit, 'limit', BROWSE_DEFAULT_LIMIT, 1, BROWSE_MAX_LIMIT);
      const key = request.query.key;
      if (key !== undefined) {
        if (typeof key !== 'string' || key.length === 0) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'key must be one non-empty value' });
        return messagesOfKey(topic, key, since, limit);
      }
      const perShard: Message[][] = new Array(topic.shards);
      let next = 0;
      const reader = async () => {
        while (next < topic.shards) {
          const shard = next++;
          perShard[shard] = await store.readBuffer(topic.name, shard, since, Number.MAX_SAFE_INTEGER, limit);
        }
      };
      await Promise.all(Array.from({ length: Math.min(SHARD_READS_IN_FLIGHT, topic.shards) }, reader));
      const merged = perShard.flat().sort((a, b) => a.createdAt - b.createdAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
      const page = merged.slice(0, limit);
      // More may follow when the page is full; the next one starts at the last message's time, inclusive.
      const more = merged.length > limit || perShard.some((messages) => messages.length === limit);
      return {
        messages: page.map(messageView),
        ...(more && page.length > 0 ? { next_since: page[page.length - 1]!.createdAt } : {}),
      };
    });
  };
}
