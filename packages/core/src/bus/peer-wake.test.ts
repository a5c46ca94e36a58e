// Wake hints between workers: what a worker sends its peers after local produces, and how a
// hint is checked and applied. The peers are real HTTP servers on 127.0.0.1 that record what
// they receive.
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { memoryLogger } from '@omnibus/sdk';
import { afterEach, describe, expect, it } from 'vitest';
import { CoreError } from '../errors.ts';
import { Metrics } from '../metrics.ts';
import { applyWakeHints, MAX_WAKE_SHARDS, parseWakeHints, PeerWake, peerAuthorization, WAKE_PATH, type PeerWakeOptions, type WakeHints } from './peer-wake.ts';
import { ShardSignals } from './signals.ts';

interface Received {
  path: string;
  headers: IncomingHttpHeaders;
  body: WakeHints;
}

interface Peer {
  url: string;
  received: Received[];
  /** Answers held back until released (for requests still "in flight"). */
  hold: boolean;
  release(): void;
  status: number;
}

const servers: Server[] = [];
const wakes: PeerWake[] = [];

afterEach(async () => {
  for (const wake of wakes.splice(0)) wake.stop();
  await Promise.all(
    servers.splice(0).map((s) => {
      s.closeAllConnections();
      return new Promise<void>((done) => s.close(() => done()));
    }),
  );
});

async function peer(status = 204): Promise<Peer> {
  const held: Array<() => void> = [];
  const state: Peer = {
    url: '',
    received: [],
    hold: false,
    status,
    release: () => {
      for (const answer of held.splice(0)) answer();
    },
  };
  const server = createServer((request, response) => {
    let text = '';
    request.setEncoding('utf8');
    request.on('data', (chunk: string) => (text += chunk));
    request.on('end', () => {
      state.received.push({ path: request.url ?? '', headers: request.headers, body: JSON.parse(text) as WakeHints });
      const answer = () => response.writeHead(state.status).end(state.status === 204 ? undefined : '{"error_code":401,"message":"Invalid credentials"}');
      if (state.hold) held.push(answer);
      else answer();
    });
  });
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  servers.push(server);
  state.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return state;
}

/** The URL of a port nothing listens on any more. */
async function deadUrl(): Promise<string> {
  const server = createServer();
  await new Promise<void>((done) => server.listen(0, '127.0.0.1', () => done()));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  await new Promise<void>((done) => server.close(() => done()));
  return url;
}

function peerWake(signals: ShardSignals, members: Array<{ id: string; url: string }>, extra: Partial<PeerWakeOptions> = {}) {
  const logger = memoryLogger();
  const wake = new PeerWake({ signals, members: () => members, selfId: () => 'me', logger, ...extra });
  wake.start();
  wakes.push(wake);
  return { wake, logger };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const pairs = (hints: WakeHints) => hints.shards.map((s) => `${s.topic}/${s.shard}`).sort();
const pause = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

describe('PeerWake', () => {
  it('sends every live peer but itself the shards written locally, coalesced into one request', async () => {
    const [self, one, two] = await Promise.all([peer(), peer(), peer()]);
    const signals = new ShardSignals();
    peerWake(signals, [{ id: 'me', url: self!.url }, { id: 'one', url: one!.url }, { id: 'two', url: `${two!.url}/` }], { authorization: 'Bearer tok' });

    const before = Date.now();
    signals.notify('sms', 0);
    signals.notify('sms', 1);
    signals.notify('sms', 0);
    signals.notify('email', 3);
    await until(() => one!.received.length === 1 && two!.received.length === 1, 'a hint at each peer');

    for (const { received } of [one!, two!]) {
      const [hint] = received;
      expect(hint!.path).toBe(WAKE_PATH);
      expect(hint!.headers['content-type']).toBe('application/json');
      expect(hint!.headers.authorization).toBe('Bearer tok');
      expect(pairs(hint!.body)).toEqual(['email/3', 'sms/0', 'sms/1']);
      expect(hint!.body.at).toBeGreaterThanOrEqual(before);
    }
    // Its own entry in the membership is never sent to, now or at the next hint.
    signals.notify('sms', 2);
    await until(() => one!.received.length === 2 && two!.received.length === 2, 'a second hint at each peer');
    expect(pairs(one!.received[1]!.body)).toEqual(['sms/2']);
    expect(self!.received).toEqual([]);
  });

  it('passes on local produces only: what a peer hinted is not relayed', async () => {
    const other = await peer();
    const signals = new ShardSignals();
    peerWake(signals, [{ id: 'me', url: 'http://127.0.0.1:9' }, { id: 'other', url: other.url }]);
    signals.notify('sms', 5, 'peer');
    signals.notify('sms', 6);
    await until(() => other.received.length === 1, 'a hint');
    expect(pairs(other.received[0]!.body)).toEqual(['sms/6']);
  });

  it('carries where the writes landed: the earliest stamp per shard since the previous hint', async () => {
    const other = await peer();
    const signals = new ShardSignals();
    peerWake(signals, [{ id: 'other', url: other.url }]);
    signals.notify('sms', 0, 'local', 1_000);
    signals.notify('sms', 0, 'local', 900);
    signals.notify('sms', 0, 'local', 1_100);
    signals.notify('sms', 1);
    await until(() => other.received.length === 1, 'a hint');
    expect(other.received[0]!.body.shards).toEqual([
      { topic: 'sms', shard: 0, from: 900 },
      { topic: 'sms', shard: 1 },
    ]);
  });

  it('a slow write is answered only once every live peer has had its hint; a peer in its back-off is not waited for', async () => {
    const [slowPeer, failing] = await Promise.all([peer(), peer(503)]);
    const signals = new ShardSignals();
    peerWake(signals, [{ id: 'slow', url: slowPeer.url }, { id: 'failing', url: failing.url }]);
    slowPeer.hold = true;
    let answered = false;
    const announced = signals.announceSlowWrites([{ topic: 'sms', shard: 4, landedFrom: 1_234 }]).then(() => (answered = true));
    await until(() => slowPeer.received.length === 1 && failing.received.length === 1, 'the hint at both peers');
    expect(slowPeer.received[0]!.body.shards).toEqual([{ topic: 'sms', shard: 4, from: 1_234 }]);
    await pause(100);
    expect(answered).toBe(false);
    slowPeer.release();
    await announced;
    // The peer that failed is in its back-off: the next slow write waits for the other one only
    // (the failed peer's hints wait for the back-off's end).
    slowPeer.hold = false;
    await signals.announceSlowWrites([{ topic: 'sms', shard: 5, landedFrom: 2_000 }]);
    expect(slowPeer.received).toHaveLength(2);
    expect(failing.received).toHaveLength(1);
  });

  it('sends a peer one request at a time: what is written meanwhile goes in the next one', async () => {
    const slow = await peer();
    slow.hold = true;
    const signals = new ShardSignals();
    peerWake(signals, [{ id: 'slow', url: slow.url }], { intervalMs: 5 });
    signals.notify('sms', 0);
    await until(() => slow.received.length === 1, 'the first hint');
    signals.notify('sms', 1);
    await pause(50); // many intervals: a second request would have left by now
    signals.notify('sms', 2);
    signals.notify('sms', 0);
    await pause(50);
    expect(slow.received).toHaveLength(1);
    slow.hold = false;
    slow.release();
    await until(() => slow.received.length === 2, 'the second hint');
    expect(pairs(slow.received[1]!.body)).toEqual(['sms/0', 'sms/1', 'sms/2']);
  });

  it('sends a hint that found its peer unavailable (5xx) again once the back-off ends, with what was written meanwhile', async () => {
    const flaky = (await peer(503))!;
    const signals = new ShardSignals();
    const { wake } = peerWake(signals, [{ id: 'flaky', url: flaky.url }], { failureBackoffMs: 200 });
    signals.notify('sms', 4);
    await until(() => wake.counts.failed === 1, 'the first hint failed');
    flaky.status = 204;
    signals.notify('sms', 5); // within the back-off: held, not sent
    await pause(50);
    expect(flaky.received).toHaveLength(1);
    await until(() => flaky.received.length === 2, 'the hint sent again after the back-off');
    expect(pairs(flaky.received[1]!.body)).toEqual(['sms/4', 'sms/5']);
    await until(() => wake.counts.sent === 1, 'the answer to the hint sent again');
    expect(wake.counts).toEqual({ sent: 1, failed: 1 });
  });

  it('leaves a failing peer alone for a while, logs it once, and still hints the others', async () => {
    const [goneUrl, refusing, fine] = await Promise.all([deadUrl(), peer(401), peer()]);
    const signals = new ShardSignals();
    const metrics = new Metrics({ defaultMetrics: false });
    const { wake, logger } = peerWake(
      signals,
      [
        { id: 'gone', url: goneUrl },
        { id: 'refusing', url: refusing!.url },
        { id: 'fine', url: fine!.url },
      ],
      { metrics },
    );

    // A produce's notification never throws, whatever the peers do.
    expect(() => signals.notify('sms', 0)).not.toThrow();
    await until(() => wake.counts.sent === 1 && wake.counts.failed === 2, 'one hint answered and two failed');
    signals.notify('sms', 1);
    await until(() => wake.counts.sent === 2, 'the second hint answered');
    // Within the failure backoff, the failing peers were not tried again.
    expect(refusing!.received).toHaveLength(1);
    expect(wake.counts).toEqual({ sent: 2, failed: 2 });
    const exposed = await metrics.registry.getSingleMetricAsString('omnibus_wake_hints_total');
    expect(exposed).toContain('omnibus_wake_hints_total{outcome="sent"} 2');
    expect(exposed).toContain('omnibus_wake_hints_total{outcome="failed"} 2');
    const warnings = logger.lines.filter((l) => l.level === 'warn').map((l) => l.obj as { peer: string; problem: string });
    expect(warnings.map((w) => w.peer).sort()).toEqual(['gone', 'refusing']);
    expect(warnings.find((w) => w.peer === 'refusing')!.problem).toMatch(/credentials/);
  });

  it('queues nothing without peers, and nothing once stopped', async () => {
    const other = await peer();
    const members = [{ id: 'me', url: 'http://127.0.0.1:9' }];
    const signals = new ShardSignals();
    const { wake } = peerWake(signals, members);
    signals.notify('sms', 0);
    members.push({ id: 'other', url: other.url });
    signals.notify('sms', 1);
    await until(() => other.received.length === 1, 'a hint');
    expect(pairs(other.received[0]!.body)).toEqual(['sms/1']);
    wake.stop();
    signals.notify('sms', 2);
    await pause(50);
    expect(other.received).toHaveLength(1);
  });
});

describe('peerAuthorization', () => {
  it('carries the first bearer token, else the first basic user, else nothing', () => {
    expect(peerAuthorization({ bearerTokens: ['t1', 't2'], basicUsers: [{ user: 'ops', password: 'x' }] })).toBe('Bearer t1');
    expect(peerAuthorization({ bearerTokens: [], basicUsers: [{ user: 'ops', password: 'pa:ss' }] })).toBe(`Basic ${Buffer.from('ops:pa:ss').toString('base64')}`);
    expect(peerAuthorization({ bearerTokens: [], basicUsers: [] })).toBeUndefined();
  });
});

describe('parseWakeHints', () => {
  const problems = (body: unknown) => {
    try {
      parseWakeHints(body);
    } catch (error) {
      expect(error).toBeInstanceOf(CoreError);
      expect((error as CoreError).status).toBe(400);
      return { message: (error as CoreError).message, errors: (error as CoreError).details?.errors };
    }
    throw new Error('expected a 400');
  };

  it('accepts shards of any topic name, with or without a clock, and ignores unknown fields', () => {
    expect(parseWakeHints({ shards: [{ topic: 'a.b-c_d', shard: 0 }, { topic: 'x', shard: 4095 }], at: 5, later: true })).toEqual({
      shards: [
        { topic: 'a.b-c_d', shard: 0 },
        { topic: 'x', shard: 4095 },
      ],
      at: 5,
    });
    expect(parseWakeHints({ shards: [] })).toEqual({ shards: [] });
    expect(parseWakeHints({ shards: [{ topic: 'x', shard: 1, from: 1_700_000_000_000 }] })).toEqual({ shards: [{ topic: 'x', shard: 1, from: 1_700_000_000_000 }] });
  });

  it('refuses a body that is not {shards: [...]}, too many shards, and names every bad item', () => {
    for (const body of [null, [], 'x', {}, { shards: {} }]) expect(problems(body).message).toMatch(/shards/);
    const many = Array.from({ length: MAX_WAKE_SHARDS + 1 }, (_, shard) => ({ topic: 't', shard: shard % 10 }));
    expect(problems({ shards: many }).message).toMatch(/at most/);
    const bad = problems({ shards: [{ topic: 't', shard: 1 }, 'x', { topic: 'bad name', shard: -1 }, { topic: 't', shard: 1.5, from: -3 }, { shard: 4096 }], at: 'now' });
    expect(bad.errors).toEqual([
      { index: 1, field: '', message: expect.any(String) },
      { index: 2, field: 'topic', message: expect.any(String) },
      { index: 2, field: 'shard', message: expect.any(String) },
      { index: 3, field: 'shard', message: expect.any(String) },
      { index: 3, field: 'from', message: expect.any(String) },
      { index: 4, field: 'topic', message: expect.any(String) },
      { index: 4, field: 'shard', message: expect.any(String) },
      { field: 'at', message: expect.any(String) },
    ]);
  });
});

describe('applyWakeHints', () => {
  it('notifies the hinted shards as a produce would, without passing them on', () => {
    const signals = new ShardSignals();
    const woken: string[] = [];
    const relayed: string[] = [];
    signals.subscribe('sms', 2, () => woken.push('sms/2'));
    signals.onLocalProduce((topic, shard) => relayed.push(`${topic}/${shard}`));
    applyWakeHints(signals, { shards: [{ topic: 'sms', shard: 2 }, { topic: 'unknown', shard: 7 }], at: Date.now() - 5 });
    expect(woken).toEqual(['sms/2']);
    expect(relayed).toEqual([]);
  });

  it('passes on where the writes landed, for the consumers to read again from there', () => {
    const signals = new ShardSignals();
    const landed: Array<number | undefined> = [];
    signals.subscribe('sms', 2, (landedFrom) => landed.push(landedFrom));
    applyWakeHints(signals, { shards: [{ topic: 'sms', shard: 2, from: 1_234 }, { topic: 'sms', shard: 2 }], at: Date.now() - 5 });
    expect(landed).toEqual([1_234, undefined]);
  });

  it("waits for this worker's clock to reach the sender's, so that the woken read can see the entries", async () => {
    const signals = new ShardSignals();
    const wokenAt: number[] = [];
    signals.subscribe('sms', 0, () => wokenAt.push(Date.now()));
    const at = Date.now() + 200;
    applyWakeHints(signals, { shards: [{ topic: 'sms', shard: 0 }], at });
    expect(wokenAt).toEqual([]);
    await until(() => wokenAt.length === 1, 'the wake');
    expect(wokenAt[0]).toBeGreaterThanOrEqual(at);
  });
});
