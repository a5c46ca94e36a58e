/**
 * Consent and inbound SMS through a real worker on LMDB and the first-party SmsSink, against
 * the SMSC dev server (SMPP) and the Twilio emulator (which follows Twilio's documented
 * Messages API, error 21610 and inbound webhook):
 * - a mobile-originated STOP from the SMSC suppresses its sender: the next three messages to
 *   it produce no submit_sm and end `suppressed`; after START the next one is sent;
 * - Twilio's 21610 on a send suppresses the recipient; an inbound START through the signed
 *   webhook lifts it; inbound messages land on `inbound.topic`;
 * - one connector with an SMPP bind and a Twilio account: when the SMSC refuses the bind,
 *   every message goes out through Twilio.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Core depends on no connector package; the workspace's dev servers are read from their sources.
import { startSmscDevServer, type SmscDevServer } from '../../../connector-sms/src/dev/smsc.ts';
import { startTwilioDevServer, type TwilioDevServer } from '../../../connector-sms/src/dev/twilio.ts';
import { startDistributionWorker, type Body, type DistributionWorker } from './distribution-worker.ts';
import { eventually } from '../runtime/helpers.ts';

/** SMPP 3.4 command_status: "Bind Failed". */
const ESME_RBINDFAIL = 0x0d;
/** Twilio's error for a recipient who texted STOP to the sender (twilio.com/docs/api/errors/21610). */
const TWILIO_UNSUBSCRIBED = { httpStatus: 400, code: 21610, message: 'Attempt to send to unsubscribed recipient' };

const SMPP = { systemId: 'omnibus', password: 'secret12' };
const OUR_NUMBER = '+33700000001';

let running: DistributionWorker;
const closers: Array<() => Promise<unknown>> = [];

const call = (method: string, path: string, body?: unknown) => running.call(method, path, body);

async function connector(name: string, topic: string, config: Record<string, string>): Promise<void> {
  expect((await call('POST', '/topics', { name: topic, shards: 2 })).status).toBe(201);
  const created = await call('POST', '/connectors', { name, config: { 'connector.class': 'SmsSink', topics: topic, 'sms.from': OUR_NUMBER, ...config } });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await eventually(
    () => call('GET', `/connectors/${name}/status`),
    (s) => (s.body.tasks as Body[] | undefined)?.[0]?.state === 'RUNNING',
    `${name} running`,
    60_000,
  );
}

async function produce(topic: string, to: string, texts: string[]): Promise<string[]> {
  const answer = await call('POST', `/topics/${topic}/messages`, { messages: texts.map((text) => ({ key: to, value: { to, text } })) });
  expect(answer.status).toBe(202);
  return (answer.body.messages as Body[]).map((m) => m.id as string);
}

async function statesOf(connectorName: string, ids: string[]): Promise<string[]> {
  return eventually(
    async () =>
      Promise.all(
        ids.map(async (id) => ((await call('GET', `/messages/${id}`)).body.deliveries as Body[] | undefined)?.find((d) => d.connector === connectorName)?.state as string | undefined),
      ),
    (states) => states.every((s) => s !== undefined && s !== 'sending' && s !== 'retrying'),
    'every message settled',
    60_000,
  ) as Promise<string[]>;
}

async function inboundValues(topic: string): Promise<Body[]> {
  const answer = await call('GET', `/topics/${topic}/messages?limit=100`);
  return answer.status === 200 ? (answer.body.messages as Body[]).map((m) => m.value as Body) : [];
}

beforeAll(async () => {
  running = await startDistributionWorker('omnibus-consent-e2e-');
}, 120_000);

afterAll(async () => {
  await running?.close();
  for (const close of closers) await close();
});

const smppConfig = (smsc: SmscDevServer, prefix = ''): Record<string, string> => ({
  [`${prefix}sms.transport`]: 'smpp',
  [`${prefix}smpp.host`]: '127.0.0.1',
  [`${prefix}smpp.port`]: String(smsc.port),
  [`${prefix}smpp.system.id`]: SMPP.systemId,
  [`${prefix}smpp.password`]: SMPP.password,
});

const twilioConfig = (twilio: TwilioDevServer, prefix = ''): Record<string, string> => ({
  [`${prefix}sms.transport`]: 'twilio',
  [`${prefix}twilio.api.url`]: twilio.url,
  [`${prefix}twilio.account.sid`]: twilio.accountSid,
  [`${prefix}twilio.auth.token`]: twilio.authToken,
});

describe('SMS consent through a worker', () => {
  it('a mobile-originated STOP holds back the next messages without a submit_sm; START lets the next one go', async () => {
    const smsc = await startSmscDevServer({ credentials: SMPP });
    closers.push(() => smsc.close());
    await connector('sms-smpp', 'sms-smpp', { ...smppConfig(smsc), 'inbound.topic': 'sms-inbound' });
    await eventually(async () => smsc.binds.filter((b) => b.status === 0).length, (n) => n > 0, 'the bind', 60_000);

    const handset = '+33612345678';
    const submitsTo = () => smsc.submits.filter((s) => s.destinationAddr === handset.slice(1)).length;
    // The handset texts STOP: the ESME acknowledges it once the suppression is stored.
    expect(await smsc.sendMobileOriginated({ from: handset, to: OUR_NUMBER, text: 'STOP' })).toBe(0);
    const suppression = await call('GET', `/suppressions/sms/${encodeURIComponent(handset)}`);
    expect(suppression.status).toBe(200);
    expect(suppression.body.suppressions).toEqual([expect.objectContaining({ category: 'all', reason: 'stop', code: 'STOP', connector: 'sms-smpp' })]);

    const held = await produce('sms-smpp', handset, ['one', 'two', 'three']);
    expect(await statesOf('sms-smpp', held)).toEqual(['suppressed', 'suppressed', 'suppressed']);
    expect(submitsTo()).toBe(0);
    const trace = await call('GET', `/messages/${held[0]}`);
    expect((trace.body.events as Body[]).find((e) => e.type === 'suppressed')).toMatchObject({ connector: 'sms-smpp', detail: { reason: 'stop', channel: 'sms' } });

    // A carrier synonym in another case, with spaces, is a STOP too; START lifts it.
    expect(await smsc.sendMobileOriginated({ from: '+33699999999', to: OUR_NUMBER, text: '  unsubscribe ' })).toBe(0);
    expect(await smsc.sendMobileOriginated({ from: handset, to: OUR_NUMBER, text: 'START' })).toBe(0);
    expect((await call('GET', `/suppressions/sms/${encodeURIComponent(handset)}`)).status).toBe(404);
    expect((await call('GET', '/suppressions/sms/%2B33699999999')).status).toBe(200);
    const [after] = await produce('sms-smpp', handset, ['four']);
    // The SMSC's receipt may already have moved it on.
    expect(['sent', 'delivered']).toContain((await statesOf('sms-smpp', [after!]))[0]);
    expect(submitsTo()).toBe(1);
    expect(smsc.countByText('four')).toBe(1);

    const inbound = await eventually(() => inboundValues('sms-inbound'), (values) => values.length >= 3, 'the inbound messages published');
    expect(inbound.map((v) => [v.from, v.text, v.keyword])).toEqual(
      expect.arrayContaining([
        [handset, 'STOP', 'stop'],
        ['+33699999999', '  unsubscribe ', 'stop'],
        [handset, 'START', 'start'],
      ]),
    );
    expect(inbound[0]).toMatchObject({ channel: 'sms', connector: 'sms-smpp', to: OUR_NUMBER.slice(1), type: 'text' });
  });

  it("Twilio's 21610 suppresses the recipient; an inbound START through the signed webhook lifts it", async () => {
    const optedOut = '+14155550199';
    const twilio = await startTwilioDevServer({ reply: ({ params }) => (params.To === optedOut && !params.Body?.startsWith('welcome back') ? TWILIO_UNSUBSCRIBED : undefined) });
    closers.push(() => twilio.close());
    await connector('sms-twilio', 'sms-twilio', { ...twilioConfig(twilio), 'inbound.topic': 'sms-inbound-twilio' });

    const [first] = await produce('sms-twilio', optedOut, ['promo 1']);
    expect(await statesOf('sms-twilio', [first!])).toEqual(['failed']);
    const entry = await call('GET', `/suppressions/sms/${encodeURIComponent(optedOut)}`);
    expect(entry.body.suppressions).toEqual([expect.objectContaining({ reason: 'opted-out', code: '21610', connector: 'sms-twilio' })]);
    const requestsBefore = twilio.requests.length;
    const held = await produce('sms-twilio', optedOut, ['promo 2', 'promo 3']);
    expect(await statesOf('sms-twilio', held)).toEqual(['suppressed', 'suppressed']);
    expect(twilio.requests.length).toBe(requestsBefore);

    // The recipient texts START to our number; Twilio posts it to the webhook, signed.
    const hook = `${running.worker.url}/hooks/sms-twilio`;
    expect(await twilio.sendInbound(hook, { from: optedOut, to: OUR_NUMBER, body: 'Start', optOutType: 'START' })).toBe(200);
    expect((await call('GET', `/suppressions/sms/${encodeURIComponent(optedOut)}`)).status).toBe(404);
    const [back] = await produce('sms-twilio', optedOut, ['welcome back']);
    expect(await statesOf('sms-twilio', [back!])).toEqual(['sent']);
    expect(twilio.countByBody('welcome back')).toBe(1);

    // A forged inbound message (no valid signature) changes nothing.
    const forged = await fetch(hook, {
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-twilio-signature': 'bm9wZQ==' },
      body: new URLSearchParams({ MessageSid: 'SMforged', SmsStatus: 'received', From: optedOut, To: OUR_NUMBER, Body: 'STOP' }),
    });
    expect(forged.status).toBe(403);
    expect((await call('GET', `/suppressions/sms/${encodeURIComponent(optedOut)}`)).status).toBe(404);

    const inbound = await eventually(() => inboundValues('sms-inbound-twilio'), (values) => values.length >= 1, 'the inbound message published');
    expect(inbound).toEqual([expect.objectContaining({ channel: 'sms', from: optedOut, text: 'Start', keyword: 'start', provider_message_id: expect.stringMatching(/^SM/) })]);
  });

  it('one connector, an SMPP bind and a Twilio account: a refused bind sends everything through Twilio', async () => {
    const smsc = await startSmscDevServer({ refuseBinds: ESME_RBINDFAIL });
    const twilio = await startTwilioDevServer();
    closers.push(() => smsc.close(), () => twilio.close());
    await connector('sms-mixed', 'sms-mixed', {
      providers: 'smsc,twilio',
      // The connector's own keys are the SMPP bind's; the Twilio account overrides what differs.
      ...smppConfig(smsc),
      ...twilioConfig(twilio, 'providers.twilio.'),
      'smpp.reconnect.backoff.initial.ms': '50',
      'smpp.reconnect.backoff.max.ms': '200',
    });
    expect(smsc.binds.some((b) => b.status === ESME_RBINDFAIL)).toBe(true);
    const to = '+447700900321';
    const texts = Array.from({ length: 5 }, (_, i) => `mixed ${i}`);
    const ids = await produce('sms-mixed', to, texts);
    expect(await statesOf('sms-mixed', ids)).toEqual(texts.map(() => 'sent'));
    expect(smsc.submits).toHaveLength(0);
    for (const text of texts) expect(twilio.countByBody(text)).toBe(1);
    const providers = await call('GET', '/connectors/sms-mixed/providers');
    expect(((providers.body.tasks as Body[])[0]!.providers as Body[]).map((p) => [p.alias, p.state])).toEqual([
      ['smsc', 'open'],
      ['twilio', 'closed'],
    ]);
  });
});
