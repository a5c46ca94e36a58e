// SmsSink over SMPP 3.4 against a real SMSC on npm `smpp`'s server side (the development
// SMSC of this package), in process on 127.0.0.1: every assertion is about PDUs that went
// over a real TCP session.
import { ConfigError, FatalConnectorError, startSink, type RawConfig, type SinkHarness } from '@omnibus/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { startSmscDevServer, type SmscDevServer, type SmscDevServerOptions } from '../src/dev-server.ts';
import { SmsErrorCode, SmsSink } from '../src/index.ts';
import { CommandStatus } from '../src/smpp/status.ts';

const SYSTEM_ID = 'omnibus';
const PASSWORD = 'pw-S3cr3t';

const started: Array<{ smsc: SmscDevServer; sink?: SinkHarness }> = [];

afterEach(async () => {
  for (const { smsc, sink } of started.splice(0)) {
    if (sink) {
      await sink.stop();
      expect(JSON.stringify(sink.logs)).not.toContain(PASSWORD);
    }
    await smsc.close();
  }
});

async function setup(options: SmscDevServerOptions = {}, config: RawConfig = {}) {
  const smsc = await startSmscDevServer({ credentials: { systemId: SYSTEM_ID, password: PASSWORD }, ...options });
  const entry: { smsc: SmscDevServer; sink?: SinkHarness } = { smsc };
  started.push(entry);
  const sink = await startSink(SmsSink, smppConfig(smsc, config));
  entry.sink = sink;
  return { smsc, sink };
}

function smppConfig(smsc: SmscDevServer, overrides: RawConfig = {}): RawConfig {
  return {
    topics: 'sms',
    'sms.transport': 'smpp',
    'sms.from': 'Omnibus',
    'smpp.host': smsc.host,
    'smpp.port': String(smsc.port),
    'smpp.system.id': SYSTEM_ID,
    'smpp.password': PASSWORD,
    'smpp.reconnect.backoff.initial.ms': '10',
    'smpp.reconnect.backoff.max.ms': '100',
    'smpp.throttle.backoff.ms': '20',
    'smpp.request.timeout.ms': '2000',
    ...overrides,
  };
}

async function until(condition: () => boolean, what: string, timeoutMs = 5_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

/** Whether a line with this message was logged (pino style: `log(obj, msg)` or `log(msg)`). */
const logged = (sink: SinkHarness, message: string, level?: string) =>
  sink.logs.some((line) => (line.msg ?? line.obj) === message && (level === undefined || line.level === level));

const sms = (to: string, text: string, extra: Record<string, unknown> = {}) => ({ key: to, value: { to, text, ...extra } });

describe('SmsSink over SMPP', () => {
  it('binds as an SMPP 3.4 transceiver and submits a GSM-7 message with a receipt request', async () => {
    const { smsc, sink } = await setup();
    expect(smsc.binds).toEqual([{ connection: 1, systemId: SYSTEM_ID, systemType: '', interfaceVersion: 0x34, status: 0, encrypted: false }]);

    const [result] = await sink.send([sms('+33612345678', 'Your code is 1234')]);
    expect(result?.outcome).toEqual({ status: 'sent', providerId: smsc.submits[0]?.messageId, details: { encoding: 'GSM7', segments: 1, provider: 'default' } });
    expect(smsc.submits).toHaveLength(1);
    expect(smsc.submits[0]).toMatchObject({
      sourceAddr: 'Omnibus',
      sourceTon: 5,
      sourceNpi: 0,
      destinationAddr: '33612345678',
      destTon: 1,
      destNpi: 1,
      esmClass: 0,
      dataCoding: 0,
      registeredDelivery: 1,
      concat: undefined,
      text: 'Your code is 1234',
    });
  });

  it('turns the delivery receipt into a delivered update and acknowledges it', async () => {
    const { smsc, sink } = await setup();
    const [result] = await sink.send([sms('+33612345678', 'Receipt please')]);
    await until(() => sink.deliveries.length === 1 && smsc.receiptsAcknowledged === 1, 'the receipt');
    expect(sink.deliveries[0]).toMatchObject({
      messageId: result?.record.id,
      providerId: smsc.submits[0]?.messageId,
      state: 'delivered',
      details: { stat: 'DELIVRD' },
    });
    expect(typeof sink.deliveries[0]?.at).toBe('number');
  });

  it('reports an UNDELIV receipt as failed with the SMSC error, also when it comes as TLVs', async () => {
    const { smsc, sink } = await setup({ receiptStat: () => 'UNDELIV', receiptTlvs: true });
    const [result] = await sink.send([sms('+33612345678', 'Nobody home')]);
    await until(() => sink.deliveries.length === 1, 'the receipt');
    expect(sink.deliveries[0]).toMatchObject({
      messageId: result?.record.id,
      providerId: smsc.submits[0]?.messageId,
      state: 'failed',
      error: { code: '001', message: 'SMSC receipt stat:UNDELIV err:001' },
    });
  });

  it('splits 200 GSM-7 characters into two UDH segments and counts the message delivered once both are', async () => {
    const { smsc, sink } = await setup();
    const text = 'A'.repeat(100) + 'B'.repeat(100);
    const [result] = await sink.send([sms('+447700900123', text)]);
    expect(smsc.submits).toHaveLength(2);
    const [first, second] = smsc.submits;
    expect(first?.concat).toEqual({ reference: expect.any(Number), total: 2, seq: 1, via: 'udh' });
    expect(second?.concat).toEqual({ reference: first?.concat?.reference, total: 2, seq: 2, via: 'udh' });
    expect(smsc.submits.map((s) => [s.esmClass, s.dataCoding, s.payload.length])).toEqual([
      [0x40, 0, 153],
      [0x40, 0, 47],
    ]);
    expect(smsc.messages).toEqual([{ to: '447700900123', from: 'Omnibus', text, messageIds: [first?.messageId, second?.messageId] }]);
    expect(result?.outcome).toMatchObject({ status: 'sent', providerId: first?.messageId, details: { segments: 2, segmentIds: [first?.messageId, second?.messageId] } });

    await until(() => smsc.receiptsAcknowledged === 2, 'both receipts');
    await until(() => sink.deliveries.length > 0, 'the update');
    expect(sink.deliveries).toEqual([expect.objectContaining({ messageId: result?.record.id, providerId: first?.messageId, state: 'delivered' })]);
  });

  it('sends extension characters as two septets each', async () => {
    const { smsc, sink } = await setup();
    await sink.send([sms('+447700900123', '€'.repeat(80))]);
    expect(smsc.submits.map((s) => [s.dataCoding, s.payload.length, s.concat])).toEqual([[0, 160, undefined]]);
    expect(smsc.messages[0]?.text).toBe('€'.repeat(80));
  });

  it('sends an emoji text as UCS-2 segments that keep every surrogate pair whole', async () => {
    const { smsc, sink } = await setup();
    // 16 UTF-16 units, then pairs: unit 66, the last of a full segment, is a high surrogate.
    const text = `Happy birthday! ${'🎂🎉'.repeat(30)}`;
    const [result] = await sink.send([sms('+33612345678', text)]);
    expect(result?.outcome.status).toBe('sent');
    expect(smsc.submits.length).toBeGreaterThan(1);
    for (const [index, submit] of smsc.submits.entries()) {
      expect(submit.dataCoding).toBe(8);
      expect(submit.esmClass & 0x40).toBe(0x40);
      expect(submit.payload.length).toBeLessThanOrEqual(134);
      expect(submit.concat).toMatchObject({ total: smsc.submits.length, seq: index + 1 });
      expect(submit.text).not.toMatch(/[\uD800-\uDBFF]$/);
      expect(submit.text).not.toMatch(/^[\uDC00-\uDFFF]/);
    }
    expect(smsc.messages.map((m) => m.text)).toEqual([text]);
  });

  it('can carry the concatenation in sar_* TLVs instead of a UDH', async () => {
    const { smsc, sink } = await setup({}, { 'smpp.concatenation': 'sar' });
    await sink.send([sms('+33612345678', 'z'.repeat(170))]);
    expect(smsc.submits.map((s) => [s.esmClass, s.udh.length, s.concat?.via, s.concat?.seq, s.concat?.total, s.payload.length])).toEqual([
      [0, 0, 'sar', 1, 2, 153],
      [0, 0, 'sar', 2, 2, 17],
    ]);
    expect(smsc.messages.map((m) => m.text)).toEqual(['z'.repeat(170)]);
  });

  it('never has more submit_sm outstanding than the window', async () => {
    const { smsc, sink } = await setup({ answerSubmit: () => ({ delayMs: 20 }) }, { 'smpp.window.size': '3' });
    const messages = Array.from({ length: 12 }, (_, i) => sms(`+3361234560${String(i).padStart(2, '0')}`, `message ${i}`));
    const results = await sink.send(messages);
    expect(results.every((r) => r.outcome.status === 'sent')).toBe(true);
    expect(smsc.submits).toHaveLength(12);
    expect(smsc.maxOutstanding).toBe(3);
  });

  it('retries a throttled message (ESME_RTHROTTLED) and then sends it', async () => {
    const { smsc, sink } = await setup({ answerSubmit: (_, index) => (index < 2 ? { status: CommandStatus.ESME_RTHROTTLED } : undefined) });
    const [result] = await sink.send([sms('+33612345678', 'Slow down')], { maxAttempts: 5 });
    expect(result?.attempts).toBe(3);
    expect(result?.outcome).toMatchObject({ status: 'sent', providerId: smsc.submits[2]?.messageId });
    expect(smsc.submits.map((s) => s.status)).toEqual([CommandStatus.ESME_RTHROTTLED, CommandStatus.ESME_RTHROTTLED, 0]);
    expect(smsc.countByText('Slow down')).toBe(1);
    expect(logged(sink, 'SMSC throttled us; slowing down', 'warn')).toBe(true);
  });

  it('gives a throttled or queue-full message back for a later retry, with the backoff as delay', async () => {
    const { sink } = await setup({
      answerSubmit: (submit) => ({ status: submit.destinationAddr.endsWith('1') ? CommandStatus.ESME_RTHROTTLED : CommandStatus.ESME_RMSGQFUL }),
    });
    const results = await sink.send([sms('+33600000001', 'one'), sms('+33600000002', 'two')], { maxAttempts: 1 });
    expect(results.map((r) => r.outcome)).toEqual([
      { status: 'retry', error: { code: SmsErrorCode.THROTTLED, message: 'SMSC answered ESME_RTHROTTLED (0x58)' }, retryAfterMs: 20 },
      { status: 'retry', error: { code: SmsErrorCode.PROVIDER_BUSY, message: 'SMSC answered ESME_RMSGQFUL (0x14)' }, retryAfterMs: 20 },
    ]);
  });

  it('fails a message to an invalid destination at once', async () => {
    const { smsc, sink } = await setup({ answerSubmit: () => ({ status: CommandStatus.ESME_RINVDSTADR }) });
    const [result] = await sink.send([sms('+33612345678', 'Nobody')], { maxAttempts: 5 });
    expect(result?.attempts).toBe(1);
    expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: SmsErrorCode.INVALID_NUMBER } });
    expect(smsc.submits).toHaveLength(1);
  });

  it('fails a long message whose later segment is refused, without resending the accepted part', async () => {
    const { smsc, sink } = await setup({ answerSubmit: (_, index) => (index === 1 ? { status: CommandStatus.ESME_RINVDCS } : undefined) });
    const [result] = await sink.send([sms('+33612345678', 'q'.repeat(300))], { maxAttempts: 5 });
    expect(result?.attempts).toBe(1);
    expect(result?.outcome).toMatchObject({
      status: 'failed',
      error: { code: SmsErrorCode.PARTIAL_SEND },
      details: { acceptedSegmentIds: [smsc.submits[0]?.messageId], segments: 2 },
    });
    expect(smsc.submits).toHaveLength(2);
  });

  it('resubmits a throttled later segment itself, so the message arrives whole', async () => {
    const { smsc, sink } = await setup({ answerSubmit: (_, index) => (index === 1 ? { status: CommandStatus.ESME_RTHROTTLED } : undefined) });
    const [result] = await sink.send([sms('+33612345678', 'r'.repeat(300))], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'sent', details: { segments: 2 } });
    expect(smsc.submits.map((s) => [s.concat?.seq, s.status])).toEqual([
      [1, 0],
      [2, CommandStatus.ESME_RTHROTTLED],
      [2, 0],
    ]);
    expect(smsc.countByText('r'.repeat(300))).toBe(1);
  });

  it('does not resend a submit_sm left unanswered under at-most-once, and does under at-least-once', async () => {
    const unanswered = { answerSubmit: (_: unknown, index: number) => (index === 0 ? ('no-answer' as const) : undefined) };
    const atMostOnce = await setup(unanswered, { 'smpp.request.timeout.ms': '150' });
    const [doubtful] = await atMostOnce.sink.send([sms('+33612345678', 'maybe')], { maxAttempts: 5 });
    expect(doubtful?.attempts).toBe(1);
    expect(doubtful?.outcome).toMatchObject({ status: 'failed', error: { code: SmsErrorCode.OUTCOME_UNKNOWN }, details: { inDoubt: true } });
    expect(atMostOnce.smsc.submits).toHaveLength(1);

    const atLeastOnce = await setup(unanswered, { 'smpp.request.timeout.ms': '150', 'delivery.guarantee': 'at-least-once' });
    const [resent] = await atLeastOnce.sink.send([sms('+33612345678', 'maybe')], { maxAttempts: 5 });
    expect(resent?.attempts).toBe(2);
    expect(resent?.outcome.status).toBe('sent');
    expect(atLeastOnce.smsc.countByText('maybe')).toBe(2);
  });

  it('keeps the link alive with enquire_link', async () => {
    const { smsc } = await setup({}, { 'smpp.enquire.link.interval.ms': '20' });
    await until(() => smsc.enquireLinks >= 2, 'enquire_link');
    expect(smsc.enquireLinks).toBeGreaterThanOrEqual(2);
  });

  it('rebinds after the SMSC drops the connection, and holds sends until it is bound again', async () => {
    const { smsc, sink } = await setup({}, { 'smpp.reconnect.backoff.initial.ms': '100' });
    const [before] = await sink.send([sms('+33612345678', 'before the drop')]);
    expect(before?.outcome.status).toBe('sent');
    smsc.dropConnections();
    await until(() => logged(sink, 'SMPP session closed; reconnecting'), 'the client to see the drop');
    expect(smsc.binds).toHaveLength(1);
    // Sent while no session is bound: it waits for the rebind instead of failing.
    const [after] = await sink.send([sms('+33612345678', 'after the drop')], { maxAttempts: 1 });
    expect(after?.outcome.status).toBe('sent');
    expect(smsc.binds.map((b) => [b.connection, b.status])).toEqual([
      [1, 0],
      [2, 0],
    ]);
    expect(smsc.submits.find((s) => s.text === 'after the drop')?.connection).toBe(2);
  });

  it('reconnects with growing delays while the SMSC is away', async () => {
    const { smsc, sink } = await setup(
      {},
      { 'smpp.reconnect.backoff.initial.ms': '10', 'smpp.reconnect.backoff.max.ms': '40', 'smpp.request.timeout.ms': '200' },
    );
    await smsc.close();
    await until(() => sink.logs.filter((line) => line.msg === 'reconnecting to the SMSC').length >= 4, 'several attempts');
    const delays = sink.logs.filter((line) => line.msg === 'reconnecting to the SMSC').map((line) => (line.obj as { delayMs: number }).delayMs);
    // Each delay is drawn from [ceiling/2, ceiling], the ceiling doubling from 10 up to 40 ms.
    expect(delays[0]).toBeLessThanOrEqual(10);
    expect(delays[2]).toBeGreaterThanOrEqual(20);
    expect(Math.max(...delays)).toBeLessThanOrEqual(40);
    const [result] = await sink.send([sms('+33612345678', 'nobody listens')], { maxAttempts: 1 });
    expect(result?.outcome).toMatchObject({ status: 'retry', error: { code: SmsErrorCode.NOT_CONNECTED } });
  });

  it('fails the task when the SMSC refuses the password', async () => {
    const smsc = await startSmscDevServer({ credentials: { systemId: SYSTEM_ID, password: PASSWORD } });
    started.push({ smsc });
    const error = await startSink(SmsSink, smppConfig(smsc, { 'smpp.password': 'wrong' })).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(FatalConnectorError);
    expect((error as FatalConnectorError).code).toBe(SmsErrorCode.AUTH_FAILED);
    expect((error as Error).message).toContain('ESME_RINVPASWD');
    expect((error as Error).message).not.toContain('wrong');
    expect(smsc.binds.map((b) => b.status)).toEqual([CommandStatus.ESME_RINVPASWD]);
  });

  it('fails a value that is not an SMS without submitting anything', async () => {
    const { smsc, sink } = await setup();
    const [result] = await sink.send([{ key: 'x', value: { to: '0612345678', text: 'local number' } }]);
    expect(result?.outcome).toMatchObject({ status: 'failed', error: { code: SmsErrorCode.INVALID_VALUE } });
    expect(smsc.submits).toHaveLength(0);
  });

  it('passes the validity period as a relative time', async () => {
    const { smsc, sink } = await setup();
    const sentAt = Date.now();
    await sink.send([sms('+33612345678', 'valid for an hour', { validitySeconds: 3600 })]);
    const expires = smsc.submits[0]?.validityPeriod?.getTime() ?? 0;
    expect(expires - sentAt).toBeGreaterThan(3590_000);
    expect(expires - sentAt).toBeLessThan(3700_000);
  });

  it('refuses an SMPP config without host or system id', async () => {
    await expect(startSink(SmsSink, { 'sms.transport': 'smpp' })).rejects.toBeInstanceOf(ConfigError);
    await expect(startSink(SmsSink, { 'sms.transport': 'smpp' })).rejects.toMatchObject({
      errors: { 'smpp.host': [expect.any(String)], 'smpp.system.id': [expect.any(String)] },
    });
  });
});
