import { createHmac, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { createServer as createHttpsServer } from 'node:https';
import type { AddressInfo } from 'node:net';
import { ConfigError, startSink } from '@omnibus/sdk';
import { selfSignedCertificate } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { retryAfterMs, signatureHeader, WebhookSink } from './index.ts';

const SECRET = 'whsec-0123456789abcdef';

interface Received {
  eventId: string;
  key: string;
  body: string;
  signature: string;
  batch: string | undefined;
}

/** What a receiver does to check a call (the README's Node snippet). */
function verify(secret: string, header: string, body: string, toleranceSeconds = 300): boolean {
  const parts = Object.fromEntries(header.split(',').map((p) => p.split('=') as [string, string]));
  const t = Number(parts.t);
  if (!Number.isInteger(t) || Math.abs(Date.now() / 1000 - t) > toleranceSeconds) return false;
  const expected = createHmac('sha256', secret).update(`${t}.${body}`).digest();
  const given = Buffer.from(parts.v1 ?? '', 'hex');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

describe('WebhookSink', () => {
  let server: Server;
  let url: string;
  const received: Received[] = [];
  let answer: (req: IncomingMessage, res: ServerResponse, body: string) => void = (_req, res) => res.writeHead(204).end();

  beforeAll(async () => {
    server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const body = Buffer.concat(chunks).toString('utf8');
        received.push({
          eventId: String(req.headers['omnibus-event-id']),
          key: decodeURIComponent(String(req.headers['omnibus-key'])),
          body,
          signature: String(req.headers['omnibus-signature']),
          batch: req.headers['omnibus-batch'] as string | undefined,
        });
        answer(req, res, body);
      });
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/hooks/omnibus`;
  });
  afterAll(async () => new Promise<void>((resolve) => server.close(() => resolve())));

  it('posts each value as JSON with a signature the receiver verifies, and the record id as event id', async () => {
    received.length = 0;
    answer = (_req, res) => res.writeHead(200).end('ok');
    const sink = await startSink(WebhookSink, { topics: 'omnibus.delivery-events', 'webhook.url': url, 'webhook.signing.secret': SECRET });
    const results = await sink.send([
      { key: 'm-1', value: { event_id: 'e-1', state: 'sent' } },
      { key: 'm-2', value: { event_id: 'e-2', state: 'delivered', text: 'héllo' } },
    ]);
    await sink.stop();
    expect(results.map((r) => r.outcome.status)).toEqual(['sent', 'sent']);
    expect(received.map((r) => r.eventId).sort()).toEqual(results.map((r) => r.record.id).sort());
    for (const call of received) {
      expect(verify(SECRET, call.signature, call.body)).toBe(true);
      expect(verify('another-secret-of-16', call.signature, call.body)).toBe(false);
      expect(verify(SECRET, call.signature, call.body.replace('}', ',"x":1}'))).toBe(false);
    }
    expect(received.map((r) => JSON.parse(r.body) as unknown)).toEqual(expect.arrayContaining([{ event_id: 'e-2', state: 'delivered', text: 'héllo' }]));
    expect(JSON.stringify(sink.logs)).not.toContain(SECRET);
  });

  it('retries a 503 with Retry-After and a 429, fails a 400 for good, and keeps later records of a key behind a retried one', async () => {
    received.length = 0;
    answer = (_req, res, body) => {
      const value = JSON.parse(body) as { answer: number };
      if (value.answer === 503) res.writeHead(503, { 'retry-after': '2' }).end();
      else res.writeHead(value.answer).end();
    };
    const sink = await startSink(WebhookSink, { topics: 't', 'webhook.url': url, 'webhook.signing.secret': SECRET });
    const results = await sink.send(
      [
        { key: 'a', value: { answer: 503 } },
        { key: 'a', value: { answer: 200 } },
        { key: 'b', value: { answer: 429 } },
        { key: 'c', value: { answer: 400 } },
        { key: 'd', value: { answer: 204 } },
      ],
      { maxAttempts: 1 },
    );
    await sink.stop();
    expect(results.map((r) => r.outcome)).toMatchObject([
      { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_UNAVAILABLE' }, retryAfterMs: 2000 },
      { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_HELD' } },
      { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_THROTTLED' } },
      { status: 'failed', error: { code: 'OMNI_ERR_WEBHOOK_REJECTED' } },
      { status: 'sent' },
    ]);
    // The held record of key a was never posted.
    expect(received.filter((r) => r.key === 'a')).toHaveLength(1);
  });

  it('posts up to webhook.batch.max.records records as one signed JSON array, in order per key, and holds the keys of a retried POST', async () => {
    received.length = 0;
    answer = (_req, res, body) => {
      const items = JSON.parse(body) as Array<{ value: { answer?: number } }>;
      res.writeHead(items.some((item) => item.value.answer === 503) ? 503 : 204).end();
    };
    const sink = await startSink(WebhookSink, {
      topics: 'omnibus.delivery-events',
      'webhook.url': url,
      'webhook.signing.secret': SECRET,
      'webhook.batch.max.records': '3',
      'webhook.max.in.flight': '2',
    });
    // One lane takes key a (two records) and then b's first: that POST is refused, so b's second waits.
    // The other lane posts c and d together.
    const results = await sink.send(
      [
        { key: 'a', value: { n: 'a1' } },
        { key: 'b', value: { n: 'b1', answer: 503 } },
        { key: 'a', value: { n: 'a2' } },
        { key: 'c', value: { n: 'c1' } },
        { key: 'b', value: { n: 'b2' } },
        { key: 'd', value: { n: 'd1' } },
      ],
      { maxAttempts: 1 },
    );
    await sink.stop();
    expect(results.map((r) => r.outcome)).toMatchObject([
      { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_UNAVAILABLE' } },
      { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_UNAVAILABLE' } },
      { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_UNAVAILABLE' } },
      { status: 'sent' },
      { status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_HELD' } },
      { status: 'sent' },
    ]);
    expect(received).toHaveLength(2);
    const posts = received.map((call) => ({ ...call, items: JSON.parse(call.body) as Array<{ id: string; topic: string; key: string; attempt: number; value: { n: string } }> }));
    for (const post of posts) {
      expect(verify(SECRET, post.signature, post.body)).toBe(true);
      expect(post.batch).toBe(String(post.items.length));
    }
    expect(posts.map((post) => post.items.map((item) => item.value.n)).sort()).toEqual([
      ['a1', 'a2', 'b1'],
      ['c1', 'd1'],
    ]);
    const c1 = results[3]!.record;
    expect(posts.flatMap((post) => post.items)).toContainEqual({ id: c1.id, topic: c1.topic, key: 'c', attempt: 1, value: { n: 'c1' } });
  });

  it('reaches an HTTPS endpoint whose certificate webhook.tls.ca trusts, and no other', async () => {
    const tls = selfSignedCertificate();
    let calls = 0;
    const secure = createHttpsServer({ key: tls.key, cert: tls.cert }, (_req, res) => {
      calls += 1;
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => secure.listen(0, '127.0.0.1', resolve));
    const secureUrl = `https://127.0.0.1:${(secure.address() as AddressInfo).port}/hooks`;
    try {
      const trusting = await startSink(WebhookSink, { topics: 't', 'webhook.url': secureUrl, 'webhook.signing.secret': SECRET, 'webhook.tls.ca': tls.cert });
      const trusted = await trusting.send([{ key: 'k', value: 1 }], { maxAttempts: 1 });
      await trusting.stop();
      expect(trusted.map((r) => r.outcome.status)).toEqual(['sent']);
      const strict = await startSink(WebhookSink, { topics: 't', 'webhook.url': secureUrl, 'webhook.signing.secret': SECRET });
      const refused = await strict.send([{ key: 'k', value: 1 }], { maxAttempts: 1 });
      await strict.stop();
      expect(refused[0]?.outcome).toMatchObject({ status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_UNREACHABLE' } });
      expect(calls).toBe(1);
    } finally {
      secure.closeAllConnections();
      await new Promise<void>((resolve) => secure.close(() => resolve()));
    }
  });

  it('retries when the endpoint cannot be reached', async () => {
    const closed = createServer();
    await new Promise<void>((resolve) => closed.listen(0, '127.0.0.1', resolve));
    const port = (closed.address() as AddressInfo).port;
    await new Promise<void>((resolve) => closed.close(() => resolve()));
    const sink = await startSink(WebhookSink, { topics: 't', 'webhook.url': `http://127.0.0.1:${port}/`, 'webhook.signing.secret': SECRET });
    const [result] = await sink.send([{ key: 'k', value: 1 }], { maxAttempts: 1 });
    await sink.stop();
    expect(result?.outcome).toMatchObject({ status: 'retry', error: { code: 'OMNI_ERR_WEBHOOK_UNREACHABLE' } });
  });

  it('refuses a short secret and a URL that is not http(s), naming the key', async () => {
    await expect(startSink(WebhookSink, { topics: 't', 'webhook.url': url, 'webhook.signing.secret': 'short' })).rejects.toMatchObject({
      errors: { 'webhook.signing.secret': [expect.stringContaining('16')] },
    });
    const attempt = startSink(WebhookSink, { topics: 't', 'webhook.url': 'ftp://example.org/', 'webhook.signing.secret': SECRET });
    await expect(attempt).rejects.toBeInstanceOf(ConfigError);
    await expect(attempt).rejects.toMatchObject({ errors: { 'webhook.url': [expect.any(String)] } });
  });

  it('signs t.body and reads Retry-After in seconds or as a date', () => {
    expect(signatureHeader('k', '{}', 1700000000)).toBe(`t=1700000000,v1=${createHmac('sha256', 'k').update('1700000000.{}').digest('hex')}`);
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs('soon')).toBeUndefined();
    expect(retryAfterMs(null)).toBeUndefined();
  });
});
