/**
 * `omnibus start` in a child process, as an operator runs it: for the tests and the benchmark
 * that must see the runtime from outside (its own event loop, a real SIGTERM or SIGKILL, its
 * REST API over a socket, its CPU and memory as the kernel counts them).
 *
 * Node built-ins only, and nothing from vitest: the benchmark uses it outside a test run.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../../', import.meta.url));
const CLI = fileURLToPath(new URL('../../../packages/omnibus/src/main.ts', import.meta.url));

/**
 * The Node flags of the `omnibus` script in the root package.json (those before its `--import`),
 * so that a worker started here runs as `pnpm omnibus start` does.
 */
export function omnibusNodeFlags(): string[] {
  const { scripts } = JSON.parse(readFileSync(`${REPO}package.json`, 'utf8')) as { scripts: Record<string, string> };
  const words = scripts.omnibus!.split(/\s+/);
  return words.slice(1, words.indexOf('--import')).filter((word) => word.startsWith('--'));
}

/** Generous: a cold tsx compile on a loaded 2-core machine, plus a store's schema creation. */
const START_TIMEOUT_MS = 120_000;
/** How long a SIGTERMed worker may take to hand its tasks over before it is SIGKILLed. */
const STOP_TIMEOUT_MS = 20_000;
const TAIL_LINES = 60;
/** USER_HZ: what /proc/<pid>/stat counts CPU time in (100 on every Linux build that matters). */
const CLOCK_TICKS_PER_SECOND = 100;

export type LogLevel = 'trace' | 'debug' | 'info' | 'warn' | 'error' | 'fatal' | 'silent';
/** The levels at which the worker logs its "worker started" line, the one that says where it listens. */
const LEVELS_LOGGING_START: ReadonlySet<LogLevel> = new Set(['trace', 'debug', 'info']);

export interface WorkerProcessOptions {
  /** The store URL: `lmdb:<dir>` or `cql://host:port/keyspace?dc=<dc>`. */
  store: string;
  /**
   * The port of its listener on 127.0.0.1. Left out, the worker binds port 0 and the port is read
   * from its log (or, at a level that hides that line, a free one is picked first). A fixed port
   * lets a killed worker come back at the same address, and so with the same worker id.
   */
  port?: number;
  /** OMNIBUS_LOG_LEVEL of the worker; default info. */
  logLevel?: LogLevel;
  /** Arguments after `start --store … --listeners …`, e.g. `['--connector', file]`. */
  args?: string[];
  /** Added to this process's environment, e.g. `OMNIBUS_LEASE_TTL_MS`. */
  env?: Record<string, string>;
  /** Node flags before the script, after those of `pnpm omnibus` (omnibusNodeFlags), e.g. `--cpu-prof`. */
  nodeFlags?: string[];
  /**
   * The script run in place of the Omnibus CLI, with the same arguments; it must serve
   * `GET /health`. The benchmark's HTTP floor (a bare REST server) is started this way.
   */
  script?: string;
  /** Names the worker in errors, where a test runs several. */
  name?: string;
  /**
   * A file that gets every line it writes (appended), beside the last lines kept for errors.
   * Left out, `OMNIBUS_TEST_WORKER_LOGS` (a directory) names one per worker: `<dir>/<name>.log`,
   * to read a failed fault scenario's whole story afterwards.
   */
  logFile?: string;
}

export interface JsonResponse {
  status: number;
  /** Parsed JSON when the answer is JSON, its text otherwise, undefined when empty. */
  body: unknown;
  /** The Retry-After header, when the answer has one (a 503, a 429). */
  retryAfter?: string;
}

export class WorkerProcess {
  /**
   * Keep-alive connections, as a real client uses them (the benchmark's load depends on it).
   * With a socket timeout set, Node's agent also heeds the server's "Keep-Alive: timeout=5" and
   * drops an idle connection a second before the server does; without one, a request sent on a
   * connection the server was closing failed now and then with "socket hang up" on a loaded
   * machine. The timeout itself only bounds how long a busy connection may stay silent.
   */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64, timeout: 10 * 60_000 });

  private constructor(
    readonly name: string,
    private readonly child: ChildProcess,
    /** Its REST API, e.g. http://127.0.0.1:41234 (no trailing slash). */
    readonly url: string,
    /**
     * Resolves with the exit code (null after a signal) once the process has ended and all its
     * output is read, so that `output()` then holds its last words.
     */
    readonly exited: Promise<number | null>,
    private readonly tail: string[],
  ) {}

  /** Spawns the worker and resolves once its /health answers 200; rejects with its last output if it exits or stalls first. */
  static async start(options: WorkerProcessOptions): Promise<WorkerProcess> {
    const name = options.name ?? 'worker';
    const logLevel = options.logLevel ?? 'info';
    const port = options.port ?? (LEVELS_LOGGING_START.has(logLevel) ? 0 : await freePort());
    const child = spawn(
      process.execPath,
      [
        ...omnibusNodeFlags(),
        ...(options.nodeFlags ?? []),
        '--import',
        'tsx',
        options.script ?? CLI,
        'start',
        '--store',
        options.store,
        '--listeners',
        `http://127.0.0.1:${port}`,
        ...(options.args ?? []),
      ],
      { cwd: REPO, env: { ...process.env, ...options.env, OMNIBUS_LOG_LEVEL: logLevel }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const tail: string[] = [];
    const logDir = process.env.OMNIBUS_TEST_WORKER_LOGS;
    const logFile = options.logFile ?? (logDir ? `${logDir}/${name}.log` : undefined);
    const log = logFile ? createWriteStream(logFile, { flags: 'a' }) : undefined;
    if (log) child.once('close', () => log.end());
    const remember = (line: string) => {
      log?.write(`${line}\n`);
      tail.push(line);
      if (tail.length > TAIL_LINES) tail.shift();
    };
    // 'close' rather than 'exit': it comes after the last line of output, which errors should carry.
    const exited = new Promise<number | null>((resolve) => child.once('close', (code) => resolve(code)));
    let announce: (url: string) => void = () => {};
    const announced = new Promise<string>((resolve) => (announce = resolve));
    createInterface({ input: child.stderr! }).on('line', remember);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      remember(line);
      const url = startedAt(line);
      if (url) announce(url);
    });

    const deadline = Date.now() + START_TIMEOUT_MS;
    const fail = async (): Promise<never> => {
      const running = child.exitCode === null && child.signalCode === null;
      if (running) child.kill('SIGKILL');
      const code = await exited;
      const why = running ? `did not start within ${START_TIMEOUT_MS / 1000} s` : `exited with ${code ?? child.signalCode} before it started`;
      throw new Error(`${name} ${why}:\n${tail.join('\n')}`);
    };
    const url = port === 0 ? await firstOf(announced, exited, deadline) : `http://127.0.0.1:${port}`;
    if (typeof url !== 'string') return fail();
    const worker = new WorkerProcess(name, child, url, exited, tail);
    for (;;) {
      if (!worker.alive) return fail();
      const health = await worker.request('GET', '/health').catch(() => undefined);
      if (health?.status === 200) return worker;
      if (Date.now() > deadline) return fail();
      await sleep(200);
    }
  }

  /** Kafka's worker_id: the host:port of the URL it advertises (see Worker.workerId in core). */
  get id(): string {
    return new URL(this.url).host;
  }

  get port(): number {
    return Number(new URL(this.url).port);
  }

  get pid(): number {
    return this.child.pid!;
  }

  get alive(): boolean {
    return this.child.exitCode === null && this.child.signalCode === null;
  }

  /** One request; `body` is sent as JSON, or as it is when already a string (serialised ahead of a timed run). */
  request(method: string, path: string, body?: unknown): Promise<JsonResponse> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    const url = new URL(this.url);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: url.hostname,
          port: url.port,
          method,
          path,
          agent: this.agent,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('error', reject);
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            try {
              const json = (res.headers['content-type'] ?? '').includes('json');
              const answer: JsonResponse = { status: res.statusCode ?? 0, body: text === '' ? undefined : json ? (JSON.parse(text) as unknown) : text };
              const retryAfter = res.headers['retry-after'];
              if (retryAfter !== undefined) answer.retryAfter = retryAfter;
              resolve(answer);
            } catch (error) {
              reject(error as Error);
            }
          });
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** `request`, failing with the answer unless it has `status`; resolves with the body. */
  async requestExpecting(method: string, path: string, body: unknown, status: number): Promise<unknown> {
    const response = await this.request(method, path, body);
    if (response.status !== status) {
      throw new Error(`${method} ${path} on ${this.name} answered ${response.status}, not ${status}: ${JSON.stringify(response.body)}`);
    }
    return response.body;
  }

  /** As a crash: no goodbye, its leases and membership are left to expire. */
  async kill(): Promise<void> {
    this.agent.destroy();
    if (this.alive) this.child.kill('SIGKILL');
    await this.exited;
  }

  /** As an operator: SIGTERM (the worker hands its tasks over), SIGKILL if it has not left in time. Resolves with the exit code. */
  async stop(): Promise<number | null> {
    this.agent.destroy();
    if (!this.alive) return this.exited;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), STOP_TIMEOUT_MS);
    try {
      return await this.exited;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The last lines it wrote (stdout and stderr), for the message of a failure. */
  output(): string {
    return this.tail.join('\n');
  }

  /** CPU time it has used so far (user + system, all threads), in seconds; Linux only (/proc). */
  async cpuSeconds(): Promise<number> {
    return cpuSecondsOf(`/proc/${this.pid}/stat`);
  }

  /**
   * CPU time its main thread (the JavaScript event loop) has used so far, in seconds; Linux
   * only. The rest of `cpuSeconds` is other threads: LMDB's writes, the garbage collector's
   * helpers, libuv's pool.
   */
  async mainThreadCpuSeconds(): Promise<number> {
    return cpuSecondsOf(`/proc/${this.pid}/task/${this.pid}/stat`);
  }

  /**
   * Resident set size now and at its peak (VmRSS, VmHWM), in MiB, and what it is made of now:
   * anonymous memory (the heap, buffers: what the process costs the machine) and file-backed
   * pages (code, and LMDB's memory-mapped store file, which the kernel drops under pressure
   * and reads again as needed). Linux only (/proc).
   */
  async memory(): Promise<{ rssMiB: number; peakMiB: number; anonMiB: number; fileMiB: number }> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024, anonMiB: kib('RssAnon') / 1024, fileMiB: kib('RssFile') / 1024 };
  }
}

/** A port nobody listens on right now (whoever asked binds it a moment later). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** The URL of a "worker started" log line (pino JSON), if the line is one. */
function startedAt(line: string): string | undefined {
  try {
    const entry = JSON.parse(line) as { msg?: unknown; url?: unknown };
    return entry.msg === 'worker started' && typeof entry.url === 'string' ? new URL(entry.url).origin : undefined;
  } catch {
    return undefined; // not a log line
  }
}

/** The announced URL, or undefined if the process exits or the deadline passes first. */
async function firstOf(announced: Promise<string>, exited: Promise<unknown>, deadline: number): Promise<string | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timedOut = new Promise<undefined>((resolve) => (timer = setTimeout(() => resolve(undefined), Math.max(0, deadline - Date.now()))));
  try {
    return await Promise.race([announced, exited.then(() => undefined), timedOut]);
  } finally {
    clearTimeout(timer);
  }
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

/** User + system CPU seconds from a /proc stat file (of a process or of one of its threads). */
/** CPU time (user + system, all threads) a process has used so far, in seconds; Linux only. */
export async function processCpuSeconds(pid: number): Promise<number> {
  return cpuSecondsOf(`/proc/${pid}/stat`);
}

async function cpuSecondsOf(statFile: string): Promise<number> {
  const stat = await readFile(statFile, 'utf8');
  // Fields after the command name (which may hold spaces) start after the last ')'.
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
}
