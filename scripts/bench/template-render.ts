/**
 * `node --conditions=omnibus-source --import tsx scripts/bench/template-render.ts [--messages N]`: the CPU cost per message
 * of rendering a template at produce, as a produce naming one renders it (Templates.renderProduce
 * over a batch, on an LMDB store holding the template), for an e-mail (subject, escaped HTML with
 * a loop, text) and an SMS (text, with its segment count), against the same batch with no
 * template. A script, not a test: it prints figures and asserts nothing about time.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { LmdbStore } from '../../packages/core/src/store/lmdb.ts';
import { Templates } from '../../packages/core/src/transforms/templates/service.ts';

const { values } = parseArgs({ options: { messages: { type: 'string', default: '50000' } } });
const messages = Number(values.messages);
const BATCH = 100;

const dir = mkdtempSync(join(tmpdir(), 'omnibus-template-bench-'));
const store = new LmdbStore(dir, { sweepIntervalMs: 0 });
await store.init();
const templates = new Templates(store);
await templates.create('receipt', {
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
});
await templates.create('otp', { channel: 'sms', locales: { en: { text: 'Your code is {{ code }}. It expires in {{ minutes }} minutes.' } } });

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

async function cpuMicrosPerMessage(batch: readonly unknown[]): Promise<number> {
  const start = process.cpuUsage();
  for (let done = 0; done < messages; done += BATCH) await templates.renderProduce(batch);
  const used = process.cpuUsage(start);
  return (used.user + used.system) / messages;
}

// Warm up the JIT and the parsed-template cache before measuring.
for (const batch of [emailBatch, smsBatch, plainBatch]) await cpuMicrosPerMessage(batch);
const email = await cpuMicrosPerMessage(emailBatch);
const sms = await cpuMicrosPerMessage(smsBatch);
const plain = await cpuMicrosPerMessage(plainBatch);
console.log(`rendering at produce, ${messages} messages in batches of ${BATCH} (one store read of the template per batch)`);
console.log(`  e-mail (subject, escaped HTML with a loop, text; 1 in 3 in French): ${email.toFixed(2)} µs CPU per message`);
console.log(`  SMS (text, with GSM-7/UCS-2 and segment count):                      ${sms.toFixed(2)} µs CPU per message`);
console.log(`  no template (the batch passed through):                             ${plain.toFixed(2)} µs CPU per message`);
await store.close();
rmSync(dir, { recursive: true, force: true });
