/**
 * WhatsApp consent and inbound messages through a real worker on LMDB and the first-party
 * WhatsAppSink, against the Cloud API emulator (which follows Meta's documented webhook
 * notifications and error codes): a user's STOP suppresses them on the channel, a marketing
 * opt-out (user_preferences) only their marketing messages, a refusal with 131050 the same;
 * texts and button replies land on `inbound.topic`.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
// Core depends on no connector package; the workspace's emulator is read from its sources.
import { startWhatsAppDevServer, type WhatsAppDevServer } from '../../../connector-whatsapp/src/dev-server.ts';
import { startDistributionWorker, type Body, type DistributionWorker } from './distribution-worker.ts';
import { eventually } from '../runtime/helpers.ts';

/** Meta's code for "user has opted out of marketing messages". */
const OPTED_OUT_OF_MARKETING = 131050;

let running: DistributionWorker;
let whatsapp: WhatsAppDevServer;

const call = (method: string, path: string, body?: unknown) => running.call(method, path, body);

async function send(to: string, items: Array<{ text: string; category?: string }>): Promise<string[]> {
  const answer = await call('POST', '/topics/wa/messages', {
    messages: items.map(({ text, category }) => ({ key: to, value: { to, type: 'text', text: { body: text } }, ...(category ? { category } : {}) })),
  });
  expect(answer.status, JSON.stringify(answer.body)).toBe(202);
  return (answer.body.messages as Body[]).map((m) => m.id as string);
}

async function statesOf(ids: string[]): Promise<string[]> {
  return eventually(
    async () => Promise.all(ids.map(async (id) => ((await call('GET', `/messages/${id}`)).body.deliveries as Body[] | undefined)?.[0]?.state as string | undefined)),
    (states) => states.every((s) => s !== undefined && s !== 'sending' && s !== 'retrying'),
    'every message settled',
    60_000,
  ) as Promise<string[]>;
}

const suppressionsOf = async (address: string) => ((await call('GET', `/suppressions/whatsapp/${encodeURIComponent(address)}`)).body.suppressions as Body[] | undefined) ?? [];

beforeAll(async () => {
  running = await startDistributionWorker('omnibus-consent-wa-');
  whatsapp = await startWhatsAppDevServer({ webhookUrl: `${running.worker.url}/hooks/wa`, statuses: [] });
  expect((await call('POST', '/topics', { name: 'wa', shards: 2 })).status).toBe(201);
  const created = await call('POST', '/connectors', {
    name: 'wa',
    config: {
      'connector.class': 'WhatsAppSink',
      topics: 'wa',
      'whatsapp.api.url': whatsapp.url,
      'whatsapp.phone.number.id': whatsapp.phoneNumberId,
      'whatsapp.access.token': whatsapp.accessToken,
      'whatsapp.app.secret': whatsapp.appSecret,
      'inbound.topic': 'wa-inbound',
    },
  });
  expect(created.status, JSON.stringify(created.body)).toBe(201);
  await eventually(() => call('GET', '/connectors/wa/status'), (s) => (s.body.tasks as Body[] | undefined)?.[0]?.state === 'RUNNING', 'wa running', 60_000);
}, 120_000);

afterAll(async () => {
  await running?.close();
  await whatsapp?.stop();
});

describe('WhatsApp consent and inbound messages through a worker', () => {
  it('a user who writes STOP gets nothing more on WhatsApp; START lets messages through again', async () => {
    const user = '33611111111';
    expect(await whatsapp.sendInbound({ from: user, text: 'Stop' })).toBe(true);
    expect(await suppressionsOf(`+${user}`)).toEqual([expect.objectContaining({ category: 'all', reason: 'stop', connector: 'wa' })]);
    const before = whatsapp.received.length;
    const held = await send(`+${user}`, [{ text: 'order shipped', category: 'transactional' }]);
    expect(await statesOf(held)).toEqual(['suppressed']);
    expect(whatsapp.received.length).toBe(before);
    expect(await whatsapp.sendInbound({ from: user, text: 'START' })).toBe(true);
    expect(await suppressionsOf(`+${user}`)).toEqual([]);
    expect(await statesOf(await send(user, [{ text: 'order delivered' }]))).toEqual(['sent']);
  });

  it('a marketing opt-out (user_preferences, or a send refused with 131050) holds back only marketing', async () => {
    const user = '33622222222';
    expect(await whatsapp.sendInbound({ from: user, marketingPreference: 'stop' })).toBe(true);
    expect(await suppressionsOf(`+${user}`)).toEqual([expect.objectContaining({ category: 'marketing', reason: 'stop' })]);
    const ids = await send(user, [{ text: 'sale!', category: 'marketing' }, { text: 'your code', category: 'security' }]);
    expect(await statesOf(ids)).toEqual(['suppressed', 'sent']);
    expect(await whatsapp.sendInbound({ from: user, marketingPreference: 'resume' })).toBe(true);
    expect(await suppressionsOf(`+${user}`)).toEqual([]);

    const other = '33633333333';
    whatsapp.script(other, { code: OPTED_OUT_OF_MARKETING });
    const [refused] = await send(other, [{ text: 'sale again', category: 'marketing' }]);
    expect(await statesOf([refused!])).toEqual(['failed']);
    expect(await suppressionsOf(`+${other}`)).toEqual([expect.objectContaining({ category: 'marketing', reason: 'opted-out', code: '131050' })]);
    expect(await statesOf(await send(other, [{ text: 'more sales', category: 'marketing' }, { text: 'receipt', category: 'transactional' }]))).toEqual(['suppressed', 'sent']);
  });

  it('publishes texts and button replies to inbound.topic, keyed by the sender', async () => {
    const user = '447700900555';
    expect(await whatsapp.sendInbound({ from: user, text: 'Where is my order?' })).toBe(true);
    expect(await whatsapp.sendInbound({ from: user, button: { payload: 'TRACK_ORDER', text: 'Track it' } })).toBe(true);
    expect(await whatsapp.sendInbound({ from: user, reply: { id: 'slot-2', title: 'Tomorrow 10:00' } })).toBe(true);
    const published = await eventually(
      async () => ((await call('GET', '/topics/wa-inbound/messages?limit=100')).body.messages as Body[] | undefined) ?? [],
      (messages) => messages.filter((m) => m.key === `+${user}`).length === 3,
      'three inbound messages',
    );
    const values = published.filter((m) => m.key === `+${user}`).map((m) => m.value as Body);
    expect(values).toEqual([
      expect.objectContaining({ channel: 'whatsapp', connector: 'wa', from: `+${user}`, to: whatsapp.phoneNumberId, type: 'text', text: 'Where is my order?', provider_message_id: expect.stringMatching(/^wamid\./) }),
      expect.objectContaining({ type: 'button', text: 'Track it', button: { payload: 'TRACK_ORDER', text: 'Track it' } }),
      expect.objectContaining({ type: 'interactive', text: 'Tomorrow 10:00', button: { payload: 'slot-2', text: 'Tomorrow 10:00' } }),
    ]);
    expect(values.every((v) => v.keyword === undefined)).toBe(true);
    expect(await suppressionsOf(`+${user}`)).toEqual([]);
  });
});
