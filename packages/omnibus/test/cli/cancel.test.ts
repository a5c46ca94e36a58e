// `omnibus messages cancel` and `omnibus groups show|cancel` against an in-process worker on LMDB.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestWorker, type TestWorker } from '../../../core/test/rest/harness.ts';
import type { CliIo } from '../../src/connectors.ts';
import { runCli } from '../../src/main.ts';

async function omnibus(args: string[]) {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), env: {}, stdin: () => '' };
  const code = await runCli(args, io);
  return { code, out, err };
}

describe('omnibus messages cancel / groups show|cancel', () => {
  let worker: TestWorker;
  let url = '';

  beforeAll(async () => {
    worker = await startTestWorker();
    url = await worker.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await worker?.close();
  });

  it('cancels a message and a group, prints per connector what was cancelled, and exits 1 naming an unknown id', async () => {
    const post = (path: string, payload: unknown) => worker.app.inject({ method: 'POST', url: path, payload: payload as object });
    await post('/topics', { name: 'promo', shards: 2 });
    // A connector reading the topic, stopped: nothing is handed off.
    const now = Date.now();
    await worker.store.putConnector({ name: 'promo-sms', config: { 'connector.class': 'FileSink', topics: 'promo' }, targetState: 'STOPPED', taskConfigs: [], generation: 1, createdAt: now, updatedAt: now });
    const produced = (await post('/topics/promo/messages', { group: 'wave', messages: [{ key: 'a', value: 1 }, { key: 'b', value: 2 }] })).json().messages as Array<{ id: string }>;

    const shown = await omnibus(['groups', 'show', 'wave', '--url', url]);
    expect(shown).toEqual({ code: 0, err: '', out: 'group wave: 2 messages\nCONNECTOR  STATE    MESSAGES\npromo-sms  pending  2\n' });
    const one = await omnibus(['messages', 'cancel', produced[0]!.id, '--url', url]);
    expect(one).toEqual({ code: 0, err: '', out: `message ${produced[0]!.id}:\nCONNECTOR  CANCELLED  IN FLIGHT  ALREADY\npromo-sms  1          0          -\n` });
    const group = await omnibus(['groups', 'cancel', 'wave', '--url', url]);
    expect(group.code).toBe(0);
    expect(group.out).toBe('group wave (2 messages):\nCONNECTOR  CANCELLED  IN FLIGHT  ALREADY\npromo-sms  2          0          -\n');
    const unknown = await omnibus(['messages', 'cancel', 'no-such-id', '--url', url]);
    expect(unknown.code).toBe(1);
    expect(unknown.err).toContain('no-such-id');
  });
});
