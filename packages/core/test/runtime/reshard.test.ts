// A topic's shard count raised while it is in use (PUT /topics/{t}/shards): keys produced before
// and after the switch, the sink paused across it so that the old shards still hold a backlog
// when the new layout's messages are there to be read. A FileSink records every hand-off: each
// key's sequence numbers must come in order, every message once, none lost.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cqlUrl, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { afterAll, describe, expect, it } from 'vitest';
import { routeKey } from '../../src/bus/shard.ts';
import type { Worker } from '../../src/worker/worker.ts';
import { call, eventually, expectGroupAllSent, expectOnceEachInKeyOrder, fileSinkLines, startWorker, type SequencedLine } from './helpers.ts';

const KEYS = 80;
const OLD_SHARDS = 4;
const NEW_SHARDS = 12;

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

interface Line extends SequencedLine {
  shard: number;
}

const cleanups: Array<() => Promise<void>> = [];
afterAll(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function scenario(store: string, workerCount: number, dir: string): Promise<void> {
  const workers: Worker[] = [];
  cleanups.push(async () => void (await Promise.all(workers.map((w) => w.stop()))));
  for (let i = 0; i < workerCount; i++) workers.push(await startWorker(store));
  const [first] = workers as [Worker];
  const via = (round: number) => workers[round % workers.length]!;

  expect((await call(first, 'POST', '/topics', { name: 'grow', shards: OLD_SHARDS })).status).toBe(201);
  const file = join(dir, 'grow.jsonl');
  const config = { 'connector.class': 'FileSink', 'tasks.max': '3', topics: 'grow', file, 'batch.size': '40', 'file.fsync': 'true' };
  expect((await call(first, 'POST', '/connectors', { name: 'grow', config })).status).toBe(201);
  await eventually(() => first.herder.connectorStatus('grow'), (s) => s.tasks.length === 3 && s.tasks.every((t) => t.state === 'RUNNING'), 'the sink running');

  const ids: string[] = [];
  let round = 0;
  const produceRound = async () => {
    const messages = Array.from({ length: KEYS }, (_, k) => ({ id: `k${k}-r${round}`, key: `customer-${k}`, value: { seq: round } }));
    const produced = await call(via(round), 'POST', '/topics/grow/messages', { group: 'grow', messages });
    expect(produced.status, JSON.stringify(produced.body)).toBe(202);
    ids.push(...messages.map((m) => m.id));
    round += 1;
  };

  for (let i = 0; i < 5; i++) {
    await produceRound();
    await sleep(50);
  }
  // The sink stops reading: what comes next piles up in the old shards, then in the new ones.
  expect((await call(first, 'PUT', '/connectors/grow/pause')).status).toBe(202);
  await eventually(() => first.herder.connectorStatus('grow'), (s) => s.tasks.every((t) => t.state === 'PAUSED'), 'the sink paused');

  const resharded = await call(via(1), 'PUT', '/topics/grow/shards', { shards: NEW_SHARDS });
  expect(resharded.status, JSON.stringify(resharded.body)).toBe(200);
  const reshards = resharded.body.reshards as Array<{ at: number; from: number; to: number }>;
  expect(resharded.body.shards).toBe(NEW_SHARDS);
  expect(reshards).toHaveLength(1);
  expect(reshards[0]).toMatchObject({ from: OLD_SHARDS, to: NEW_SHARDS });
  const switchAt = reshards[0]!.at;
  expect(switchAt).toBeGreaterThan(Date.now());
  expect((await call(workers.at(-1)!, 'GET', '/topics/grow')).body).toMatchObject({ shards: NEW_SHARDS, reshards });

  // Rounds before the switch (old layout), and after it (new layout).
  while (Date.now() < switchAt + 1500) {
    await produceRound();
    await sleep(150);
  }
  for (let i = 0; i < 5; i++) await produceRound();
  expect((await call(first, 'PUT', '/connectors/grow/resume')).status).toBe(202);
  // And more while the backlog drains.
  for (let i = 0; i < 10; i++) {
    await produceRound();
    await sleep(100);
  }

  const lines = await eventually(
    () => fileSinkLines<Line>(file),
    (read) => read.length >= ids.length,
    'every message handed to the sink',
    120_000,
  );
  await sleep(1000);
  const final = await fileSinkLines<Line>(file);
  expect(final.length).toBe(lines.length);

  // Every message once; each key's messages handed over in produce order, across the change.
  expectOnceEachInKeyOrder(final, ids, KEYS, round);

  // The change moved keys: some of their messages are in shards that did not exist before.
  const moved = Array.from({ length: KEYS }, (_, k) => `customer-${k}`).filter((key) => routeKey(key, OLD_SHARDS).shard !== routeKey(key, NEW_SHARDS).shard);
  expect(moved.length).toBeGreaterThan(KEYS / 2);
  expect(final.some((line) => line.shard >= OLD_SHARDS)).toBe(true);
  for (const key of moved.slice(0, 5)) {
    const shards = new Set(final.filter((line) => line.key === key).map((line) => line.shard));
    expect(shards).toEqual(new Set([routeKey(key, OLD_SHARDS).shard, routeKey(key, NEW_SHARDS).shard]));
  }

  await expectGroupAllSent(first, 'grow', 'grow', ids.length);
}

describe('resharding a topic in use', () => {
  it('on LMDB: each key in order across 4 → 12 shards, every message once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'omnibus-reshard-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await scenario(`lmdb:${join(dir, 'data')}`, 1, dir);
  }, 240_000);

  it('on Cassandra with two workers: each key in order across 4 → 12 shards, every message once', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'omnibus-reshard-cql-'));
    const keyspace: FreshKeyspace = await freshKeyspace('reshard');
    cleanups.push(() => rm(dir, { recursive: true, force: true }), () => keyspace.drop());
    await scenario(cqlUrl(keyspace.keyspace), 2, dir);
  }, 300_000);

  it('refuses a shard count that does not grow, naming the field, and changes nothing', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'omnibus-reshard-bad-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const worker = await startWorker(`lmdb:${join(dir, 'data')}`);
    cleanups.push(() => worker.stop());
    expect((await call(worker, 'POST', '/topics', { name: 'fixed', shards: 8 })).status).toBe(201);
    for (const shards of [8, 4, 2.5, '16', 5000, undefined]) {
      const refused = await call(worker, 'PUT', '/topics/fixed/shards', shards === undefined ? {} : { shards });
      expect(refused.status, JSON.stringify(refused.body)).toBe(400);
      expect(refused.body).toMatchObject({ error_code: 400, message: expect.stringContaining('shards'), errors: { shards: expect.any(String) } });
    }
    expect((await call(worker, 'PUT', '/topics/nowhere/shards', { shards: 16 })).status).toBe(404);
    const topic = (await call(worker, 'GET', '/topics/fixed')).body;
    expect(topic.shards).toBe(8);
    expect(topic.reshards).toBeUndefined();
  }, 60_000);
});
