/**
 * SmsSink with two SMPP binds (`providers`), both real SMSC dev servers on 127.0.0.1, or an
 * SMPP bind and a Twilio account (the Messages API emulator): a message goes to the backup only
 * when the primary certainly did not take it, and never when the primary may have it (a
 * submit_sm left unanswered).
 */
import { afterEach, describe, expect, it } from 'vitest';
import { startSink, type RawConfig, type SinkHarness } from '@omnibus/sdk';
import { SmsErrorCode, SmsSink } from '../src/index.ts';
import { startSmscDevServer, startTwilioDevServer, type SmscDevServer } from '../src/dev-server.ts';

const SYSTEM_ID = 'omnibus';
const PASSWORD = 'secret12';
const opened: Array<{ close(): Promise<void> }> = [];
let sink: SinkHarness | undefined;

afterEach(async () => {
  await sink?.stop();
  sink = undefined;
  await Promise.all(opened.splice(0).map((s) => s.close()));
});

async function smsc(options: Parameters<typeof startSmscDevServer>[0] = {}): Promise<SmscDevServer> {
  const server = await startSmscDevServer({ credentials: { systemId: SYSTEM_ID, password: PASSWORD }, ...options });
  opened.push(server);
  return server;
}

const config = (primaryPort: number, backupPort: number, overrides: RawConfig = {}): RawConfig => ({
  topics: 'sms',
  'sms.transport': 'smpp',
  'sms.from': 'Omnibus',
  'smpp.host': '127.0.0.1',
  'smpp.port': String(primaryPort),
  'smpp.system.id': SYSTEM_ID,
  'smpp.password': PASSWORD,
  'smpp.reconnect.backoff.initial.ms': '10',
  'smpp.reconnect.backoff.max.ms': '100',
  'smpp.request.timeout.ms': '500',
  providers: 'primary,backup',
  'providers.backup.smpp.port': String(backupPort),
  'provider.breaker.consecutive.failures': '1',
  'provider.breaker.cooldown.ms': '600000',
  ...overrides,
});

const sms = (to: string, text: string) => ({ key: to, value: { to, text } });

describe('SmsSink provider failover', () => {
  it('sends through the primary bind and names it', async () => {
    const primary = await smsc();
    const backup = await smsc();
    sink = await startSink(SmsSink, config(primary.port, backup.port));
    const [result] = await sink.send([sms('+33612345678', 'via primary')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'sent', details: { provider: 'primary' } });
    expect(primary.countByText('via primary')).toBe(1);
    expect(backup.countByText('via primary')).toBe(0);
  });

  it('moves to the backup when the primary SMSC throttles, and keeps off the primary while its breaker is open', async () => {
    const ESME_RTHROTTLED = 0x58;
    const primary = await smsc({ answerSubmit: () => ({ status: ESME_RTHROTTLED }) });
    const backup = await smsc();
    sink = await startSink(SmsSink, config(primary.port, backup.port, { 'smpp.throttle.backoff.ms': '10' }));
    const results = await sink.send([sms('+33612345678', 'first'), sms('+33612345679', 'second')], { maxAttempts: 1 });
    expect(results.map((r) => r.outcome)).toMatchObject([
      { status: 'sent', details: { provider: 'backup' } },
      { status: 'sent', details: { provider: 'backup' } },
    ]);
    expect(primary.messages).toHaveLength(0);
    expect(backup.countByText('first') + backup.countByText('second')).toBe(2);
    expect(sink.providers.map((p) => [p.alias, p.state])).toEqual([
      ['primary', 'open'],
      ['backup', 'closed'],
    ]);
  });

  it('mixes transports: an SMPP bind first, a Twilio account second, each with its own credentials', async () => {
    const ESME_RTHROTTLED = 0x58;
    const primary = await smsc({ answerSubmit: () => ({ status: ESME_RTHROTTLED }) });
    const twilio = await startTwilioDevServer();
    opened.push(twilio);
    const smppOnly = Object.entries(config(primary.port, 0, { 'smpp.throttle.backoff.ms': '10' })).filter(([key]) => !key.startsWith('providers.backup.'));
    sink = await startSink(SmsSink, {
      ...Object.fromEntries(smppOnly),
      providers: 'primary,twilio',
      'providers.twilio.sms.transport': 'twilio',
      'providers.twilio.sms.from': '+15017122661',
      'providers.twilio.twilio.api.url': twilio.url,
      'providers.twilio.twilio.account.sid': twilio.accountSid,
      'providers.twilio.twilio.auth.token': twilio.authToken,
    });
    const [result] = await sink.send([sms('+33612345678', 'via the Twilio account')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'sent', details: { provider: 'twilio' } });
    expect(primary.messages).toHaveLength(0);
    expect(twilio.messages.map((m) => [m.to, m.body])).toEqual([['+33612345678', 'via the Twilio account']]);
    expect(sink.providers.map((p) => [p.alias, p.state])).toEqual([
      ['primary', 'open'],
      ['twilio', 'closed'],
    ]);
  });

  it('never hands a submit_sm left unanswered to the backup under at-most-once', async () => {
    const primary = await smsc({ answerSubmit: () => 'no-answer' });
    const backup = await smsc();
    sink = await startSink(SmsSink, config(primary.port, backup.port));
    const [result] = await sink.send([sms('+33612345678', 'maybe sent')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: SmsErrorCode.OUTCOME_UNKNOWN }, details: { inDoubt: true, provider: 'primary' } });
    expect(backup.submits).toHaveLength(0);
  });
});
