// Worker processes started as an operator would: `omnibus start` through tsx, each on a free
// port, with fast beats and short leases so that takeovers fit in a test.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import type { ConnectorStateInfo } from '../../src/runtime/types.ts';

const REPO = fileURLToPath(new URL('../../../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url));

export const PROCESS_CLUSTER = { heartbeatMs: 250, leaseTtlMs: 2000 };

export class WorkerProcess {
  private constructor(
    readonly child: ChildProcess,
    readonly url: string,
    readonly id: string,
    private readonly exited: Promise<number | null>,
    /** The last lines the process wrote, for the error of a failed test. */
    readonly tail: string[],
  ) {}

  static async start(store: string, extraArgs: string[] = []): Promise<WorkerProcess> {
    const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'start', '--store', store, '--listeners', 'http://127.0.0.1:0', ...extraArgs], {
      cwd: REPO,
      env: {
        ...process.env,
        OMNIBUS_HEARTBEAT_INTERVAL_MS: String(PROCESS_CLUSTER.heartbeatMs),
        OMNIBUS_LEASE_TTL_MS: String(PROCESS_CLUSTER.leaseTtlMs),
        OMNIBUS_LOG_LEVEL: 'info',
      },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const tail: string[] = [];
    const remember = (line: string) => {
      tail.push(line);
      if (tail.length > 40) tail.shift();
    };
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    createInterface({ input: child.stderr! }).on('line', remember);
    const started = await new Promise<{ url: string; workerId: string }>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`worker did not start within 60 s:\n${tail.join('\n')}`)), 60_000);
      createInterface({ input: child.stdout! }).on('line', (line) => {
        remember(line);
        try {
          const entry = JSON.parse(line) as { msg?: string; url?: string; workerId?: string };
          if (entry.msg === 'worker started' && entry.url && entry.workerId) {
            clearTimeout(timer);
            resolve({ url: entry.url, workerId: entry.workerId });
          }
        } catch {
          // not a log line
        }
      });
      void exited.then((code) => {
        clearTimeout(timer);
        reject(new Error(`worker exited with ${code} before it started:\n${tail.join('\n')}`));
      });
    });
    return new WorkerProcess(child, started.url, started.workerId, exited, tail);
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** As a crash would: no goodbye, leases and membership left to expire. */
  async kill(): Promise<void> {
    if (!this.alive) return;
    this.child.kill('SIGKILL');
    await this.exited;
  }

  /** As an operator would: SIGTERM, and the worker hands its tasks over. */
  async stop(): Promise<number | null> {
    if (!this.alive) return this.child.exitCode;
    this.child.kill('SIGTERM');
    return this.exited;
  }

  async request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const response = await fetch(`${this.url.replace(/\/$/, '')}${path}`, {
      method,
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    const text = await response.text();
    return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
  }

  async status(connector: string): Promise<ConnectorStateInfo> {
    const { status, body } = await this.request('GET', `/connectors/${connector}/status`);
    if (status !== 200) throw new Error(`GET status answered ${status}: ${JSON.stringify(body)}`);
    return body as ConnectorStateInfo;
  }
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
