/**
 * A worker process as an operator starts one (`omnibus start`), for the benchmark: its REST
 * API, its Prometheus metrics and its memory, read from outside.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { Agent, request as httpRequest } from 'node:http';
import { createServer } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';

const REPO = fileURLToPath(new URL('../../', import.meta.url));
const MAIN = fileURLToPath(new URL('../../packages/core/src/cli/main.ts', import.meta.url));
/** USER_HZ: what /proc/<pid>/stat counts CPU time in (100 on every Linux build that matters). */
const CLOCK_TICKS_PER_SECOND = 100;
export const NULL_SINK_PLUGIN = fileURLToPath(new URL('./null-sink/', import.meta.url));

export interface WorkerProcessOptions {
  store: string;
  /** Extra node flags, e.g. --cpu-prof. */
  nodeFlags?: string[];
  env?: Record<string, string>;
}

export class BenchWorker {
  /** Keep-alive connections, as a real client would use. */
  private readonly agent = new Agent({ keepAlive: true, maxSockets: 64 });

  private constructor(
    readonly child: ChildProcess,
    readonly url: URL,
    private readonly exited: Promise<number | null>,
    private readonly tail: string[],
  ) {}

  static async start(options: WorkerProcessOptions): Promise<BenchWorker> {
    const port = await freePort();
    const child = spawn(
      process.execPath,
      [
        ...(options.nodeFlags ?? []),
        '--import',
        'tsx',
        MAIN,
        'start',
        '--store',
        options.store,
        '--listeners',
        `http://127.0.0.1:${port}`,
        '--plugin-path',
        NULL_SINK_PLUGIN,
      ],
      { cwd: REPO, env: { ...process.env, OMNIBUS_LOG_LEVEL: 'warn', ...options.env }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const tail: string[] = [];
    const remember = (line: string) => {
      tail.push(line);
      if (tail.length > 30) tail.shift();
    };
    const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
    createInterface({ input: child.stderr! }).on('line', remember);
    createInterface({ input: child.stdout! }).on('line', remember);
    const worker = new BenchWorker(child, new URL(`http://127.0.0.1:${port}`), exited, tail);
    const deadline = Date.now() + 120_000;
    for (;;) {
      if (child.exitCode !== null) throw new Error(`worker exited with ${child.exitCode} before it started:\n${tail.join('\n')}`);
      const health = await worker.request('GET', '/health').catch(() => undefined);
      if (health?.status === 200) return worker;
      if (Date.now() > deadline) {
        child.kill('SIGKILL');
        throw new Error(`worker did not start within 120 s:\n${tail.join('\n')}`);
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
  }

  get pid(): number {
    return this.child.pid!;
  }

  /** One HTTP request with a JSON (or pre-serialised) body; resolves with status and parsed body. */
  request(method: string, path: string, body?: unknown): Promise<{ status: number; body: unknown }> {
    const payload = body === undefined ? undefined : typeof body === 'string' ? body : JSON.stringify(body);
    return new Promise((resolve, reject) => {
      const req = httpRequest(
        {
          host: this.url.hostname,
          port: this.url.port,
          method,
          path,
          agent: this.agent,
          headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let parsed: unknown = text;
            if ((res.headers['content-type'] ?? '').includes('json') && text) parsed = JSON.parse(text);
            resolve({ status: res.statusCode ?? 0, body: parsed });
          });
          res.on('error', reject);
        },
      );
      req.on('error', reject);
      req.end(payload);
    });
  }

  async expect(method: string, path: string, body: unknown, status: number): Promise<unknown> {
    const response = await this.request(method, path, body);
    if (response.status !== status) throw new Error(`${method} ${path} answered ${response.status}: ${JSON.stringify(response.body)}`);
    return response.body;
  }

  /** The Prometheus text of GET /metrics. */
  async metrics(): Promise<string> {
    const { body } = await this.request('GET', '/metrics');
    return String(body);
  }

  /** Sum of a metric's samples whose labels include `labels` (e.g. `connector="x"`). */
  async metricSum(name: string, labels = ''): Promise<number> {
    return sumSamples(await this.metrics(), name, labels);
  }

  /** Resident set size now and at its peak (VmRSS, VmHWM), in MiB. */
  async memory(): Promise<{ rssMiB: number; peakMiB: number }> {
    const status = await readFile(`/proc/${this.pid}/status`, 'utf8');
    const kib = (field: string) => Number(new RegExp(`^${field}:\\s+(\\d+)`, 'm').exec(status)?.[1] ?? NaN);
    return { rssMiB: kib('VmRSS') / 1024, peakMiB: kib('VmHWM') / 1024 };
  }

  /** CPU time the process has used so far (user + system, all threads), in seconds. */
  async cpuSeconds(): Promise<number> {
    const stat = await readFile(`/proc/${this.pid}/stat`, 'utf8');
    // Fields after the command name (which may hold spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_SECOND;
  }

  /** SIGTERM, then SIGKILL if it has not left within 20 s. */
  async stop(): Promise<void> {
    this.agent.destroy();
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 20_000);
    await this.exited;
    clearTimeout(timer);
  }

  lastLines(): string {
    return this.tail.join('\n');
  }
}

export function sumSamples(text: string, name: string, labels = ''): number {
  let sum = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    if (rest[0] !== '{' && rest[0] !== ' ') continue;
    if (labels && !rest.includes(labels)) continue;
    sum += Number(line.slice(line.lastIndexOf(' ') + 1));
  }
  return sum;
}

/** A port nobody listens on right now (the worker binds it a moment later). */
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
