// tasks.max changed on a running sink under load (PUT /connectors/{c}/config): its shards move
// between tasks (and workers) while messages keep coming. A FileSink records every hand-off in
// order (each put waits for the disk, so batches are in flight when the tasks change), so the test sees loss (a produced id missing), duplicates (an id twice) and order
// (each key's sequence numbers increasing) directly; GET /groups/{g} shows every message sent.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cqlUrl, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { afterAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/worker/worker.ts';
import { call, eventually, expectGroupAllSent, expectOnceEachInKeyOrder, fileSinkLines, startWorker, type SequencedLine } from './helpers.ts';

const KEYS = 120;
const ROUNDS = 60;
const SHARDS = 16;
/** tasks.max from the round it is applied at. */
const CHANGES = [
  { round: 15, tasks: 4 },
  { round: 35, tasks: 3 },
  { round: 50, tasks: 6 },
];

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

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

  expect((await call(first, 'POST', '/topics', { name: 'resize', shards: SHARDS })).status).toBe(201);
  const file = join(dir, 'resize.jsonl');
  const config = (tasks: number) => ({ 'connector.class': 'FileSink', 'tasks.max': String(tasks), topics: 'resize', file, 'batch.size': '40', 'file.fsync': 'true' });
  expect((await call(first, 'POST', '/connectors', { name: 'resize', config: config(1) })).status).toBe(201);
  await eventually(() => first.herder.connectorStatus('resize'), (s) => s.tasks.length === 1 && s.tasks[0]!.state === 'RUNNING', 'the connector running');

  // Each round: one message per key, its sequence number the round; the changes land between rounds.
  const ids: string[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const change = CHANGES.find((c) => c.round === round);
    if (change) {
      const put = await call(via(round + 1), 'PUT', '/connectors/resize/config', config(change.tasks));
      expect(put.status, JSON.stringify(put.body)).toBe(200);
    }
    const messages = Array.from({ length: KEYS }, (_, k) => ({ id: `k${k}-r${round}`, key: `customer-${k}`, value: { seq: round } }));
    const produced = await call(via(round), 'POST', '/topics/resize/messages', { group: 'resize-load', messages });
    expect(produced.status, JSON.stringify(produced.body)).toBe(202);
    ids.push(...messages.map((m) => m.id));
    await sleep(40);
  }

  const last = CHANGES.at(-1)!.tasks;
  const status = await eventually(
    () => first.herder.connectorStatus('resize'),
    (s) => s.tasks.length === last && s.tasks.every((t) => t.state === 'RUNNING'),
    `${last} tasks running`,
    60_000,
  );
  if (workerCount > 1) expect(new Set(status.tasks.map((t) => t.worker_id)).size).toBe(workerCount);

  const lines = await eventually(
    () => fileSinkLines<SequencedLine>(file),
    (read) => read.length >= ids.length,
    'every message handed to the sink',
    120_000,
  );
  // Nothing more arrives after everything did: a duplicate would show here.
  await sleep(1000);
  const final = await fileSinkLines<SequencedLine>(file);
  expect(final.length).toBe(lines.length);

  // Every message once; per key, the sequence numbers as handed: every round, in order.
  expectOnceEachInKeyOrder(final, ids, KEYS, ROUNDS);

  await expectGroupAllSent(first, 'resize-load', 'resize', ids.length);
}

describe('tasks.max changed under load', () => {
  it('on LMDB: no loss, no duplicates, each key in order across 1 → 4 → 3 → 6 tasks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'omnibus-tasks-max-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    await scenario(`lmdb:${join(dir, 'data')}`, 1, dir);
  }, 240_000);

  it('on Cassandra with two workers: no loss, no duplicates, each key in order across 1 → 4 → 3 → 6 tasks', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'omnibus-tasks-max-cql-'));
    const keyspace: FreshKeyspace = await freshKeyspace('tasks_max_change');
    cleanups.push(() => rm(dir, { recursive: true, force: true }), () => keyspace.drop());
    await scenario(cqlUrl(keyspace.keyspace), 2, dir);
  }, 300_000);
});
