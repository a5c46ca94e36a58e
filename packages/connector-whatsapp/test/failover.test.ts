/**
 * WhatsAppSink with two numbers (`providers`), each on its own Cloud API emulator: a message
 * goes to the second number only when the first certainly did not take it (HTTP 5xx, 429 with
 * no message id), never on a permanent refusal.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { startSink, type SinkHarness } from '@omnibus/sdk';
import { WhatsAppSink } from '../src/index.ts';
import { startWhatsAppDevServer, type WhatsAppDevServer } from '../src/dev-server.ts';

let first: WhatsAppDevServer;
let second: WhatsAppDevServer;
let sink: SinkHarness | undefined;

beforeAll(async () => {
  first = await startWhatsAppDevServer({ accessToken: 'token-first-1234', phoneNumberId: '100000000000001' });
  second = await startWhatsAppDevServer({ accessToken: 'token-second-5678', phoneNumberId: '100000000000002' });
});

afterEach(async () => {
  await sink?.stop();
  sink = undefined;
});

afterAll(async () => {
  await first.stop();
  await second.stop();
});

const config = () => ({
  topics: 'wa',
  'whatsapp.api.url': first.url,
  'whatsapp.phone.number.id': first.phoneNumberId,
  'whatsapp.access.token': first.accessToken,
  'whatsapp.pair.rate.limit': 0,
  providers: 'first,second',
  'providers.second.whatsapp.api.url': second.url,
  'providers.second.whatsapp.phone.number.id': second.phoneNumberId,
  'providers.second.whatsapp.access.token': second.accessToken,
  'provider.breaker.consecutive.failures': 3,
});

const text = (to: string, body: string, id: string) => ({ id, key: to, value: { to, type: 'text', text: { body } } });

describe('WhatsAppSink provider failover', () => {
  it('sends from the first number, and from the second when the first answers 5xx or 429', async () => {
    sink = await startSink(WhatsAppSink, config());
    first.script('15550000002', { code: 131000 });
    first.script('15550000003', { code: 130429, httpStatus: 429 });
    const results = await sink.send(
      [text('15550000001', 'one', 'wa-1'), text('15550000002', 'two', 'wa-2'), text('15550000003', 'three', 'wa-3')],
      { maxAttempts: 1 },
    );
    expect(results.map((r) => r.outcome)).toMatchObject([
      { status: 'sent', details: { provider: 'first' } },
      { status: 'sent', details: { provider: 'second' } },
      { status: 'sent', details: { provider: 'second' } },
    ]);
    expect(first.accepted.get('wa-1')).toBe(1);
    expect(second.accepted.get('wa-2')).toBe(1);
    expect(second.accepted.get('wa-3')).toBe(1);
    expect(first.accepted.has('wa-2') || first.accepted.has('wa-3')).toBe(false);
  });

  it('does not move a permanent refusal to the second number', async () => {
    sink = await startSink(WhatsAppSink, config());
    first.script('15550000004', { code: 131026 });
    const [result] = await sink.send([text('15550000004', 'four', 'wa-4')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'failed', details: { provider: 'first' } });
    expect(second.accepted.has('wa-4')).toBe(false);
  });
});
