/**
 * Scaling a provider-bound channel: the development SMSC answers each bind at a fixed rate
 * (`bindRatePerSecond`, as an SMSC enforces a contracted throughput per bind), so an SMS
 * connector's throughput is its binds' count times that rate, not the CPU's. Two workers on
 * one Cassandra keyspace run SmsSink with tasks.max=1 (one bind), then tasks.max=4 (four binds
 * over the two workers, changed with PUT config); each phase's delivered rate is measured from
 * the SMSC's own answer times (whole seconds from the 10th percentile of each phase's answers; messages are produced
 * while the connector is paused, then it is resumed). Messages are checked at the SMSC: none twice, none missing.
 *
 *   node --conditions=omnibus-source --import tsx scripts/bench/sms-scaling.ts [--rate 50] [--contact-point 127.0.0.1:9042]
 */
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { startSmscDevServer } from '../../packages/connector-sms/src/dev-server.ts';
import { loadWorkerConfig } from '../../packages/core/src/runtime/worker-config.ts';
import { Worker } from '../../packages/core/src/worker/worker.ts';
import { dropKeyspace } from './raw.ts';
import { sleep, until } from './workload.ts';

export interface SmsScalingFigures {
  /** Submits answered per second on each bind. */
  bindRatePerSecond: number;
  /** Delivered messages per second with one task (one bind), then with four over two workers. */
  oneTask: number;
  fourTasks: number;
  /** fourTasks / oneTask: about 4 when the provider, not the CPU, bounds the channel. */
  speedup: number;
  /** Workers the four tasks ran on. */
  workers: number;
  duplicates: number;
  missing: number;
}

export interface SmsScalingOptions {
  contactPoint: string;
  localDataCenter: string;
  bindRatePerSecond?: number;
  /** Seconds of traffic per phase at the phase's expected rate. */
  seconds?: number;
  log?: (line: string) => void;
}

const SHARDS = 16;
const CONNECTOR = 'sms-scaling';
const TOPIC = 'sms-scaling';

export async function benchSmsScaling(options: SmsScalingOptions): Promise<SmsScalingFigures> {
  const log = options.log ?? ((line: string) => void process.stderr.write(`${line}\n`));
  const rate = options.bindRatePerSecond ?? 50;
  const seconds = options.seconds ?? 10;
  const keyspace = `omnibus_bench_sms_${Date.now().toString(36)}`;
  const store = `cql://${options.contactPoint}/${keyspace}?dc=${options.localDataCenter}`;
  const smsc = await startSmscDevServer({ bindRatePerSecond: rate });
  const workers: Worker[] = [];
  try {
    for (let i = 0; i < 2; i++) {
      const worker = new Worker(loadWorkerConfig({ store, listeners: 'http://127.0.0.1:0', 'log.level': 'warn', 'heartbeat.interval.ms': 500, 'lease.ttl.ms': 3000 }), {
        distributionDirs: [fileURLToPath(new URL('../../packages/omnibus', import.meta.url))],
      });
      await worker.start();
      workers.push(worker);
    }
    const api = workers[0]!.url;
    await call(api, 'POST', '/topics', { name: TOPIC, shards: SHARDS }, [201]);
    const config = (tasks: number) => ({
      'connector.class': 'SmsSink',
      'tasks.max': String(tasks),
      topics: TOPIC,
      'sms.transport': 'smpp',
      'sms.from': 'Omnibus',
      'smpp.host': smsc.host,
      'smpp.port': String(smsc.port),
      'smpp.system.id': 'bench',
      'smpp.password': 'bench',
      'smpp.window.size': '20',
      // No receipts: the figure is the submit rate, and no receipt may reach a worker stopping at the end.
      'smpp.registered.delivery': 'false',
    });
    await call(api, 'POST', '/connectors', { name: CONNECTOR, config: config(1) }, [201]);
    await runningTasks(api, 1);

    let produced = 0;
    const phase = async (label: string, expectedRate: number): Promise<number> => {
      const count = Math.round(expectedRate * seconds);
      const first = produced;
      // Produced while the connector is paused, so that the phase measures the binds, not the producer.
      await call(api, 'PUT', `/connectors/${CONNECTOR}/pause`, undefined, [202]);
      const texts = Array.from({ length: count }, (_, i) => `Omnibus scaling ${label} message ${first + i}`);
      for (let i = 0; i < count; i += 500) {
        const messages = texts.slice(i, i + 500).map((text, j) => {
          const to = `+3361${String(first + i + j).padStart(7, '0')}`;
          return { key: to, value: { to, text } };
        });
        await call(workers[(i / 500) % 2]!.url, 'POST', `/topics/${TOPIC}/messages`, { messages }, [202]);
      }
      produced += count;
      await call(api, 'PUT', `/connectors/${CONNECTOR}/resume`, undefined, [202]);
      await until(async () => texts.every((text) => smsc.countByText(text) > 0), `the ${label} phase's messages at the SMSC`, (seconds * 4 + 60) * 1000, 200);
      const wanted = new Set(texts);
      const times = smsc.submits
        .filter((s) => wanted.has(s.text) && s.answeredAt !== undefined)
        .map((s) => s.answeredAt!)
        .sort((a, b) => a - b);
      // Whole seconds from the 10th percentile of the answers: the tasks' start (resuming,
      // reading) and the tail (a task whose shards held fewer messages finishing first) are not
      // the binds' rate, and the SMSC counts its cap per second (answers come in bursts).
      const start = times[Math.floor(times.length * 0.1)]!;
      const wholeSeconds = Math.max(1, Math.floor((times[Math.ceil(times.length * 0.9) - 1]! - start) / 1000));
      const figure = times.filter((t) => t >= start && t < start + wholeSeconds * 1000).length / wholeSeconds;
      log(`sms scaling: ${label}: ${count} messages delivered at ${figure.toFixed(1)} msg/s (SMSC answer times)`);
      return figure;
    };

    const oneTask = await phase('1 task', rate);
    await call(api, 'PUT', `/connectors/${CONNECTOR}/config`, config(4), [200]);
    const status = await runningTasks(api, 4);
    const workersUsed = new Set(status.map((t) => t.worker_id)).size;
    const fourTasks = await phase(`4 tasks over ${workersUsed} workers`, rate * 4);
    await sleep(500);
    const figures: SmsScalingFigures = {
      bindRatePerSecond: rate,
      oneTask,
      fourTasks,
      speedup: fourTasks / oneTask,
      workers: workersUsed,
      duplicates: smsc.duplicates().length,
      missing: produced - smsc.messages.length + smsc.duplicates().length,
    };
    log(
      `sms scaling: SMSC capped at ${rate} submits/s per bind: 1 task ${oneTask.toFixed(1)} msg/s, 4 tasks over ${workersUsed} workers ${fourTasks.toFixed(1)} msg/s ` +
        `(×${figures.speedup.toFixed(2)}), ${figures.duplicates} duplicates, ${figures.missing} missing`,
    );
    return figures;
  } finally {
    await smsc.close();
    for (const worker of workers) await worker.stop().catch(() => undefined);
    await dropKeyspace([options.contactPoint], options.localDataCenter, keyspace, log);
  }
}

async function runningTasks(url: string, count: number): Promise<Array<{ state: string; worker_id: string }>> {
  let tasks: Array<{ state: string; worker_id: string }> = [];
  await until(
    async () => {
      tasks = ((await call(url, 'GET', `/connectors/${CONNECTOR}/status`, undefined, [200])) as { tasks: typeof tasks }).tasks;
      return tasks.length === count && tasks.every((t) => t.state === 'RUNNING');
    },
    `${count} ${CONNECTOR} tasks running`,
    60_000,
    100,
  );
  return tasks;
}

async function call(base: string, method: string, path: string, body: unknown, ok: number[]): Promise<unknown> {
  const response = await fetch(`${base}${path}`, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    ...(body === undefined ? {} : { body: JSON.stringify(body) }),
  });
  const text = await response.text();
  if (!ok.includes(response.status)) throw new Error(`${method} ${path} answered HTTP ${response.status}: ${text.slice(0, 300)}`);
  return text ? (JSON.parse(text) as unknown) : undefined;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  const { values } = parseArgs({ options: { rate: { type: 'string' }, 'contact-point': { type: 'string' }, dc: { type: 'string' } } });
  await benchSmsScaling({
    contactPoint: values['contact-point'] ?? '127.0.0.1:9042',
    localDataCenter: values.dc ?? 'datacenter1',
    ...(values.rate ? { bindRatePerSecond: Number(values.rate) } : {}),
  });
}
