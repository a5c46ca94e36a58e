// Worker groups with two workers in one process on one keyspace: a worker declares its groups
// (worker.groups), a connector names the groups it may run in (its own worker.groups), and its
// tasks run only on workers of those groups, or stay UNASSIGNED, saying why, when none is live.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { cqlUrl, freshKeyspace, type FreshKeyspace } from '@omnibus/test-support';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Worker } from '../../src/worker/worker.ts';
import { eventually, rejection, startWorker } from './helpers.ts';

let dir: string;
let keyspace: FreshKeyspace;
const workers: Worker[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-worker-groups-'));
  keyspace = await freshKeyspace('runtime_worker_groups');
});

afterAll(async () => {
  await Promise.all(workers.map((w) => w.stop()));
  await keyspace?.drop();
  await rm(dir, { recursive: true, force: true });
});

const fileSink = (name: string, groups: string, tasks = 4) => ({
  'connector.class': 'FileSink',
  'tasks.max': String(tasks),
  topics: `${name}-topic`,
  file: join(dir, `${name}.jsonl`),
  'worker.groups': groups,
});

describe('worker groups', () => {
  it("runs a connector's tasks only on workers of its groups, and leaves them UNASSIGNED with the reason when none is live", async () => {
    const store = cqlUrl(keyspace.keyspace);
    const smsWorker = await startWorker(store, { 'worker.groups': ['sms', 'sms-eu'] });
    workers.push(smsWorker);
    const plainWorker = await startWorker(store);
    workers.push(plainWorker);

    // The cluster view carries each worker's groups.
    const listed = await eventually(
      async () => (await fetch(`${plainWorker.url}/workers`)).json() as Promise<{ workers: Array<{ worker_id: string; worker_groups: string[] }> }>,
      (body) => body.workers.length === 2,
      'both workers listed',
    );
    expect(Object.fromEntries(listed.workers.map((w) => [w.worker_id, w.worker_groups]))).toEqual({
      [smsWorker.workerId]: ['sms', 'sms-eu'],
      [plainWorker.workerId]: [],
    });

    // A connector in group sms, created through the worker outside it: all four tasks on the sms worker.
    await plainWorker.herder.createConnector('sms-only', fileSink('sms-only', 'sms'));
    // An ungrouped connector runs on both.
    await plainWorker.herder.createConnector('anywhere', fileSink('anywhere', ''));
    // A connector whose group no worker has: nowhere to run.
    await plainWorker.herder.createConnector('push', fileSink('push', 'push', 2));

    const smsOnly = await eventually(
      () => plainWorker.herder.connectorStatus('sms-only'),
      (s) => s.tasks.length === 4 && s.tasks.every((t) => t.state === 'RUNNING'),
      'every sms-only task running',
    );
    expect(new Set(smsOnly.tasks.map((t) => t.worker_id))).toEqual(new Set([smsWorker.workerId]));
    const anywhere = await eventually(
      () => plainWorker.herder.connectorStatus('anywhere'),
      (s) => s.tasks.length === 4 && s.tasks.every((t) => t.state === 'RUNNING'),
      'every ungrouped task running',
    );
    expect(new Set(anywhere.tasks.map((t) => t.worker_id))).toEqual(new Set([smsWorker.workerId, plainWorker.workerId]));

    const push = await eventually(
      () => smsWorker.herder.connectorStatus('push'),
      (s) => s.tasks.length === 2 && s.tasks.every((t) => t.state === 'UNASSIGNED' && t.trace !== undefined),
      'the push tasks unassigned, with a reason',
    );
    expect(push.tasks[0]!.trace).toContain('No live worker is in the worker groups push named by worker.groups');
    expect(push.tasks[0]!.trace).toContain(`${smsWorker.workerId} (sms, sms-eu)`);
    expect(push.tasks[0]!.trace).toContain(`${plainWorker.workerId} (no group)`);
    expect([...smsWorker.reconciler.localTasks(), ...plainWorker.reconciler.localTasks()].filter((t) => t.connector === 'push')).toEqual([]);

    // Moving the connector into a group a live worker has places its tasks there.
    await plainWorker.herder.putConnectorConfig('push', fileSink('push', 'push,sms-eu', 2));
    const placed = await eventually(
      () => plainWorker.herder.connectorStatus('push'),
      (s) => s.tasks.length === 2 && s.tasks.every((t) => t.state === 'RUNNING'),
      'the push tasks running once a live worker is in one of their groups',
    );
    expect(new Set(placed.tasks.map((t) => t.worker_id))).toEqual(new Set([smsWorker.workerId]));
    expect(placed.tasks.every((t) => t.trace === undefined)).toBe(true);

    // The only sms worker leaves: its grouped tasks do not move to the worker outside the group.
    await smsWorker.stop();
    const orphaned = await eventually(
      () => plainWorker.herder.connectorStatus('sms-only'),
      (s) => s.tasks.length === 4 && s.tasks.every((t) => t.state === 'UNASSIGNED' && t.trace !== undefined),
      'the sms-only tasks unassigned once the sms worker left',
    );
    expect(orphaned.tasks[0]!.trace).toContain('worker groups sms');
    expect(plainWorker.reconciler.localTasks().filter((t) => t.connector === 'sms-only')).toEqual([]);
    // The ungrouped connector's tasks all moved to the remaining worker.
    await eventually(
      () => plainWorker.herder.connectorStatus('anywhere'),
      (s) => s.tasks.every((t) => t.state === 'RUNNING' && t.worker_id === plainWorker.workerId),
      'every ungrouped task on the remaining worker',
    );

    // An sms worker joins again: the tasks run there.
    const secondSms = await startWorker(store, { 'worker.groups': ['sms'] });
    workers.push(secondSms);
    const back = await eventually(
      () => plainWorker.herder.connectorStatus('sms-only'),
      (s) => s.tasks.length === 4 && s.tasks.every((t) => t.state === 'RUNNING'),
      'the sms-only tasks running on the new sms worker',
    );
    expect(new Set(back.tasks.map((t) => t.worker_id))).toEqual(new Set([secondSms.workerId]));
  }, 120_000);

  it('refuses a connector whose worker.groups is not a list of group names, naming the key, and stores nothing', async () => {
    const worker = await startWorker(`lmdb:${join(dir, 'validation')}`);
    workers.push(worker);
    const refused = await rejection(worker.herder.createConnector('bad-groups', fileSink('bad-groups', 'sms,not a group')));
    expect(refused.status).toBe(400);
    expect(refused.message).toContain('worker.groups');
    expect(refused.message).toContain('not a group');
    expect(await worker.herder.connectorNames()).toEqual([]);
  });
});
