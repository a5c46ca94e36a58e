/**
 * From a CDC insert to a customer's mailbox: rows written to a table whose CDC log the fixture
 * keeps as ScyllaDB would (on the shared Cassandra), read by the ScyllaCdcSource, published as
 * change events, and taken by an EmailSink whose chain unwraps them (ExtractNewRecordState),
 * renames the address column (ReplaceField) and renders the template (RenderTemplate); the SMTP
 * dev server receives the rendered mail, and `GET /messages/{id}` shows the version used. A
 * row without a variable the template needs is not sent: it is dead-lettered, naming it.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
// Core depends on no connector package; the workspace's dev server and CDC fixture are read from their sources.
import { startSmtpDevServer, type SmtpDevServer } from '../../../connector-email/src/dev-server.ts';
import { cdcTestbed, type CdcTestbed } from '../../../cdc-source/test/helpers.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { callerOf, startLmdbWorker, type Call } from './lmdb-worker.ts';
import { eventually } from '../runtime/helpers.ts';

let smtp: SmtpDevServer;
let worker: Worker;
let call: Call;
let bed: CdcTestbed;
let root: string;


/** A header's RFC 2047 encoded words (nodemailer's UTF-8 Q or B encoding) decoded. */
function decodedHeader(value: string): string {
  return value.replace(/\s*=\?UTF-8\?([QB])\?([^?]*)\?=/gi, (_word, encoding: string, text: string) =>
    encoding.toUpperCase() === 'B'
      ? Buffer.from(text, 'base64').toString('utf8')
      : Buffer.from(text.replace(/_/g, ' ').replace(/=([0-9A-F]{2})/gi, (_hex, code: string) => String.fromCharCode(parseInt(code, 16))), 'latin1').toString('utf8'),
  );
}

beforeAll(async () => {
  smtp = await startSmtpDevServer({ keepMessages: true });
  bed = await cdcTestbed('cdc_template');
  await bed.fixture.addGeneration(Date.now() - 60_000, { vnodes: 4, shards: 2 });
  root = mkdtempSync(join(tmpdir(), 'omnibus-cdc-template-'));
  worker = await startLmdbWorker(root);
  call = callerOf(worker);
}, 120_000);

afterAll(async () => {
  await worker?.stop();
  await smtp?.close();
  await bed?.drop();
  if (root) rmSync(root, { recursive: true, force: true });
});

it('renders a CDC insert through ExtractNewRecordState and a template to the SMTP dev server', { timeout: 180_000 }, async () => {
  const customers = await bed.fixture.createTable({
    name: 'customers',
    partitionKey: [{ name: 'id', type: 'int' }],
    columns: [
      { name: 'email', type: 'text' },
      { name: 'first_name', type: 'text' },
      { name: 'lang', type: 'text' },
    ],
  });
  const topic = `db.${bed.ks.keyspace}.customers`;
  expect((await call('POST', '/topics', { name: topic, shards: 2 })).status).toBe(201);
  const template = {
    name: 'welcome',
    channel: 'email',
    default_locale: 'en',
    locales: {
      en: { subject: 'Welcome {{ first_name }}', html: '<p>Hello {{ first_name }}</p>', text: 'Hello {{ first_name }}' },
      fr: { subject: 'Bienvenue {{ first_name }}', html: '<p>Bonjour {{ first_name }}</p>', text: 'Bonjour {{ first_name }}' },
    },
  };
  expect((await call('POST', '/templates', template)).status).toBe(201);
  // Version 2 is live when the rows arrive: the mail must say so.
  const v2 = { ...template, locales: { ...template.locales, fr: { subject: 'Bienvenue à vous, {{ first_name }}', html: '<p>Bonjour <b>{{ first_name }}</b></p>', text: 'Bonjour {{ first_name }} !' } } };
  expect((await call('PUT', '/templates/welcome', v2)).status).toBe(200);

  const email = await call('POST', '/connectors', {
    name: 'welcome-mail',
    config: {
      'connector.class': 'EmailSink',
      topics: topic,
      'smtp.host': '127.0.0.1',
      'smtp.port': String(smtp.port),
      'smtp.starttls': 'never',
      'email.from': 'Omnibus <noreply@omnibus.test>',
      'errors.deadletterqueue.topic.name': 'welcome-dlq',
      transforms: 'unwrap,address,render',
      'transforms.unwrap.type': 'io.debezium.transforms.ExtractNewRecordState',
      'transforms.address.type': 'org.apache.kafka.connect.transforms.ReplaceField$Value',
      'transforms.address.renames': 'email:to',
      'transforms.render.type': 'io.omnibus.transforms.RenderTemplate',
      'transforms.render.template.name': 'welcome',
      'transforms.render.locale.field': 'lang',
      'transforms.render.keep.fields': 'to',
    },
  });
  expect(email.status).toBe(201);
  const cdcConfig = Object.fromEntries(
    Object.entries(bed.config(['customers'], { 'scylla.initial.lookback.ms': 30_000, 'heartbeat.interval.ms': 500, 'tasks.max': 1 })).map(([k, v]) => [k, String(v)]),
  );
  expect((await call('POST', '/connectors', { name: 'cdc', config: cdcConfig })).status).toBe(201);

  await customers.insert({ id: 1, email: 'ada@example.org', first_name: 'Ada <3', lang: 'fr-FR' });
  await customers.insert({ id: 2, email: 'nobody@example.org', lang: 'en' });

  const mail = await eventually(async () => smtp.messages.find((m) => m.to.includes('ada@example.org')), (m) => m !== undefined, 'the mail at the SMTP server', 120_000);
  const raw = mail!.raw?.toString('utf8') ?? '';
  expect(decodedHeader(mail!.subject ?? '')).toBe('Bienvenue à vous, Ada <3');
  expect(raw).toContain('Bonjour Ada <3 !');
  expect(raw).toContain('<p>Bonjour <b>Ada &lt;3</b></p>');

  const id = mail!.omnibusId!;
  const trace = await eventually(
    async () => (await call('GET', `/messages/${id}`)).body,
    (t) => (t.deliveries as Array<{ state: string }>).some((d) => d.state === 'sent'),
    'the delivery state sent',
  );
  expect(trace.template).toEqual({ name: 'welcome', version: 2, locale: 'fr' });
  // The bus keeps the change event as the source published it: the sink rendered it.
  expect((trace.message as { value: { op: string } }).value.op).toBe('c');

  // The row without first_name: dead-lettered with the variable named, and never mailed.
  const letters = await eventually(
    async () => ((await call('GET', '/topics/welcome-dlq/messages?limit=10')).body.messages as Array<{ headers: Record<string, string> }> | undefined) ?? [],
    (m) => m.length >= 1,
    'the dead letter',
    60_000,
  );
  expect(letters[0]!.headers['omnibus.errors.code']).toBe('OMNI_ERR_TEMPLATE_VARIABLE_MISSING');
  expect(letters[0]!.headers['omnibus.errors.message']).toContain('first_name');
  expect(smtp.messages.some((m) => m.to.includes('nobody@example.org'))).toBe(false);
});
