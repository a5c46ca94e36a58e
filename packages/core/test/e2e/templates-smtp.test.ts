/**
 * From a produce naming a template to the SMTP dev server, through a real worker on LMDB and
 * the first-party EmailSink: the mail carries what the template rendered (HTML escaped in the
 * html part), and each message keeps the version it was produced with although the live
 * version moves while the connector is paused and the messages wait.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Core depends on no connector package; the workspace's dev server is read from its sources.
import { startSmtpDevServer, type SmtpDevServer } from '../../../connector-email/src/dev-server.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { callerOf, startLmdbWorker, type Call } from './lmdb-worker.ts';
import { eventually } from '../runtime/helpers.ts';

let smtp: SmtpDevServer;
let worker: Worker;
let call: Call;
let root: string;


beforeAll(async () => {
  smtp = await startSmtpDevServer({ keepMessages: true });
  root = mkdtempSync(join(tmpdir(), 'omnibus-templates-e2e-'));
  worker = await startLmdbWorker(root);
  call = callerOf(worker);
});

afterAll(async () => {
  await worker?.stop();
  await smtp?.close();
  if (root) rmSync(root, { recursive: true, force: true });
});

const rawOf = (omnibusId: string) => smtp.messages.find((m) => m.omnibusId === omnibusId)?.raw?.toString('utf8') ?? '';

describe('a produce naming a template, sent over SMTP', () => {
  it('renders at produce and sends the pinned version, escaped in HTML', async () => {
    expect((await call('POST', '/topics', { name: 'mail', shards: 2 })).status).toBe(201);
    const template = {
      name: 'welcome',
      channel: 'email',
      default_locale: 'en',
      locales: {
        en: { subject: 'Welcome {{ user.name }}', html: '<p>Hello {{ user.name }}</p>', text: 'Hello {{ user.name }}' },
        fr: { subject: 'Bienvenue {{ user.name }}', html: '<p>Bonjour {{ user.name }}</p>', text: 'Bonjour {{ user.name }}' },
      },
    };
    expect((await call('POST', '/templates', template)).status).toBe(201);
    const connector = await call('POST', '/connectors', {
      name: 'email',
      config: {
        'connector.class': 'EmailSink',
        topics: 'mail',
        'smtp.host': '127.0.0.1',
        'smtp.port': String(smtp.port),
        'smtp.starttls': 'never',
        'email.from': 'Omnibus <noreply@omnibus.test>',
      },
    });
    expect(connector.status).toBe(201);
    // Paused, so that the messages wait in the bus while the live version moves.
    expect((await call('PUT', '/connectors/email/pause')).status).toBe(202);

    const produce = async (user: string, locale?: string) => {
      const produced = await call('POST', '/topics/mail/messages', {
        messages: [{ key: `${user}@example.org`, value: { to: `${user}@example.org`, template: { name: 'welcome', variables: { user: { name: `${user} <3` } }, ...(locale ? { locale } : {}) } } }],
      });
      expect(produced.status).toBe(202);
      return (produced.body.messages as Array<{ id: string }>)[0]!.id;
    };
    const ada = await produce('ada', 'fr-FR');
    const v2 = { ...template, locales: { en: { subject: 'V2 {{ user.name }}', text: 'Version two for {{ user.name }}' } } };
    expect((await call('PUT', '/templates/welcome', v2)).body.template).toMatchObject({ live_version: 2 });
    const bob = await produce('bob');

    expect((await call('PUT', '/connectors/email/resume')).status).toBe(202);
    await eventually(async () => smtp.messages.length, (n) => n >= 2, 'both mails at the SMTP server');

    const adaMail = rawOf(ada);
    expect(adaMail).toContain('Subject: Bienvenue ada <3');
    expect(adaMail).toContain('Bonjour ada <3');
    expect(adaMail).toContain('<p>Bonjour ada &lt;3</p>');
    const bobMail = rawOf(bob);
    expect(bobMail).toContain('Subject: V2 bob <3');
    expect(bobMail).toContain('Version two for bob <3');
    expect(bobMail).not.toContain('text/html');

    const trace = await eventually(
      async () => (await call('GET', `/messages/${ada}`)).body,
      (t) => (t.deliveries as Array<{ state: string }>).some((d) => d.state === 'sent'),
      'the delivery state sent',
    );
    expect(trace.template).toEqual({ name: 'welcome', version: 1, locale: 'fr' });
    expect((await call('GET', `/messages/${bob}`)).body.template).toEqual({ name: 'welcome', version: 2, locale: 'en' });
  });
});
