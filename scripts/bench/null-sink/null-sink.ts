/**
 * NullSink: reports every record sent and does nothing else, so that a benchmark measures the
 * bus and not a provider. The benchmark's workers load it through `plugin.path` (this
 * directory is a connector package), and it is registered with `POST /connectors` like any
 * other connector.
 *
 * With `progress.file`, each task keeps `<file>.<task>` holding "<records> <time of the last
 * put>", rewritten in place after every put: the benchmark follows it without asking the
 * worker anything (a /metrics scrape per poll would cost the worker what it measures).
 *
 * With `latency.file`, each record whose value carries `sentAt` (epoch ms with fractions, taken
 * by the producing client just before its request) adds a line "<now − sentAt> <now − timestamp>"
 * to that file: the produce → hand-off latency, measured across processes on one machine's
 * clock, and the part of it after the worker stamped the message (its ingestion time).
 */
import { appendFileSync, closeSync, openSync, writeSync } from 'node:fs';
import { ConfigSpec, defineSinkConnector, type SinkOutcome, type SinkRecord, type SinkTask, type SinkTaskContext } from '../../../packages/sdk/src/index.ts';

const spec = ConfigSpec.builder()
  .string('progress.file', {
    documentation: 'Prefix of the per-task files holding "<records handed over> <epoch ms of the last put>"; none if empty.',
    default: '',
    importance: 'LOW',
  })
  .string('latency.file', {
    documentation:
      'Where to append "<produce → hand-off ms> <ingestion → hand-off ms>" for every record whose value has a numeric sentAt; none if empty.',
    default: '',
    importance: 'LOW',
  });

type NullSinkConfig = ReturnType<typeof spec.parse>;

/** Epoch milliseconds with sub-millisecond precision, comparable between processes. */
export const preciseNow = (): number => performance.timeOrigin + performance.now();

class NullSinkTask implements SinkTask<NullSinkConfig> {
  private latencyFile = '';
  private progress: number | undefined;
  private count = 0;
  private readonly sent: SinkOutcome = { status: 'sent' };

  async start(config: NullSinkConfig, context: SinkTaskContext): Promise<void> {
    this.latencyFile = config['latency.file'];
    if (config['progress.file']) this.progress = openSync(`${config['progress.file']}.${context.taskId}`, 'w');
  }

  async put(records: SinkRecord[]): Promise<SinkOutcome[]> {
    if (this.progress !== undefined) {
      this.count += records.length;
      // Fixed width, so that a shorter line never leaves the end of a longer one behind.
      writeSync(this.progress, `${String(this.count).padStart(12)} ${preciseNow().toFixed(3).padStart(20)}\n`, 0);
    }
    if (this.latencyFile) {
      const now = preciseNow();
      const latencies: string[] = [];
      for (const record of records) {
        const sentAt = (record.value as { sentAt?: unknown } | null)?.sentAt;
        if (typeof sentAt === 'number') latencies.push(`${(now - sentAt).toFixed(2)} ${(now - record.timestamp).toFixed(2)}`);
      }
      if (latencies.length > 0) appendFileSync(this.latencyFile, `${latencies.join('\n')}\n`);
    }
    return records.map(() => this.sent);
  }

  async stop(): Promise<void> {
    if (this.progress !== undefined) closeSync(this.progress);
    this.progress = undefined;
  }
}

export const NullSink = defineSinkConnector<NullSinkConfig>({
  className: 'NullSink',
  version: '0.0.0',
  description: 'Does nothing with the records it is handed and reports each one sent (benchmarks).',
  config: spec,
  createTask: () => new NullSinkTask(),
});
