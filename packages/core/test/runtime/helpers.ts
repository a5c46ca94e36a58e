// Shared pieces of the runtime tests: real workers on a real store, and waiting for the
// cluster to converge (the reconcile loop is asynchronous, as Kafka's status topic is).
import { readFile } from 'node:fs/promises';
import { expect } from 'vitest';
import { fileURLToPath } from 'node:url';
import { Worker } from '../../src/worker/worker.ts';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';

/** A plugin.path directory holding the SplitSink test connector. */
export const FIXTURE_PLUGINS = fileURLToPath(new URL('./fixtures/split-sink', import.meta.url));

/** Fast beats and short leases, so that takeovers happen within a test's patience. */
export const FAST_CLUSTER = { 'heartbeat.interval.ms': 200, 'lease.ttl.ms': 2000 };

export async function startWorker(store: string, overrides: Record<string, unknown> = {}): Promise<Worker> {
  const worker = new Worker(
    workerConfigSpec.parse({
      store,
      listeners: ['http://127.0.0.1:0'],
      'log.level': process.env.OMNIBUS_TEST_LOG_LEVEL ?? 'silent',
      'plugin.path': [FIXTURE_PLUGINS],
      ...FAST_CLUSTER,
      ...overrides,
    }),
  );
  await worker.start();
  return worker;
}

/** Polls `probe` until `accept` holds; fails with the last value seen after `timeoutMs`. */
export async function eventually<T>(probe: () => Promise<T>, accept: (value: T) => boolean, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: T | undefined;
  let lastError: unknown;
  for (;;) {
    try {
      last = await probe();
      lastError = undefined;
      if (accept(last)) return last;
    } catch (error) {
      lastError = error;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out waiting for ${what}; last seen: ${lastError ? String(lastError) : JSON.stringify(last)}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/** The registry error a herder call rejects with. */
export async function rejection(promise: Promise<unknown>): Promise<{ status: number; message: string }> {
  try {
    await promise;
  } catch (error) {
    return { status: (error as { status?: number }).status ?? 500, message: (error as Error).message };
  }
  throw new Error('expected the call to fail');
}

/** A REST call to a worker; the JSON answer (or {} for an empty one) and its status. */
export async function call(worker: Pick<Worker, 'url'>, method: string, path: string, body?: unknown): Promise<{ status: number; body: Record<string, unknown> }> {
  const response = await fetch(`${worker.url}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  return { status: response.status, body: (text ? JSON.parse(text) : {}) as Record<string, unknown> };
}

/** The records a FileSink wrote to `file` so far, in file order (none if it does not exist yet). */
export async function fileSinkLines<T>(file: string): Promise<T[]> {
  return (await readFile(file, 'utf8').catch(() => ''))
    .split('\n')
    .filter((line) => line !== '')
    .map((line) => JSON.parse(line) as T);
}

/** A line a FileSink wrote for a message whose value numbers its key's messages in produce order. */
export interface SequencedLine {
  id: string;
  key: string;
  value: { seq: number };
}

/**
 * Every produced id handed over exactly once, and each of the `keys` keys' messages handed in
 * produce order: sequence numbers 0 to `rounds` - 1, none missing.
 */
export function expectOnceEachInKeyOrder(lines: readonly SequencedLine[], ids: readonly string[], keys: number, rounds: number): void {
  const seen = new Map<string, number>();
  for (const line of lines) seen.set(line.id, (seen.get(line.id) ?? 0) + 1);
  expect([...seen].filter(([, count]) => count > 1)).toEqual([]);
  expect(ids.filter((id) => !seen.has(id))).toEqual([]);
  expect(seen.size).toBe(ids.length);
  const perKey = new Map<string, number[]>();
  for (const line of lines) perKey.set(line.key, [...(perKey.get(line.key) ?? []), line.value.seq]);
  expect(perKey.size).toBe(keys);
  for (const [key, seqs] of perKey) expect({ key, seqs }).toEqual({ key, seqs: Array.from({ length: rounds }, (_, i) => i) });
}

/** Waits until the group's counts show all `count` of its messages `sent` by the connector, and nothing in any other state. */
export async function expectGroupAllSent(worker: Pick<Worker, 'url'>, group: string, connector: string, count: number): Promise<void> {
  type Counts = { connectors?: Record<string, Record<string, number>> };
  const report = await eventually(
    () => call(worker, 'GET', `/groups/${group}`),
    (g) => (g.body as Counts).connectors?.[connector]?.sent === count,
    `every message of group ${group} sent by ${connector}`,
  );
  expect((report.body as Counts).connectors![connector]).toEqual({ sent: count });
}
