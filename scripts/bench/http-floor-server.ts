/**
 * The HTTP floor: a server that takes the benchmark's produce requests the way a worker's
 * REST API does (fastify with the same body limit; the JSON body parsed; an id and a shard per
 * message in the 202 answer, ids made by the worker's own generator) and does nothing else: no
 * validation, no routing key hashing, no store, no consumer. What a message costs here is what
 * REST ingest costs on this machine before Omnibus does anything with the message.
 *
 * Started by http-floor.ts as a worker is (`start --store <ignored> --listeners http://127.0.0.1:<port>`),
 * so that the benchmark drives both through the same client.
 */
import { parseArgs } from 'node:util';
import { UuidV7Generator } from '../../packages/core/src/store/ids.ts';
import { loadWorkerConfig } from '../../packages/core/src/runtime/worker-config.ts';
import { fastify } from './deps.ts';

const { values } = parseArgs({ options: { store: { type: 'string' }, listeners: { type: 'string' } }, strict: false });
const listener = new URL(String(values.listeners ?? 'http://127.0.0.1:0'));
const SHARDS = 16;
const ids = new UuidV7Generator();

const app = (await fastify())({ bodyLimit: loadWorkerConfig({}, { env: {} })['rest.body.limit.bytes'] });
app.get('/health', async () => ({ status: 'healthy' }));
app.post('/topics/:topic/messages', async (request, reply) => {
  const { messages } = request.body as { messages: unknown[] };
  const answer = new Array<{ id: string; shard: number }>(messages.length);
  for (let i = 0; i < messages.length; i++) answer[i] = { id: ids.next(), shard: i % SHARDS };
  return reply.status(202).send({ messages: answer });
});
await app.listen({ host: listener.hostname, port: Number(listener.port) });
