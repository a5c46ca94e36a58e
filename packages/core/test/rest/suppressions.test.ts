// /suppressions (rest/suppressions.ts) on LMDB, every answer checked against the OpenAPI document.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { expectDocumented } from './openapi-check.ts';
import { startTestWorker, type TestWorker } from './harness.ts';

let worker: TestWorker;

beforeAll(async () => {
  worker = await startTestWorker();
});
afterAll(async () => {
  await worker?.close();
});

type Body = Record<string, unknown>;

async function call(method: string, url: string, payload?: object) {
  const response = await worker.app.inject({ method: method as 'GET', url, ...(payload ? { payload } : {}) });
  expectDocumented(method, url, { statusCode: response.statusCode, body: response.body, headers: response.headers });
  return { status: response.statusCode, body: (response.body ? response.json() : undefined) as Body };
}

describe('/suppressions', () => {
  it('adds an entry with the address normalised, looks it up under any spelling, and removes it', async () => {
    const added = await call('POST', '/suppressions', { channel: 'sms', address: '0033 6 12-34-56-78', category: 'marketing', note: 'asked at the desk' });
    expect(added.status).toBe(201);
    expect(added.body).toMatchObject({ channel: 'sms', address: '+33612345678', category: 'marketing', reason: 'manual', note: 'asked at the desk' });
    expect((await call('POST', '/suppressions', { channel: 'email', address: 'Ada Lovelace <Ada@Example.ORG>' })).body).toMatchObject({
      address: 'ada@example.org',
      category: 'all',
    });

    const found = await call('GET', '/suppressions/sms/%2B33612345678');
    expect(found.status).toBe(200);
    expect(found.body).toMatchObject({ channel: 'sms', address: '+33612345678', suppressions: [expect.objectContaining({ category: 'marketing' })] });
    expect((await call('GET', '/suppressions/email/ADA@example.org')).status).toBe(200);
    expect((await call('GET', '/suppressions/whatsapp/%2B33612345678')).status).toBe(404);

    expect((await call('DELETE', '/suppressions/sms/%2B33612345678?category=all')).status).toBe(404);
    expect((await call('DELETE', '/suppressions/sms/0033612345678?category=marketing')).status).toBe(204);
    expect((await call('GET', '/suppressions/sms/%2B33612345678')).status).toBe(404);
    expect((await call('DELETE', '/suppressions/email/ada@example.org')).status).toBe(204);
  });

  it('refuses what it cannot read with 400 naming the field, and stores nothing', async () => {
    const cases: Array<[object, string]> = [
      [{ channel: 'sms', address: '0612345678' }, 'address'],
      [{ channel: 'sms', address: 'not a number' }, 'address'],
      [{ channel: 'email', address: 'nobody' }, 'address'],
      [{ channel: 'pigeon', address: '+33612345678' }, 'channel'],
      [{ channel: 'sms', address: '+33612345678', category: 'Marketing!' }, 'category'],
      [{ channel: 'sms', address: '+33612345678', reason: 'because' }, 'reason'],
      [{ channel: 'sms', address: '+33612345678', extra: 1 }, 'extra'],
    ];
    for (const [payload, field] of cases) {
      const answer = await call('POST', '/suppressions', payload);
      expect(answer.status, JSON.stringify(payload)).toBe(400);
      expect(answer.body.message).toContain(field);
    }
    expect((await call('GET', '/suppressions/sms/%2B33612345678')).status).toBe(404);
    expect((await call('GET', '/suppressions/sms/garbage')).status).toBe(400);
    expect((await call('GET', '/suppressions?limit=0')).status).toBe(400);
    expect((await call('GET', '/suppressions?cursor=%%%')).status).toBe(400);
  });

  it('lists every entry once, page by page', async () => {
    const numbers = Array.from({ length: 5 }, (_, i) => `+4420794600${i}0`);
    for (const address of numbers) expect((await call('POST', '/suppressions', { channel: 'whatsapp', address, reason: 'opted-out' })).status).toBe(201);
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await call('GET', `/suppressions?limit=2${cursor ? `&cursor=${cursor}` : ''}`);
      expect(page.status).toBe(200);
      const entries = page.body.suppressions as Body[];
      expect(entries.length).toBeLessThanOrEqual(2);
      seen.push(...entries.map((e) => `${e.channel} ${e.address} ${e.category}`));
      cursor = page.body.next_cursor as string | undefined;
    } while (cursor);
    expect(seen.filter((e) => e.startsWith('whatsapp')).sort()).toEqual(numbers.map((n) => `whatsapp ${n} all`).sort());
    expect(new Set(seen).size).toBe(seen.length);
  });

  it('refuses a bad category or critical flag at produce, naming the field', async () => {
    expect((await call('POST', '/topics', { name: 'consent-produce', shards: 1 })).status).toBe(201);
    const bad = await call('POST', '/topics/consent-produce/messages', {
      messages: [
        { key: 'a', value: {}, category: 'all' },
        { key: 'b', value: {}, critical: 'yes' },
        { key: 'c', value: {}, headers: { 'omnibus.category': 'NOT OK' } },
      ],
    });
    expect(bad.status).toBe(422);
    expect((bad.body.errors as Body[]).map((e) => e.field)).toEqual(['category', 'critical', 'headers.omnibus.category']);
    const good = await call('POST', '/topics/consent-produce/messages', { messages: [{ key: 'd', value: {}, category: 'marketing', critical: true }] });
    expect(good.status).toBe(202);
    const id = (good.body.messages as Body[])[0]!.id as string;
    expect(((await call('GET', `/messages/${id}`)).body.message as Body).headers).toEqual({ 'omnibus.category': 'marketing', 'omnibus.critical': 'true' });
  });
});
