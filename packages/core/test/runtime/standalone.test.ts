// Standalone mode as connect-standalone: one `omnibus start` process on LMDB, connectors given
// as files at start; their configs and target states persist across restarts of the process.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ConnectorInfo } from '../../src/runtime/types.ts';
import { eventually } from './helpers.ts';
import type { WorkerProcess } from '@omnibus/test-support';
import { connectorStatus, startWorkerProcess } from './processes.ts';

let dir: string;
let store: string;
const processes: WorkerProcess[] = [];

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'omnibus-standalone-'));
  store = `lmdb:${join(dir, 'data')}`;
});

afterAll(async () => {
  await Promise.all(processes.map((p) => p.kill()));
  await rm(dir, { recursive: true, force: true });
});

async function start(args: string[] = []): Promise<WorkerProcess> {
  const worker = await startWorkerProcess(store, args);
  processes.push(worker);
  return worker;
}

const running = (worker: WorkerProcess, name: string, state = 'RUNNING') =>
  eventually(
    () => connectorStatus(worker, name),
    (s) => s.connector.state === state && s.tasks.length > 0 && s.tasks.every((t) => t.state === state && t.worker_id === worker.id),
    `${name} ${state} on ${worker.id}`,
  );

describe('standalone mode', () => {
  it('--connector files create connectors at start; configs and target states survive restarts', async () => {
    const wrapped = join(dir, 'wrapped.json');
    const flat = join(dir, 'flat.json');
    await writeFile(wrapped, JSON.stringify({ name: 'wrapped', config: { 'connector.class': 'FileSink', topics: 'in', file: join(dir, 'wrapped.jsonl') } }));
    // A flat map, with a number where Kafka's files would have a string: accepted as "2".
    await writeFile(flat, JSON.stringify({ name: 'flat', 'connector.class': 'FileStreamSink', 'tasks.max': 2, topics: 'in', file: join(dir, 'flat.jsonl') }));

    let worker = await start(['--connector', wrapped, flat]);
    await running(worker, 'wrapped');
    const flatStatus = await running(worker, 'flat');
    expect(flatStatus.tasks).toHaveLength(2);
    expect((await worker.request('GET', '/connectors')).body).toEqual(['flat', 'wrapped']);
    expect((await worker.request('GET', '/health')).status).toBe(200);
    expect((await worker.request('PUT', '/connectors/wrapped/pause')).status).toBe(202);
    await running(worker, 'wrapped', 'PAUSED');
    const before = (await worker.request('GET', '/connectors/flat')).body as ConnectorInfo;
    expect(await worker.stop()).toBe(0);

    // Without the flags: everything is still there, in the state it was left in.
    worker = await start();
    await running(worker, 'wrapped', 'PAUSED');
    await running(worker, 'flat');
    expect((await worker.request('GET', '/connectors/flat')).body).toEqual(before);
    expect(await worker.stop()).toBe(0);

    // With a changed file: the connector is updated, and stays paused.
    await writeFile(wrapped, JSON.stringify({ name: 'wrapped', config: { 'connector.class': 'FileSink', 'tasks.max': '3', topics: 'in', file: join(dir, 'wrapped.jsonl') } }));
    worker = await start(['--connector', wrapped]);
    const updated = await eventually(() => connectorStatus(worker, 'wrapped'), (s) => s.tasks.length === 3 && s.tasks.every((t) => t.state === 'PAUSED'), 'wrapped with 3 paused tasks');
    expect(updated.connector.state).toBe('PAUSED');
    expect(await worker.stop()).toBe(0);
  });

  it("exports its LMDB store's write figures on /metrics", async () => {
    const worker = await start();
    const figure = async (name: string): Promise<number> => {
      const text = String((await worker.request('GET', '/metrics')).body);
      const match = new RegExp(`^${name} (\\S+)$`, 'm').exec(text);
      if (!match) throw new Error(`${name} is missing from /metrics`);
      return Number(match[1]);
    };
    expect((await worker.request('POST', '/topics', { name: 'figures', shards: 4 })).status).toBe(201);
    const putsBefore = await figure('omnibus_lmdb_puts_total');
    const transactionsBefore = await figure('omnibus_lmdb_write_transactions_total');
    const produced = await worker.request('POST', '/topics/figures/messages', { messages: Array.from({ length: 50 }, (_, n) => ({ key: `k${n}`, value: { n } })) });
    expect(produced.status).toBe(202);
    // A buffer row per message, in one transaction (with whatever else the worker wrote meanwhile).
    const putsAfterGenerated = await figure('omnibus_lmdb_puts_total');
    expect(putsAfterGenerated - putsBefore).toBeGreaterThanOrEqual(50);
    // A producer's own ids do not say where their message is: each also gets an id index row.
    const ownIds = await worker.request('POST', '/topics/figures/messages', { messages: Array.from({ length: 10 }, (_, n) => ({ id: `own-${n}`, key: `k${n}`, value: { n } })) });
    expect(ownIds.status).toBe(202);
    expect((await figure('omnibus_lmdb_puts_total')) - putsAfterGenerated).toBeGreaterThanOrEqual(20);
    expect(await figure('omnibus_lmdb_write_transactions_total')).toBeGreaterThan(transactionsBefore);
    expect(await figure('omnibus_lmdb_pages_written_total')).toBeGreaterThan(0);
    expect(await figure('omnibus_lmdb_used_bytes')).toBeGreaterThan(0);
    expect(await worker.stop()).toBe(0);
  });

  it('a broken connector file stops the start with a clear message', async () => {
    const broken = join(dir, 'broken.json');
    await writeFile(broken, JSON.stringify({ config: { 'connector.class': 'FileSink' } }));
    const failure = await startWorkerProcess(store, ['--connector', broken]).then(
      (worker) => {
        processes.push(worker);
        throw new Error('the worker started');
      },
      (error: unknown) => (error as Error).message,
    );
    expect(failure).toContain(`connector file ${broken} names no connector`);

    const invalid = join(dir, 'invalid.json');
    await writeFile(invalid, JSON.stringify({ name: 'invalid', 'connector.class': 'FileSink', topics: 'in' }));
    const rejected = await startWorkerProcess(store, ['--connector', invalid]).then(
      async (worker) => {
        processes.push(worker);
        // Started, then the connector is refused: the process ends with the validation error.
        await worker.exited;
        return worker.output();
      },
      (error: unknown) => (error as Error).message,
    );
    expect(rejected).toContain('Missing required configuration "file"');
  });
});
