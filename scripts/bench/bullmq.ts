/**
 * The same workload on BullMQ with Redis: producers add jobs with `addBulk` (batches of 500, a
 * few clients, from this process, as Omnibus's clients POST batches), and a worker process with
 * a no-op processor completes them. Redis runs on 127.0.0.1 on a free port, without
 * persistence (the most favourable setting for BullMQ), and is stopped at the end.
 */
import { execFileSync, spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { bullmq, type BullQueue } from './deps.ts';
import { freePort, omnibusNodeFlags } from '../test-support/src/worker-process.ts';
import { batches, CLIENTS, sleep, until, withClients } from './workload.ts';

export interface BullMqFigures {
  messages: number;
  produceMsgPerSec: number;
  e2eMsgPerSec: number;
  concurrency: number;
  /** e2e msg/s at each worker concurrency tried. */
  tried: Record<number, number>;
}

const WORKER = fileURLToPath(new URL('./bullmq-worker.ts', import.meta.url));

/** redis-server on PATH, installed with apt-get if missing (the benchmark runs as root on Debian). */
export function ensureRedisServer(log: (line: string) => void): string {
  const found = spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
  if (found) return found;
  log('redis-server is missing: installing it with apt-get (Debian package redis-server)');
  const install = () => spawnSync('apt-get', ['install', '-y', '--no-install-recommends', 'redis-server'], { stdio: 'ignore', env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' } });
  if (install().status !== 0) {
    spawnSync('apt-get', ['update'], { stdio: 'ignore' });
    const second = install();
    if (second.status !== 0) throw new Error('apt-get install -y redis-server failed; install Redis to run the BullMQ comparison');
  }
  // The package starts a system service on the default port: this benchmark runs its own.
  spawnSync('sh', ['-c', 'service redis-server stop || systemctl stop redis-server'], { stdio: 'ignore' });
  return spawnSync('sh', ['-c', 'command -v redis-server'], { encoding: 'utf8' }).stdout.trim();
}

class RedisServer {
  private constructor(
    readonly child: ChildProcess,
    readonly port: number,
    private readonly dir: string,
  ) {}

  static async start(binary: string): Promise<RedisServer> {
    const port = await freePort();
    const dir = await mkdtemp(join(tmpdir(), 'omnibus-bench-redis-'));
    const child = spawn(binary, ['--bind', '127.0.0.1', '--port', String(port), '--save', '', '--appendonly', 'no', '--dir', dir], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const ready = new Promise<void>((resolve, reject) => {
      createInterface({ input: child.stdout! }).on('line', (line) => {
        if (line.includes('Ready to accept connections')) resolve();
      });
      child.once('exit', (code) => reject(new Error(`redis-server exited with ${code}`)));
    });
    await Promise.race([ready, sleep(20_000).then(() => Promise.reject(new Error('redis-server did not start within 20 s')))]);
    return new RedisServer(child, port, dir);
  }

  async stop(): Promise<void> {
    if (this.child.exitCode === null) {
      const exited = new Promise((resolve) => this.child.once('exit', resolve));
      this.child.kill('SIGTERM');
      await exited;
    }
    await rm(this.dir, { recursive: true, force: true });
  }
}

export async function benchBullMq(options: { messages: number; concurrencies?: number[]; log: (line: string) => void }): Promise<BullMqFigures> {
  const { messages, log } = options;
  const binary = ensureRedisServer(log);
  log(`BullMQ: ${execFileSync(binary, ['--version'], { encoding: 'utf8' }).trim()}`);
  const redis = await RedisServer.start(binary);
  const { Queue } = await bullmq();
  const connection = { host: '127.0.0.1', port: redis.port, maxRetriesPerRequest: null } as const;
  try {
    // Produce alone: nobody consumes the queue.
    const produceQueue = new Queue('bench-produce', { connection });
    await produceQueue.waitUntilReady();
    const produceMsgPerSec = await addAll(produceQueue, messages);
    log(`BullMQ: produce ${Math.round(produceMsgPerSec).toLocaleString('en-US')} jobs/s (addBulk of 500, ${CLIENTS} clients)`);
    await produceQueue.obliterate({ force: true });
    await produceQueue.close();

    // End to end at a few worker concurrencies; the best one is BullMQ's figure.
    const tried: Record<number, number> = {};
    for (const concurrency of options.concurrencies ?? [50, 200, 1000]) {
      const queue = new Queue(`bench-e2e-${concurrency}`, { connection });
      await queue.waitUntilReady();
      const worker = await startWorker(redis.port, `bench-e2e-${concurrency}`, concurrency);
      try {
        const started = performance.timeOrigin + performance.now();
        await addAll(queue, messages);
        await until(async () => worker.completed >= messages, 'the BullMQ worker to complete every job', 600_000, 20);
        tried[concurrency] = messages / ((worker.lastAt - started) / 1000);
        log(`BullMQ: end to end ${Math.round(tried[concurrency]).toLocaleString('en-US')} jobs/s (no-op worker process, concurrency ${concurrency})`);
      } finally {
        await worker.stop();
        await queue.obliterate({ force: true });
        await queue.close();
      }
    }
    const [best, e2eMsgPerSec] = Object.entries(tried).sort((x, y) => y[1] - x[1])[0]!;
    return { messages, produceMsgPerSec, e2eMsgPerSec, concurrency: Number(best), tried };
  } finally {
    await redis.stop();
  }
}

/** Adds `count` jobs in batches of 500 from a few clients at once; returns jobs/s. */
async function addAll(queue: BullQueue, count: number): Promise<number> {
  const jobBatches = batches(0, count).map((items) => items.map((m) => ({ name: 'notify', data: m, opts: { removeOnComplete: true } })));
  const started = performance.now();
  await withClients(jobBatches, CLIENTS, async (jobs) => void (await queue.addBulk(jobs)));
  return count / ((performance.now() - started) / 1000);
}

interface WorkerHandle {
  completed: number;
  lastAt: number;
  stop(): Promise<void>;
}

async function startWorker(port: number, queue: string, concurrency: number): Promise<WorkerHandle> {
  // Node tuned as Omnibus's worker is, so that the comparison is of the two designs, not of V8 settings.
  const child = spawn(process.execPath, [...omnibusNodeFlags(), '--import', 'tsx', WORKER, String(port), queue, String(concurrency)], {
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const handle: WorkerHandle = {
    completed: 0,
    lastAt: 0,
    stop: async () => {
      if (child.exitCode !== null) return;
      const exited = new Promise((resolve) => child.once('exit', resolve));
      child.send({ stop: true });
      const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
      await exited;
      clearTimeout(timer);
    },
  };
  const ready = new Promise<void>((resolve, reject) => {
    child.on('message', (message: { ready?: boolean; completed?: number; at?: number }) => {
      if (message.ready) resolve();
      if (message.completed !== undefined) {
        handle.completed = message.completed;
        handle.lastAt = message.at ?? handle.lastAt;
      }
    });
    child.once('exit', (code) => reject(new Error(`the BullMQ worker exited with ${code}`)));
  });
  await ready;
  return handle;
}
