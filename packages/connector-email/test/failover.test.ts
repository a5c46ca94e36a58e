/**
 * EmailSink with two SMTP relays (`providers`), both real SMTP dev servers on 127.0.0.1:
 * a message goes to the backup only when the primary certainly did not take it, each
 * Message-ID arrives once across both, and the primary's breaker opens and closes again.
 */
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ConfigError, PROVIDER_ERROR_CODES, startSink, type SinkHarness } from '@omnibus/sdk';
import { EMAIL_ERROR_CODES, EmailSink, messageIdFor } from '../src/index.ts';
import { startSmtpDevServer, type SmtpDevServer } from '../src/dev-server.ts';
import { failureCertainty } from '../src/outcome.ts';

const DOMAIN = 'omnibus.test';

let primary: SmtpDevServer;
let backup: SmtpDevServer;
/** While true, the primary answers the end of DATA with 421, as a relay shedding load does. */
let primaryFailing = false;
let sink: SinkHarness | undefined;

const config = (overrides: Record<string, unknown> = {}) => ({
  name: 'email',
  topics: 'mail',
  'smtp.host': '127.0.0.1',
  'smtp.port': primary.port,
  'smtp.starttls': 'never',
  'smtp.timeout.ms': 5000,
  'email.from': `Omnibus <noreply@${DOMAIN}>`,
  providers: 'primary,backup',
  'providers.backup.smtp.port': backup.port,
  'provider.breaker.consecutive.failures': 2,
  'provider.breaker.cooldown.ms': 200,
  ...overrides,
});

const message = (id: string) => ({ id, key: `${id}@example.org`, value: { to: `${id}@example.org`, subject: id, text: 'hello' } });
const arrivals = (server: SmtpDevServer, id: string) => server.countsByMessageId.get(messageIdFor(id, DOMAIN)) ?? 0;

beforeAll(async () => {
  primary = await startSmtpDevServer({ dataReply: () => (primaryFailing ? { code: 421, message: '4.3.2 Service shutting down' } : undefined) });
  backup = await startSmtpDevServer();
});

afterEach(async () => {
  await sink?.stop();
  sink = undefined;
  primaryFailing = false;
});

afterAll(async () => {
  await primary.close();
  await backup.close();
});

describe('EmailSink provider failover', () => {
  it('sends through the first provider and names it in the outcome', async () => {
    sink = await startSink(EmailSink, config());
    const [result] = await sink.send([message('first-choice')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'sent', details: { provider: 'primary' } });
    expect(arrivals(primary, 'first-choice')).toBe(1);
    expect(arrivals(backup, 'first-choice')).toBe(0);
  });

  it('moves to the backup on a 4xx, opens the primary\'s breaker, and returns to the primary once it recovers', async () => {
    sink = await startSink(EmailSink, config());
    primaryFailing = true;
    const during = Array.from({ length: 6 }, (_, i) => message(`during-${i}`));
    const results = await sink.send(during, { maxAttempts: 1 });
    expect(results.map((r) => r.outcome.status)).toEqual(during.map(() => 'sent'));
    for (const m of during) expect(arrivals(primary, m.id) + arrivals(backup, m.id)).toBe(1);
    expect(results.every((r) => r.outcome.status === 'sent' && r.outcome.details?.provider === 'backup')).toBe(true);
    // Open, or already half-open if the batch outlasted the cool-down: not closed, and it did open.
    expect(sink.providers.map((p) => [p.alias, p.state === 'closed' ? 'closed' : 'tripped', p.timesOpened > 0])).toEqual([
      ['primary', 'tripped', true],
      ['backup', 'closed', false],
    ]);

    primaryFailing = false;
    // Generous bound: the cool-down is 200 ms; the probe after it closes the breaker.
    let last: string | undefined;
    for (let i = 0; i < 100 && last !== 'primary'; i += 1) {
      await new Promise((resolve) => setTimeout(resolve, 50));
      const [after] = await sink.send([message(`after-${i}`)], { maxAttempts: 1 });
      last = after?.outcome.status === 'sent' ? (after.outcome.details?.provider as string) : undefined;
    }
    expect(last).toBe('primary');
    expect(sink.providers.map((p) => p.state)).toEqual(['closed', 'closed']);
    expect(primary.duplicates()).toEqual([]);
    expect(backup.duplicates()).toEqual([]);
  });

  it('moves to the backup when the primary refuses connections', async () => {
    const closed = await startSmtpDevServer();
    const port = closed.port;
    await closed.close();
    sink = await startSink(EmailSink, config({ 'smtp.port': port }));
    const [result] = await sink.send([message('refused-primary')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'sent', details: { provider: 'backup' } });
    expect(arrivals(backup, 'refused-primary')).toBe(1);
  });

  it('does not fail over on a permanent refusal of the message', async () => {
    const picky = await startSmtpDevServer({ rcptReply: (address) => (address.startsWith('gone') ? { code: 550, message: '5.1.1 User unknown' } : undefined) });
    try {
      sink = await startSink(EmailSink, config({ 'smtp.port': picky.port }));
      const [result] = await sink.send([{ id: 'gone-1', key: 'gone@example.org', value: { to: 'gone@example.org', subject: 's', text: 't' } }], { maxAttempts: 1 });
      expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: EMAIL_ERROR_CODES.recipientsRejected }, details: { provider: 'primary' } });
      expect(arrivals(backup, 'gone-1')).toBe(0);
    } finally {
      await picky.close();
    }
  });

  it('asks for a retry without calling anyone when every breaker is open', async () => {
    const closed = await startSmtpDevServer();
    const port = closed.port;
    await closed.close();
    sink = await startSink(EmailSink, config({ 'smtp.port': port, 'providers.backup.smtp.port': port, 'provider.breaker.cooldown.ms': 60_000 }));
    await sink.send([message('down-1'), message('down-2')], { maxAttempts: 1 });
    const [result] = await sink.send([message('down-3')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'retry', error: { code: PROVIDER_ERROR_CODES.unavailable } });
  });

  it('keeps the single-provider keys working as the provider "default"', async () => {
    sink = await startSink(EmailSink, { ...config(), providers: undefined, 'providers.backup.smtp.port': undefined });
    const [result] = await sink.send([message('default-provider')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'sent', details: { provider: 'default' } });
    expect(sink.providers.map((p) => p.alias)).toEqual(['default']);
  });

  it('refuses a provider list with duplicates, naming the key', async () => {
    const error = await startSink(EmailSink, config({ providers: 'primary,primary' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).errors).toEqual({ providers: ['providers names "primary" more than once'] });
  });

  it('names the provider key of a problem found between keys', async () => {
    const error = await startSink(EmailSink, config({ 'providers.backup.smtp.password': 'x' })).catch((e: unknown) => e);
    expect((error as ConfigError).errors).toEqual({ 'providers.backup.smtp.user': ['smtp.user is required when smtp.password is set.'] });
  });
});

describe('failureCertainty', () => {
  const error = (fields: Record<string, unknown>) => Object.assign(new Error(String(fields.message ?? 'x')), fields);
  it('says a reply, a refused connection or a failure before the envelope left nothing at the server', () => {
    expect(failureCertainty(error({ responseCode: 421, command: 'DATA' }))).toBe('not-taken');
    expect(failureCertainty(error({ code: 'ECONNREFUSED', message: 'connect ECONNREFUSED 127.0.0.1:1' }))).toBe('not-taken');
    expect(failureCertainty(error({ code: 'ETIMEDOUT', command: 'CONN', message: 'Greeting never received' }))).toBe('not-taken');
    expect(failureCertainty(error({ code: 'ECONNECTION', command: 'RCPT TO', message: 'closed' }))).toBe('not-taken');
  });
  it('says a connection lost or timed out without a reply may have delivered', () => {
    expect(failureCertainty(error({ code: 'ETIMEDOUT', command: 'CONN', message: 'Timeout' }))).toBe('in-doubt');
    expect(failureCertainty(error({ code: 'ECONNECTION', command: 'CONN', message: 'Connection closed unexpectedly' }))).toBe('in-doubt');
  });
});
