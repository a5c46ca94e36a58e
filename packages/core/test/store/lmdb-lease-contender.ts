// A worker process for the cross-process lease test: opens the LMDB directory it is given,
// says "ready", and on "go" races for leases race/0 … race/N-1, then reports the ones it won.
import { LmdbStore } from '../../src/store/lmdb.ts';

const [directory, owner, count] = process.argv.slice(2);
const store = new LmdbStore(directory!, { sweepIntervalMs: 0 });
await store.init();
await new Promise<void>((resolve) => {
  process.once('message', () => resolve());
  process.send!('ready');
});
const now = Date.now();
const won: string[] = [];
for (let i = 0; i < Number(count); i++) {
  const name = `race/${i}`;
  if (await store.acquireLease(name, owner!, 60_000, now)) won.push(name);
}
await store.setWatermark('c', 't', 0, 42);
// Records whose shape only this process uses: both processes add msgpack shared structures at once.
await store.putDeliveries(
  Array.from({ length: 20 }, (_, i) => ({
    connector: owner!,
    messageId: `m-${i}`,
    topic: 't',
    shard: 0,
    ts: i,
    state: 'sent' as const,
    attempts: i,
    epoch: 1,
    workerId: owner!,
    updatedAt: now,
    ...(owner!.endsWith('a') ? { lastError: { code: owner!, message: `try ${i}` } } : { providerId: `${owner}-${i}`, nextAttemptAt: i }),
  })),
);
await store.close();
process.send!(won, () => process.exit(0));
