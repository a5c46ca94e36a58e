// SmsSink over Twilio against the package's emulator of the Messages API (an in-process
// node:http server on 127.0.0.1 that follows Twilio's documented contract: basic auth,
// form-encoded create, 201 Message resource, `{code, message, more_info, status}` errors,
// signed form-encoded status callbacks). Status callbacks reach the connector through a
// relay that plays the runtime's `/hooks/{connector}` route.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FatalConnectorError, startSink, type RawConfig, type SinkHarness } from '@omnibus/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { startTwilioDevServer, type TwilioDevServer, type TwilioDevServerOptions } from '../src/dev-server.ts';
import { SmsErrorCode, SmsSink, twilioSignature } from '../src/index.ts';

const CONNECTOR = 'sms';
const INVALID = '+15005550001';
const OPTED_OUT = '+15005550002';
const RATE_LIMITED_ONCE = '+15005550003';
const ALWAYS_RATE_LIMITED = '+15005550004';
const BROKEN = '+15005550005';

const cleanup: Array<() => Promise<void>> = [];
const secrets: string[] = [];

afterEach(async () => {
  for (const step of cleanup.splice(0).reverse()) await step();
  secrets.splice(0);
});

/** The refusals Twilio documents for these situations, scripted per destination. */
const scripted: TwilioDevServerOptions['reply'] = ({ params, attempt }) => {
  switch (params.To) {
    case INVALID:
      return { httpStatus: 400, code: 21211, message: "The 'To' number +15005550001 is not a valid phone number." };
    case OPTED_OUT:
      return { httpStatus: 400, code: 21610, message: 'Attempt to send to unsubscribed recipient' };
    case RATE_LIMITED_ONCE:
      return attempt === 1 ? { httpStatus: 429, code: 20429, message: 'Too Many Requests', retryAfterSeconds: 0 } : undefined;
    case ALWAYS_RATE_LIMITED:
      return { httpStatus: 429, code: 20429, message: 'Too Many Requests', retryAfterSeconds: 3 };
    case BROKEN:
      return { httpStatus: 503, code: 20503, message: 'Service unavailable' };
    default:
      return undefined;
  }
};

interface Setup {
  twilio: TwilioDevServer;
  sink: SinkHarness;
  hooksUrl: string;
}

async function setup(options: TwilioDevServerOptions = {}, config: RawConfig = {}): Promise<Setup> {
  const twilio = await startTwilioDevServer({ reply: scripted, ...options });
  cleanup.push(() => twilio.close());
  secrets.push(twilio.authToken);
  const relayed: { sink?: SinkHarness } = {};
  const hooks = await startHookRelay(() => relayed.sink);
  cleanup.push(() => new Promise<void>((resolve) => hooks.server.close(() => resolve())));
  const sink = await startSink(
    SmsSink,
    {
      topics: 'sms',
      'sms.transport': 'twilio',
      'sms.from': '+15017122661',
      'twilio.api.url': twilio.url,
      'twilio.account.sid': twilio.accountSid,
      'twilio.auth.token': twilio.authToken,
      'twilio.status.callback.url': hooks.url,
      ...config,
    },
    { name: CONNECTOR },
  );
  relayed.sink = sink;
  cleanup.push(async () => {
    await sink.stop();
    for (const secret of secrets) expect(JSON.stringify(sink.logs)).not.toContain(secret);
  });
  return { twilio, sink, hooksUrl: hooks.url };
}

/** Plays the runtime's `/hooks/{connector}` route: the raw request goes to `sink.webhook`. */
async function startHookRelay(sink: () => SinkHarness | undefined): Promise<{ server: Server; url: string }> {
  const server = createServer((request, response) => {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const { port } = server.address() as AddressInfo;
      const url = new URL(request.url ?? '/', `http://127.0.0.1:${port}`);
      const harness = sink();
      if (!harness) {
        response.writeHead(503).end();
        return;
      }
      harness
        .webhook({
          method: request.method ?? 'POST',
          path: url.pathname.slice(`/hooks/${CONNECTOR}`.length) || '/',
          url: url.toString(),
          query: Object.fromEntries(url.searchParams),
          headers: Object.fromEntries(Object.entries(request.headers).map(([k, v]) => [k, String(v)])),
          rawBody: Buffer.concat(chunks),
        })
        .then((result) => {
          response.writeHead(result.status, { 'content-type': 'application/json' });
          response.end(result.body === undefined ? undefined : JSON.stringify(result.body));
        })
        .catch(() => response.writeHead(500).end());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const { port } = server.address() as AddressInfo;
  return { server, url: `http://127.0.0.1:${port}/hooks/${CONNECTOR}` };
}

const sms = (to: string, text: string, extra: Record<string, unknown> = {}) => ({ key: to, value: { to, text, ...extra } });

function signedCallback(authToken: string, url: string, fields: Record<string, string>) {
  const params = new URLSearchParams(fields);
  return { url, params, signature: twilioSignature(authToken, url, params) };
}

describe('SmsSink over Twilio', () => {
  it('creates the message with a form-encoded, authenticated POST and keeps its sid', async () => {
    const { twilio, sink, hooksUrl } = await setup();
    const [result] = await sink.send([sms('+14155550100', 'Your order has shipped', { validitySeconds: 600 })]);
    expect(twilio.messages).toHaveLength(1);
    const [message] = twilio.messages;
    expect(message?.sid).toMatch(/^SM[0-9a-f]{32}$/);
    expect(message?.params).toEqual({
      To: '+14155550100',
      From: '+15017122661',
      Body: 'Your order has shipped',
      StatusCallback: `${hooksUrl}?mid=${result?.record.id}`,
      ValidityPeriod: '600',
    });
    expect(result?.outcome).toEqual({ status: 'sent', providerId: message?.sid, details: { status: 'queued', segments: 1, provider: 'default' } });
  });

  it('sends through a Messaging Service, with the message\'s own sender when it has one', async () => {
    const service = `MG${'ab'.repeat(16)}`;
    const { twilio, sink } = await setup({}, { 'sms.from': undefined, 'twilio.messaging.service.sid': service });
    await sink.send([sms('+14155550100', 'pool sender'), sms('+14155550101', 'own sender', { from: 'Omnibus' })]);
    const byTo = Object.fromEntries(twilio.messages.map((m) => [m.to, m]));
    expect(byTo['+14155550100']).toMatchObject({ messagingServiceSid: service, from: undefined });
    expect(byTo['+14155550101']).toMatchObject({ messagingServiceSid: service, from: 'Omnibus' });
  });

  it('fails invalid and opted-out numbers at once and retries a rate-limited one', async () => {
    const { twilio, sink } = await setup();
    const results = await sink.send(
      [sms(INVALID, 'hello'), sms(OPTED_OUT, 'hello'), sms(RATE_LIMITED_ONCE, 'hello'), sms('+14155550100', 'hello')],
      { maxAttempts: 5 },
    );
    expect(results.map((r) => [r.outcome.status, r.attempts])).toEqual([
      ['failed', 1],
      ['failed', 1],
      ['sent', 2],
      ['sent', 1],
    ]);
    expect(results[0]?.outcome).toMatchObject({
      error: { code: SmsErrorCode.INVALID_NUMBER },
      details: { httpStatus: 400, twilioCode: 21211, moreInfo: 'https://www.twilio.com/docs/errors/21211' },
    });
    expect(results[1]?.outcome).toMatchObject({ error: { code: SmsErrorCode.OPTED_OUT }, details: { twilioCode: 21610 } });
    // 21610: the recipient sent STOP; the runtime suppresses them on the sms channel.
    expect(results[1]?.outcome).toMatchObject({ suppress: [{ channel: 'sms', address: OPTED_OUT, reason: 'opted-out', code: '21610' }] });
    expect(results[0]?.outcome).not.toHaveProperty('suppress');
    expect(twilio.messages.map((m) => m.to).sort()).toEqual([RATE_LIMITED_ONCE, '+14155550100'].sort());
  });

  it('hands back Retry-After as the retry delay of a rate-limited message', async () => {
    const { sink } = await setup();
    const [result] = await sink.send([sms(ALWAYS_RATE_LIMITED, 'wait')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'retry', error: { code: SmsErrorCode.THROTTLED }, retryAfterMs: 3000 });
  });

  it('retries when Twilio answers 5xx', async () => {
    const { sink } = await setup();
    const [result] = await sink.send([sms(BROKEN, 'later')], { maxAttempts: 2 });
    expect(result?.attempts).toBe(2);
    expect(result?.outcome).toMatchObject({ status: 'retry', error: { code: SmsErrorCode.PROVIDER_UNAVAILABLE } });
  });

  it('fails the task, sending nothing, when Twilio refuses the credentials', async () => {
    const twilio = await startTwilioDevServer();
    cleanup.push(() => twilio.close());
    const wrongToken = 'f'.repeat(32);
    secrets.push(wrongToken, twilio.authToken);
    const sink = await startSink(SmsSink, {
      'sms.transport': 'twilio',
      'sms.from': '+15017122661',
      'twilio.api.url': twilio.url,
      'twilio.account.sid': twilio.accountSid,
      'twilio.auth.token': wrongToken,
    });
    cleanup.push(() => sink.stop());
    const error = await sink.send([sms('+14155550100', 'a'), sms('+14155550101', 'b')]).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalConnectorError);
    expect((error as FatalConnectorError).code).toBe(SmsErrorCode.AUTH_FAILED);
    expect((error as Error).message).toContain('20003');
    expect((error as Error).message).not.toContain(wrongToken);
    await expect(sink.send([sms('+14155550102', 'c')])).rejects.toBeInstanceOf(FatalConnectorError);
    expect(twilio.messages).toHaveLength(0);
    for (const secret of secrets) expect(JSON.stringify(sink.logs)).not.toContain(secret);
  });

  it('turns signed status callbacks into delivery updates keyed by our message id', async () => {
    const { twilio, sink } = await setup({ callbackStatuses: ['sent', 'delivered'] });
    const [result] = await sink.send([sms('+14155550100', 'track me')]);
    await twilio.settled();
    expect(twilio.callbacks.map((c) => [c.status, c.responseStatus])).toEqual([
      ['sent', 204],
      ['delivered', 204],
    ]);
    expect(sink.deliveries).toEqual([
      { messageId: result?.record.id, providerId: twilio.messages[0]?.sid, state: 'delivered', at: expect.any(Number), details: { status: 'delivered' } },
    ]);
  });

  it('reports undelivered with the Twilio error code and the carrier\'s done date', async () => {
    const { twilio, sink } = await setup();
    const [result] = await sink.send([sms('+14155550100', 'nobody home')]);
    const sid = twilio.messages[0]?.sid ?? '';
    const status = await twilio.sendStatusCallback(sid, 'undelivered', {
      ErrorCode: '30003',
      ErrorMessage: 'Unreachable destination handset',
      RawDlrDoneDate: '2511211530',
    });
    expect(status).toBe(204);
    expect(sink.deliveries).toEqual([
      {
        messageId: result?.record.id,
        providerId: sid,
        state: 'failed',
        at: Date.UTC(2025, 10, 21, 15, 30),
        error: { code: '30003', message: 'Unreachable destination handset' },
        details: { status: 'undelivered' },
      },
    ]);
  });

  it('answers 403 and changes nothing when the signature does not match', async () => {
    const { twilio, sink, hooksUrl } = await setup();
    const url = `${hooksUrl}?mid=msg-1`;
    const fields = { MessageSid: `SM${'0'.repeat(32)}`, MessageStatus: 'delivered', AccountSid: twilio.accountSid };
    const { params, signature } = signedCallback(twilio.authToken, url, fields);
    const call = (overrides: { url?: string; body?: string; signature?: string | undefined }) =>
      sink.webhook({
        method: 'POST',
        url: overrides.url ?? url,
        headers: overrides.signature === undefined ? {} : { 'x-twilio-signature': overrides.signature, 'content-type': 'application/x-www-form-urlencoded' },
        rawBody: overrides.body ?? params.toString(),
      });

    const tamperedBody = new URLSearchParams(params);
    tamperedBody.set('MessageStatus', 'failed');
    const forged = signedCallback('not-the-token', url, fields).signature;
    const refusals = await Promise.all([
      call({ body: tamperedBody.toString(), signature }),
      call({ url: `${hooksUrl}?mid=msg-2`, signature }),
      call({ signature: undefined }),
      call({ signature: forged }),
    ]);
    for (const refusal of refusals) {
      expect(refusal).toMatchObject({ status: 403, body: { error_code: 403, code: SmsErrorCode.WEBHOOK_SIGNATURE } });
      expect(refusal.updates).toBeUndefined();
    }
    expect(sink.deliveries).toEqual([]);
    expect(sink.logs.filter((line) => line.msg === 'refused a Twilio status callback: bad X-Twilio-Signature')).toHaveLength(4);

    const accepted = await call({ signature });
    expect(accepted.status).toBe(204);
    expect(sink.deliveries).toEqual([expect.objectContaining({ messageId: 'msg-1', state: 'delivered' })]);
  });

  it('falls back to the MessageSid when the callback URL carries no message id', async () => {
    const { twilio, sink, hooksUrl } = await setup();
    const sid = `SM${'2'.repeat(32)}`;
    const { params, signature } = signedCallback(twilio.authToken, hooksUrl, { MessageSid: sid, MessageStatus: 'read' });
    const response = await sink.webhook({ method: 'POST', url: hooksUrl, headers: { 'x-twilio-signature': signature }, rawBody: params.toString() });
    expect(response.status).toBe(204);
    expect(sink.deliveries).toEqual([{ providerId: sid, state: 'read', at: expect.any(Number), details: { status: 'read' } }]);
  });

  it('verifies against the public callback URL when the worker sits behind a proxy', async () => {
    const { twilio, sink } = await setup({}, { 'twilio.status.callback.url': 'https://sms.example.com/hooks/sms' });
    const publicUrl = 'https://sms.example.com/hooks/sms?mid=behind-proxy';
    const { params, signature } = signedCallback(twilio.authToken, publicUrl, { MessageSid: `SM${'1'.repeat(32)}`, MessageStatus: 'delivered' });
    const response = await sink.webhook({
      method: 'POST',
      url: 'http://127.0.0.1:8083/hooks/sms?mid=behind-proxy',
      query: { mid: 'behind-proxy' },
      headers: { 'X-Twilio-Signature': signature },
      rawBody: params.toString(),
    });
    expect(response.status).toBe(204);
    expect(sink.deliveries).toEqual([expect.objectContaining({ messageId: 'behind-proxy', state: 'delivered' })]);
  });

  it('refuses other methods and malformed callbacks', async () => {
    const { twilio, sink, hooksUrl } = await setup();
    expect(await sink.webhook({ method: 'GET', url: hooksUrl, rawBody: '' })).toMatchObject({ status: 405, headers: { allow: 'POST' } });
    const { params, signature } = signedCallback(twilio.authToken, hooksUrl, { MessageStatus: 'delivered' });
    const response = await sink.webhook({ method: 'POST', url: hooksUrl, headers: { 'x-twilio-signature': signature }, rawBody: params.toString() });
    expect(response).toMatchObject({ status: 400, body: { code: SmsErrorCode.WEBHOOK_INVALID } });
    expect(sink.deliveries).toEqual([]);
  });
});
