/**
 * WhatsAppSink against a local Cloud API. The server is the package's emulator
 * (src/dev-server.ts), an in-process node:http server on 127.0.0.1 that follows the Cloud API
 * contract documented in reference/channels.md §1: the versioned path with the phone number
 * id, Bearer auth answered with error 190 and Graph's OAuthException body, request bodies
 * checked (error 100), `messages[0].id` wamids on success, and Graph error bodies scripted per
 * recipient (130429, 131056, 131047, 131026, 5xx). The connector is driven only through the
 * SDK test kit, as the runtime would drive it.
 */
import { ConfigError, FatalConnectorError, type SinkHarness, startSink } from '@omnibus/sdk';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import { startWhatsAppDevServer, type WhatsAppDevServer } from '../src/dev-server.ts';
import { WhatsAppErrors, WhatsAppSink } from '../src/index.ts';

const ACCESS_TOKEN = 'EAAGm0PX4ZCpsBAK-test-access-token-4f1c';
const APP_SECRET = 'app-secret-9d2e7c1b';

let server: WhatsAppDevServer;
const sinks: SinkHarness[] = [];

beforeAll(async () => {
  server = await startWhatsAppDevServer({ accessToken: ACCESS_TOKEN, appSecret: APP_SECRET, phoneNumberId: '106540352242922' });
});
afterAll(async () => {
  await server.stop();
});
afterEach(async () => {
  vi.useRealTimers();
  await Promise.all(sinks.splice(0).map((sink) => sink.stop()));
});

/**
 * Freezes `Date` (timers and I/O stay real) at the start of a wall-clock second. The limiters
 * and the emulator's arrival stamps read that one clock, and it moves only when the test moves
 * it: slots and windows are checked exactly, whatever the machine's load.
 */
function freezeClock(): { at: number; moveTo(offsetMs: number): void } {
  const at = (Math.floor(Date.now() / 1000) + 1) * 1000;
  vi.useFakeTimers({ toFake: ['Date'], now: at });
  return { at, moveTo: (offsetMs) => vi.setSystemTime(at + offsetMs) };
}

/** Polls `check` on real time (performance.now is not frozen), for up to 10 s. */
async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = performance.now() + 10_000;
  while (!check()) {
    if (performance.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 2));
  }
}

const start = async (overrides: Record<string, unknown> = {}) => {
  const sink = await startSink(WhatsAppSink, {
    topics: 'whatsapp',
    'whatsapp.api.url': server.url,
    'whatsapp.api.version': 'v23.0',
    'whatsapp.phone.number.id': server.phoneNumberId,
    'whatsapp.access.token': ACCESS_TOKEN,
    'whatsapp.app.secret': APP_SECRET,
    'whatsapp.verify.token': 'verify-token-1',
    'whatsapp.pair.rate.limit': 0,
    ...overrides,
  });
  sinks.push(sink);
  return sink;
};

/** A fresh recipient per test, so scripted answers and pair limits never leak between tests. */
let nextRecipient = 15551000000;
const recipient = () => String(nextRecipient++);
const text = (to: string, body = 'Your order has shipped') => ({ key: to, value: { to, type: 'text', text: { body } } });
const requestsTo = (to: string) => server.received.filter((r) => r.to === to);

describe('sending', () => {
  it('posts text and template messages in the Cloud API shape, carrying our message id', async () => {
    const sink = await start();
    const [alice, bob] = [recipient(), recipient()];
    const template = {
      name: 'order_update',
      language: { code: 'en_US' },
      components: [{ type: 'body', parameters: [{ type: 'text', text: 'John' }] }],
    };
    const results = await sink.send([
      { id: 'msg-text-1', key: alice, value: { to: alice, type: 'text', text: { body: 'Hello', preview_url: false } } },
      { id: 'msg-template-1', key: bob, value: { to: bob, type: 'template', template } },
    ]);

    const [toAlice] = requestsTo(alice);
    const [toBob] = requestsTo(bob);
    expect(toAlice?.path).toBe(`/v23.0/${server.phoneNumberId}/messages`);
    expect(toAlice?.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: alice,
      type: 'text',
      text: { body: 'Hello', preview_url: false },
      biz_opaque_callback_data: 'msg-text-1',
    });
    expect(toBob?.body).toEqual({
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: bob,
      type: 'template',
      template,
      biz_opaque_callback_data: 'msg-template-1',
    });
    expect(results.map((r) => r.outcome)).toEqual([
      { status: 'sent', providerId: toAlice?.wamid, details: { waId: alice, provider: 'default' } },
      { status: 'sent', providerId: toBob?.wamid, details: { waId: bob, provider: 'default' } },
    ]);
    expect(toAlice?.wamid).toMatch(/^wamid\./);
  });

  it('passes a reply context through', async () => {
    const sink = await start();
    const to = recipient();
    await sink.send([{ key: to, value: { to, type: 'text', text: { body: 'Re' }, context: { message_id: 'wamid.original' } } }]);
    expect(requestsTo(to)[0]?.body?.context).toEqual({ message_id: 'wamid.original' });
  });

  it('fails a value that is not a WhatsApp message without calling the API', async () => {
    const sink = await start();
    const to = recipient();
    const [result] = await sink.send([{ key: to, value: { to, type: 'text', text: { body: '' } } }]);
    expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: WhatsAppErrors.INVALID_MESSAGE } });
    expect(requestsTo(to)).toHaveLength(0);
  });
});

describe('provider errors', () => {
  it('retries 130429 (throughput) after pausing the number, then sends', async () => {
    const sink = await start();
    const to = recipient();
    server.script(to, { code: 130429 });
    const [first] = await sink.send([{ id: 'throttled-1', ...text(to) }], { maxAttempts: 1 });
    expect(first?.outcome).toMatchObject({ status: 'retry', error: { code: WhatsAppErrors.RATE_LIMITED }, retryAfterMs: 1000 });
    expect((first?.outcome as { error: { message: string } }).error.message).toContain('130429');

    const [second] = await sink.send([{ id: 'throttled-1', ...text(to) }], { maxAttempts: 1 });
    expect(second?.outcome).toMatchObject({ status: 'sent' });
    expect(requestsTo(to).map((r) => r.graphCode ?? r.httpStatus)).toEqual([130429, 200]);
    expect(server.accepted.get('throttled-1')).toBe(1);
  });

  it('honours a Retry-After hint on 130429', async () => {
    const sink = await start();
    const to = recipient();
    server.script(to, { code: 130429, retryAfterSeconds: 2 });
    const [first] = await sink.send([text(to)], { maxAttempts: 1 });
    expect(first?.outcome).toMatchObject({ status: 'retry', retryAfterMs: 2000 });
  });

  it('retries 131056 (pair rate limit) for that recipient only, then sends', async () => {
    const sink = await start({ 'whatsapp.pair.rate.limit': 1, 'whatsapp.pair.rate.limit.window.ms': 300 });
    const [busy, other] = [recipient(), recipient()];
    server.script(busy, { code: 131056 });
    const results = await sink.send([{ id: 'pair-1', ...text(busy) }, text(other)], { maxAttempts: 1 });
    expect(results[0]?.outcome).toMatchObject({ status: 'retry', error: { code: WhatsAppErrors.PAIR_RATE_LIMITED } });
    expect((results[0]?.outcome as { retryAfterMs?: number }).retryAfterMs).toBeGreaterThanOrEqual(300);
    expect(results[1]?.outcome).toMatchObject({ status: 'sent' });

    const [again] = await sink.send([{ id: 'pair-1', ...text(busy) }], { maxAttempts: 3, maxWaitMs: 1000 });
    expect(again?.outcome).toMatchObject({ status: 'sent' });
    expect(requestsTo(busy).map((r) => r.graphCode ?? r.httpStatus)).toEqual([131056, 200]);
  });

  it('fails 131047 (outside the 24 h window) permanently, with the reason', async () => {
    const sink = await start();
    const to = recipient();
    server.script(to, { code: 131047 });
    const [result] = await sink.send([text(to)]);
    expect(result?.attempts).toBe(1);
    expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: WhatsAppErrors.REENGAGEMENT_REQUIRED } });
    const message = (result?.outcome as { error: { message: string } }).error.message;
    expect(message).toContain('131047');
    expect(message).toContain('more than 24 hours have passed');
  });

  it('fails 131026 (undeliverable) permanently', async () => {
    const sink = await start();
    const to = recipient();
    server.script(to, { code: 131026 });
    const [result] = await sink.send([text(to)]);
    expect(result?.attempts).toBe(1);
    expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: WhatsAppErrors.UNDELIVERABLE } });
  });

  it('retries server errors (a Graph 500 and a proxy 502 page), then sends', async () => {
    const sink = await start();
    const to = recipient();
    server.script(to, { code: 131000 }, { httpStatus: 502, rawBody: '<html>Bad Gateway</html>' });
    const [result] = await sink.send([text(to)], { maxAttempts: 3 });
    expect(result?.attempts).toBe(3);
    expect(result?.outcome).toMatchObject({ status: 'sent' });
    expect(requestsTo(to).map((r) => r.httpStatus)).toEqual([500, 502, 200]);
  });

  it('fails a send that timed out as in doubt under at-most-once (the Cloud API takes a repeat as a new message), and retries it under at-least-once', async () => {
    const atMostOnce = await start({ 'whatsapp.request.timeout.ms': 200 });
    const to = recipient();
    server.script(to, { code: 131000, delayMs: 1000 });
    const [result] = await atMostOnce.send([text(to)], { maxAttempts: 3 });
    expect(result?.attempts).toBe(1);
    expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: 'OMNI_ERR_PROVIDER_IN_DOUBT' }, details: { inDoubt: true, cause: WhatsAppErrors.TIMEOUT } });
    expect((result?.outcome as { error: { message: string } }).error.message).toContain('may have accepted');

    const atLeastOnce = await start({ 'whatsapp.request.timeout.ms': 200, 'delivery.guarantee': 'at-least-once' });
    const again = recipient();
    server.script(again, { code: 131000, delayMs: 1000 });
    const [retried] = await atLeastOnce.send([text(again)], { maxAttempts: 1 });
    expect(retried?.outcome).toMatchObject({ status: 'retry', error: { code: WhatsAppErrors.TIMEOUT } });
    expect((retried?.outcome as { error: { message: string } }).error.message).toContain('may have accepted');
  });
});

describe('credentials', () => {
  it('fails the connector on 190 without sending anything, and keeps secrets out of logs and traces', async () => {
    const badToken = 'EAAGm0PX4ZCpsBAK-revoked-token-77aa';
    const sink = await start({ 'whatsapp.access.token': badToken });
    const [a, b] = [recipient(), recipient()];
    const error = await sink.send([text(a), text(b)]).then(
      () => undefined,
      (e: unknown) => e,
    );
    expect(error).toBeInstanceOf(FatalConnectorError);
    expect((error as FatalConnectorError).code).toBe(WhatsAppErrors.AUTH_FAILED);
    expect((error as Error).message).toContain('190');
    expect(server.received.filter((r) => (r.to === a || r.to === b) && r.httpStatus === 200)).toEqual([]);

    // Once failed, the task refuses further batches before calling the API.
    const before = server.received.length;
    await expect(sink.send([text(recipient())])).rejects.toBeInstanceOf(FatalConnectorError);
    expect(server.received.length).toBe(before);

    const traces = JSON.stringify(sink.logs) + String((error as Error).message) + String((error as Error).stack);
    for (const secret of [badToken, APP_SECRET, 'verify-token-1']) expect(traces).not.toContain(secret);
  });

  it('keeps what was already sent when the token is revoked mid-batch, and fails the next batch', async () => {
    const sink = await start({ 'whatsapp.max.in.flight': 1 });
    const [first, revoked, last] = [recipient(), recipient(), recipient()];
    server.script(revoked, { code: 190 });
    const results = await sink.send([text(first), text(revoked), text(last)], { maxAttempts: 1 });
    expect(results.map((r) => r.outcome.status)).toEqual(['sent', 'retry', 'retry']);
    expect(results[2]?.outcome).toMatchObject({ error: { code: WhatsAppErrors.CONNECTOR_FAILED } });
    expect(requestsTo(last)).toHaveLength(0);
    await expect(sink.send([text(last)])).rejects.toBeInstanceOf(FatalConnectorError);
    expect(requestsTo(last)).toHaveLength(0);
  });
});

describe('rate limits', () => {
  it('keeps every one-second window within whatsapp.rate.limit.per.second', async () => {
    const limited = await startWhatsAppDevServer({ accessToken: ACCESS_TOKEN, throughputPerSecond: 20 });
    try {
      // Frozen before the task starts: its limiters take their clock when they are made.
      const clock = freezeClock();
      const sink = await start({
        'whatsapp.api.url': limited.url,
        'whatsapp.phone.number.id': limited.phoneNumberId,
        'whatsapp.rate.limit.per.second': 20,
      });
      const messages = Array.from({ length: 50 }, () => text(recipient()));
      const sending = sink.send(messages, { maxAttempts: 1 });
      // One token per 50 ms: the clock moves a token's worth once the emulator has what is due
      // so far. A limiter letting more through would put them in the same (frozen) instant.
      for (let step = 0; limited.received.length < messages.length; step++) {
        clock.moveTo(step * 50);
        await until(() => limited.received.length >= Math.min(step + 1, messages.length), `send ${step + 1}`);
      }
      const results = await sending;
      expect(results.every((r) => r.outcome.status === 'sent')).toBe(true);
      const windows = [...limited.requestsPerSecond().values()];
      expect(windows).toEqual([20, 20, 10]);
      expect(limited.received.map((r) => r.at - clock.at)).toEqual(Array.from({ length: 50 }, (_, i) => i * 50));
      expect(limited.received.some((r) => r.graphCode === 130429)).toBe(false);
    } finally {
      await limited.stop();
    }
  });

  it('holds a second message to the same recipient back with retryAfterMs, then sends it in its slot', async () => {
    // Frozen before the task starts: its limiters take their clock when they are made.
    const clock = freezeClock();
    const sink = await start({ 'whatsapp.pair.rate.limit': 1, 'whatsapp.pair.rate.limit.window.ms': 400 });
    const to = recipient();
    const batch = ['pair-a', 'pair-b', 'pair-c'].map((id, i) => ({ id, ...text(to, `update ${i}`) }));
    const retry = (wait: number) => ({ status: 'retry', retryAfterMs: wait, error: { code: WhatsAppErrors.PAIR_RATE_LIMITED } });
    const results = await sink.send(batch, { maxAttempts: 1 });
    // One slot per 400 ms: the second and third messages are given the next two slots.
    expect(results.map((r) => r.outcome)).toMatchObject([{ status: 'sent' }, retry(400), retry(800)]);

    // Back too early: still held, told the rest of the wait, nothing sent.
    clock.moveTo(300);
    expect((await sink.send([batch[1]!], { maxAttempts: 1 }))[0]?.outcome).toMatchObject(retry(100));
    // Back on time: it goes; the third is still a slot away.
    clock.moveTo(400);
    expect((await sink.send(batch.slice(1), { maxAttempts: 1 })).map((r) => r.outcome)).toMatchObject([{ status: 'sent' }, retry(400)]);
    clock.moveTo(800);
    expect((await sink.send(batch.slice(2), { maxAttempts: 1 }))[0]?.outcome.status).toBe('sent');

    expect(requestsTo(to).map((r) => r.at - clock.at)).toEqual([0, 400, 800]);
    expect(requestsTo(to).map((r) => (r.body?.text as { body: string }).body)).toEqual(['update 0', 'update 1', 'update 2']);
  });
});

describe('config', () => {
  it('rejects a config without a phone number id or with a malformed version', async () => {
    await expect(start({ 'whatsapp.phone.number.id': undefined })).rejects.toBeInstanceOf(ConfigError);
    const infos = WhatsAppSink.config.validate('WhatsAppSink', {
      'whatsapp.api.version': '22',
      'whatsapp.phone.number.id': '1065',
      'whatsapp.access.token': 'secret-token-value',
    });
    expect(infos.error_count).toBe(1);
    const version = infos.configs.find((c) => c.definition.name === 'whatsapp.api.version');
    expect(version?.value.errors[0]).toContain('v22.0');
    const token = infos.configs.find((c) => c.definition.name === 'whatsapp.access.token');
    expect(token?.value.value).toBe('[hidden]');
  });
});
