// Content routing end to end on LMDB: two sinks on one topic split its messages through their
// transformation chains (a value-field predicate with Filter, one negated), each message ends
// `sent` for one connector and `filtered` for the other, and both show in GET /messages/{id}
// and the group's counts. Also the REST surface of the chain: an invalid chain refused with
// 400 naming its key, validate on every chain key, and the plugin listing.
import { existsSync, readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/worker/worker.ts';
import { eventually, startWorker } from '../runtime/helpers.ts';

const examples = join(resolve(dirname(fileURLToPath(import.meta.url)), '../../../..'), 'examples');

let dir: string;
let worker: Worker;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-content-routing-'));
  // A third-party transformation with a secret key, written as plain JavaScript without the SDK.
  const signed = join(dir, 'plugins', 'signed-transform');
  await mkdir(signed, { recursive: true });
  await writeFile(join(signed, 'package.json'), JSON.stringify({ name: 'signed-transform', version: '1.0.0', type: 'module', omnibus: { transforms: ['./index.js'] } }));
  await writeFile(
    join(signed, 'index.js'),
    `const token = { name: 'token', type: 'PASSWORD', documentation: 'Signing key.', importance: 'HIGH', defaultValue: undefined, required: true,
       group: null, orderInGroup: 1, displayName: 'token', width: 'NONE', validator: undefined, recommended: [], dependents: [] };
     export const Signed = { type: 'transformation', className: 'com.example.Signed', version: '1.0.0', description: 'Signs records.',
       config: { keys: [token] }, create: () => ({ apply: (record) => record }) };`,
  );
  worker = await startWorker(`lmdb:${join(dir, 'data')}`, { 'plugin.path': [examples, join(dir, 'plugins')] });
});

afterAll(async () => {
  await worker?.stop();
  await rm(dir, { recursive: true, force: true });
});

// Response bodies are read as the tests expect them; a wrong shape fails the assertions.
// eslint-disable-next-line @typescript-eslint/no-explicit-any
type Json = any;

async function call(method: string, path: string, body?: unknown): Promise<{ status: number; body: Json }> {
  const response = await fetch(worker.url + path, {
    method,
    ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: text === '' ? undefined : JSON.parse(text) };
}

const lines = (file: string): Array<{ id: string; value: { to: string }; headers: Record<string, string> }> =>
  existsSync(file)
    ? readFileSync(file, 'utf8')
        .split('\n')
        .filter(Boolean)
        .map((line) => JSON.parse(line))
    : [];

/** A FileSink on `sms` that keeps only UK numbers (negate: false) or only the others (negate: true). */
function smsSink(file: string, dropUk: boolean): Record<string, string> {
  return {
    'connector.class': 'FileSink',
    topics: 'sms',
    file,
    transforms: 'route,tag',
    'transforms.route.type': 'org.apache.kafka.connect.transforms.Filter',
    'transforms.route.predicate': 'isUk',
    'transforms.route.negate': String(!dropUk),
    'transforms.tag.type': 'InsertHeader',
    'transforms.tag.header': 'routed-by',
    'transforms.tag.value.literal': dropUk ? 'sms-fr' : 'sms-uk',
    predicates: 'isUk',
    'predicates.isUk.type': 'io.omnibus.predicates.ValueFieldMatches',
    'predicates.isUk.field': 'to',
    'predicates.isUk.pattern': '\\+44.*',
  };
}

describe('content routing', () => {
  it('splits one topic across two sinks; the record a sink filters out ends `filtered` for it', async () => {
    const ukFile = join(dir, 'uk.jsonl');
    const frFile = join(dir, 'fr.jsonl');
    expect((await call('POST', '/topics', { name: 'sms', shards: 4 })).status).toBe(201);
    expect((await call('POST', '/connectors', { name: 'sms-uk', config: smsSink(ukFile, false) })).status).toBe(201);
    expect((await call('POST', '/connectors', { name: 'sms-fr', config: smsSink(frFile, true) })).status).toBe(201);

    const numbers = ['+447700900001', '+33612345601', '+447700900002', '+33612345602', '+447700900003', '+33612345603'];
    const produced = await call('POST', '/topics/sms/messages', {
      group: 'campaign-1',
      messages: numbers.map((to, n) => ({ key: to, value: { to, text: `message ${n}` } })),
    });
    expect(produced.status).toBe(202);
    const ids: string[] = produced.body.messages.map((m: { id: string }) => m.id);
    const uk = ids.filter((_, n) => numbers[n]!.startsWith('+44'));
    const fr = ids.filter((_, n) => !numbers[n]!.startsWith('+44'));

    const group = await eventually(
      () => call('GET', '/groups/campaign-1'),
      (g) => g.body?.connectors?.['sms-uk']?.sent === 3 && g.body?.connectors?.['sms-fr']?.sent === 3 && g.body.connectors['sms-uk'].filtered === 3 && g.body.connectors['sms-fr'].filtered === 3,
      'each sink: 3 sent, 3 filtered',
    );
    expect(group.body.connectors).toEqual({ 'sms-uk': { sent: 3, filtered: 3 }, 'sms-fr': { sent: 3, filtered: 3 } });

    // Each file got its own half, with the header the chain's second stage inserted.
    expect(lines(ukFile).map((l) => l.id).sort()).toEqual([...uk].sort());
    expect(lines(frFile).map((l) => l.id).sort()).toEqual([...fr].sort());
    expect(lines(ukFile).every((l) => l.value.to.startsWith('+44') && l.headers['routed-by'] === 'sms-uk')).toBe(true);
    expect(lines(frFile).every((l) => l.value.to.startsWith('+33') && l.headers['routed-by'] === 'sms-fr')).toBe(true);

    const message = await call('GET', `/messages/${uk[0]}`);
    expect(message.status).toBe(200);
    const states = Object.fromEntries(message.body.deliveries.map((d: { connector: string; state: string }) => [d.connector, d.state]));
    expect(states).toEqual({ 'sms-uk': 'sent', 'sms-fr': 'filtered' });
  });

  it('a record a stage cannot transform fails for that connector, with the stage named, and is not sent', async () => {
    const file = join(dir, 'strict.jsonl');
    expect((await call('POST', '/topics', { name: 'notes', shards: 2 })).status).toBe(201);
    const config = {
      'connector.class': 'FileSink',
      topics: 'notes',
      file,
      transforms: 'stamp',
      'transforms.stamp.type': 'InsertField$Value',
      'transforms.stamp.topic.field': 'topic',
    };
    expect((await call('POST', '/connectors', { name: 'strict', config })).status).toBe(201);
    const produced = await call('POST', '/topics/notes/messages', { messages: [{ key: 'a', value: 'plain text' }, { key: 'b', value: { note: 'map' } }] });
    const [textId, mapId] = produced.body.messages.map((m: { id: string }) => m.id);
    const failed = await eventually(
      () => call('GET', `/messages/${textId}`),
      (m) => m.body?.deliveries?.some((d: { connector: string; state: string }) => d.connector === 'strict' && d.state === 'failed'),
      'the text message failed',
    );
    const delivery = failed.body.deliveries.find((d: { connector: string }) => d.connector === 'strict');
    expect(delivery.last_error.code).toBe('OMNI_ERR_TRANSFORM_FAILED');
    expect(delivery.last_error.message).toContain('Transformation stamp (org.apache.kafka.connect.transforms.InsertField$Value) failed: Only Map objects supported');
    await eventually(() => Promise.resolve(lines(file)), (l) => l.length === 1, 'the map message written');
    expect(lines(file)[0]).toMatchObject({ id: mapId, value: { note: 'map', topic: 'notes' } });
  });

  it("never shows a transformation's secret", async () => {
    const config = { 'connector.class': 'FileSink', topics: 'sms', file: join(dir, 'signed.jsonl'), transforms: 'sign', 'transforms.sign.type': 'com.example.Signed', 'transforms.sign.token': 's3cret-value' };
    expect((await call('POST', '/connectors', { name: 'signed', config })).status).toBe(201);
    const shown = await call('GET', '/connectors/signed/config');
    expect(shown.body['transforms.sign.token']).toBe('[hidden]');
    expect(JSON.stringify((await call('GET', '/connectors/signed')).body)).not.toContain('s3cret-value');
    expect(JSON.stringify((await call('GET', '/connectors?expand=info')).body)).not.toContain('s3cret-value');
    expect((await call('DELETE', '/connectors/signed')).status).toBe(204);
  });

  it('refuses a config whose chain is invalid with 400 naming the key, and stores nothing', async () => {
    const config = { ...smsSink(join(dir, 'bad.jsonl'), false), 'transforms.route.predicate': 'isUK' };
    const refused = await call('POST', '/connectors', { name: 'bad', config });
    expect(refused.status).toBe(400);
    expect(refused.body.error_code).toBe(400);
    expect(refused.body.message).toContain('transforms.route.predicate');
    expect((await call('GET', '/connectors/bad')).status).toBe(404);

    const unknown = await call('PUT', '/connectors/bad/config', { ...smsSink(join(dir, 'bad.jsonl'), false), 'transforms.tag.type': 'com.example.Missing' });
    expect(unknown.status).toBe(400);
    expect(unknown.body.message).toContain('Invalid value com.example.Missing for configuration transforms.tag.type: Class com.example.Missing could not be found.');
    expect((await call('GET', '/connectors/bad')).status).toBe(404);
  });

  it('validate reports every transform and predicate key, with the error on its key', async () => {
    const config = { name: 'v', ...smsSink(join(dir, 'v.jsonl'), false), 'transforms.tag.type': 'NoSuchTransform', 'predicates.isUk.pattern': '(' };
    const answer = await call('PUT', '/connector-plugins/FileSink/config/validate', config);
    expect(answer.status).toBe(200);
    const byName = new Map<string, { errors: string[] }>(answer.body.configs.map((c: { definition: { name: string }; value: { errors: string[] } }) => [c.definition.name, c.value]));
    for (const key of ['transforms', 'predicates', 'transforms.route.type', 'transforms.route.predicate', 'transforms.route.negate', 'transforms.tag.type', 'predicates.isUk.type', 'predicates.isUk.field', 'predicates.isUk.pattern']) {
      expect(byName.has(key), key).toBe(true);
    }
    expect(byName.get('transforms.tag.type')!.errors).toEqual(['Invalid value NoSuchTransform for configuration transforms.tag.type: Class NoSuchTransform could not be found.']);
    expect(byName.get('predicates.isUk.pattern')!.errors[0]).toMatch(/Invalid regex/);
    expect(answer.body.error_count).toBe(2);
    expect(answer.body.groups).toEqual(expect.arrayContaining(['Transforms', 'Predicates', 'Transforms: route', 'Predicates: isUk']));
  });

  it('lists transformations and predicates only with connectorsOnly=false, and gives their config', async () => {
    const connectorsOnly = (await call('GET', '/connector-plugins')).body as Array<{ class: string; type: string }>;
    expect(connectorsOnly.every((p) => p.type === 'sink' || p.type === 'source')).toBe(true);
    const all = (await call('GET', '/connector-plugins?connectorsOnly=false')).body as Array<{ class: string; type: string; version: string }>;
    expect(all).toEqual(expect.arrayContaining([
      expect.objectContaining({ class: 'org.apache.kafka.connect.transforms.InsertField$Value', type: 'transformation' }),
      expect.objectContaining({ class: 'io.debezium.transforms.ExtractNewRecordState', type: 'transformation' }),
      expect.objectContaining({ class: 'hello-connector.Greet', type: 'transformation', version: '0.1.0' }),
      expect.objectContaining({ class: 'org.apache.kafka.connect.transforms.predicates.TopicNameMatches', type: 'predicate' }),
      expect.objectContaining({ class: 'io.omnibus.predicates.ValueFieldMatches', type: 'predicate' }),
    ]));
    // Connectors first, as Kafka lists them.
    expect(all.slice(0, connectorsOnly.length)).toEqual(connectorsOnly);

    const config = await call('GET', '/connector-plugins/org.apache.kafka.connect.transforms.RegexRouter/config');
    expect(config.status).toBe(200);
    expect(config.body.map((d: { name: string }) => d.name)).toEqual(['regex', 'replacement']);
    expect((await call('GET', '/connector-plugins/ValueFieldMatches/config')).body.map((d: { name: string }) => d.name)).toEqual(['field', 'pattern', 'equals', 'in']);
  });
});
