/**
 * The CPU cost per message of rendering a template: at produce, as a produce naming one renders
 * it (Templates.renderProduce over a batch, on an LMDB store holding the template), for an
 * e-mail (subject, escaped HTML with a loop, text) and an SMS (text, with its segment count),
 * against the same batch with no template; and on a sink, as a chain of ExtractNewRecordState,
 * ReplaceField and RenderTemplate renders CDC change events (the version read once per batch).
 * `pnpm bench` runs it (benchTemplateRender); alone:
 * `node --conditions=omnibus-source --import tsx scripts/bench/template-render.ts [--messages N]`.
 * A script, not a test: it prints figures and asserts nothing about time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import type { SinkRecord } from '../../packages/sdk/src/index.ts';
import { LmdbStore } from '../../packages/core/src/store/lmdb.ts';
import { sinkRecordThrough } from '../../packages/core/src/transforms/bus-records.ts';
import { BUILTIN_CATALOG } from '../../packages/core/src/transforms/catalog.ts';
import { buildChain } from '../../packages/core/src/transforms/chain.ts';
import { Templates } from '../../packages/core/src/transforms/templates/service.ts';

const BATCH = 100;

export interface TemplateRenderFigures {
  messages: number;
  /** µs of CPU per message. */
  emailAtProduce: number;
  smsAtProduce: number;
  noTemplateAtProduce: number;
  cdcChainAtSink: number;
}

const receipt = {
  channel: 'email',
  default_locale: 'en',
  locales: {
    en: {
      subject: 'Your order {{ order.id }}',
      html: '<p>Hello {{ user.name }},</p><ul>{% for item in order.items %}<li>{{ item.name }} × {{ item.qty }}</li>{% endfor %}</ul>',
      text: 'Hello {{ user.name }}, your order {{ order.id }} has {{ order.items | size }} items.',
    },
    fr: { subject: 'Votre commande {{ order.id }}', html: '<p>Bonjour {{ user.name }}</p>', text: 'Bonjour {{ user.name }}' },
  },
};
const welcome = {
  channel: 'email',
  default_locale: 'en',
  locales: { en: { subject: 'Welcome {{ first_name }}', html: '<p>Hello {{ first_name }}</p>', text: 'Hello {{ first_name }}' }, fr: { subject: 'Bienvenue {{ first_name }}', text: 'Bonjour {{ first_name }}' } },
};

const emailBatch = Array.from({ length: BATCH }, (_, n) => ({
  key: `user${n}@example.org`,
  value: {
    to: `user${n}@example.org`,
    template: {
      name: 'receipt',
      locale: n % 3 === 0 ? 'fr-FR' : 'en',
      variables: { user: { name: `User <${n}>` }, order: { id: `A-${n}`, items: [{ name: 'Tea', qty: 2 }, { name: 'Cake & co', qty: 1 }] } },
    },
  },
}));
const smsBatch = Array.from({ length: BATCH }, (_, n) => ({ key: `+3361234${n}`, value: { to: `+3361234${n}`, template: { name: 'otp', variables: { code: String(100000 + n), minutes: 10 } } } }));
const plainBatch = Array.from({ length: BATCH }, (_, n) => ({ key: `user${n}@example.org`, value: { to: `user${n}@example.org`, subject: 'Hi', text: 'Hello' } }));
/** Change events as the CDC source publishes them. */
const cdcBatch: SinkRecord[] = Array.from({ length: BATCH }, (_, n) => ({
  id: `cdc-${n}`,
  topic: 'db.shop.customers',
  key: `{"id":${n}}`,
  shard: n % 16,
  value: { before: null, after: { id: n, email: `user${n}@example.org`, first_name: `User <${n}>`, lang: n % 3 === 0 ? 'fr' : 'en' }, op: 'c', ts_ms: 1 },
  headers: {},
  timestamp: 1_700_000_000_000 + n,
  attempt: 1,
}));

async function cpuMicrosPerMessage(messages: number, renderBatch: () => Promise<unknown>): Promise<number> {
  const start = process.cpuUsage();
  for (let done = 0; done < messages; done += BATCH) await renderBatch();
  const used = process.cpuUsage(start);
  return (used.user + used.system) / messages;
}

export async function benchTemplateRender(messages = 50_000): Promise<TemplateRenderFigures> {
  const dir = mkdtempSync(join(tmpdir(), 'omnibus-template-bench-'));
  const store = new LmdbStore(dir, { sweepIntervalMs: 0 });
  try {
    await store.init();
    const templates = new Templates(store);
    await templates.create('receipt', receipt);
    await templates.create('welcome', welcome);
    await templates.create('otp', { channel: 'sms', locales: { en: { text: 'Your code is {{ code }}. It expires in {{ minutes }} minutes.' } } });
    const chain = buildChain(
      {
        transforms: 'unwrap,address,render',
        'transforms.unwrap.type': 'io.debezium.transforms.ExtractNewRecordState',
        'transforms.address.type': 'ReplaceField$Value',
        'transforms.address.renames': 'email:to',
        'transforms.render.type': 'RenderTemplate',
        'transforms.render.template.name': 'welcome',
        'transforms.render.locale.field': 'lang',
        'transforms.render.keep.fields': 'to',
      },
      BUILTIN_CATALOG,
      { templates: { store, engine: templates.engine } },
    );
    const atProduce = (batch: readonly unknown[]) => () => templates.renderProduce(batch);
    const atSink = async () => {
      await chain.prepare();
      for (const record of cdcBatch) sinkRecordThrough(chain, record);
    };
    // Warm up the JIT and the parsed-template caches before measuring.
    for (const run of [atProduce(emailBatch), atProduce(smsBatch), atProduce(plainBatch), atSink]) await cpuMicrosPerMessage(messages, run);
    return {
      messages,
      emailAtProduce: await cpuMicrosPerMessage(messages, atProduce(emailBatch)),
      smsAtProduce: await cpuMicrosPerMessage(messages, atProduce(smsBatch)),
      noTemplateAtProduce: await cpuMicrosPerMessage(messages, atProduce(plainBatch)),
      cdcChainAtSink: await cpuMicrosPerMessage(messages, atSink),
    };
  } finally {
    await store.close();
    rmSync(dir, { recursive: true, force: true });
  }
}

export function describeTemplateRender(f: TemplateRenderFigures): string[] {
  return [
    `rendering templates, ${f.messages} messages in batches of ${BATCH} (one store read of the template per batch)`,
    `  at produce, e-mail (subject, escaped HTML with a loop, text; 1 in 3 in French): ${f.emailAtProduce.toFixed(2)} µs CPU per message`,
    `  at produce, SMS (text, with GSM-7/UCS-2 and segment count):                      ${f.smsAtProduce.toFixed(2)} µs CPU per message`,
    `  at produce, no template (the batch passed through):                             ${f.noTemplateAtProduce.toFixed(2)} µs CPU per message`,
    `  on a sink, CDC event → ExtractNewRecordState, ReplaceField, RenderTemplate (e-mail): ${f.cdcChainAtSink.toFixed(2)} µs CPU per message`,
  ];
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { messages: { type: 'string', default: '50000' } } });
  for (const line of describeTemplateRender(await benchTemplateRender(Number(values.messages)))) console.log(line);
}
