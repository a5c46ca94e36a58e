/**
 * Apache Kafka for the benchmark: one broker in KRaft mode (broker and controller in one JVM)
 * and one Kafka Connect worker in standalone mode, both on 127.0.0.1, plus the benchmark's
 * client JVM (kafka/src/omnibus/bench/BenchClient.java). The jars come from Maven Central
 * through `mvn` (scripts/maven-jars.mjs, cached under ~/.cache/omnibus like Cassandra's); the
 * benchmark's Java classes (the client and a no-op sink connector) are compiled with javac once
 * per version of their sources. Everything started here runs in a fresh temporary directory
 * and is stopped, and that directory deleted, by `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { homedir, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { findJava, portAnswers } from '../cassandra.mjs';
import { ensureMavenJars } from '../maven-jars.mjs';
import { freePort } from '../test-support/src/worker-process.ts';
import { sleep, until } from './workload.ts';

export const KAFKA_VERSION = '3.9.2';
const HOST = '127.0.0.1';
const SUPPORT_DIR = fileURLToPath(new URL('./kafka/', import.meta.url));
const JAVA_SOURCES = join(SUPPORT_DIR, 'src');
/** The JVM settings of Kafka's own start scripts (kafka-run-class.sh, kafka-server-start.sh, connect-standalone.sh). */
const KAFKA_JVM_PERFORMANCE = ['-server', '-XX:+UseG1GC', '-XX:MaxGCPauseMillis=20', '-XX:InitiatingHeapOccupancyPercent=35', '-XX:+ExplicitGCInvokesConcurrent', '-XX:MaxInlineLevel=15', '-Djava.awt.headless=true'];
const BROKER_HEAP = ['-Xmx1G', '-Xms1G'];
const CONNECT_HEAP = ['-Xms256M', '-Xmx2G'];
const START_TIMEOUT_MS = 120_000;
const STOP_TIMEOUT_MS = 30_000;
export const NO_OP_SINK_CLASS = 'omnibus.bench.NoOpSinkConnector';

type Log = (line: string) => void;

/** What the client JVM answers to a command. */
interface ClientAnswer {
  ok?: string;
  error?: string;
  seconds?: number;
}

/** The benchmark's Kafka client JVM, driven a command at a time (see BenchClient.java). */
export class KafkaBenchClient {
  private readonly answers: string[] = [];
  private waiting: ((line: string) => void) | undefined;
  private readonly exited: Promise<number | null>;

  constructor(readonly child: ChildProcess) {
    this.exited = new Promise((resolve) => child.once('exit', resolve));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      if (this.waiting) {
        const deliver = this.waiting;
        this.waiting = undefined;
        deliver(line);
      } else this.answers.push(line);
    });
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** Sends a command (its first line, then any lines of data) and waits for its answer. */
  async command(line: string, data: string[] = []): Promise<ClientAnswer> {
    const exited = this.exited.then((code) => Promise.reject(new Error(`the Kafka bench client exited with ${code} during "${line}"`)));
    const answered = new Promise<string>((resolve) => {
      const ready = this.answers.shift();
      if (ready !== undefined) resolve(ready);
      else this.waiting = resolve;
    });
    await new Promise<void>((resolve, reject) => this.child.stdin!.write(`${[line, ...data].join('\n')}\n`, (error) => (error ? reject(error) : resolve())));
    const answer = JSON.parse(await Promise.race([answered, exited])) as ClientAnswer;
    if (answer.error !== undefined) throw new Error(`Kafka bench client, "${line}": ${answer.error}`);
    return answer;
  }
}

export interface KafkaStack {
  version: string;
  bootstrap: string;
  /** Kafka Connect's REST API, e.g. http://127.0.0.1:8083 */
  connectUrl: string;
  brokerPid: number;
  connectPid: number;
  client: KafkaBenchClient;
  /** Where the processes' logs, the broker's data and the benchmark's files live. */
  runDir: string;
  /** Stops every process started here and deletes the run's directory; with `keepLogs`, their logs are first copied to the returned directory. */
  stop(options?: { keepLogs?: boolean }): Promise<string | undefined>;
}

function cacheDir(): string {
  return join(process.env.XDG_CACHE_HOME || join(homedir(), '.cache'), 'omnibus', `kafka-${KAFKA_VERSION}`);
}

/** The broker, Connect and client classpath: jars from Maven Central, cached. */
function ensureKafkaJars(log: Log): Promise<string> {
  const jar = `kafka_2.13-${KAFKA_VERSION}.jar`;
  return ensureMavenJars({
    libDir: join(cacheDir(), 'lib'),
    pom: join(SUPPORT_DIR, 'pom.xml'),
    properties: { 'kafka.version': KAFKA_VERSION },
    markerJar: jar,
    m2Jar: join(homedir(), '.m2', 'repository', 'org', 'apache', 'kafka', 'kafka_2.13', KAFKA_VERSION, jar),
    what: `Apache Kafka ${KAFKA_VERSION} (kafka_2.13, connect-runtime, connect-json)`,
    log,
  });
}

function javaSources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true, recursive: true })
    .filter((entry) => entry.isFile())
    .map((entry) => join(entry.parentPath, entry.name))
    .sort();
}

/** The benchmark's Java classes (and its ServiceLoader manifest), compiled once per version of their sources. */
async function ensureBenchClasses(java: string, libDir: string, log: Log): Promise<string> {
  const files = javaSources(JAVA_SOURCES);
  const digest = createHash('sha256');
  for (const file of files) digest.update(file.slice(JAVA_SOURCES.length)).update(readFileSync(file));
  const classes = join(cacheDir(), `bench-classes-${digest.digest('hex').slice(0, 16)}`);
  if (existsSync(classes)) return classes;
  await mkdir(dirname(classes), { recursive: true });
  const partial = await mkdtemp(`${classes}.partial-`);
  const javac = java === 'java' ? 'javac' : join(dirname(java), 'javac');
  log(`compiling the benchmark's Kafka client and no-op sink connector (${javac})...`);
  try {
    const sources = files.filter((file) => file.endsWith('.java'));
    await runToEnd(javac, ['-nowarn', '-cp', `${libDir}/*`, '-d', partial, ...sources]);
    for (const file of files.filter((name) => !name.endsWith('.java'))) {
      const target = join(partial, file.slice(JAVA_SOURCES.length + 1));
      await mkdir(dirname(target), { recursive: true });
      await writeFile(target, readFileSync(file));
    }
    await rename(partial, classes);
  } catch (error) {
    await rm(partial, { recursive: true, force: true });
    if (!existsSync(classes)) throw error;
  }
  return classes;
}

function runToEnd(command: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.stderr.on('data', (chunk: Buffer) => (output += chunk.toString()));
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`${command} failed (exit ${code}):\n${output.trim()}`))));
  });
}

const properties = (entries: Record<string, string | number>) =>
  `${Object.entries(entries)
    .map(([key, value]) => `${key}=${value}`)
    .join('\n')}\n`;

/** A KRaft cluster id: 16 random bytes in URL-safe base64, never starting with '-' (it would read as an option). */
function clusterId(): string {
  for (;;) {
    const id = randomBytes(16).toString('base64url');
    if (!id.startsWith('-')) return id;
  }
}

/** Starts a broker (16 partitions per new topic by default), a Connect worker and the client. */
export async function startKafka(options: { log: Log; partitions: number }): Promise<KafkaStack> {
  const { log } = options;
  const java = await findJava();
  const libDir = await ensureKafkaJars(log);
  const classes = await ensureBenchClasses(java, libDir, log);
  const runDir = await mkdtemp(join(tmpdir(), 'omnibus-bench-kafka-'));
  const children: ChildProcess[] = [];
  const log4j = `-Dlog4j.configuration=file:${join(SUPPORT_DIR, 'log4j.properties')}`;
  const launch = (name: string, args: string[], stdin: 'ignore' | 'pipe' = 'ignore') => {
    const logFd = openSync(join(runDir, `${name}.log`), 'a');
    const child = spawn(java, args, { cwd: runDir, stdio: [stdin, stdin === 'pipe' ? 'pipe' : logFd, logFd] });
    closeSync(logFd);
    children.push(child);
    return child;
  };
  const logTail = (name: string) => {
    try {
      return readFileSync(join(runDir, `${name}.log`), 'utf8').trimEnd().split('\n').slice(-30).join('\n');
    } catch {
      return '(no log)';
    }
  };
  const stop = async ({ keepLogs = false } = {}) => {
    // Connect first (it leaves its consumer groups), then the client, then the broker.
    for (const child of children.reverse()) await stopChild(child);
    let kept: string | undefined;
    if (keepLogs) {
      kept = `${runDir}-logs`;
      await mkdir(kept, { recursive: true });
      for (const name of readdirSync(runDir).filter((file) => file.endsWith('.log'))) await copyFile(join(runDir, name), join(kept, name));
    }
    await rm(runDir, { recursive: true, force: true });
    return kept;
  };
  try {
    const port = await freePort();
    const controllerPort = await freePort();
    const restPort = await freePort();
    const bootstrap = `${HOST}:${port}`;
    const serverProperties = join(runDir, 'server.properties');
    await writeFile(
      serverProperties,
      properties({
        'process.roles': 'broker,controller',
        'node.id': 1,
        'controller.quorum.voters': `1@${HOST}:${controllerPort}`,
        listeners: `PLAINTEXT://${bootstrap},CONTROLLER://${HOST}:${controllerPort}`,
        'advertised.listeners': `PLAINTEXT://${bootstrap}`,
        'controller.listener.names': 'CONTROLLER',
        'inter.broker.listener.name': 'PLAINTEXT',
        'listener.security.protocol.map': 'CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT',
        'log.dirs': join(runDir, 'data'),
        'num.partitions': options.partitions,
        'offsets.topic.replication.factor': 1,
        'transaction.state.log.replication.factor': 1,
        'transaction.state.log.min.isr': 1,
        'share.coordinator.state.topic.replication.factor': 1,
        'group.initial.rebalance.delay.ms': 0,
      }),
    );
    const classpath = `${libDir}/*`;
    await runToEnd(java, ['-cp', classpath, log4j, 'kafka.tools.StorageTool', 'format', '-t', clusterId(), '-c', serverProperties]);
    const began = Date.now();
    const broker = launch('broker', [...BROKER_HEAP, ...KAFKA_JVM_PERFORMANCE, log4j, '-cp', classpath, 'kafka.Kafka', serverProperties]);
    log(`starting Kafka ${KAFKA_VERSION} (KRaft, one broker, pid ${broker.pid}, ${options.partitions} partitions per topic, data in ${runDir})...`);
    await untilUp(() => portAnswers(HOST, port), broker, 'the Kafka broker', () => logTail('broker'));

    const workerProperties = join(runDir, 'connect-standalone.properties');
    await writeFile(
      workerProperties,
      properties({
        'bootstrap.servers': bootstrap,
        'key.converter': 'org.apache.kafka.connect.storage.StringConverter',
        'value.converter': 'org.apache.kafka.connect.json.JsonConverter',
        'value.converter.schemas.enable': 'false',
        'offset.storage.file.filename': join(runDir, 'connect.offsets'),
        'offset.flush.interval.ms': 10_000,
        listeners: `http://${HOST}:${restPort}`,
        // The no-op sink is on the classpath with a ServiceLoader manifest: no reflective scan of every jar.
        'plugin.discovery': 'service_load',
      }),
    );
    const connectUrl = `http://${HOST}:${restPort}`;
    const connect = launch('connect', [...CONNECT_HEAP, ...KAFKA_JVM_PERFORMANCE, log4j, '-cp', `${classpath}:${classes}`, 'org.apache.kafka.connect.cli.ConnectStandalone', workerProperties]);
    await untilUp(
      async () => {
        try {
          return (await fetch(`${connectUrl}/connector-plugins`)).ok;
        } catch {
          return false;
        }
      },
      connect,
      'Kafka Connect',
      () => logTail('connect'),
    );
    const client = new KafkaBenchClient(launch('client', [...KAFKA_JVM_PERFORMANCE, log4j, '-cp', `${classpath}:${classes}`, 'omnibus.bench.BenchClient', bootstrap], 'pipe'));
    log(`Kafka ${KAFKA_VERSION} broker at ${bootstrap} and Kafka Connect (standalone, pid ${connect.pid}) at ${connectUrl} ready in ${((Date.now() - began) / 1000).toFixed(1)} s`);
    return { version: KAFKA_VERSION, bootstrap, connectUrl, brokerPid: broker.pid!, connectPid: connect.pid!, client, runDir, stop };
  } catch (error) {
    const kept = await stop({ keepLogs: true });
    throw new Error(`${(error as Error).message}\n(the processes' logs: ${kept})`);
  }
}

async function untilUp(check: () => Promise<boolean>, child: ChildProcess, what: string, logTail: () => string): Promise<void> {
  try {
    await until(
      async () => {
        if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
        return check();
      },
      what,
      START_TIMEOUT_MS,
      250,
    );
  } catch (error) {
    throw new Error(`${(error as Error).message}; its log ends with:\n${logTail()}`);
  }
}

async function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once('exit', resolve));
  child.kill('SIGTERM');
  const timedOut = await Promise.race([exited.then(() => false), sleep(STOP_TIMEOUT_MS).then(() => true)]);
  if (timedOut) {
    child.kill('SIGKILL');
    await exited;
  }
}
