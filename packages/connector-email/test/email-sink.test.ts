/**
 * EmailSink against a real SMTP server (npm `smtp-server`, in-process on 127.0.0.1) that
 * requires AUTH and answers per recipient and per subject with 250, 4xx or 5xx, as MTAs do.
 * The connector is driven only through the SDK's test kit.
 */
import type { AddressInfo } from 'node:net';
import { simpleParser } from 'mailparser';
import { SMTPServer } from 'smtp-server';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FatalConnectorError, startSink, type SinkHarness } from '@omnibus/sdk';
import { EMAIL_ERROR_CODES, EmailSink, type EmailValue } from '../src/index.ts';
import { startSmtpDevServer, type SmtpDevServer } from '../src/dev-server.ts';

const USER = 'omnibus-sender';
const PASSWORD = 'Corr3ct-Horse-Battery';
const DOMAIN = 'omnibus.test';

/** Subjects whose DATA is answered 451 this many more times before the server accepts them. */
const deferrals = new Map<string, number>();

let smtp: SmtpDevServer;
let sink: SinkHarness;

const config = (overrides: Record<string, unknown> = {}) => ({
  name: 'email',
  topics: 'mail',
  'smtp.host': '127.0.0.1',
  'smtp.port': smtp.port,
  'smtp.starttls': 'never',
  'smtp.user': USER,
  'smtp.password': PASSWORD,
  'smtp.timeout.ms': 5000,
  'email.from': `Omnibus <noreply@${DOMAIN}>`,
  ...overrides,
});

const received = (messageId: string) => smtp.messages.filter((m) => m.messageId === messageId);

beforeAll(async () => {
  smtp = await startSmtpDevServer({
    auth: { user: USER, pass: PASSWORD },
    keepMessages: true,
    rcptReply: (address) => {
      if (address.startsWith('unknown')) return { code: 550, message: '5.1.1 User unknown' };
      if (address.startsWith('greylisted')) return { code: 451, message: '4.7.1 Greylisted, try again later' };
      return undefined;
    },
    dataReply: (mail) => {
      if (mail.subject === 'spam') return { code: 550, message: '5.7.1 Message content rejected' };
      const left = deferrals.get(mail.subject ?? '') ?? 0;
      if (left > 0) {
        deferrals.set(mail.subject ?? '', left - 1);
        return { code: 451, message: '4.3.0 Local problem, try again later' };
      }
      return undefined;
    },
  });
  sink = await startSink(EmailSink, config());
});

afterAll(async () => {
  await sink?.stop();
  await smtp?.close();
});

describe('EmailSink over SMTP', () => {
  it('sends one e-mail per record with a Message-ID derived from the message id', async () => {
    const value: EmailValue = {
      to: 'Ada Lovelace <ada@example.org>',
      cc: ['charles@example.org'],
      bcc: 'audit@example.org',
      reply_to: 'support@example.org',
      subject: 'Your invoice',
      text: 'Please find your invoice attached.',
      html: '<p>Please find your <b>invoice</b> attached.</p>',
      headers: { 'X-Campaign': 'spring-2025' },
      attachments: [
        { filename: 'invoice.pdf', content: Buffer.from('%PDF-1.4 not really').toString('base64'), contentType: 'application/pdf' },
        { filename: 'notes.txt', text: 'paid in full' },
      ],
    };
    const [result] = await sink.send([{ id: 'msg-0001', key: 'ada@example.org', value }]);

    expect(result?.outcome).toMatchObject({
      status: 'sent',
      providerId: `<msg-0001@${DOMAIN}>`,
      details: { messageId: `<msg-0001@${DOMAIN}>`, accepted: ['ada@example.org', 'charles@example.org', 'audit@example.org'] },
    });
    const [mail, ...others] = received(`<msg-0001@${DOMAIN}>`);
    expect(others).toHaveLength(0);
    expect(result?.outcome.status === 'sent' && result.outcome.details?.queueId).toMatch(/^DEV\d+$/);
    expect(mail?.from).toBe(`noreply@${DOMAIN}`);
    expect(mail?.to).toEqual(['ada@example.org', 'charles@example.org', 'audit@example.org']);

    const parsed = await simpleParser(mail!.raw!);
    expect(parsed.messageId).toBe(`<msg-0001@${DOMAIN}>`);
    expect(parsed.headers.get('x-omnibus-message-id')).toBe('msg-0001');
    expect(parsed.headers.get('x-campaign')).toBe('spring-2025');
    expect(parsed.from?.value).toEqual([{ name: 'Omnibus', address: `noreply@${DOMAIN}` }]);
    expect(parsed.subject).toBe('Your invoice');
    expect(parsed.date?.getTime()).toBe(Math.floor(result!.record.timestamp / 1000) * 1000);
    expect(JSON.stringify(parsed.to)).toContain('ada@example.org');
    expect(JSON.stringify(parsed.cc)).toContain('charles@example.org');
    expect(parsed.bcc).toBeUndefined();
    expect(JSON.stringify(parsed.replyTo)).toContain('support@example.org');
    expect(parsed.text?.trim()).toBe('Please find your invoice attached.');
    expect(parsed.html).toContain('<b>invoice</b>');
    expect(parsed.attachments.map((a) => [a.filename, a.contentType, a.content.toString()])).toEqual([
      ['invoice.pdf', 'application/pdf', '%PDF-1.4 not really'],
      ['notes.txt', 'text/plain', 'paid in full'],
    ]);
  });

  it('retries a message the server defers (451) and sends it once the server recovers', async () => {
    deferrals.set('Deferred once', 1);
    const message = { id: 'msg-deferred', key: 'bob@example.org', value: { to: 'bob@example.org', subject: 'Deferred once', text: 'hi' } };

    const [first] = await sink.send([message], { maxAttempts: 1 });
    expect(first?.outcome).toMatchObject({ status: 'retry', error: { code: EMAIL_ERROR_CODES.deferred } });
    expect(first?.outcome.status === 'retry' && first.outcome.error.message).toContain('451');
    expect(received(`<msg-deferred@${DOMAIN}>`)).toHaveLength(0);

    const [second] = await sink.send([message]);
    expect(second?.outcome).toMatchObject({ status: 'sent', providerId: `<msg-deferred@${DOMAIN}>` });
    expect(smtp.countsByMessageId.get(`<msg-deferred@${DOMAIN}>`)).toBe(1);
  });

  it('gives a resent message the same Message-ID, so receivers can drop the duplicate', async () => {
    const message = { id: 'msg-resent', key: 'bob@example.org', value: { to: 'bob@example.org', subject: 'Resent', text: 'hi' } };
    const [first] = await sink.send([message]);
    const [again] = await sink.send([message]);
    expect(first?.outcome).toMatchObject({ status: 'sent', providerId: `<msg-resent@${DOMAIN}>` });
    expect(again?.outcome).toMatchObject({ status: 'sent', providerId: `<msg-resent@${DOMAIN}>` });
    expect(smtp.duplicates()).toEqual([{ messageId: `<msg-resent@${DOMAIN}>`, count: 2 }]);
  });

  it('retries within one harness run until the server accepts', async () => {
    deferrals.set('Deferred twice', 2);
    const [result] = await sink.send([{ id: 'msg-deferred-2', key: 'bob@example.org', value: { to: 'bob@example.org', subject: 'Deferred twice', text: 'hi' } }], {
      maxAttempts: 5,
    });
    expect(result?.attempts).toBe(3);
    expect(result?.outcome.status).toBe('sent');
    expect(smtp.countsByMessageId.get(`<msg-deferred-2@${DOMAIN}>`)).toBe(1);
  });

  it('fails a message the server rejects (550) with the server reply in the error', async () => {
    const [content, recipient] = await sink.send([
      { id: 'msg-spam', key: 'eve@example.org', value: { to: 'eve@example.org', subject: 'spam', text: 'buy now' } },
      { id: 'msg-unknown', key: 'unknown@example.org', value: { to: 'unknown@example.org', subject: 'hello', text: 'hi' } },
    ]);
    expect(content?.attempts).toBe(1);
    expect(content?.outcome).toMatchObject({ status: 'failed', error: { code: EMAIL_ERROR_CODES.rejected } });
    expect(content?.outcome.status === 'failed' && content.outcome.error.message).toContain('550 5.7.1 Message content rejected');
    expect(recipient?.outcome).toMatchObject({
      status: 'failed',
      error: { code: EMAIL_ERROR_CODES.recipientsRejected },
      details: { rejected: [{ address: 'unknown@example.org', code: 550 }] },
    });
    expect(recipient?.outcome.status === 'failed' && recipient.outcome.error.message).toContain('User unknown');
    expect(received(`<msg-spam@${DOMAIN}>`)).toHaveLength(0);
    expect(received(`<msg-unknown@${DOMAIN}>`)).toHaveLength(0);
  });

  it('sends to the accepted recipients and reports the refused ones', async () => {
    const [result] = await sink.send([
      { id: 'msg-mixed', key: 'ada@example.org', value: { to: ['ada@example.org', 'unknown-2@example.org'], subject: 'Mixed', text: 'hi' } },
    ]);
    expect(result?.outcome).toMatchObject({
      status: 'sent',
      details: {
        accepted: ['ada@example.org'],
        rejected: [{ address: 'unknown-2@example.org', code: 550, reason: expect.stringContaining('User unknown') }],
      },
    });
    const [mail, ...others] = received(`<msg-mixed@${DOMAIN}>`);
    expect(others).toHaveLength(0);
    expect(mail?.to).toEqual(['ada@example.org']);
    expect(sink.logs.some((line) => line.level === 'warn' && JSON.stringify(line.obj).includes('unknown-2@example.org'))).toBe(true);
  });

  it('retries when every recipient is only deferred (4xx)', async () => {
    const [result] = await sink.send(
      [{ id: 'msg-grey', key: 'greylisted@example.org', value: { to: ['greylisted@example.org', 'greylisted-2@example.org'], subject: 'Grey', text: 'hi' } }],
      { maxAttempts: 1 },
    );
    expect(result?.outcome).toMatchObject({ status: 'retry', error: { code: EMAIL_ERROR_CODES.deferred } });
    expect(result?.outcome.status === 'retry' && result.outcome.error.message).toContain('Greylisted');
  });

  it('fails a value that is not an e-mail without contacting the server', async () => {
    const before = smtp.acceptedCount;
    const [result] = await sink.send([{ id: 'msg-bad', key: 'x', value: { to: 'ada@example.org', text: 'no subject' } }]);
    expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: EMAIL_ERROR_CODES.invalidValue } });
    expect(result?.outcome.status === 'failed' && result.outcome.error.message).toContain("must have required property 'subject'");
    expect(smtp.acceptedCount).toBe(before);
  });

  it('sends a batch over the pool, the records of one key in their order', async () => {
    const keys = ['k1@example.org', 'k2@example.org', 'k3@example.org', 'k4@example.org'];
    const messages = Array.from({ length: 24 }, (_, i) => {
      const key = keys[i % keys.length]!;
      return { id: `order-${String(i).padStart(2, '0')}`, key, value: { to: key, subject: `Order ${i}`, text: `message ${i}` } };
    });
    const results = await sink.send(messages);
    expect(results.map((r) => r.outcome.status)).toEqual(messages.map(() => 'sent'));
    for (const key of keys) {
      const arrived = smtp.messages.filter((m) => m.to[0] === key && m.omnibusId?.startsWith('order-')).map((m) => m.omnibusId);
      expect(arrived).toEqual(messages.filter((m) => m.key === key).map((m) => m.id));
    }
  });

  it('retries when the server cannot be reached', async () => {
    const closed = await startSmtpDevServer();
    const port = closed.port;
    await closed.close();
    const offline = await startSink(EmailSink, config({ 'smtp.port': port }));
    try {
      const [result] = await offline.send([{ id: 'msg-offline', key: 'ada@example.org', value: { to: 'ada@example.org', subject: 'hi', text: 'hi' } }], {
        maxAttempts: 1,
      });
      expect(result?.outcome).toMatchObject({ status: 'retry', error: { code: EMAIL_ERROR_CODES.connection } });
    } finally {
      await offline.stop();
    }
  });

  it('fails the task on refused credentials without logging the secret', async () => {
    const wrongPassword = 'Wr0ng-Secret-7f3a9';
    const before = smtp.acceptedCount;
    const badAuth = await startSink(EmailSink, config({ 'smtp.password': wrongPassword }));
    try {
      const sending = badAuth.send([{ id: 'msg-auth', key: 'ada@example.org', value: { to: 'ada@example.org', subject: 'hi', text: 'hi' } }]);
      const error = await sending.then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(FatalConnectorError);
      expect((error as FatalConnectorError).code).toBe(EMAIL_ERROR_CODES.authFailed);
      expect((error as Error).message).toContain('535');
      expect((error as Error).message).toContain(USER);
      expect((error as Error).message).not.toContain(wrongPassword);
      expect(smtp.acceptedCount).toBe(before);
      const logged = JSON.stringify(badAuth.logs) + JSON.stringify(sink.logs);
      expect(logged).toContain('email task started');
      expect(logged).not.toContain(wrongPassword);
      expect(logged).not.toContain(PASSWORD);
    } finally {
      await badAuth.stop();
    }
  });
});

/** smtp-server with its built-in (self-signed, expired) certificate, answering whether the session was encrypted. */
async function startTlsServer(secure: boolean): Promise<{ port: number; close(): Promise<void> }> {
  const server = new SMTPServer({
    secure,
    logger: false,
    authOptional: true,
    onData(stream, session, callback) {
      stream.resume();
      stream.on('end', () => callback(null, `OK encrypted=${session.secure}`));
    },
  });
  // A client that refuses the certificate hangs up mid-handshake; that is the point of one test.
  server.on('error', () => undefined);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  return {
    port: (server.server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('EmailSink over TLS', () => {
  const message = { key: 'ada@example.org', value: { to: 'ada@example.org', subject: 'Encrypted', text: 'hi' } };
  const tlsConfig = (port: number, overrides: Record<string, unknown>) => ({
    'smtp.host': '127.0.0.1',
    'smtp.port': port,
    'smtp.timeout.ms': 5000,
    'email.from': `noreply@${DOMAIN}`,
    ...overrides,
  });

  for (const [mode, secure, starttls] of [
    ['implicit TLS', true, 'opportunistic'],
    ['required STARTTLS', false, 'require'],
  ] as const) {
    it(`sends over ${mode}`, async () => {
      const server = await startTlsServer(secure);
      const tlsSink = await startSink(EmailSink, tlsConfig(server.port, { 'smtp.secure': secure, 'smtp.starttls': starttls, 'smtp.tls.reject.unauthorized': false }));
      try {
        const [result] = await tlsSink.send([message], { maxAttempts: 1 });
        expect(result?.outcome).toMatchObject({ status: 'sent', details: { response: '250 OK encrypted=true' } });
      } finally {
        await tlsSink.stop();
        await server.close();
      }
    });
  }

  it('fails the task when the certificate does not verify', async () => {
    const server = await startTlsServer(true);
    const tlsSink = await startSink(EmailSink, tlsConfig(server.port, { 'smtp.secure': true }));
    try {
      const error = await tlsSink.send([message]).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(error).toBeInstanceOf(FatalConnectorError);
      expect(error).toMatchObject({ code: EMAIL_ERROR_CODES.tlsUnverified, message: expect.stringContaining('certificate') });
    } finally {
      await tlsSink.stop();
      await server.close();
    }
  });
});
