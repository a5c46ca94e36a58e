/**
 * Topic JSON Schemas come from REST callers: their regexes run on a linear-time engine (RE2)
 * or are refused, one topic's schema cannot disturb another's, and compiled schemas are kept
 * in a bounded cache.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Core depends on no connector package; the workspace's EmailSink is read from its sources.
import { EmailSink } from '../../../connector-email/src/index.ts';
import {
  compileConnectorSchema,
  compileSchema,
  linearRegExp,
  MAX_COMPILED_SCHEMAS,
  MAX_PATTERN_INSTRUCTIONS,
  MAX_TOPIC_SCHEMA_BYTES,
  PATTERN_STEPS_PER_TURN,
  SchemaCache,
  schemaProblem,
  topicSchemas,
} from '../../src/bus/schemas.ts';
import { startTestWorker, type TestWorker } from '../rest/harness.ts';

let worker: TestWorker;
beforeAll(async () => {
  worker = await startTestWorker();
});
afterAll(async () => {
  await worker.close();
});

async function call(method: 'POST' | 'GET', url: string, payload?: unknown) {
  const response = await worker.app.inject({ method, url, ...(payload === undefined ? {} : { payload: payload as object }) });
  return { status: response.statusCode, body: response.json() as { error_code?: number; message?: string; errors?: Record<string, string> } };
}

/** A generous bound: on a backtracking engine these inputs take minutes to years. */
const FAST_MS = 2_000;

describe('regexes of topic schemas', () => {
  it('validates a catastrophic-backtracking pattern on a 35-character value at once', async () => {
    expect((await call('POST', '/topics', { name: 'redos', shards: 1, schema: { type: 'string', pattern: '^(a+)+$' } })).status).toBe(201);
    const started = performance.now();
    const refused = await call('POST', '/topics/redos/messages', { messages: [{ key: 'k', value: `${'a'.repeat(34)}!` }] });
    expect(refused.status).toBe(422);
    expect(performance.now() - started).toBeLessThan(FAST_MS);
    expect((await call('POST', '/topics/redos/messages', { messages: [{ key: 'k', value: 'a'.repeat(35) }] })).status).toBe(202);
  });

  it('runs patternProperties and propertyNames on the same engine', async () => {
    const schema = { type: 'object', patternProperties: { '^(a|aa)+$': { type: 'string' } }, propertyNames: { pattern: '^(x+x+)+y$' }, additionalProperties: false };
    expect((await call('POST', '/topics', { name: 'redos-keys', shards: 1, schema })).status).toBe(201);
    const started = performance.now();
    const value = { [`${'a'.repeat(40)}!`]: 'v', [`${'x'.repeat(40)}`]: 'w' };
    expect((await call('POST', '/topics/redos-keys/messages', { messages: [{ key: 'k', value }] })).status).toBe(422);
    expect(performance.now() - started).toBeLessThan(FAST_MS);
  });

  it('uses RE2, not JavaScript: RE2-only syntax works, and long inputs stay linear', () => {
    // `(?i)` and `\pL` are RE2 syntax that JavaScript's engine rejects (with the u flag).
    const validate = compileSchema({ type: 'string', pattern: '^(?i)abc\\pL$' });
    expect(validate('ABCé')).toBe(true);
    expect(validate('abd1')).toBe(false);
    const started = performance.now();
    expect(linearRegExp('^(a+)+$', 'u').test(`${'a'.repeat(200_000)}!`)).toBe(false);
    expect(linearRegExp('(x+x+)+y', 'u').test('x'.repeat(200_000))).toBe(false);
    expect(performance.now() - started).toBeLessThan(FAST_MS);
  });

  it('keeps the usual ECMAScript patterns working', () => {
    const validate = compileSchema({
      type: 'object',
      properties: {
        email: { type: 'string', pattern: '^[^@\\s]+@example\\.org$' },
        accent: { type: 'string', pattern: '^caf\\u00e9$' },
        year: { type: 'string', pattern: '^(?<year>\\d{4})-\\d{2}$' },
        path: { type: 'string', pattern: '^\\/v1\\/[\\w-]+$' },
      },
    });
    expect(validate({ email: 'ada@example.org', accent: 'café', year: '2024-05', path: '/v1/a-b_c' })).toBe(true);
    expect(validate({ email: 'ada@example.com' })).toBe(false);
    expect(validate({ accent: 'cafe' })).toBe(false);
    expect(validate({ year: '24-05' })).toBe(false);
  });

  it.each([
    ['a backreference', { type: 'string', pattern: '^(a)\\1$' }],
    ['a lookahead', { type: 'string', pattern: '^(?=.*\\d).+$' }],
    ['a negative lookahead', { type: 'string', pattern: '^(?!admin$)' }],
    ['a lookbehind', { type: 'string', pattern: '(?<=a)b' }],
    ['a lookaround in patternProperties', { type: 'object', patternProperties: { '^(?!x)': { type: 'string' } } }],
    ['a lookaround in patternProperties that only limits additionalProperties', { type: 'object', patternProperties: { '^(?!x)': {} }, additionalProperties: false }],
    ['a lookaround deep inside', { type: 'object', properties: { a: { type: 'array', items: { type: 'string', pattern: '(?!b)' } } } }],
  ])('refuses %s at topic creation with 400 naming the problem', async (_what, schema) => {
    const response = await call('POST', '/topics', { name: 'refused', shards: 1, schema });
    expect(response.body.message).toBeDefined();
    expect(response.status).toBe(400);
    expect(response.body.error_code).toBe(400);
    expect(response.body.message).toContain('linear-time engine');
    expect(response.body.message).toContain('pattern');
    expect((await call('GET', '/topics/refused')).status).toBe(404);
  });

  it('refuses patterns too large for the engine to run fast (its cost grows with their size)', async () => {
    // 30 counted repetitions: short to write, about 60,000 instructions, seconds per value.
    const response = await call('POST', '/topics', { name: 'too-large', shards: 1, schema: { type: 'string', pattern: `${'(?:[ab]{0,1000})'.repeat(30)}c` } });
    expect(response.status).toBe(400);
    expect(response.body.message).toContain(`more than the ${MAX_PATTERN_INSTRUCTIONS} allowed`);
    // Large but ordinary patterns stay accepted.
    expect(schemaProblem({ type: 'string', pattern: '^\\d{1,1000}$' })).toBeUndefined();
    expect(schemaProblem({ type: 'string', pattern: '^[A-Za-z0-9._-]{1,249}$' })).toBeUndefined();
  });

  it('refuses a batch whose pattern checks would hold the worker too long, with 422 saying so', async () => {
    const pattern = '(?:[ab]{0,1000})c';
    expect((await call('POST', '/topics', { name: 'costly', shards: 1, schema: { type: 'string', pattern } })).status).toBe(201);
    const long = `${'ab'.repeat(5_000)}c`;
    // Each value is within the budget alone; together they are not.
    const perValue = 2_003 * (long.length + 1);
    const count = Math.ceil(PATTERN_STEPS_PER_TURN / perValue) + 1;
    expect(perValue).toBeLessThan(PATTERN_STEPS_PER_TURN);
    const messages = Array.from({ length: count }, (_, i) => ({ key: `k${i}`, value: long }));
    const refused = await call('POST', '/topics/costly/messages', { messages });
    expect(refused.status).toBe(422);
    expect(JSON.stringify(refused.body)).toContain('would take too long');
    // The budget is per turn of the event loop: the next request starts afresh.
    expect((await call('POST', '/topics/costly/messages', { messages: messages.slice(0, 1) })).status).toBe(202);
  });

  it('answers 422 with the reason for a topic stored with a schema this version refuses', async () => {
    const now = Date.now();
    await worker.store.createTopic({ name: 'legacy', shards: 1, schema: { type: 'string', pattern: '^(?!x)' }, retentionMs: 3_600_000, createdAt: now });
    const response = await call('POST', '/topics/legacy/messages', { messages: [{ key: 'k', value: 'a' }] });
    expect(response.status).toBe(422);
    expect(JSON.stringify(response.body)).toContain("the topic's schema is refused by this worker");
    expect(JSON.stringify(response.body)).toContain('linear-time engine');
  });

  it("compiles connectors' own value schemas (code, not input) with JavaScript's engine", () => {
    // EmailSink's header names use a negative lookahead, which RE2 refuses.
    const validate = compileConnectorSchema(EmailSink.valueSchema as Record<string, unknown>);
    expect(validate({ to: 'ada@example.org', subject: 'Hi', text: 'Hello', headers: { 'X-Campaign': 'spring' } })).toBe(true);
    expect(validate({ to: 'ada@example.org', subject: 'Hi', text: 'Hello', headers: { Bcc: 'eve@example.org' } })).toBe(false);
    expect(schemaProblem(EmailSink.valueSchema)).toContain('linear-time engine');
  });
});

describe('one topic schema cannot disturb another', () => {
  it('lets two topics declare the same $id with different contents', async () => {
    const first = { $id: 'https://example.org/shared.json', type: 'object', required: ['a'] };
    const second = { $id: 'https://example.org/shared.json', type: 'object', required: ['b'] };
    expect((await call('POST', '/topics', { name: 'id-one', shards: 1, schema: first })).status).toBe(201);
    expect((await call('POST', '/topics', { name: 'id-two', shards: 1, schema: second })).status).toBe(201);
    expect((await call('POST', '/topics/id-one/messages', { messages: [{ key: 'k', value: { a: 1 } }] })).status).toBe(202);
    expect((await call('POST', '/topics/id-two/messages', { messages: [{ key: 'k', value: { a: 1 } }] })).status).toBe(422);
    expect((await call('POST', '/topics/id-two/messages', { messages: [{ key: 'k', value: { b: 1 } }] })).status).toBe(202);
  });

  it("cannot reference another topic's schema by its $id, nor take the meta-schema's", () => {
    expect(schemaProblem({ $id: 'https://example.org/victim.json', type: 'object', required: ['secret'] })).toBeUndefined();
    expect(schemaProblem({ $ref: 'https://example.org/victim.json' })).toMatch(/can't resolve reference/);
    expect(schemaProblem({ $id: 'http://json-schema.org/draft-07/schema', type: 'string' })).toBeUndefined();
    // The meta-schema is intact: schemas are still checked against it.
    expect(schemaProblem({ type: 'no-such-type' })).toBeDefined();
    expect(schemaProblem({ type: 'string', pattern: 'ok' })).toBeUndefined();
  });
});

describe('keywords whose cost ajv lets grow faster than the value', () => {
  it('checks uniqueItems in one pass: 20,000 objects at once, duplicates found whatever their key order', async () => {
    expect((await call('POST', '/topics', { name: 'unique', shards: 1, schema: { type: 'array', uniqueItems: true } })).status).toBe(201);
    const items = Array.from({ length: 20_000 }, (_, i) => ({ n: i, tags: ['a', { deep: i }] }));
    const started = performance.now();
    expect((await call('POST', '/topics/unique/messages', { messages: [{ key: 'k', value: items }] })).status).toBe(202);
    // Pairwise comparison (ajv's own uniqueItems) took minutes here.
    expect(performance.now() - started).toBeLessThan(FAST_MS * 5);
    const duplicate = await call('POST', '/topics/unique/messages', { messages: [{ key: 'k', value: [{ a: 1, b: [1, 2] }, 'x', { b: [1, 2], a: 1 }] }] });
    expect(duplicate.status).toBe(422);
    expect(JSON.stringify(duplicate.body)).toContain('must NOT have duplicate items (items ## 0 and 2 are identical)');
    const validate = compileSchema({ type: 'array', uniqueItems: true });
    expect(validate([1, '1', [1], { 1: 1 }, null, true])).toBe(true);
    expect(validate([[1, 2], [2, 1]])).toBe(true);
    expect(validate([{ a: null }, { a: null }])).toBe(false);
    expect(compileSchema({ type: 'array', uniqueItems: false })([1, 1])).toBe(true);
  });
});

describe('schemas that would take long to compile', () => {
  it('refuses a topic schema larger than the limit, and one nested beyond the stack, with 400', async () => {
    const properties: Record<string, unknown> = {};
    for (let i = 0; Buffer.byteLength(JSON.stringify(properties)) <= MAX_TOPIC_SCHEMA_BYTES; i++) properties[`p${i}`] = { type: 'string', maxLength: i + 1 };
    const large = await call('POST', '/topics', { name: 'large-schema', shards: 1, schema: { type: 'object', properties } });
    expect(large.status).toBe(400);
    expect(large.body.message).toContain(`at most ${MAX_TOPIC_SCHEMA_BYTES} bytes`);
    let deep: Record<string, unknown> = { type: 'string' };
    for (let i = 0; i < 5_000; i++) deep = { type: 'array', items: deep };
    expect(schemaProblem(deep)).toBeDefined();
  });
});

describe('the compiled-schema cache', () => {
  it('holds at most its capacity, least recently used out, and renews its ajv instances', () => {
    const cache = new SchemaCache(8, linearRegExp);
    const schemaFor = (i: number) => ({ type: 'string', pattern: `^v${i}$` });
    const first = cache.compile(schemaFor(0));
    for (let i = 1; i < 40; i++) {
      cache.compile(schemaFor(i));
      cache.compile(schemaFor(1)); // kept warm
      expect(cache.size).toBeLessThanOrEqual(8);
    }
    expect(cache.size).toBe(8);
    const warm = cache.compile(schemaFor(1));
    expect(cache.compile(schemaFor(1))).toBe(warm);
    expect(cache.compile(schemaFor(39))('v39')).toBe(true);
    // The first was evicted long ago: compiled again, as a new function that still works.
    const again = cache.compile(schemaFor(0));
    expect(again).not.toBe(first);
    expect(again('v0')).toBe(true);
    // 40 compiles with room for 8: the ajv instances (which keep all they compiled) were replaced.
    expect(cache.instanceGenerations).toBeGreaterThanOrEqual(5);
  });

  it('bounds the topic schema cache whatever callers send', () => {
    for (let i = 0; i < MAX_COMPILED_SCHEMAS + 50; i++) expect(schemaProblem({ type: 'string', maxLength: 1000 + i })).toBeUndefined();
    expect(topicSchemas.size).toBe(MAX_COMPILED_SCHEMAS);
  });
});
