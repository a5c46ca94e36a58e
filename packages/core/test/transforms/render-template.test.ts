// RenderTemplate in a chain, reading templates from an LMDB store: the live or a pinned
// version, locales from a value field, variables from a path, the omnibus.template.* headers,
// a missing variable failing the record permanently (never rendered empty), a retried record
// keeping its first version, and the sink's `sent` event keeping the template used.
import { PermanentError, type SinkOutcome, type SinkRecord, type SinkTask, type TransformRecord } from '@omnibus/sdk';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BUILTIN_CATALOG } from '../../src/transforms/catalog.ts';
import { buildChain, validateChain } from '../../src/transforms/chain.ts';
import { TransformingSinkTask } from '../../src/transforms/bus-records.ts';
import { TemplateEngine } from '../../src/transforms/templates/engine.ts';
import { Templates } from '../../src/transforms/templates/service.ts';
import { lmdbStore, type StoreHandle } from '../bus/helpers.ts';

let handle: StoreHandle;
let templates: Templates;

const welcome = (greeting: string) => ({
  channel: 'email',
  default_locale: 'en',
  locales: {
    en: { subject: `${greeting} {{ first_name }}`, html: '<p>Hi {{ first_name }}</p>', text: `${greeting} {{ first_name }}, order {{ order.id }}` },
    fr: { subject: 'Bienvenue {{ first_name }}', text: 'Bonjour {{ first_name }}, commande {{ order.id }}' },
  },
});

const chainOf = (extra: Record<string, string> = {}) =>
  buildChain(
    {
      transforms: 'render',
      'transforms.render.type': 'RenderTemplate',
      'transforms.render.template.name': 'welcome',
      'transforms.render.locale.field': 'lang',
      'transforms.render.variables.field': 'customer',
      ...extra,
    },
    BUILTIN_CATALOG,
    { templates: { store: handle.store, engine: new TemplateEngine() } },
  );

const record = (value: unknown, id = 'm1', headers: Record<string, string> = {}): TransformRecord => ({
  topic: 'db.shop.customers',
  key: '{"id":1}',
  value,
  headers,
  timestamp: 1,
  id,
  direction: 'sink',
});

const customer = (first_name: unknown, lang?: string) => ({
  to: 'ada@example.org',
  ...(lang ? { lang } : {}),
  customer: { ...(first_name !== undefined ? { first_name } : {}), order: { id: 42 } },
});

beforeAll(async () => {
  handle = await lmdbStore();
  templates = new Templates(handle.store);
  await templates.create('welcome', welcome('Welcome'));
});
afterAll(async () => handle.close());

describe('RenderTemplate', () => {
  it('renders the live version in the record locale, escapes HTML, and pins name, version and locale in the headers', async () => {
    const chain = chainOf();
    await chain.prepare();
    const out = chain.apply(record(customer('<Ada>', 'fr-CA')))!;
    // The variables field is consumed; the rest of the value stays beside the parts.
    expect(out.value).toEqual({ to: 'ada@example.org', lang: 'fr-CA', subject: 'Bienvenue <Ada>', text: 'Bonjour <Ada>, commande 42' });
    expect(out.headers).toEqual({ 'omnibus.template.name': 'welcome', 'omnibus.template.version': '1', 'omnibus.template.locale': 'fr' });
    const en = chain.apply(record(customer('<Ada>'), 'm2'))!;
    expect(en.value).toMatchObject({ subject: 'Welcome <Ada>', html: '<p>Hi &lt;Ada&gt;</p>' });
    expect(en.headers['omnibus.template.locale']).toBe('en');
  });

  it('fails a record without a variable permanently, naming the variable and where it was looked for', async () => {
    const chain = chainOf();
    await chain.prepare();
    let thrown: unknown;
    try {
      chain.apply(record(customer(undefined), 'm3'));
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(PermanentError);
    expect(thrown).toMatchObject({ code: 'OMNI_ERR_TEMPLATE_VARIABLE_MISSING' });
    expect((thrown as Error).message).toContain('first_name');
    expect((thrown as Error).message).toContain('value.customer');
  });

  it('passes records rendered at produce and tombstones unchanged', async () => {
    const chain = chainOf();
    await chain.prepare();
    const rendered = record({ to: 'a@b.c', subject: 'x', text: 'y' }, 'm4', { 'omnibus.template.name': 'other', 'omnibus.template.version': '3', 'omnibus.template.locale': 'en' });
    expect(chain.apply(rendered)).toEqual(rendered);
    expect(chain.apply(record(null, 'm5'))!.value).toBeNull();
  });

  it('follows the live version batch by batch, keeps a retried record on its first version, and honours template.version', async () => {
    const chain = chainOf();
    await chain.prepare();
    expect(chain.apply(record(customer('Ada'), 'retried'))!.headers['omnibus.template.version']).toBe('1');
    await templates.addVersion('welcome', welcome('Hello'), { live: true });
    await chain.prepare();
    const fresh = chain.apply(record(customer('Ada'), 'fresh'))!;
    expect(fresh.headers['omnibus.template.version']).toBe('2');
    expect(fresh.value).toMatchObject({ subject: 'Hello Ada' });
    const retried = chain.apply(record(customer('Ada'), 'retried'))!;
    expect(retried.headers['omnibus.template.version']).toBe('1');
    expect(retried.value).toMatchObject({ subject: 'Welcome Ada' });

    const pinned = chainOf({ 'transforms.render.template.version': '1', 'transforms.render.keep.fields': 'to' });
    await pinned.prepare();
    expect(pinned.apply(record(customer('Ada'), 'other'))!.value).toEqual({ to: 'ada@example.org', subject: 'Welcome Ada', html: '<p>Hi Ada</p>', text: 'Welcome Ada, order 42' });
  });

  it('fails records when the template does not exist, and refuses a bad config on its key', async () => {
    const chain = chainOf({ 'transforms.render.template.name': 'nope' });
    await chain.prepare();
    expect(() => chain.apply(record(customer('Ada')))).toThrow(/Template nope not found/);
    const invalid = validateChain({ transforms: 'r', 'transforms.r.type': 'io.omnibus.transforms.RenderTemplate', 'transforms.r.template.name': 'a b' }, BUILTIN_CATALOG);
    expect(Object.keys(invalid.errors)).toEqual(['transforms.r.template.name']);
  });

  it("answers a sink's put with the task's outcome (the template in its details) or a permanent failure", async () => {
    const given: SinkRecord[] = [];
    const task: SinkTask<unknown> = {
      start: async () => {},
      put: async (records: SinkRecord[]): Promise<SinkOutcome[]> => {
        given.push(...records);
        return records.map(() => ({ status: 'sent', providerId: 'p' }));
      },
      stop: async () => {},
    };
    const sink = new TransformingSinkTask(task, chainOf());
    const sinkRecord = (value: unknown, id: string): SinkRecord => ({ id, topic: 't', key: 'k', value, headers: {}, timestamp: 1, shard: 0, attempt: 1 }) as SinkRecord;
    const outcomes = await sink.put([sinkRecord(customer('Ada'), 'ok'), sinkRecord(customer(undefined), 'missing')]);
    expect(given.map((r) => r.id)).toEqual(['ok']);
    expect(outcomes[0]).toEqual({ status: 'sent', providerId: 'p', details: { template: { name: 'welcome', version: 2, locale: 'en' } } });
    expect(outcomes[1]).toMatchObject({ status: 'failed', error: { code: 'OMNI_ERR_TEMPLATE_VARIABLE_MISSING' } });
    expect((outcomes[1] as { error: { message: string } }).error.message).toContain('first_name');
  });
});
