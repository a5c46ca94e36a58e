// Thousands of malformed requests against the control plane and the data plane of a worker on
// a real LMDB store: random bytes, wrong JSON types, huge numbers, deep nesting, unicode, path
// traversal, bad percent-encoding, unknown and invalid query values. Every answer must be a
// 4xx `{error_code, message}` (reads may succeed), never a 5xx, and the store must end exactly
// as it began. The generator is seeded: OMNIBUS_FUZZ_SEED=<n> replays a failing run.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { helloConfig, startTestWorker, type TestWorker } from './harness.ts';

const SEED = Number(process.env.OMNIBUS_FUZZ_SEED ?? 20_251_122);
const REQUESTS = 3000;

/** mulberry32: small, fast, good enough to drive a fuzzer, and reproducible from one number. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const random = prng(SEED);
const int = (n: number) => Math.floor(random() * n);
const pick = <T>(items: readonly T[]): T => items[int(items.length)] as T;
const chance = (p: number) => random() < p;

const ODD_TEXT = [
  '',
  ' ',
  '..',
  '../../etc/passwd',
  '\u0000',
  '\ud800',
  'é',
  '👩‍👩‍👧',
  '\u202e\u0644\u0627',
  'a\u0301',
  '<script>alert(1)</script>',
  "'; DROP TABLE connectors; --",
  '${env:PATH}',
  '${file:/etc/passwd:root}',
  '%s%n%x',
  'null',
  'true',
  '[hidden]',
  'HelloSink',
  'x'.repeat(5000),
];

function randomText(): string {
  if (chance(0.4)) return pick(ODD_TEXT);
  const length = int(chance(0.1) ? 400 : 20);
  let text = '';
  for (let i = 0; i < length; i++) text += String.fromCodePoint(chance(0.8) ? 32 + int(95) : int(0x2ffff));
  return text;
}

const NUMBERS = [0, -0, -1, 1.5, 2 ** 31, 2 ** 53 + 2, -(2 ** 63), 1e308, -1e308, Number.MIN_VALUE];

function randomJson(depth = 0): unknown {
  const kind = depth > 6 ? int(5) : int(8);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return chance(0.5);
    case 2:
      return pick(NUMBERS);
    case 3:
    case 4:
      return randomText();
    case 5: {
      // Deep nesting, as a list of lists.
      let value: unknown = randomJson(7);
      for (let i = int(chance(0.2) ? 500 : 10); i > 0; i--) value = [value];
      return value;
    }
    case 6:
      return Array.from({ length: int(5) }, () => randomJson(depth + 1));
    default: {
      const object: Record<string, unknown> = {};
      for (let i = int(6); i > 0; i--) object[chance(0.3) ? pick(['name', 'config', 'level', 'offsets', 'messages', 'shards', 'connector.class', 'topics']) : randomText()] = randomJson(depth + 1);
      return object;
    }
  }
}

/** A value a config map cannot hold (objects, arrays, null; NaN becomes null in JSON): a config carrying one is refused. */
const notAString = () => pick<unknown>([null, {}, [], [randomText()], { nested: randomJson(3) }, Number.NaN]);

function garbageBody(): { payload: string | Buffer; contentType?: string } {
  switch (int(9)) {
    case 0:
      return { payload: Buffer.from(Array.from({ length: 1 + int(300) }, () => int(256))), contentType: 'application/json' };
    case 1: {
      const text = JSON.stringify(randomJson()) ?? 'null';
      return { payload: text.slice(0, Math.max(1, int(text.length))), contentType: 'application/json' };
    }
    case 2:
      return { payload: pick(['{"a": 1e400}', '{"a":', '{,}', '[1,]', '{"__proto__": {"x": 1}}', '{"constructor": {"prototype": {}}}', 'NaN', '\ufeff{}', '{"a":"\\ud800"}']), contentType: 'application/json' };
    case 3:
      return { payload: JSON.stringify(randomJson()), contentType: pick(['text/plain', 'application/xml', 'multipart/form-data; boundary=x', 'application/x-www-form-urlencoded', 'image/png']) };
    case 4:
      return { payload: JSON.stringify(randomJson()) };
    default:
      return { payload: JSON.stringify(randomJson()) ?? 'null', contentType: 'application/json' };
  }
}

/** A name no connector or topic has, often malformed, ready for a URL. */
function strangerName(): string {
  switch (int(6)) {
    case 0:
      return pick(['%ff', '%', '%zz', '%00', '%2e%2e', '..%2F..%2Fconnectors', '%2F', 'a%2Fb', '%E2%80%AE']);
    case 1:
      return 'n'.repeat(1001 + int(2000));
    case 2:
      return `${encode(randomText())}-x`;
    default:
      return `stranger-${encode(randomText())}`;
  }
}

/** encodeURIComponent, after replacing lone surrogates (which it cannot encode) by U+FFFD. */
const encode = (text: string) => encodeURIComponent(text.replace(/[\ud800-\udfff]/gu, '\ufffd'));

const QUERY_NAMES = ['expand', 'connectorsOnly', 'includeTasks', 'onlyFailed', 'scope', 'key', 'forward', randomText(), '__proto__'];

function queryString(): string {
  if (chance(0.5)) return '';
  const parts = Array.from({ length: 1 + int(4) }, () => `${encode(pick(QUERY_NAMES))}=${chance(0.2) ? pick(['%zz', '%', '']) : encode(randomText())}`);
  return `?${parts.join('&')}`;
}

/** Invalid flag values only: a valid one would really restart something. */
const badFlag = () => pick(['maybe', '1', '0', 'yes', '', 'TRUE%20', '%20false', 'nul', `${encode(randomText())}x`]);

interface FuzzRequest {
  method: string;
  url: string;
  payload?: string | Buffer;
  contentType?: string;
  /** Writes must be refused; reads may succeed. */
  mustFail: boolean;
}

const withBody = (method: string, url: string, body: { payload: string | Buffer; contentType?: string }): FuzzRequest => ({
  method,
  url,
  mustFail: true,
  ...body,
});
const json = (value: unknown) => ({ payload: JSON.stringify(value), contentType: 'application/json' });

/** A PATCH body that cannot be valid: not an object, or an object holding a value no config can. */
function invalidPatch(): { payload: string | Buffer; contentType?: string } {
  const body = garbageBody();
  let parsed: unknown;
  try {
    // The server's parser skips a byte-order mark, so this one must too.
    parsed = JSON.parse(body.payload.toString().replace(/^\ufeff/, ''));
  } catch {
    return body;
  }
  if (parsed === null || typeof parsed !== 'object' || Array.isArray(parsed) || body.contentType !== 'application/json') return body;
  // Not null: in a PATCH, null removes the key, which may well be valid.
  return json({ ...(parsed as object), [pick(['topics', 'tasks.max', randomText()])]: pick<unknown>([{}, [], [randomText()], { nested: randomJson(3) }]) });
}

function mutatedConnector(): unknown {
  const config: Record<string, unknown> = helloConfig('fuzz-new');
  const key = pick([...Object.keys(config), 'hello.greeting', 'tasks.max', randomText()]);
  config[key] = notAString();
  return chance(0.5) ? { name: 'fuzz-new', config } : { name: pick([notAString(), '', 'a/b', '\u0007']), config: helloConfig('fuzz-new') };
}

function mutatedTopic(): unknown {
  const topic: Record<string, unknown> = { name: 'fuzz-new-topic', shards: 3 };
  switch (int(4)) {
    case 0:
      topic.shards = pick([0, -1, 1.5, 5000, 1e9, '3', null, [], {}, Number.MAX_SAFE_INTEGER * 2]);
      break;
    case 1:
      topic.name = pick(['', '../x', 'a b', 'x'.repeat(250), 'é', null, 7, [], '%2F', '.\u0000']);
      break;
    case 2:
      topic.schema = pick([{ type: 'nope' }, 'schema', 5, [], { $ref: 'http://127.0.0.1:1/schema.json' }, { properties: 3 }]);
      break;
    default:
      topic['retention.ms'] = pick([-5, 0, 'x', 1e30, 1.5, null, {}]);
  }
  return topic;
}

function mutatedBatch(): unknown {
  const item: Record<string, unknown> = { key: 'k', value: { name: 'v' } };
  switch (int(6)) {
    case 0:
      item.key = pick(['', 5, null, [], {}, 'k'.repeat(5000)]);
      break;
    case 1:
      delete item.value;
      break;
    case 2:
      item.headers = pick([{ h: 5 }, 'h', [], { h: null }]);
      break;
    case 3:
      item.id = pick(['', 'a b', 'x'.repeat(200), 5, {}, '../id']);
      break;
    case 4:
      return { messages: pick([[], 'x', {}, null, 5]) };
    default:
      return { messages: [item, item].map((m, i) => (i === 1 ? 'not an object' : m)), group: pick([5, {}, 'a b', '', 'x'.repeat(200)]) };
  }
  return { messages: [item] };
}

function nextRequest(): FuzzRequest {
  const existing = pick(['fuzz-a', 'fuzz-stopped']);
  const anyName = () => (chance(0.5) ? existing : strangerName());
  switch (int(24)) {
    case 0:
      return withBody('POST', `/connectors${queryString()}`, chance(0.5) ? garbageBody() : json(mutatedConnector()));
    case 1:
      return withBody('PUT', `/connectors/${anyName()}/config`, chance(0.5) ? garbageBody() : json({ ...helloConfig('x'), topics: notAString() }));
    case 2:
      return withBody('PATCH', `/connectors/${anyName()}/config`, invalidPatch());
    case 3:
      return withBody('PATCH', `/connectors/${chance(0.5) ? 'fuzz-a' : strangerName()}/offsets`, chance(0.5) ? garbageBody() : json({ offsets: [{ partition: { topic: 'fuzz-topic', shard: 0 }, offset: { watermark: 5 } }] }));
    case 4:
      return { method: 'DELETE', url: `/connectors/${strangerName()}${queryString()}`, mustFail: true };
    case 5:
      return { method: 'DELETE', url: `/connectors/${chance(0.5) ? 'fuzz-a' : strangerName()}/offsets`, mustFail: true };
    case 6:
      return { method: 'PUT', url: `/connectors/${strangerName()}/${pick(['pause', 'resume', 'stop'])}${queryString()}`, mustFail: true };
    case 7:
      return {
        method: 'POST',
        // Kafka takes any flag but true as false: only the unknown connector makes it fail.
        url: `/connectors/${strangerName()}/restart?${pick(['includeTasks', 'onlyFailed'])}=${badFlag()}`,
        mustFail: true,
      };
    case 8:
      return { method: 'POST', url: `/connectors/${strangerName()}/restart${queryString()}`, mustFail: true };
    case 9:
      return {
        method: 'POST',
        url: `/connectors/${anyName()}/tasks/${pick(['-1', 'x', '1.0', '5', '99999999999', '0x0', '%20', '1e2', `z${encode(randomText())}`])}/restart`,
        mustFail: true,
      };
    case 10:
      return { method: 'PUT', url: `/connectors/${strangerName()}/topics/reset`, mustFail: true };
    case 11:
      return withBody('POST', '/topics', chance(0.5) ? garbageBody() : json(mutatedTopic()));
    case 12:
      return withBody('POST', `/topics/${chance(0.6) ? 'fuzz-topic' : strangerName()}/messages`, chance(0.4) ? garbageBody() : json(mutatedBatch()));
    case 13:
      return withBody('PUT', `/admin/loggers/${chance(0.5) ? 'omnibus' : strangerName()}${queryString()}`, chance(0.5) ? garbageBody() : json({ level: randomText() }));
    case 14:
      return { method: pick(['POST', 'PATCH', 'DELETE', 'PUT']), url: pick(['/', '/health', '/connector-plugins', '/metrics', '/openapi.json', `/connectors/${existing}/status`, '/admin/loggers', '/topics/fuzz-topic']), mustFail: true };
    case 15: {
      // Clients resolve %2e%2e segments (as inject does), so a GET may land on a real page.
      const method = pick(['GET', 'POST', 'PUT', 'DELETE']);
      return { method, url: `/${strangerName()}/${strangerName()}${queryString()}`, mustFail: method !== 'GET' };
    }
    case 16:
      return { method: 'POST', url: `/hooks/${strangerName()}${chance(0.5) ? `/${strangerName()}` : ''}${queryString()}`, mustFail: true, ...garbageBody() };
    case 17:
      return { ...withBody('PUT', `/connector-plugins/${chance(0.5) ? 'HelloSink' : strangerName()}/config/validate`, chance(0.5) ? garbageBody() : json(randomJson())), mustFail: false };
    case 18:
      return { method: 'GET', url: `/connector-plugins${chance(0.5) ? `?connectorsOnly=${badFlag()}` : queryString()}`, mustFail: false };
    case 19:
      return { method: 'GET', url: `/connector-plugins/${strangerName()}/config${queryString()}`, mustFail: false };
    case 20:
      return {
        method: 'GET',
        url: `/connectors/${anyName()}${pick(['', '/config', '/status', '/tasks', '/tasks-config', '/topics', '/offsets', `/tasks/${pick(['0', 'x', '-1', '7'])}/status`])}${queryString()}`,
        mustFail: false,
      };
    case 21:
      return { method: 'GET', url: `/connectors${chance(0.5) ? `?expand=${encode(randomText())}&expand=status` : queryString()}`, mustFail: false };
    case 22:
      return { method: 'GET', url: `/topics/${chance(0.5) ? 'fuzz-topic' : strangerName()}/route${chance(0.5) ? `?key=${encode(randomText())}&key=b` : queryString()}`, mustFail: false };
    default:
      return { method: 'GET', url: `/${pick(['messages', 'groups', 'admin/loggers', 'topics'])}/${strangerName()}${queryString()}`, mustFail: false };
  }
}

let worker: TestWorker;

async function snapshot(): Promise<string> {
  const { store } = worker;
  const connectors = await store.listConnectors();
  const statuses = await Promise.all(connectors.map((c) => store.listStatuses(c.name)));
  const offsets = await Promise.all(connectors.map((c) => store.getSourceOffsets(c.name)));
  const topics = await store.listTopics();
  const buffers = await Promise.all(
    topics.flatMap((t) => Array.from({ length: t.shards }, (_, shard) => store.readBuffer(t.name, shard, 0, Number.MAX_SAFE_INTEGER, 100_000))),
  );
  const ids = buffers.flat().map((entry) => entry.id);
  const messages = [...(await store.getMessages(ids)).values()];
  const watermarks = await Promise.all(Array.from({ length: 4 }, (_, shard) => store.getWatermark('fuzz-a', 'fuzz-topic', shard)));
  return JSON.stringify({ connectors, statuses, offsets, topics, buffers, messages, watermarks });
}

beforeAll(async () => {
  worker = await startTestWorker();
  await worker.store.createTopic({ name: 'fuzz-topic', shards: 4, retentionMs: 3_600_000, createdAt: Date.now() });
  await worker.herder.createConnector('fuzz-a', helloConfig('fuzz-a', { topics: 'fuzz-topic', 'hello.webhook.secret': 'fuzz-secret' }));
  await worker.herder.createConnector('fuzz-stopped', helloConfig('fuzz-stopped', { topics: 'fuzz-topic' }), 'STOPPED');
  const produced = await worker.app.inject({
    method: 'POST',
    url: '/topics/fuzz-topic/messages',
    payload: { messages: [{ key: 'a', value: { name: 'A' } }, { key: 'b', value: { name: 'B' }, id: 'fixed-id' }] },
  });
  expect(produced.statusCode).toBe(202);
});

afterAll(async () => {
  await worker?.close();
});

describe(`fuzzing the REST API (seed ${SEED})`, () => {
  it(`answers ${REQUESTS} malformed requests with 4xx {error_code, message}, never 5xx, and changes nothing`, async () => {
    const before = await snapshot();
    const failures: string[] = [];
    const statuses = new Map<number, number>();
    for (let i = 0; i < REQUESTS && failures.length < 10; i++) {
      const request = nextRequest();
      const headers: Record<string, string> = request.contentType ? { 'content-type': request.contentType } : {};
      const response = await worker.app.inject({
        method: request.method as 'GET',
        url: request.url,
        headers,
        ...(request.payload !== undefined ? { payload: request.payload } : {}),
      });
      statuses.set(response.statusCode, (statuses.get(response.statusCode) ?? 0) + 1);
      const where = `#${i} ${request.method} ${request.url.slice(0, 200)} ${String(request.payload ?? '').slice(0, 200)} → ${response.statusCode} ${response.body.slice(0, 300)}`;
      if (response.statusCode >= 500) failures.push(`5xx: ${where}`);
      else if (request.mustFail && (response.statusCode < 400 || response.statusCode >= 500)) failures.push(`accepted: ${where}`);
      if (response.statusCode >= 400) {
        let body: { error_code?: unknown; message?: unknown } | undefined;
        try {
          body = response.json();
        } catch {
          body = undefined;
        }
        if (body?.error_code !== response.statusCode || typeof body.message !== 'string' || body.message === '') failures.push(`error body: ${where}`);
      }
    }
    expect(failures, `replay with OMNIBUS_FUZZ_SEED=${SEED}`).toEqual([]);
    // The run must have reached the validation paths, not only the router's 404.
    for (const status of [400, 404, 415]) expect(statuses.get(status) ?? 0, `answers with ${status}`).toBeGreaterThan(50);
    expect(statuses.get(422) ?? 0).toBeGreaterThan(10);
    expect(await snapshot()).toBe(before);
  });
});
