/**
 * WhatsAppSink's webhook, called through the SDK test kit as the runtime's `/hooks/{connector}`
 * route calls it. Notification bodies are in the shape reference/channels.md §1.4 documents;
 * the last test takes them from the package's Cloud API emulator, which posts them signed
 * with X-Hub-Signature-256 to a local receiver as Meta would.
 */
import { createHmac } from 'node:crypto';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { type SinkHarness, startSink } from '@omnibus/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { startWhatsAppDevServer } from '../src/dev-server.ts';
import { WhatsAppErrors, WhatsAppSink } from '../src/index.ts';

const APP_SECRET = 'f3b2c1d0e9a8-app-secret';
const VERIFY_TOKEN = 'my-verify-token-31';
const PHONE_NUMBER_ID = '106540352242922';

const sinks: SinkHarness[] = [];
afterEach(async () => {
  await Promise.all(sinks.splice(0).map((sink) => sink.stop()));
});

const start = async (overrides: Record<string, unknown> = {}) => {
  const sink = await startSink(WhatsAppSink, {
    topics: 'whatsapp',
    'whatsapp.api.url': 'http://127.0.0.1:9',
    'whatsapp.phone.number.id': PHONE_NUMBER_ID,
    'whatsapp.access.token': 'EAAG-access-token-for-webhook-tests',
    'whatsapp.app.secret': APP_SECRET,
    'whatsapp.verify.token': VERIFY_TOKEN,
    ...overrides,
  });
  sinks.push(sink);
  return sink;
};

const sign = (body: Buffer | string, secret = APP_SECRET) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

const notification = (statuses: unknown[], phoneNumberId = PHONE_NUMBER_ID) => ({
  object: 'whatsapp_business_account',
  entry: [
    {
      id: '102290129340398',
      changes: [
        {
          field: 'messages',
          value: {
            messaging_product: 'whatsapp',
            metadata: { display_phone_number: '15550783881', phone_number_id: phoneNumberId },
            statuses,
          },
        },
      ],
    },
  ],
});

const status = (fields: Record<string, unknown>) => ({
  recipient_id: '16505551234',
  conversation: { id: '6ceb9d929c1b9e2c2d8f1d8e0e5b3c1a', origin: { type: 'utility' } },
  pricing: { billable: true, pricing_model: 'CBP', category: 'utility' },
  ...fields,
});

describe('subscription handshake', () => {
  const handshake = (sink: SinkHarness, query: Record<string, string>) => sink.webhook({ method: 'GET', query, rawBody: '' });

  it('echoes the challenge as text/plain when the verify token matches', async () => {
    const sink = await start();
    const response = await handshake(sink, { 'hub.mode': 'subscribe', 'hub.verify_token': VERIFY_TOKEN, 'hub.challenge': '1158201444' });
    expect(response.status).toBe(200);
    expect(response.body).toBe('1158201444');
    expect(response.headers?.['content-type']).toMatch(/^text\/plain/);
  });

  it('refuses a wrong token, a wrong mode, and any handshake when no token is configured', async () => {
    const sink = await start();
    const wrongToken = await handshake(sink, { 'hub.mode': 'subscribe', 'hub.verify_token': 'guess', 'hub.challenge': 'x' });
    const wrongMode = await handshake(sink, { 'hub.mode': 'unsubscribe', 'hub.verify_token': VERIFY_TOKEN, 'hub.challenge': 'x' });
    expect([wrongToken.status, wrongMode.status]).toEqual([403, 403]);
    expect(wrongToken.body).toMatchObject({ error_code: 403 });

    const unconfigured = await start({ 'whatsapp.verify.token': undefined });
    const response = await handshake(unconfigured, { 'hub.mode': 'subscribe', 'hub.verify_token': '', 'hub.challenge': 'x' });
    expect(response.status).toBe(403);
  });
});

describe('status notifications', () => {
  const delivered = status({
    id: 'wamid.HBgLMTY1MDU1NTEyMzQVAgARGBI5QTNDQTVCM0Q0Q0Q2RTY3RTcA',
    status: 'delivered',
    timestamp: '1700000005',
    biz_opaque_callback_data: 'msg-1',
  });

  it('accepts a body whose signature matches its raw bytes', async () => {
    const sink = await start();
    const body = JSON.stringify(notification([delivered]));
    const response = await sink.webhook({ method: 'POST', headers: { 'x-hub-signature-256': sign(body) }, rawBody: body });
    expect(response.status).toBe(200);
    expect(response.updates).toHaveLength(1);
    expect(sink.deliveries).toHaveLength(1);
  });

  it('rejects a body with one byte changed, or without a signature, and reports nothing', async () => {
    const sink = await start();
    const body = Buffer.from(JSON.stringify(notification([delivered])));
    const signature = sign(body);
    const tampered = Buffer.from(body);
    const at = tampered.indexOf('1700000005') + 9;
    tampered[at] = '6'.charCodeAt(0);

    const forged = await sink.webhook({ method: 'POST', headers: { 'X-Hub-Signature-256': signature }, rawBody: tampered });
    const unsigned = await sink.webhook({ method: 'POST', headers: {}, rawBody: body });
    const wrongSecret = await sink.webhook({ method: 'POST', headers: { 'x-hub-signature-256': sign(body, 'another-secret') }, rawBody: body });
    expect([forged.status, unsigned.status, wrongSecret.status]).toEqual([403, 401, 403]);
    for (const response of [forged, unsigned, wrongSecret]) expect(response.updates).toBeUndefined();
    expect(sink.deliveries).toEqual([]);
    expect(JSON.stringify(sink.logs)).not.toContain(APP_SECRET);
  });

  it('verifies the raw bytes, not a re-serialisation of the JSON', async () => {
    const sink = await start();
    // Same JSON value, different bytes: Meta signs what it sent, so only these bytes verify.
    const body = JSON.stringify(notification([delivered]), null, 2);
    const response = await sink.webhook({ method: 'POST', headers: { 'x-hub-signature-256': sign(body) }, rawBody: body });
    expect(response.status).toBe(200);
    const compact = await sink.webhook({ method: 'POST', headers: { 'x-hub-signature-256': sign(body) }, rawBody: JSON.stringify(JSON.parse(body)) });
    expect(compact.status).toBe(403);
  });

  it('returns out-of-order statuses all, sorted by when they happened, with our message ids', async () => {
    const sink = await start();
    const body = JSON.stringify(
      notification([
        status({ id: 'wamid.A', status: 'read', timestamp: '1700000010', biz_opaque_callback_data: 'msg-a' }),
        status({
          id: 'wamid.B',
          status: 'failed',
          timestamp: '1700000007',
          errors: [{ code: 131026, title: 'Message undeliverable', error_data: { details: 'Receiver is incapable of receiving this message' } }],
        }),
        status({ id: 'wamid.A', status: 'delivered', timestamp: '1700000005', biz_opaque_callback_data: 'msg-a' }),
        status({ id: 'wamid.A', status: 'sent', timestamp: '1700000001', biz_opaque_callback_data: 'msg-a' }),
      ]),
    );
    const response = await sink.webhook({ method: 'POST', headers: { 'x-hub-signature-256': sign(body) }, rawBody: body });
    expect(response.status).toBe(200);
    const details = { recipientId: '16505551234', conversationId: '6ceb9d929c1b9e2c2d8f1d8e0e5b3c1a', pricingCategory: 'utility' };
    expect(response.updates).toEqual([
      { messageId: 'msg-a', providerId: 'wamid.A', state: 'delivered', at: 1_700_000_005_000, details },
      {
        providerId: 'wamid.B',
        state: 'failed',
        at: 1_700_000_007_000,
        details,
        error: {
          code: WhatsAppErrors.UNDELIVERABLE,
          message: 'WhatsApp error 131026: Message undeliverable — Receiver is incapable of receiving this message',
        },
        // Undeliverable to them (they blocked the business, or are not on WhatsApp): suppressed on the channel.
        suppress: [{ channel: 'whatsapp', address: '16505551234', reason: 'blocked', code: '131026' }],
      },
      { messageId: 'msg-a', providerId: 'wamid.A', state: 'read', at: 1_700_000_010_000, details },
    ]);
    expect(response.body).toEqual({ received: 3, ignored: 1 });
  });

  it("asks to suppress marketing to a recipient who opted out of it (131050), and nothing for other failures", async () => {
    const sink = await start();
    const body = JSON.stringify(
      notification([
        status({ id: 'wamid.C', status: 'failed', timestamp: '1700000020', errors: [{ code: 131050, title: 'Unable to deliver the message. This recipient has chosen to stop receiving marketing messages on WhatsApp from your business.' }] }),
        status({ id: 'wamid.D', status: 'failed', timestamp: '1700000021', errors: [{ code: 131047, title: 'Re-engagement message' }] }),
      ]),
    );
    const response = await sink.webhook({ method: 'POST', headers: { 'x-hub-signature-256': sign(body) }, rawBody: body });
    expect(response.updates?.map((u) => u.suppress)).toEqual([
      [{ channel: 'whatsapp', address: '16505551234', reason: 'opted-out', code: '131050', category: 'marketing' }],
      undefined,
    ]);
  });

  it("ignores statuses of another phone number of the same app", async () => {
    const sink = await start();
    const body = JSON.stringify(notification([delivered], '999999999999999'));
    const response = await sink.webhook({ method: 'POST', headers: { 'x-hub-signature-256': sign(body) }, rawBody: body });
    expect(response.status).toBe(200);
    expect(response.updates).toEqual([]);
  });

  it('answers 400 to a signed body that is not JSON, and 405 to other methods', async () => {
    const sink = await start();
    const body = 'not json';
    const bad = await sink.webhook({ method: 'POST', headers: { 'x-hub-signature-256': sign(body) }, rawBody: body });
    expect(bad.status).toBe(400);
    expect((await sink.webhook({ method: 'PUT', rawBody: '' })).status).toBe(405);
  });
});

describe('with the Cloud API emulator', () => {
  it('turns the emulator’s signed, out-of-order status webhooks into delivered and read updates for each message', async () => {
    // A stand-in for the runtime's /hooks/{connector} route: raw body and headers straight to the connector.
    let sink: SinkHarness | undefined;
    const receiver = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (chunk: Buffer) => chunks.push(chunk));
      req.on('end', () => {
        const headers = Object.fromEntries(Object.entries(req.headers).map(([k, v]) => [k, String(v)]));
        void sink!.webhook({ method: req.method, headers, rawBody: Buffer.concat(chunks) }).then((response) => {
          res.writeHead(response.status, { 'content-type': 'application/json' }).end(JSON.stringify(response.body ?? {}));
        });
      });
    });
    await new Promise<void>((resolve) => receiver.listen(0, '127.0.0.1', resolve));
    const webhookUrl = `http://127.0.0.1:${(receiver.address() as AddressInfo).port}/hooks/whatsapp`;
    const emulator = await startWhatsAppDevServer({ appSecret: APP_SECRET, phoneNumberId: PHONE_NUMBER_ID, webhookUrl, outOfOrder: true });
    try {
      sink = await start({ 'whatsapp.api.url': emulator.url, 'whatsapp.access.token': emulator.accessToken, 'whatsapp.pair.rate.limit': 0 });
      const ids = ['e2e-1', 'e2e-2', 'e2e-3'];
      const to = (i: number) => `1555010000${i}`;
      const results = await sink.send(ids.map((id, i) => ({ id, key: to(i), value: { to: to(i), type: 'text', text: { body: 'hi' } } })));
      expect(results.every((r) => r.outcome.status === 'sent')).toBe(true);
      await emulator.flushWebhooks();

      expect(emulator.webhooks.failed).toBe(0);
      for (const [i, id] of ids.entries()) {
        const updates = sink.deliveries.filter((d) => d.messageId === id);
        expect(updates.map((d) => d.state)).toEqual(['delivered', 'read']);
        expect(updates.every((d) => d.providerId === (results[i]?.outcome as { providerId: string }).providerId)).toBe(true);
      }
      expect([...emulator.accepted.entries()].sort()).toEqual(ids.map((id) => [id, 1]));
    } finally {
      await emulator.stop();
      await new Promise<void>((resolve) => receiver.close(() => resolve()));
    }
  });
});
