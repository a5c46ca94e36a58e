// HelloSink's tests use nothing but the SDK's test kit, as a third-party author's would.
import { createHmac } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ConfigError, checkValue, startSink } from '@omnibus/sdk';
import { afterAll, describe, expect, it } from 'vitest';
import { HelloSink, SIGNATURE_HEADER, greetingsOf } from './index.ts';

const dir = mkdtempSync(join(tmpdir(), 'hello-sink-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const sign = (secret: string, body: string) => `sha256=${createHmac('sha256', secret).update(body).digest('hex')}`;

describe('HelloSink', () => {
  it('appends one greeting per message to the configured file', async () => {
    const file = join(dir, 'greetings.txt');
    const sink = await startSink(HelloSink, { topics: 'people', 'hello.greeting': 'Bonjour', 'hello.file': file });
    const results = await sink.send([
      { key: 'ada', value: { name: 'Ada' } },
      { key: 'alan', value: { name: 'Alan' } },
    ]);
    await sink.stop();

    expect(results.map((r) => r.outcome.status)).toEqual(['sent', 'sent']);
    expect(results[0]?.outcome).toMatchObject({ providerId: `hello-${results[0]?.record.id}` });
    expect(readFileSync(file, 'utf8')).toBe('Bonjour, Ada!\nBonjour, Alan!\n');
  });

  it('keeps greetings in memory when no file is configured, with the default greeting', async () => {
    const sink = await startSink(HelloSink, { topics: 'people' }, { name: 'in-memory' });
    await sink.send([{ key: 'grace', value: { name: 'Grace' } }]);
    await sink.stop();
    expect(greetingsOf('in-memory')).toEqual(['Hello, Grace!']);
  });

  it('fails a message without a name at once, and still sends the others of the batch', async () => {
    const sink = await startSink(HelloSink, { topics: 'people' }, { name: 'partial' });
    const results = await sink.send([
      { key: 'x', value: { nobody: true } },
      { key: 'y', value: { name: 'Yann' } },
    ]);
    await sink.stop();
    expect(results.map((r) => [r.outcome.status, r.attempts])).toEqual([
      ['failed', 1],
      ['sent', 1],
    ]);
    expect(results[0]?.outcome).toMatchObject({ error: { code: 'OMNI_ERR_HELLO_NO_NAME' } });
    expect(greetingsOf('partial')).toEqual(['Hello, Yann!']);
  });

  it('retries when the file cannot be written, then gives up after the allowed attempts', async () => {
    const sink = await startSink(HelloSink, { topics: 'people', 'hello.file': join(dir, 'missing-dir', 'out.txt') });
    const [result] = await sink.send([{ key: 'k', value: { name: 'Kim' } }], { maxAttempts: 2, maxWaitMs: 1 });
    await sink.stop();
    expect(result?.outcome).toMatchObject({ status: 'retry', error: { code: 'OMNI_ERR_HELLO_WRITE' } });
    expect(result?.attempts).toBe(2);
  });

  it('publishes a value schema that accepts named people only', () => {
    expect(checkValue(HelloSink.valueSchema ?? {}, { name: 'Ada' })).toEqual([]);
    expect(checkValue(HelloSink.valueSchema ?? {}, { name: '' })).not.toEqual([]);
    expect(checkValue(HelloSink.valueSchema ?? {}, 'Ada')).not.toEqual([]);
  });

  it('rejects an empty greeting with a config error naming the key', async () => {
    const attempt = startSink(HelloSink, { topics: 'people', 'hello.greeting': '  ' });
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toMatchObject({ errors: { 'hello.greeting': [expect.stringContaining('non-empty')] } });
  });

  describe('webhook', () => {
    const secret = 's3cr3t-hello-webhook';

    it('turns a signed receipt into a delivery update', async () => {
      const sink = await startSink(HelloSink, { topics: 'people', 'hello.webhook.secret': secret }, { name: 'hooked' });
      const body = JSON.stringify([{ messageId: 'm-1', state: 'read' }]);
      const response = await sink.webhook({ rawBody: body, headers: { [SIGNATURE_HEADER]: sign(secret, body) } });
      await sink.stop();
      expect(response.status).toBe(200);
      expect(response.body).toEqual({ accepted: 1 });
      expect(sink.deliveries).toMatchObject([{ messageId: 'm-1', state: 'read' }]);
    });

    it('refuses a call signed with another secret, and reports nothing', async () => {
      const sink = await startSink(HelloSink, { topics: 'people', 'hello.webhook.secret': secret });
      const body = JSON.stringify({ messageId: 'm-2', state: 'delivered' });
      const response = await sink.webhook({ rawBody: body, headers: { [SIGNATURE_HEADER]: sign('guess', body) } });
      await sink.stop();
      expect(response.status).toBe(401);
      expect(sink.deliveries).toEqual([]);
    });

    it('refuses every call when no secret is configured', async () => {
      const sink = await startSink(HelloSink, { topics: 'people' });
      const body = '{"messageId":"m-3","state":"read"}';
      const response = await sink.webhook({ rawBody: body, headers: { [SIGNATURE_HEADER]: sign('', body) } });
      await sink.stop();
      expect(response.status).toBe(401);
    });

    it('answers 400 to a signed body that is not a receipt', async () => {
      const sink = await startSink(HelloSink, { topics: 'people', 'hello.webhook.secret': secret });
      const body = '{"messageId":"m-4","state":"exploded"}';
      const response = await sink.webhook({ rawBody: body, headers: { [SIGNATURE_HEADER]: sign(secret, body) } });
      await sink.stop();
      expect(response.status).toBe(400);
      expect(sink.deliveries).toEqual([]);
    });

    it('never writes the secret to its logs', async () => {
      const sink = await startSink(HelloSink, { topics: 'people', 'hello.webhook.secret': secret });
      await sink.send([{ key: 'a', value: { name: 'Ada' } }]);
      await sink.stop();
      expect(sink.logs.length).toBeGreaterThan(0);
      expect(JSON.stringify(sink.logs)).not.toContain(secret);
    });
  });
});
