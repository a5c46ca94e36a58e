/**
 * End to end, as an operator runs it: `omnibus start` workers on an LMDB store, the CDC
 * connector and a FileSink registered over the REST API; changes written to the (fixture's)
 * CDC log reach the file through the topic, in order per key, none lost across a worker
 * restart and a generation switch.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { jsonSchemaForTable, type Envelope } from '../src/index.ts';
import { cdcTestbed, type CdcTestbed } from './helpers.ts';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = join(REPO, 'packages/core/src/cli/main.ts');

interface RunningWorker {
  url: string;
  child: ChildProcess;
  exited: Promise<number | null>;
  tail: string[];
}

async function startWorker(store: string): Promise<RunningWorker> {
  const child = spawn(process.execPath, ['--import', 'tsx', CLI, 'start', '--store', store, '--listeners', 'http://127.0.0.1:0'], {
    cwd: REPO,
    env: { ...process.env, OMNIBUS_HEARTBEAT_INTERVAL_MS: '250', OMNIBUS_LEASE_TTL_MS: '2000', OMNIBUS_LOG_LEVEL: 'info' },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  const tail: string[] = [];
  const remember = (line: string) => {
    tail.push(line);
    if (tail.length > 60) tail.shift();
  };
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
  createInterface({ input: child.stderr! }).on('line', remember);
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`worker did not start within 90 s:\n${tail.join('\n')}`)), 90_000);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      remember(line);
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'worker started' && entry.url) {
          clearTimeout(timer);
          resolve(entry.url);
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
  return { url: url.replace(/\/$/, ''), child, exited, tail };
}

async function stopWorker(worker: RunningWorker | undefined): Promise<void> {
  if (!worker || worker.child.exitCode !== null || worker.child.signalCode !== null) return;
  worker.child.kill('SIGTERM');
  await worker.exited;
}

async function call(worker: RunningWorker, method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
  const response = await fetch(`${worker.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await response.text();
  return { status: response.status, body: text ? (JSON.parse(text) as unknown) : undefined };
}

interface FileLine {
  id: string;
  topic: string;
  key: string;
  value: Envelope;
}

function fileLines(path: string): FileLine[] {
  if (!existsSync(path)) return [];
  return readFileSync(path, 'utf8')
    .split('\n')
    .filter((line) => line.trim() !== '')
    .map((line) => JSON.parse(line) as FileLine);
}

async function waitForLines(path: string, count: number, worker: RunningWorker, timeoutMs = 40_000): Promise<FileLine[]> {
  const deadline = Date.now() + timeoutMs;
  let lines = fileLines(path);
  while (lines.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    lines = fileLines(path);
  }
  if (lines.length < count) throw new Error(`${lines.length} of ${count} lines arrived; worker log:\n${worker.tail.join('\n')}`);
  return lines;
}

let bed: CdcTestbed;
let dir: string;
let worker: RunningWorker | undefined;

beforeAll(async () => {
  bed = await cdcTestbed('cdc_e2e');
  await bed.fixture.addGeneration(Date.now() - 60_000, { vnodes: 4, shards: 2 });
  dir = mkdtempSync(join(tmpdir(), 'cdc-e2e-'));
});

afterAll(async () => {
  await stopWorker(worker);
  await bed?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('streams changes to a FileSink through the runtime, across a worker restart and a generation switch', async () => {
  const orders = await bed.fixture.createTable({ name: 'orders', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'n', type: 'int' }] });
  const topic = `db.${bed.ks.keyspace}.orders`;
  const file = join(dir, 'changes.jsonl');
  const store = `lmdb:${join(dir, 'store')}`;
  const keys = [1, 2, 3, 4, 5, 6];

  worker = await startWorker(store);
  // The topic carries the table's documented schema: the bus itself checks every event against it.
  const metadata = await bed.ks.client.metadata.getTable(bed.ks.keyspace, 'orders');
  const created = await call(worker, 'POST', '/topics', { name: topic, shards: 4, schema: jsonSchemaForTable(metadata) });
  expect(created.status).toBe(201);
  const sink = await call(worker, 'POST', '/connectors', { name: 'file', config: { 'connector.class': 'FileSink', topics: topic, file, 'tasks.max': '1' } });
  expect(sink.status).toBe(201);
  const cdcConfig = Object.fromEntries(
    Object.entries(bed.config(['orders'], { 'scylla.initial.lookback.ms': 30_000, 'heartbeat.interval.ms': 500, 'tasks.max': 2 })).map(([k, v]) => [k, String(v)]),
  );
  const source = await call(worker, 'POST', '/connectors', { name: 'cdc', config: cdcConfig });
  expect(source.status).toBe(201);

  for (const id of keys) await orders.insert({ id, n: 0 });
  await waitForLines(file, keys.length, worker);
  await stopWorker(worker);

  // While no worker runs: more changes, and a new generation with more after it.
  for (const id of keys) await orders.update({ id }, { n: 1 });
  const switchAt = Date.now() + 1_000;
  await bed.fixture.addGeneration(switchAt, { vnodes: 2, shards: 3 });
  await new Promise((resolve) => setTimeout(resolve, switchAt + 100 - Date.now()));
  for (const id of keys) await orders.update({ id }, { n: 2 });

  worker = await startWorker(store);
  const lines = await waitForLines(file, keys.length * 3, worker);
  expect(lines).toHaveLength(keys.length * 3);
  expect(new Set(lines.map((l) => l.id)).size).toBe(lines.length);
  expect(lines.every((l) => l.topic === topic)).toBe(true);
  const history: Record<string, Array<[string, unknown]>> = {};
  for (const line of lines) (history[line.key] ??= []).push([line.value.op, line.value.after?.n]);
  expect(history).toEqual(
    Object.fromEntries(
      keys.map((id) => [
        `{"id":${id}}`,
        [
          ['c', 0],
          ['u', 1],
          ['u', 2],
        ],
      ]),
    ),
  );
  const status = await call(worker, 'GET', '/connectors/cdc/status');
  expect(status.body).toMatchObject({ connector: { state: 'RUNNING' } });
  expect((status.body as { tasks: Array<{ state: string }> }).tasks.map((t) => t.state)).toEqual(['RUNNING', 'RUNNING']);
});
