// Faults under load on the three-node cluster (RF=3, LOCAL_QUORUM / LOCAL_SERIAL), two worker
// processes, a FileSink recording every delivery: a Cassandra node SIGKILLed, a worker frozen
// past its lease TTL, a node paused 2 s at a time. Each: nothing acknowledged lost, nothing
// delivered twice, every message sent or accounted as unknown.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { WorkerProcess } from '@omnibus/test-support';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { clusterNodes, startClusterNode } from '../../../../scripts/cassandra/cluster.mjs';
import { expectEachDeliveredOnce, LEASES, produceSteadily, startScenario } from './faults.ts';

/** 20,000 by default; fewer on a machine where that would not fit (OMNIBUS_CLUSTER_MESSAGES). */
const MESSAGES = Number(process.env.OMNIBUS_CLUSTER_MESSAGES || 20_000);

let dir: string;
const processes: WorkerProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-cluster-faults-'));
});

/** Every node running again, whatever a scenario left (a failed one included). */
async function restoreNodes(): Promise<void> {
  for (const node of await clusterNodes()) {
    try {
      process.kill(node.pid, 'SIGCONT');
    } catch {
      // already gone
    }
  }
  await startClusterNode([0, 1, 2]);
}

// The next scenario gets every node back: a worker creating its keyspace's tables with a node
// down waits for a schema agreement that cannot come (10 s per table).
afterEach(async () => {
  await Promise.all(processes.splice(0).map((p) => p.kill()));
  await restoreNodes();
});

afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

const report = (label: string, line: string): void => console.log(`[${label}] ${line}`);

describe('faults under load on three nodes (RF=3)', () => {
  it('(a) one Cassandra node SIGKILLed mid-run: produce goes on, nothing lost or delivered twice', async () => {
    const scenario = await startScenario('nodekill', dir, processes);
    const victim = (await clusterNodes())[2]!;
    let killedAt: number | undefined;
    const run = await produceSteadily(scenario, MESSAGES, (count) => {
      if (killedAt === undefined && count >= MESSAGES / 3) {
        killedAt = Date.now();
        process.kill(victim.pid, 'SIGKILL');
      }
    });
    expect(killedAt).toBeDefined();
    expect(run.acknowledged.size).toBe(MESSAGES);
    expect(scenario.workers.every((w) => w.alive)).toBe(true);
    const deliveredAt = Date.now();
    const outcome = await expectEachDeliveredOnce(scenario, run.acknowledged, 600_000);
    report(
      'node-kill',
      `${MESSAGES} produced in ${(run.elapsedMs / 1000).toFixed(1)} s (answers ${JSON.stringify(Object.fromEntries(run.statuses))}), ` +
        `node 3 SIGKILLed after ${MESSAGES / 3 | 0}; ${outcome.sent} delivered once, ${outcome.unknown} unknown, 0 duplicates, ` +
        `last delivery ${((Date.now() - deliveredAt) / 1000).toFixed(1)} s after the last produce`,
    );
  });

  it('(c) a worker frozen past its lease TTL, then thawed: fenced, zero duplicates', async () => {
    const scenario = await startScenario('frozen', dir, processes);
    const [frozen, awake] = scenario.workers as [WorkerProcess, WorkerProcess];
    const frozenMs = LEASES.leaseTtlMs * 3;
    let thawed: Promise<void> | undefined;
    const run = await produceSteadily(scenario, Math.min(MESSAGES, 6000), (count) => {
      if (thawed === undefined && count >= 1000) {
        process.kill(frozen.pid, 'SIGSTOP');
        thawed = sleep(frozenMs).then(() => {
          process.kill(frozen.pid, 'SIGCONT');
        });
      }
      // Produced through the other worker: a client of the frozen one would only wait on it.
    }, 100, [awake]);
    await thawed;
    expect(frozen.alive).toBe(true);
    const outcome = await expectEachDeliveredOnce(scenario, run.acknowledged, 600_000);
    report(
      'frozen-worker',
      `${run.acknowledged.size} produced in ${(run.elapsedMs / 1000).toFixed(1)} s, worker frozen ${frozenMs} ms (lease TTL ${LEASES.leaseTtlMs} ms); ` +
        `${outcome.sent} delivered once, ${outcome.unknown} unknown, 0 duplicates`,
    );
  });

  it('(d) a slow node (paused 2 s at a time): nothing lost or delivered twice', async () => {
    // Leases as a deployment has them (10 s): a node paused 2 s must not cost a worker its shards.
    const scenario = await startScenario('slownode', dir, processes, { leases: 'worker defaults' });
    const slow = (await clusterNodes())[1]!;
    let pausing = true;
    let pauses = 0;
    const pauser = (async () => {
      while (pausing) {
        process.kill(slow.pid, 'SIGSTOP');
        pauses++;
        await sleep(2000);
        process.kill(slow.pid, 'SIGCONT');
        await sleep(1000);
      }
    })();
    let run;
    try {
      run = await produceSteadily(scenario, Math.min(MESSAGES, 6000), () => {});
    } finally {
      pausing = false;
      await pauser;
    }
    const outcome = await expectEachDeliveredOnce(scenario, run.acknowledged, 600_000);
    report(
      'slow-node',
      `${run.acknowledged.size} produced in ${(run.elapsedMs / 1000).toFixed(1)} s (answers ${JSON.stringify(Object.fromEntries(run.statuses))}) ` +
        `while node 2 was paused ${pauses} times for 2 s; ${outcome.sent} delivered once, ${outcome.unknown} unknown, 0 duplicates`,
    );
  });
});
