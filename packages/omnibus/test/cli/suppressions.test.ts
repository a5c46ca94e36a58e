// `omnibus suppressions …` against a worker's REST surface (the route-test harness, listening on a port).
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestWorker, type TestWorker } from '../../../core/test/rest/harness.ts';
import type { CliIo } from '../../src/connectors.ts';
import { runCli } from '../../src/main.ts';

let worker: TestWorker;
let url = '';

beforeAll(async () => {
  worker = await startTestWorker();
  url = await worker.app.listen({ host: '127.0.0.1', port: 0 });
});
afterAll(async () => {
  await worker?.close();
});

async function omnibus(...args: string[]) {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), env: { OMNIBUS_URL: url }, stdin: () => '' };
  const code = await runCli(['suppressions', ...args], io);
  return { code, out, err };
}

describe('omnibus suppressions', () => {
  it('adds, shows, lists and removes entries', async () => {
    expect(await omnibus('add', 'sms', '+33 6 12 34 56 78', '--category', 'marketing', '--note', 'by phone')).toMatchObject({
      code: 0,
      out: 'suppressed +33612345678 on sms (marketing)\n',
    });
    expect((await omnibus('add', 'email', 'Ada@Example.org', '--reason', 'hard-bounce')).out).toBe('suppressed ada@example.org on email (all)\n');
    const shown = await omnibus('show', 'sms', '+33612345678');
    expect(shown.code).toBe(0);
    expect(shown.out).toMatch(/^CHANNEL\s+ADDRESS\s+CATEGORY\s+REASON/);
    expect(shown.out).toMatch(/sms\s+\+33612345678\s+marketing\s+manual/);
    const listed = await omnibus('list', '--page-size', '1');
    expect(listed.out).toContain('+33612345678');
    expect(listed.out).toMatch(/email\s+ada@example\.org\s+all\s+hard-bounce/);
    expect(await omnibus('remove', 'sms', '+33612345678', '--category', 'marketing')).toMatchObject({ code: 0 });
    expect(await omnibus('show', 'sms', '+33612345678')).toMatchObject({ code: 1, err: expect.stringContaining('404') });
  });

  it('exits 1 with the server\'s message for an address it cannot read', async () => {
    const refused = await omnibus('add', 'sms', '0612345678');
    expect(refused.code).toBe(1);
    expect(refused.err).toContain('address');
    expect(refused.err).toContain('400');
  });
});
