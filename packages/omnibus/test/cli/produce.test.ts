// `omnibus messages produce` and `omnibus messages show` against an in-process worker on LMDB.
// The worker runs no scheduler, so a message with a future send_at stays held (`scheduled`).
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestWorker, type TestWorker } from '../../../core/test/rest/harness.ts';
import type { CliIo } from '../../src/connectors.ts';
import { runCli } from '../../src/main.ts';

async function omnibus(args: string[], stdin = '') {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), env: {}, stdin: () => stdin };
  const code = await runCli(args, io);
  return { code, out, err };
}

describe('omnibus messages produce / show', () => {
  let worker: TestWorker;
  let url = '';
  let dir = '';

  beforeAll(async () => {
    worker = await startTestWorker();
    url = await worker.app.listen({ host: '127.0.0.1', port: 0 });
    dir = mkdtempSync(join(tmpdir(), 'omnibus-produce-'));
    for (const name of ['sms', 'whatsapp']) {
      const created = await worker.app.inject({ method: 'POST', url: '/topics', payload: { name, shards: 4 } });
      expect(created.statusCode).toBe(201);
    }
  });
  afterAll(async () => {
    await worker?.close();
    if (dir) rmSync(dir, { recursive: true, force: true });
  });

  it('produces a high-priority message held until its send time, in a group, and shows it scheduled', async () => {
    const sendAt = Date.now() + 3_600_000;
    const produced = await omnibus([
      'messages', 'produce', 'sms', '--url', url,
      '--key', '+33612345678',
      '--value', '{"to":"+33612345678","text":"Your code is 123456"}',
      '--id', 'otp-1',
      '--group', 'otp-wave',
      '--priority', 'high',
      '--send-at', new Date(sendAt).toISOString(),
      '--header', 'trace=abc=1',
    ]);
    expect(produced.err).toBe('');
    expect(produced.code).toBe(0);
    expect(produced.out).toMatch(/^1 message acknowledged on sms \(1 held until their send time\):\nID +SHARD +SEND AT\notp-1 +\d +\d{4}-/);
    expect(produced.out).toContain(new Date(sendAt).toISOString());

    const shown = await omnibus(['messages', 'show', 'otp-1', '--url', url]);
    expect(shown.code).toBe(0);
    expect(shown.out).toContain('message otp-1\n');
    expect(shown.out).toMatch(/\n {2}priority +high\n/);
    expect(shown.out).toMatch(/\n {2}group +otp-wave\n/);
    expect(shown.out).toMatch(new RegExp(`\\n {2}state +scheduled until ${new Date(sendAt).toISOString().replace(/\./g, '\\.')}`));
    expect(shown.out).toContain('trace=abc=1');

    const json = await omnibus(['messages', 'show', 'otp-1', '--url', url, '--json']);
    expect(JSON.parse(json.out)).toMatchObject({ state: 'scheduled', send_at: sendAt, message: { id: 'otp-1', priority: 'high', group: 'otp-wave', headers: { trace: 'abc=1' } } });
  });

  it('exits 1 with the field named when the server refuses a priority, and stores nothing', async () => {
    const refused = await omnibus(['messages', 'produce', 'sms', '--url', url, '--key', 'k', '--value', '1', '--id', 'urgent-1', '--priority', 'urgent']);
    expect(refused.code).toBe(1);
    expect(refused.out).toBe('');
    expect(refused.err).toContain('(HTTP 422)');
    expect(refused.err).toMatch(/item 0: priority /);
    expect((await worker.app.inject({ method: 'GET', url: '/messages/urgent-1' })).statusCode).toBe(404);
  });

  it('exits 2 naming --value when it is not JSON, without calling the worker', async () => {
    // An unreachable URL: a call would exit 3.
    const bad = await omnibus(['messages', 'produce', 'sms', '--url', 'http://127.0.0.1:1', '--key', 'k', '--value', '{to: nobody}']);
    expect(bad.code).toBe(2);
    expect(bad.err).toMatch(/^omnibus: --value is not JSON/);
    const shorthand = await omnibus(['messages', 'produce', 'sms', '--url', 'http://127.0.0.1:1', '--key', 'k', '--value', '1', '--quiet-hours', '21:00 to 08:00']);
    expect(shorthand.code).toBe(2);
    expect(shorthand.err).toContain('--quiet-hours 21:00 to 08:00: expected start-end@Zone');
  });

  it('produces 1,200 NDJSON items from --file in requests of at most 1,000, every one acknowledged', async () => {
    const file = join(dir, 'items.ndjson');
    const ids = Array.from({ length: 1200 }, (_, i) => `bulk-${String(i).padStart(4, '0')}`);
    writeFileSync(file, ids.map((id, i) => JSON.stringify({ id, key: `+3361${String(i).padStart(7, '0')}`, value: { text: `n ${i}` } })).join('\n') + '\n');
    const produced = await omnibus(['messages', 'produce', 'sms', '--url', url, '--file', file, '--group', 'bulk', '--json']);
    expect(produced.err).toBe('');
    expect(produced.code).toBe(0);
    const answer = JSON.parse(produced.out) as { messages: Array<{ id: string; shard: number }> };
    expect(answer.messages.map((m) => m.id)).toEqual(ids);
    const group = await worker.app.inject({ method: 'GET', url: '/groups/bulk' });
    expect(group.json()).toMatchObject({ messages: 1200 });

    // A second file from stdin, as a JSON array with one bad item in the second request: the first is stored and said so.
    const items = Array.from({ length: 5 }, (_, i) => ({ id: `arr-${i}`, key: 'k', value: i, ...(i === 3 ? { send_at: 'tomorrow' } : {}) }));
    const partial = await omnibus(['messages', 'produce', 'sms', '--url', url, '--file', '-', '--batch-size', '2'], JSON.stringify(items));
    expect(partial.code).toBe(1);
    expect(partial.err).toContain('items 0 to 1 were acknowledged');
    expect(partial.err).toMatch(/item 3: send_at /);
    expect((await worker.app.inject({ method: 'GET', url: '/messages/arr-1' })).statusCode).toBe(200);
    expect((await worker.app.inject({ method: 'GET', url: '/messages/arr-2' })).statusCode).toBe(404);
  });

  it('produces a message with a channel fallback and shows the chain', async () => {
    const fallback = { topic: 'sms', key: '+4915100000001', value: { to: '+4915100000001', text: 'Your table is confirmed' }, after_ms: 60_000 };
    const produced = await omnibus([
      'messages', 'produce', 'whatsapp', '--url', url,
      '--key', '+4915100000001', '--id', 'wa-1',
      '--value', '{"to":"+4915100000001","type":"text","text":{"body":"Your table is confirmed"}}',
      '--fallback', JSON.stringify(fallback),
    ]);
    expect(produced.code).toBe(0);
    expect(produced.out).toMatch(/^1 message acknowledged on whatsapp:\nID +SHARD +SEND AT\nwa-1 +\d +-\n$/);
    const shown = await omnibus(['messages', 'show', 'wa-1', '--url', url]);
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/\n {2}fallback +wa-1:fallback\n/);
    expect(shown.out).toMatch(/\n {2}priority +normal\n/);
    const held = await omnibus(['messages', 'show', 'wa-1:fallback', '--url', url, '--json']);
    expect(JSON.parse(held.out)).toMatchObject({ state: 'scheduled', fallback_of: 'wa-1', message: { topic: 'sms' } });

    const badFallback = await omnibus(['messages', 'produce', 'whatsapp', '--url', url, '--key', 'k', '--value', '1', '--fallback', '{"topic": "sms",']);
    expect(badFallback.code).toBe(2);
    expect(badFallback.err).toContain('--fallback is not JSON');
  });

  it('shows an unknown id as the server refusal, exit 1', async () => {
    const unknown = await omnibus(['messages', 'show', 'no-such-message', '--url', url]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('no-such-message');
  });
});
