/**
 * The data plane: topics, produce, routing, and what became of a message or a group.
 * Errors are thrown as HttpErrors and answered by the server's one error handler; a rejected
 * request writes nothing.
 */
import type { FastifyPluginAsync } from 'fastify';
import { badRequest, conflict, notFound } from '../errors.ts';
import type { Producer } from '../bus/producer.ts';
import { routeKey } from '../bus/shard.ts';
import { newTopic } from '../bus/topics.ts';
import type { Delivery, DeliveryState, Message, MessageEvent, Store, Topic } from '../store/port.ts';

export interface DataPlaneDeps {
  store: Store;
  producer: Producer;
  /** Most messages a group report looks at. */
  groupReportLimit?: number;
}

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);

export function topicView(topic: Topic) {
  return {
    name: topic.name,
    shards: topic.shards,
    'retention.ms': topic.retentionMs,
    ...(topic.schema ? { schema: topic.schema } : {}),
    created_at: topic.createdAt,
  };
}

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
    created_at: message.createdAt,
  };
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

export function dataPlaneRoutes(deps: DataPlaneDeps): FastifyPluginAsync {
  const { store, producer } = deps;
  const groupLimit = deps.groupReportLimit ?? 10_000;

  const topicOr404 = async (name: string): Promise<Topic> => {
    const topic = await producer.topic(name);
    if (!topic) throw notFound(`Topic ${name} not found`, 'OMNI_ERR_BUS_TOPIC_NOT_FOUND');
    return topic;
  };

  return async (app) => {
    app.post('/topics', async (request, reply) => {
      const body = request.body;
      if (!isObject(body)) throw badRequest('Expected a JSON object {name, shards, schema?, "retention.ms"?}', undefined, 'OMNI_ERR_TOPIC_INVALID');
      const topic = newTopic({
        name: body.name as string,
        shards: body.shards as number,
        ...(body.schema !== undefined ? { schema: body.schema as Record<string, unknown> } : {}),
        ...(body['retention.ms'] !== undefined ? { retentionMs: body['retention.ms'] as number } : {}),
      });
      if (!(await store.createTopic(topic))) throw conflict(`Topic ${topic.name} already exists`, 'OMNI_ERR_TOPIC_EXISTS');
      return reply.status(201).send(topicView(topic));
    });

    app.get('/topics', async () => (await store.listTopics()).map(topicView));

    app.get<{ Params: { topic: string } }>('/topics/:topic', async (request) => topicView(await topicOr404(request.params.topic)));

    app.post<{ Params: { topic: string } }>('/topics/:topic/messages', async (request, reply) => {
      const body = request.body;
      if (!isObject(body) || !Array.isArray(body.messages)) {
        throw badRequest('Expected a JSON object {messages: [{key, value, headers?, id?, group?}, …], group?}');
      }
      if (body.group !== undefined && typeof body.group !== 'string') throw badRequest('group must be a string');
      const length = Number(request.headers['content-length']);
      const produced = await producer.produce(request.params.topic, body.messages, {
        ...(body.group !== undefined ? { group: body.group as string } : {}),
        // The body's length bounds every message's size (unless it came compressed or chunked).
        ...(Number.isSafeInteger(length) && length > 0 && !request.headers['content-encoding'] ? { sourceBytes: length } : {}),
      });
      return reply.status(202).send({ messages: produced });
    });

    app.get<{ Params: { topic: string }; Querystring: { key?: string | string[] } }>('/topics/:topic/route', async (request) => {
      const topic = await topicOr404(request.params.topic);
      const key = request.query.key;
      if (typeof key !== 'string' || key.length === 0) throw badRequest('Query parameter key is required (one non-empty value)');
      const { token, shard } = routeKey(key, topic.shards);
      return { key, token, shard };
    });

    app.get<{ Params: { id: string } }>('/messages/:id', async (request) => {
      const id = request.params.id;
      const message = (await store.getMessages([id])).get(id);
      if (!message) throw notFound(`Message ${id} not found`, 'OMNI_ERR_BUS_MESSAGE_NOT_FOUND');
      const [deliveries, events] = await Promise.all([store.listDeliveries(id), store.listEvents(id)]);
      return {
        message: messageView(message),
        deliveries: deliveries.map(deliveryView),
        events: [...events].sort((a, b) => a.at - b.at).map(eventView),
      };
    });

    app.get<{ Params: { group: string } }>('/groups/:group', async (request) => {
      const group = request.params.group;
      // One more than the limit tells a complete report from a truncated one.
      const ids = await store.listGroupMessages(group, groupLimit + 1);
      if (ids.length === 0) throw notFound(`Group ${group} has no messages`, 'OMNI_ERR_BUS_GROUP_NOT_FOUND');
      const truncated = ids.length > groupLimit;
      const counted = ids.slice(0, groupLimit);
      const [messages, connectors] = await Promise.all([store.getMessages(counted), store.listConnectors()]);
      const consumersOf = (topic: string) =>
        connectors
          .filter((c) => (c.config.topics ?? '').split(',').map((t) => t.trim()).includes(topic))
          .map((c) => c.name);
      const counts: Record<string, Partial<Record<DeliveryState, number>>> = {};
      const bump = (connector: string, state: DeliveryState) => {
        const byState = (counts[connector] ??= {});
        byState[state] = (byState[state] ?? 0) + 1;
      };
      const deliveries = await mapLimited(counted, 32, (id) => store.listDeliveries(id));
      counted.forEach((id, i) => {
        const seen = new Set<string>();
        for (const delivery of deliveries[i]!) {
          seen.add(delivery.connector);
          bump(delivery.connector, delivery.state);
        }
        // A consumer that has not written a row for the message yet has it pending.
        const topic = messages.get(id)?.topic;
        if (topic) for (const connector of consumersOf(topic)) if (!seen.has(connector)) bump(connector, 'pending');
      });
      return { group, messages: counted.length, truncated, connectors: counts };
    });
  };
}

/** Maps with at most `limit` calls in flight (a group report must not open thousands of queries at once). */
async function mapLimited<T, R>(items: readonly T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const index = next++;
      out[index] = await fn(items[index]!);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}
