/**
 * The data plane: topics, produce, routing, and what became of a message or a group; and the
 * wake hints workers send each other after a produce (bus/peer-wake.ts).
 * Errors are thrown as registry errors (errors.ts) and answered by the server's one error handler; a rejected
 * request writes nothing.
 */
import type { FastifyPluginAsync } from 'fastify';
import { coreError } from '../errors.ts';
import { consumersOf, registerGroupAndCancelRoutes } from './cancel-and-groups.ts';
import { applyWakeHints, parseWakeHints, WAKE_PATH } from '../bus/peer-wake.ts';
import type { Producer } from '../bus/producer.ts';
import { reshardedTopic, shardCountAt } from '../bus/reshard.ts';
import { FALLBACK_ID_HEADER, FALLBACK_OF_HEADER } from '../bus/fallback.ts';
import { priorityOf } from '../bus/priority.ts';
import { routeKey } from '../bus/shard.ts';
import type { ShardSignals } from '../bus/signals.ts';
import { newTopic } from '../bus/topics.ts';
import { templateUsed, type Templates } from '../transforms/templates/service.ts';
import { positionOf, type QuietHours, type Delivery, type Message, type MessageEvent, type Store, type Topic } from '../store/port.ts';

export interface DataPlaneDeps {
  store: Store;
  producer: Producer;
  /** Whom peers' wake hints notify; the producer's signals when not given. */
  signals?: ShardSignals;
  /** Renders the messages of a produce that name a template; without it, values are stored as given. */
  templates?: Templates;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function topicView(topic: Topic) {
  return {
    name: topic.name,
    shards: topic.shards,
    'retention.ms': topic.retentionMs,
    ...(topic.schema ? { schema: topic.schema } : {}),
    ...(topic.quietHours ? { quiet_hours: quietHoursView(topic.quietHours) } : {}),
    created_at: topic.createdAt,
    ...(topic.reshards ? { reshards: topic.reshards.map((r) => ({ at: r.at, from: r.from, to: r.to })) } : {}),
  };
}

export const quietHoursView = (quiet: QuietHours) => ({ start: quiet.start, end: quiet.end, time_zone: quiet.timeZone });

export function messageView(message: Message) {
  return {
    id: message.id,
    topic: message.topic,
    key: message.key,
    token: message.token,
    shard: message.shard,
    value: message.value,
    headers: message.headers,
    ...(message.group !== undefined ? { group: message.group } : {}),
    priority: priorityOf(message),
    created_at: message.createdAt,
  };
}

/** A channel fallback's chain, both ways (bus/fallback.ts): the original names its fallback, the fallback its original. */
export function fallbackChain(message: Message) {
  const id = message.headers[FALLBACK_ID_HEADER];
  const of = message.headers[FALLBACK_OF_HEADER];
  return { ...(id !== undefined ? { fallback_id: id } : {}), ...(of !== undefined ? { fallback_of: of } : {}) };
}

export function deliveryView(delivery: Delivery) {
  return {
    connector: delivery.connector,
    state: delivery.state,
    attempts: delivery.attempts,
    epoch: delivery.epoch,
    worker_id: delivery.workerId,
    ...(delivery.providerId !== undefined ? { provider_id: delivery.providerId } : {}),
    ...(delivery.lastError ? { last_error: delivery.lastError } : {}),
    ...(delivery.nextAttemptAt !== undefined ? { next_attempt_at: delivery.nextAttemptAt } : {}),
    updated_at: delivery.updatedAt,
  };
}

export function eventView(event: MessageEvent) {
  return {
    at: event.at,
    type: event.type,
    ...(event.connector !== undefined ? { connector: event.connector } : {}),
    ...(event.workerId !== undefined ? { worker_id: event.workerId } : {}),
    ...(event.detail ? { detail: event.detail } : {}),
  };
}

/** A message held until due (send_at, quiet hours): not in the buffer yet, so no deliveries. */
async function heldMessageView(store: Store, id: string) {
  const held = (await store.getScheduled([id])).get(id);
  if (!held) throw coreError('OMNI_ERR_BUS_MESSAGE_NOT_FOUND', { id });
  const events = await store.listEvents(id);
  return {
    message: messageView(held.message),
    ...fallbackChain(held.message),
    state: 'scheduled',
    send_at: held.dueAt,
    scheduled_by: held.reason,
    deliveries: [],
    events: [...events].sort((a, b) => a.at - b.at).map(eventView),
  };
}

export function dataPlaneRoutes(deps: DataPlaneDeps): FastifyPluginAsync {
  const { store, producer } = deps;

  const topicOr404 = async (name: string): Promise<Topic> => {
    const topic = await producer.topic(name);
    if (!topic) throw coreError('OMNI_ERR_BUS_TOPIC_NOT_FOUND', { topic: name });
    return topic;
  };

  return async (app) => {
    app.post('/topics', async (request, reply) => {
      const body = request.body;
      if (!isObject(body)) throw coreError('OMNI_ERR_TOPIC_INVALID', { problem: 'Expected a JSON object {name, shards, schema?, "retention.ms"?, quiet_hours?}' });
      const topic = newTopic({
        name: body.name as string,
        shards: body.shards as number,
        ...(body.schema !== undefined ? { schema: body.schema as Record<string, unknown> } : {}),
        ...(body['retention.ms'] !== undefined ? { retentionMs: body['retention.ms'] as number } : {}),
        ...(body.quiet_hours !== undefined ? { quietHours: body.quiet_hours } : {}),
      });
      if (!(await store.createTopic(topic))) throw coreError('OMNI_ERR_TOPIC_EXISTS', { topic: topic.name });
      return reply.status(201).send(topicView(topic));
    });

    app.get('/topics', async () => (await store.listTopics()).map(topicView));

    // Raises the shard count; the new layout applies to messages produced from its switch time on (bus/reshard.ts).
    app.put<{ Params: { topic: string } }>('/topics/:topic/shards', async (request) => {
      const body = request.body;
      if (!isObject(body)) throw coreError('OMNI_ERR_TOPIC_INVALID', { problem: 'Expected a JSON object {shards}' }, { errors: { shards: 'is required' } });
      const name = request.params.topic;
      const current = await store.getTopic(name);
      if (!current) throw coreError('OMNI_ERR_BUS_TOPIC_NOT_FOUND', { topic: name });
      const next = reshardedTopic(current, body.shards);
      if (!(await store.reshardTopic(next, current.shards))) throw coreError('OMNI_ERR_TOPIC_RESHARD_CONFLICT', { topic: name });
      producer.forgetTopic(name);
      // Every worker re-reads the connectors at its next heartbeat, and its sink tasks their topics.
      await store.bumpConnectorsVersion();
      return topicView(next);
    });

    app.get<{ Params: { topic: string } }>('/topics/:topic', async (request) => topicView(await topicOr404(request.params.topic)));

    app.post<{ Params: { topic: string } }>('/topics/:topic/messages', async (request, reply) => {
      const body = request.body;
      if (!isObject(body) || !Array.isArray(body.messages)) {
        throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'Expected a JSON object {messages: [{key, value, headers?, id?, group?}, …], group?}' });
      }
      if (body.group !== undefined && typeof body.group !== 'string') throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'group must be a string' });
      const length = Number(request.headers['content-length']);
      const messages = deps.templates ? await deps.templates.renderProduce(body.messages) : body.messages;
      const produced = await producer.produce(request.params.topic, messages, {
        ...(body.group !== undefined ? { group: body.group as string } : {}),
        // The body's length bounds every message's size (unless it came compressed or chunked).
        ...(Number.isSafeInteger(length) && length > 0 && !request.headers['content-encoding'] ? { sourceBytes: length } : {}),
      });
      return reply.status(202).send({ messages: produced });
    });

    // A peer wrote to these shards: wake the local consumers of the ones this worker reads.
    app.post(WAKE_PATH, async (request, reply) => {
      applyWakeHints(deps.signals ?? producer.signals, parseWakeHints(request.body));
      return reply.status(204).send();
    });

    app.get<{ Params: { topic: string }; Querystring: { key?: string | string[] } }>('/topics/:topic/route', async (request) => {
      const topic = await topicOr404(request.params.topic);
      const key = request.query.key;
      if (typeof key !== 'string' || key.length === 0) throw coreError('OMNI_ERR_REQUEST_INVALID', { problem: 'Query parameter key is required (one non-empty value)' });
      // The layout in force now (a raised shard count applies from its switch on).
      const { token, shard } = routeKey(key, shardCountAt(topic, Date.now()));
      return { key, token, shard };
    });

    app.get<{ Params: { id: string } }>('/messages/:id', async (request) => {
      const id = request.params.id;
      const message = (await store.getMessages([id])).get(id);
      if (!message) return heldMessageView(store, id);
      const position = positionOf(message);
      const [consumers, events] = await Promise.all([consumersOf(store, new Set([message.topic])), store.listEvents(id)]);
      const deliveries = await Promise.all(consumers.get(message.topic)!.map(async (c) => (await store.getDeliveries(c, [position])).get(id)));
      // Rendered at produce (the message's headers) or by a sink's RenderTemplate (its `sent` event).
      const template = templateUsed(message.headers) ?? events.map((e) => e.detail?.template).find((t) => t !== undefined);
      return {
        message: messageView(message),
        ...fallbackChain(message),
        ...(template ? { template } : {}),
        deliveries: deliveries.filter((d): d is Delivery => d !== undefined).map(deliveryView),
        events: [...events].sort((a, b) => a.at - b.at).map(eventView),
      };
    });

    registerGroupAndCancelRoutes(app, store);
  };
}
