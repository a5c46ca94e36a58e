// A real worker (LMDB store, reconcile loop, task runners): what its placeholders may read is
// what its settings allow, and no status trace or log line carries a resolved value, whatever
// fails and whoever logs it.
import { mkdirSync, mkdtempSync, readFileSync, realpathSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { TOKENS } from '../../src/worker/di.ts';
import { createLogger } from '../../src/logging.ts';
import type { ConnectorStateInfo } from '../../src/runtime/types.ts';
import { Worker } from '../../src/worker/worker.ts';
import { workerConfigSpec } from '../../src/runtime/worker-config.ts';
import { distributionDir, examplesDir } from '../rest/harness.ts';
import { eventually, FAST_CLUSTER } from '../runtime/helpers.ts';

const COUNT_SECRET = 'Count-Secret-9e9e';
const HOST_SECRET = 'host-secret-5d5d.invalid';
const NOT_ALLOWED_SECRET = 'Not-Allowed-Secret-4c4c';
const WORKER_PASSWORD = 'W0rker-Runtime-Pass-77';
const GREETING = 'Greeting-From-File-2b2b';
const VALUES = [COUNT_SECRET, HOST_SECRET, NOT_ALLOWED_SECRET, WORKER_PASSWORD];

let root: string;
let allowedDir: string;
let workerConfigFile: string;
let logFile: string;
let worker: Worker;

beforeAll(async () => {
  root = realpathSync(mkdtempSync(join(tmpdir(), 'omnibus-secrets-runtime-')));
  allowedDir = join(root, 'secrets');
  mkdirSync(allowedDir);
  writeFileSync(join(allowedDir, 'hello.properties'), `greeting=${GREETING}\n`);
  workerConfigFile = join(root, 'worker.json');
  writeFileSync(workerConfigFile, JSON.stringify({ 'rest.auth.basic.users': `admin:${WORKER_PASSWORD}` }));
  logFile = join(root, 'worker.log');
  process.env.OMNIBUS_SECRETS_TEST_COUNT = COUNT_SECRET;
  process.env.OMNIBUS_SECRETS_TEST_HOST = HOST_SECRET;
  process.env.OMNIBUS_NOT_ALLOWED_SECRET = NOT_ALLOWED_SECRET;

  worker = new Worker(
    workerConfigSpec.parse({
      store: `lmdb:${join(root, 'data')}`,
      listeners: ['http://127.0.0.1:0'],
      // The worker's own logger (stdout); its parts log to the test's file below.
      'log.level': 'warn',
      'plugin.path': [examplesDir],
      'config.providers.file.allowed.paths': [allowedDir],
      'config.providers.env.allowed.names': ['OMNIBUS_SECRETS_TEST_*'],
      ...FAST_CLUSTER,
    }),
    { distributionDirs: [distributionDir] },
  );
  // Every logger of the worker's parts to a file the test reads, scrubbed as the worker's own is.
  const known = worker.container.resolve(TOKENS.knownSecrets);
  worker.container.register(TOKENS.logger, {
    useValue: createLogger({ level: 'debug', destination: logFile, sync: true, scrubLine: (line) => known.scrubLine(line) }),
  });
  await worker.start();
});

afterAll(async () => {
  await worker?.stop();
  delete process.env.OMNIBUS_SECRETS_TEST_COUNT;
  delete process.env.OMNIBUS_SECRETS_TEST_HOST;
  delete process.env.OMNIBUS_NOT_ALLOWED_SECRET;
  rmSync(root, { recursive: true, force: true });
});

const status = (name: string, accept: (s: ConnectorStateInfo) => boolean, what: string) =>
  eventually(() => worker.herder.connectorStatus(name), accept, what);
const failedAll = (s: ConnectorStateInfo) => s.connector.state === 'FAILED' && s.tasks.length > 0 && s.tasks.every((t) => t.state === 'FAILED');
const hello = (name: string, extra: Record<string, string>) => ({ name, 'connector.class': 'HelloSink', topics: 'people', ...extra });

function expectNoValue(text: string): void {
  for (const value of VALUES) {
    expect(text).not.toContain(value);
    expect(text).not.toContain(JSON.stringify(value).slice(1, -1));
  }
}

describe('placeholders under the worker settings', () => {
  it('refuses a name outside config.providers.env.allowed.names and the worker config file, with one answer', async () => {
    await worker.herder.createConnector('env-refused', hello('env-refused', { 'hello.greeting': '${env:OMNIBUS_NOT_ALLOWED_SECRET}' }));
    await worker.herder.createConnector('file-refused', hello('file-refused', { 'hello.greeting': `\${file:${workerConfigFile}:rest.auth.basic.users}` }));
    await worker.herder.createConnector('file-missing', hello('file-missing', { 'hello.greeting': `\${file:${allowedDir}/absent.properties:greeting}` }));
    const traces: string[] = [];
    for (const [name, placeholder] of [
      ['env-refused', '${env:OMNIBUS_NOT_ALLOWED_SECRET}'],
      ['file-refused', `\${file:${workerConfigFile}:rest.auth.basic.users}`],
      ['file-missing', `\${file:${allowedDir}/absent.properties:greeting}`],
    ] as const) {
      const failed = await status(name, failedAll, `${name} to fail`);
      const trace = failed.connector.trace ?? '';
      expect(trace).toContain(`"hello.greeting" uses ${placeholder}, which could not be resolved`);
      expectNoValue(trace);
      for (const task of failed.tasks) expectNoValue(task.trace ?? '');
      traces.push(trace.split('\n')[0]!.replace(placeholder, '<placeholder>'));
    }
    // Refused, or missing: the same words.
    expect(new Set(traces).size).toBe(1);
  });

  it('reads a file under config.providers.file.allowed.paths', async () => {
    await worker.herder.createConnector('file-allowed', hello('file-allowed', { 'hello.greeting': `\${file:${allowedDir}/hello.properties:greeting}` }));
    const running = await status('file-allowed', (s) => s.connector.state === 'RUNNING' && s.tasks.every((t) => t.state === 'RUNNING'), 'file-allowed to run');
    expect(running.tasks).toHaveLength(1);
  });
});

describe('traces and log lines', () => {
  it('a config that resolves to an invalid value fails connector and task with the placeholder in the trace, not the value', async () => {
    // Written straight to the store, as another worker (or an older version) might have: validation never saw it.
    const config = hello('bad-count', { 'tasks.max': '${env:OMNIBUS_SECRETS_TEST_COUNT}' });
    const now = Date.now();
    await worker.store.putConnector({ name: 'bad-count', config, targetState: 'STARTED', taskConfigs: [config], generation: 1, createdAt: now, updatedAt: now });
    await worker.store.bumpConnectorsVersion();
    worker.reconciler.kick();
    const failed = await status('bad-count', failedAll, 'bad-count to fail');
    expect(failed.connector.trace).toContain('${env:OMNIBUS_SECRETS_TEST_COUNT}');
    expect(failed.connector.trace).toContain('tasks.max');
    expectNoValue(failed.connector.trace ?? '');
    expectNoValue(failed.tasks[0]?.trace ?? '');
  });

  it("a connector's own log line with a resolved value carries the placeholder instead", async () => {
    await worker.herder.createConnector('mail', {
      name: 'mail',
      'connector.class': 'EmailSink',
      topics: 'mail',
      'smtp.host': '${env:OMNIBUS_SECRETS_TEST_HOST}',
      'smtp.starttls': 'require',
      'email.from': 'noreply@example.org',
    });
    await status('mail', (s) => s.tasks.length > 0 && s.tasks.every((t) => t.state === 'RUNNING'), 'mail to run');
    const log = await eventually(
      async () => readFileSync(logFile, 'utf8'),
      (text) => text.includes('email task started'),
      'the email task to log its start',
    );
    const started = log.split('\n').find((line) => line.includes('email task started'));
    expect(JSON.parse(started!)).toMatchObject({ host: '${env:OMNIBUS_SECRETS_TEST_HOST}' });
  });

  it("a provider's error that quotes a resolved host is stored and answered with the placeholder", async () => {
    await worker.herder.createConnector('wa-unreachable', {
      name: 'wa-unreachable',
      'connector.class': 'WhatsAppSink',
      topics: 'wa-topic',
      'whatsapp.api.url': 'http://${env:OMNIBUS_SECRETS_TEST_HOST}',
      'whatsapp.phone.number.id': '1234',
      'whatsapp.access.token': 'literal-token-for-a-dead-host',
      'errors.retry.delay.initial.ms': '60000',
    });
    const base = worker.url;
    expect((await fetch(`${base}/topics`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ name: 'wa-topic', shards: 1 }) })).status).toBe(201);
    const produced = await fetch(`${base}/topics/wa-topic/messages`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ messages: [{ key: '+33612345678', value: { to: '+33612345678', type: 'text', text: { body: 'hi' } } }] }),
    });
    expect(produced.status).toBe(202);
    const id = ((await produced.json()) as { messages: Array<{ id: string }> }).messages[0]!.id;
    // The first attempt fails (the host does not resolve) and is recorded as a retry.
    const answer = await eventually(
      async () => (await fetch(`${base}/messages/${id}`)).text(),
      (text) => text.includes('ENOTFOUND'),
      'the failed attempt to be recorded',
    );
    expect(answer).toContain('${env:OMNIBUS_SECRETS_TEST_HOST}');
    expectNoValue(answer);
  });

  it('no log line of the whole run carries a value', async () => {
    const log = readFileSync(logFile, 'utf8');
    expect(log).toContain('task failed');
    expect(log).toContain('config placeholder could not be resolved');
    expectNoValue(log);
    // Every line is still JSON.
    for (const line of log.split('\n').filter(Boolean)) expect(() => JSON.parse(line)).not.toThrow();
  });
});
