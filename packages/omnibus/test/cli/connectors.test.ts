// The CLI as an operator uses it: `omnibus start --plugin-path examples` in its own process
// (which must find the third-party HelloSink there), then the `connectors` verbs against it.
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { createServer, type AddressInfo } from 'node:net';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestWorker, type TestWorker } from '../../../core/test/rest/harness.ts';
import type { CliIo } from '../../src/connectors.ts';
import { runCli } from '../../src/main.ts';

const repoRoot = resolve(dirname(fileURLToPath(import.meta.url)), '../../../..');
const mainTs = join(repoRoot, 'packages/omnibus/src/main.ts');
const scratch = mkdtempSync(join(tmpdir(), 'omnibus-cli-'));

let workerProcess: ChildProcess | undefined;
let url = '';
/** A local URL nothing listens on (a port just freed). */
let closedUrl = '';

/** Runs `omnibus <args>` in this process, capturing what it prints. */
async function omnibus(args: string[], env: NodeJS.ProcessEnv = {}, stdin = '') {
  let out = '';
  let err = '';
  const io: CliIo = { out: (t) => void (out += t), err: (t) => void (err += t), env, stdin: () => stdin };
  const code = await runCli(args, io);
  return { code, out, err };
}

function writeJson(name: string, value: unknown): string {
  const file = join(scratch, name);
  writeFileSync(file, typeof value === 'string' ? value : JSON.stringify(value));
  return file;
}

/** Polls until `check` passes (the workers apply a change asynchronously); fails after `ms`. */
async function eventually(check: () => Promise<void>, ms = 20_000): Promise<void> {
  const deadline = Date.now() + ms;
  for (;;) {
    try {
      await check();
      return;
    } catch (error) {
      if (Date.now() > deadline) throw error;
      await new Promise((done) => setTimeout(done, 100));
    }
  }
}

beforeAll(async () => {
  const probe = createServer();
  await new Promise<void>((done) => probe.listen(0, '127.0.0.1', done));
  closedUrl = `http://127.0.0.1:${(probe.address() as AddressInfo).port}`;
  await new Promise((done) => probe.close(done));

  const child = spawn(
    process.execPath,
    ['--import', 'tsx', mainTs, 'start', '--store', `lmdb:${join(scratch, 'data')}`, '--listeners', 'http://127.0.0.1:0', '--plugin-path', join(repoRoot, 'examples')],
    { cwd: repoRoot, env: { ...process.env, OMNIBUS_LOG_LEVEL: 'info' }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  workerProcess = child;
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => void (stderr += chunk.toString()));
  url = await new Promise<string>((done, fail) => {
    const lines = createInterface({ input: child.stdout as NodeJS.ReadableStream });
    lines.on('line', (line) => {
      try {
        const entry = JSON.parse(line) as { msg?: string; url?: string };
        if (entry.msg === 'worker started' && entry.url) done(entry.url);
      } catch {
        // not a log line
      }
    });
    child.once('exit', (code) => fail(new Error(`omnibus start exited with ${code}: ${stderr}`)));
  });
}, 120_000);

afterAll(async () => {
  if (workerProcess && workerProcess.exitCode === null) {
    const exited = new Promise((done) => workerProcess?.once('exit', done));
    workerProcess.kill('SIGTERM');
    await exited;
  }
  rmSync(scratch, { recursive: true, force: true });
});

describe('omnibus start --plugin-path examples', () => {
  it('finds the third-party HelloSink and lists it at GET /connector-plugins', async () => {
    const plugins = (await (await fetch(`${url}/connector-plugins`)).json()) as Array<{ class: string; type: string; version?: string }>;
    expect(plugins).toContainEqual({ class: 'HelloSink', type: 'sink', version: '0.1.0' });
  });
});

describe('omnibus connectors', () => {
  it('lists nothing on a fresh worker', async () => {
    expect(await omnibus(['connectors', 'list', '--url', url])).toEqual({ code: 0, out: 'no connectors\n', err: '' });
  });

  it('applies a {name, config} file: created, then updated', async () => {
    const greetings = join(scratch, 'greetings.txt');
    const file = writeJson('greeter.json', { name: 'greeter', config: { 'connector.class': 'HelloSink', topics: 'people', 'hello.file': greetings } });
    expect(await omnibus(['connectors', 'apply', '-f', file, '--url', url])).toEqual({ code: 0, out: 'connector greeter created\n', err: '' });
    expect((await omnibus(['connectors', 'apply', '-f', file, '--url', url])).out).toBe('connector greeter updated\n');
  });

  it('applies a flat config from standard input, with the URL from OMNIBUS_URL', async () => {
    const flat = JSON.stringify({ name: 'greeter-2', 'connector.class': 'HelloSink', topics: 'people', 'tasks.max': '2' });
    const result = await omnibus(['connectors', 'apply', '-f', '-'], { OMNIBUS_URL: url }, flat);
    expect(result).toEqual({ code: 0, out: 'connector greeter-2 created\n', err: '' });
  });

  it('lists connectors in a table', async () => {
    await eventually(async () => {
      const { code, out } = await omnibus(['connectors', 'list', '--url', url]);
      expect(code).toBe(0);
      const lines = out.trimEnd().split('\n');
      expect(lines[0]).toMatch(/^NAME\s+TYPE\s+CLASS\s+STATE\s+TASKS RUNNING$/);
      expect(lines[1]).toMatch(/^greeter\s+sink\s+HelloSink\s+RUNNING\s+1\/1$/);
      expect(lines[2]).toMatch(/^greeter-2\s+sink\s+HelloSink\s+RUNNING\s+2\/2$/);
    });
  });

  it('shows the status of a connector and its tasks', async () => {
    const { code, out } = await omnibus(['connectors', 'status', 'greeter-2', '--url', url]);
    expect(code).toBe(0);
    const lines = out.trimEnd().split('\n');
    expect(lines[0]).toMatch(/^connector greeter-2 \(sink\): RUNNING on 127\.0\.0\.1:\d+$/);
    expect(lines[1]).toMatch(/^TASK\s+STATE\s+WORKER\s+TRACE$/);
    expect(lines.slice(2).map((l) => l.split(/\s+/).slice(0, 2))).toEqual([
      ['0', 'RUNNING'],
      ['1', 'RUNNING'],
    ]);
  });

  it('pauses and resumes', async () => {
    expect(await omnibus(['connectors', 'pause', 'greeter', '--url', url])).toEqual({ code: 0, out: 'connector greeter: pause requested\n', err: '' });
    await eventually(async () => expect((await omnibus(['connectors', 'status', 'greeter', '--url', url])).out).toMatch(/: PAUSED on/));
    expect((await omnibus(['connectors', 'resume', 'greeter', '--url', url])).code).toBe(0);
    await eventually(async () => expect((await omnibus(['connectors', 'status', 'greeter', '--url', url])).out).toMatch(/: RUNNING on/));
  });

  it('restarts, with --include-tasks showing what restarts', async () => {
    expect(await omnibus(['connectors', 'restart', 'greeter', '--url', url])).toEqual({ code: 0, out: 'connector greeter: restart requested\n', err: '' });
    const { code, out } = await omnibus(['connectors', 'restart', 'greeter', '--include-tasks', '--url', url]);
    expect(code).toBe(0);
    expect(out).toMatch(/^connector greeter: restart requested\nconnector greeter \(sink\): RESTARTING on/);
    expect(out).toMatch(/\n0\s+RESTARTING/);
  });

  it('exits 1 with the server message when the server refuses', async () => {
    const invalid = writeJson('invalid.json', { name: 'broken', 'connector.class': 'HelloSink', 'tasks.max': '0' });
    const refused = await omnibus(['connectors', 'apply', '-f', invalid, '--url', url]);
    expect(refused.code).toBe(1);
    expect(refused.err).toMatch(/^omnibus: Connector configuration is invalid and contains the following 1 error\(s\):/);
    expect(refused.err).toMatch(/\(HTTP 400\)\n$/);
    expect(await omnibus(['connectors', 'pause', 'nope', '--url', url])).toEqual({ code: 1, out: '', err: 'omnibus: Unknown connector nope (HTTP 404)\n' });
  });

  it('deletes', async () => {
    expect(await omnibus(['connectors', 'delete', 'greeter-2', '--url', url])).toEqual({ code: 0, out: 'connector greeter-2 deleted\n', err: '' });
    expect((await omnibus(['connectors', 'status', 'greeter-2', '--url', url])).code).toBe(1);
  });

  it('exits 2 on usage errors, before calling anyone', async () => {
    expect((await omnibus(['connectors', 'status', '--url', url])).code).toBe(2);
    expect((await omnibus(['connectors', 'frobnicate', '--url', url])).code).toBe(2);
    expect((await omnibus(['connectors', 'apply', '--url', url])).code).toBe(2);
    const missing = await omnibus(['connectors', 'apply', '-f', join(scratch, 'missing.json'), '--url', url]);
    expect(missing).toMatchObject({ code: 2, err: expect.stringContaining('ENOENT') });
    expect((await omnibus(['connectors', 'apply', '-f', writeJson('bad.json', '{"name": '), '--url', url])).err).toMatch(/is not JSON/);
    expect((await omnibus(['connectors', 'apply', '-f', writeJson('nameless.json', { topics: 'x' }), '--url', url])).code).toBe(2);
    expect((await omnibus(['connectors', 'apply', '-f', writeJson('array.json', [1]), '--url', url])).code).toBe(2);
  });

  it('exits 0 for --help', async () => {
    const help = await omnibus(['connectors', '--help']);
    expect(help.code).toBe(0);
    expect(help.out).toContain('apply [options]');
  });

  it('exits 3 when the worker cannot be reached', async () => {
    const result = await omnibus(['connectors', 'list', '--url', closedUrl]);
    expect(result.code).toBe(3);
    expect(result.err).toBe(`omnibus: cannot connect to ${closedUrl}: ECONNREFUSED\n`);
    expect((await omnibus(['connectors', 'list', '--url', 'not a url'])).code).toBe(3);
  });
});

describe('omnibus connectors --token', () => {
  let secured: TestWorker;
  let securedUrl = '';
  beforeAll(async () => {
    secured = await startTestWorker({ auth: { bearerTokens: ['cli-token'], basicUsers: [] } });
    securedUrl = await secured.app.listen({ host: '127.0.0.1', port: 0 });
  });
  afterAll(async () => {
    await secured?.close();
  });

  it('sends the bearer token from --token or OMNIBUS_TOKEN', async () => {
    expect(await omnibus(['connectors', 'list', '--url', securedUrl])).toMatchObject({ code: 1, err: 'omnibus: Authentication required (HTTP 401)\n' });
    expect((await omnibus(['connectors', 'list', '--url', securedUrl, '--token', 'cli-token'])).code).toBe(0);
    expect((await omnibus(['connectors', 'list', '--url', securedUrl], { OMNIBUS_TOKEN: 'cli-token' })).code).toBe(0);
  });
});

describe('the omnibus executable', () => {
  const run = (args: string[]) =>
    new Promise<{ code: number | null; stdout: string; stderr: string }>((done) => {
      const child = spawn(process.execPath, ['--import', 'tsx', mainTs, ...args], { cwd: repoRoot, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (c: Buffer) => void (stdout += c.toString()));
      child.stderr.on('data', (c: Buffer) => void (stderr += c.toString()));
      child.on('exit', (code) => done({ code, stdout, stderr }));
    });

  it('exits with the code of the outcome', async () => {
    const [ok, unreachable, usage] = await Promise.all([
      run(['connectors', 'list', '--url', url]),
      run(['connectors', 'list', '--url', closedUrl]),
      run(['connectors', 'status']),
    ]);
    expect(ok).toMatchObject({ code: 0, stdout: expect.stringContaining('greeter') });
    expect(unreachable).toMatchObject({ code: 3, stderr: expect.stringContaining('cannot connect') });
    expect(usage.code).toBe(2);
  });
});
