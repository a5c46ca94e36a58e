// Worker processes started as an operator would (`omnibus start`), with fast beats and short
// leases so that takeovers fit in a test.
import { WorkerProcess } from '@omnibus/test-support';
import type { ConnectorStateInfo } from '../../src/runtime/types.ts';

export const PROCESS_CLUSTER = { heartbeatMs: 250, leaseTtlMs: 2000 };

/** A worker on `store` with the cluster timings above; `args` follow `start` (e.g. `--connector` files). */
export function startWorkerProcess(store: string, args: string[] = []): Promise<WorkerProcess> {
  return WorkerProcess.start({
    store,
    args,
    env: {
      OMNIBUS_HEARTBEAT_INTERVAL_MS: String(PROCESS_CLUSTER.heartbeatMs),
      OMNIBUS_LEASE_TTL_MS: String(PROCESS_CLUSTER.leaseTtlMs),
    },
  });
}

/** GET /connectors/{name}/status, as seen by `worker`. */
export async function connectorStatus(worker: WorkerProcess, connector: string): Promise<ConnectorStateInfo> {
  return (await worker.requestExpecting('GET', `/connectors/${connector}/status`, undefined, 200)) as ConnectorStateInfo;
}

/** Task count per worker id in a status. */
export function tasksPerWorker(status: ConnectorStateInfo): Map<string, number> {
  const counts = new Map<string, number>();
  for (const task of status.tasks) counts.set(task.worker_id, (counts.get(task.worker_id) ?? 0) + 1);
  return counts;
}

/** All tasks RUNNING, on exactly these workers, each with its balanced share. */
export function balancedOver(status: ConnectorStateInfo, workerIds: string[], tasks: number): boolean {
  // The connector itself moves too (its status is written by its own rendezvous owner).
  if (status.connector.state !== 'RUNNING' || !workerIds.includes(status.connector.worker_id)) return false;
  if (status.tasks.length !== tasks || !status.tasks.every((t) => t.state === 'RUNNING')) return false;
  const counts = tasksPerWorker(status);
  if (counts.size !== workerIds.length || !workerIds.every((id) => counts.has(id))) return false;
  return [...counts.values()].every((n) => n >= Math.floor(tasks / workerIds.length) && n <= Math.ceil(tasks / workerIds.length));
}
