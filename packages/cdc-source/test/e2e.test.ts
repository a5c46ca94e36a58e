/**
 * End to end, as an operator runs it: `omnibus start` workers on an LMDB store, the CDC
 * connector and a FileSink registered over the REST API; changes written to the (fixture's)
 * CDC log reach the file through the topic, in order per key, none lost across a worker
 * restart and a generation switch.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { WorkerProcess } from '@omnibus/test-support';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { jsonSchemaForTable, type Envelope } from '../src/index.ts';
import { cdcTestbed, type CdcTestbed } from './helpers.ts';

/** Fast beats and short leases, so that the runtime's periodic work (config re-reads, lease takeovers) fits in this test. */
const startWorker = (store: string): Promise<WorkerProcess> =>
  WorkerProcess.start({ store, env: { OMNIBUS_HEARTBEAT_INTERVAL_MS: '250', OMNIBUS_LEASE_TTL_MS: '2000' } });

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

async function waitForLines(path: string, count: number, worker: WorkerProcess, timeoutMs = 40_000): Promise<FileLine[]> {
  const deadline = Date.now() + timeoutMs;
  let lines = fileLines(path);
  while (lines.length < count && Date.now() < deadline) {
    await new Promise((resolve) => setTimeout(resolve, 200));
    lines = fileLines(path);
  }
  if (lines.length < count) throw new Error(`${lines.length} of ${count} lines arrived; worker log:\n${worker.output()}`);
  return lines;
}

let bed: CdcTestbed;
let dir: string;
let worker: WorkerProcess | undefined;

beforeAll(async () => {
  bed = await cdcTestbed('cdc_e2e');
  await bed.fixture.addGeneration(Date.now() - 60_000, { vnodes: 4, shards: 2 });
  dir = mkdtempSync(join(tmpdir(), 'cdc-e2e-'));
});

afterAll(async () => {
  await worker?.stop();
  await bed?.drop();
  if (dir) rmSync(dir, { recursive: true, force: true });
});

it('streams changes to a FileSink through the runtime, across a worker restart and a generation switch', { timeout: 180_000 }, async () => {
  const orders = await bed.fixture.createTable({ name: 'orders', partitionKey: [{ name: 'id', type: 'int' }], columns: [{ name: 'n', type: 'int' }] });
  const topic = `db.${bed.ks.keyspace}.orders`;
  const file = join(dir, 'changes.jsonl');
  const store = `lmdb:${join(dir, 'store')}`;
  const keys = [1, 2, 3, 4, 5, 6];

  worker = await startWorker(store);
  // The topic carries the table's documented schema: the bus itself checks every event against it.
  const metadata = await bed.ks.client.metadata.getTable(bed.ks.keyspace, 'orders');
  const created = await worker.request('POST', '/topics', { name: topic, shards: 4, schema: jsonSchemaForTable(metadata) });
  expect(created.status).toBe(201);
  const sink = await worker.request('POST', '/connectors', { name: 'file', config: { 'connector.class': 'FileSink', topics: topic, file, 'tasks.max': '1' } });
  expect(sink.status).toBe(201);
  const cdcConfig = Object.fromEntries(
    Object.entries(bed.config(['orders'], { 'scylla.initial.lookback.ms': 30_000, 'heartbeat.interval.ms': 500, 'tasks.max': 2 })).map(([k, v]) => [k, String(v)]),
  );
  const source = await worker.request('POST', '/connectors', { name: 'cdc', config: cdcConfig });
  expect(source.status).toBe(201);

  for (const id of keys) await orders.insert({ id, n: 0 });
  await waitForLines(file, keys.length, worker);
  await worker.stop();

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
  const status = await worker.request('GET', '/connectors/cdc/status');
  expect(status.body).toMatchObject({ connector: { state: 'RUNNING' } });
  expect((status.body as { tasks: Array<{ state: string }> }).tasks.map((t) => t.state)).toEqual(['RUNNING', 'RUNNING']);
});
