/**
 * A BullMQ worker process with a no-op processor, for the comparison: started by bullmq.ts
 * with `<redis port> <queue> <concurrency>`, it tells its parent (over IPC) how many jobs it
 * has completed, every 20 ms while it works, and when asked to stop.
 */
import { bullmq } from './deps.ts';

const [port, queueName, concurrency] = process.argv.slice(2);
const { Worker } = await bullmq();
let completed = 0;
let failed = 0;
/** When the last job completed (epoch ms with fractions). */
let lastAt = 0;
const worker = new Worker(queueName!, async () => undefined, {
  connection: { host: '127.0.0.1', port: Number(port), maxRetriesPerRequest: null },
  concurrency: Number(concurrency),
  removeOnComplete: { count: 0 },
});
worker.on('completed', () => {
  completed += 1;
  lastAt = performance.timeOrigin + performance.now();
});
worker.on('failed', () => {
  failed += 1;
});
await worker.waitUntilReady();
process.send?.({ ready: true });
let reported = -1;
const timer = setInterval(() => {
  if (completed === reported) return;
  reported = completed;
  process.send?.({ completed, failed, at: lastAt });
}, 20);
process.on('message', (message: { stop?: boolean }) => {
  if (!message.stop) return;
  clearInterval(timer);
  void worker.close().then(() => {
    process.send?.({ completed, failed, at: lastAt, stopped: true });
    process.disconnect?.();
  });
});
