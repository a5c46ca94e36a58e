/**
 * FileSink writes only under the directories of the worker's OMNIBUS_FILE_SINK_ALLOWED_DIRS,
 * whatever a REST caller puts in `file`: no `..`, no absolute path outside, no symbolic link
 * leading out, no directory created outside, and errors that name no path (no oracle for
 * which files exist).
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, linkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { checkWritablePath, ConfigError, startSink, type SinkConnector } from '@omnibus/sdk';
import { FILE_SINK_ALLOWED_DIRS_ENV, FileSink } from '../../src/connectors/file-sink.ts';
import { startTestWorker, type TestWorker } from '../rest/harness.ts';

const scratch = mkdtempSync(join(tmpdir(), 'omnibus-file-sink-sec-'));
const allowed = join(scratch, 'allowed');
const outside = join(scratch, 'outside');
const savedEnv = process.env[FILE_SINK_ALLOWED_DIRS_ENV];
let worker: TestWorker;

beforeAll(async () => {
  worker = await startTestWorker();
});

afterAll(async () => {
  await worker.close();
  rmSync(scratch, { recursive: true, force: true });
});

beforeEach(() => {
  rmSync(allowed, { recursive: true, force: true });
  rmSync(outside, { recursive: true, force: true });
  mkdirSync(allowed, { recursive: true });
  mkdirSync(outside, { recursive: true });
  writeFileSync(join(outside, '.profile'), 'original\n');
  process.env[FILE_SINK_ALLOWED_DIRS_ENV] = allowed;
});

afterEach(() => {
  if (savedEnv === undefined) delete process.env[FILE_SINK_ALLOWED_DIRS_ENV];
  else process.env[FILE_SINK_ALLOWED_DIRS_ENV] = savedEnv;
});

let counter = 0;
async function create(file: string, extra: Record<string, string> = {}) {
  counter += 1;
  const response = await worker.app.inject({
    method: 'POST',
    url: '/connectors',
    payload: { name: `file-${counter}`, config: { 'connector.class': 'FileSink', topics: 'people', file, ...extra } },
  });
  return { status: response.statusCode, body: response.json() as { error_code?: number; message?: string } };
}

async function validateFile(file: string): Promise<string[]> {
  const response = await worker.app.inject({
    method: 'PUT',
    url: '/connector-plugins/FileSink/config/validate',
    payload: { name: 'checked', 'connector.class': 'FileSink', topics: 'people', file },
  });
  expect(response.statusCode).toBe(200);
  const infos = response.json() as { configs: Array<{ value: { name: string; errors: string[] } }> };
  return infos.configs.find((c) => c.value.name === 'file')?.value.errors ?? [];
}

describe('FileSink paths as a REST caller chooses them', () => {
  it('accepts a file inside the allowed directory, creating its directories there', async () => {
    const created = await create(join(allowed, 'a', 'b', 'out.jsonl'));
    expect(created.status).toBe(201);
    expect(await validateFile(join(allowed, 'direct.jsonl'))).toEqual([]);
    // A relative path is taken inside the first allowed directory.
    expect(await validateFile('relative/out.jsonl')).toEqual([]);
  });

  it.each([
    ['an absolute path outside', () => join(outside, 'evil.jsonl')],
    ['a shell profile outside', () => join(outside, '.profile')],
    ['a ".." escape', () => `${allowed}/../outside/evil.jsonl`],
    ['a ".." that stays inside', () => `${allowed}/a/../inside.jsonl`],
    ['a relative ".." escape', () => '../outside/evil.jsonl'],
    ['the allowed directory itself', () => allowed],
    ['a sibling sharing the prefix', () => `${allowed}-sibling/evil.jsonl`],
    ['the root', () => '/'],
  ])('refuses %s with 400, saying why without naming the path', async (_what, path) => {
    const file = path();
    expect(await validateFile(file)).toHaveLength(1);
    const { status, body } = await create(file);
    expect(status).toBe(400);
    expect(body.error_code).toBe(400);
    expect(body.message).toMatch(/The path (must|names)/);
    expect(body.message).not.toContain(scratch);
    expect(readFileSync(join(outside, '.profile'), 'utf8')).toBe('original\n');
    expect(existsSync(join(outside, 'evil.jsonl'))).toBe(false);
    expect(existsSync(`${allowed}-sibling`)).toBe(false);
  });

  it('refuses symbolic links that lead out: a linked directory, a linked file, a dangling link', async () => {
    symlinkSync(outside, join(allowed, 'linked-dir'));
    symlinkSync(join(outside, '.profile'), join(allowed, 'linked-profile'));
    symlinkSync(join(outside, 'not-yet'), join(allowed, 'dangling'));
    for (const file of [join(allowed, 'linked-dir', 'evil.jsonl'), join(allowed, 'linked-dir', 'new', 'deeper', 'evil.jsonl'), join(allowed, 'linked-profile'), join(allowed, 'dangling')]) {
      const { status, body } = await create(file);
      expect(status, file).toBe(400);
      expect(body.message).not.toContain(scratch);
    }
    expect(existsSync(join(outside, 'evil.jsonl'))).toBe(false);
    expect(existsSync(join(outside, 'new'))).toBe(false);
    expect(existsSync(join(outside, 'not-yet'))).toBe(false);
    expect(readFileSync(join(outside, '.profile'), 'utf8')).toBe('original\n');
  });

  it('accepts a link that stays inside, and refuses what is not a regular file of its own', async () => {
    mkdirSync(join(allowed, 'real'));
    symlinkSync(join(allowed, 'real'), join(allowed, 'alias'));
    expect(await validateFile(join(allowed, 'alias', 'out.jsonl'))).toEqual([]);
    mkdirSync(join(allowed, 'a-directory'));
    expect(await validateFile(join(allowed, 'a-directory'))).toEqual([expect.stringContaining('regular file')]);
    execFileSync('mkfifo', [join(allowed, 'a-fifo')]);
    expect(await validateFile(join(allowed, 'a-fifo'))).toEqual([expect.stringContaining('regular file')]);
    // A hard link to a file elsewhere (made by someone with a shell on the host) is not written through.
    linkSync(join(outside, '.profile'), join(allowed, 'hard-link'));
    expect(await validateFile(join(allowed, 'hard-link'))).toEqual([expect.stringContaining('hard links')]);
  });

  it('answers alike for files that exist and files that do not, outside the allowed directories', async () => {
    const existing = await validateFile(join(outside, '.profile'));
    const missing = await validateFile(join(outside, 'no-such-file'));
    const missingDir = await validateFile(join(outside, 'no-such-dir', 'x'));
    expect(existing).toHaveLength(1);
    expect(missing).toEqual(existing);
    expect(missingDir).toEqual(existing);
  });

  it('is refused on a worker whose operator allowed no directory, and a connector key cannot widen the list', async () => {
    delete process.env[FILE_SINK_ALLOWED_DIRS_ENV];
    const { status, body } = await create(join(allowed, 'out.jsonl'));
    expect(status).toBe(400);
    expect(body.message).toContain(`${FILE_SINK_ALLOWED_DIRS_ENV}`);
    process.env[FILE_SINK_ALLOWED_DIRS_ENV] = '  ,  ';
    expect((await create(join(allowed, 'out.jsonl'))).status).toBe(400);
    process.env[FILE_SINK_ALLOWED_DIRS_ENV] = allowed;
    const widened = await create(join(outside, 'evil.jsonl'), { [FILE_SINK_ALLOWED_DIRS_ENV]: outside, 'file.sink.allowed.dirs': outside, 'allowed.dirs': outside });
    expect(widened.status).toBe(400);
  });

  it('lists several directories, separated by commas', () => {
    const second = join(scratch, 'second');
    mkdirSync(second, { recursive: true });
    expect(() => checkWritablePath(join(second, 'x.jsonl'), [allowed, second])).not.toThrow();
    expect(() => checkWritablePath(join(outside, 'x.jsonl'), [allowed, second])).toThrow(/must be inside/);
    expect(() => checkWritablePath(join(scratch, 'gone', 'x.jsonl'), [join(scratch, 'gone')])).toThrow(/does not exist/);
  });
});

describe('other connectors that write files', () => {
  it("hold HelloSink's hello.file to the same directories", async () => {
    const hello = (file: string) =>
      worker.app.inject({ method: 'POST', url: '/connectors', payload: { name: `hello-${++counter}`, config: { 'connector.class': 'HelloSink', topics: 'people', 'hello.file': file } } });
    const refused = await hello(join(outside, 'evil.txt'));
    expect(refused.statusCode).toBe(400);
    expect(refused.json().message).not.toContain(scratch);
    symlinkSync(outside, join(allowed, 'out-link'));
    expect((await hello(join(allowed, 'out-link', 'evil.txt'))).statusCode).toBe(400);
    expect((await hello(join(allowed, 'greetings.txt'))).statusCode).toBe(201);
  });
});

describe('a FileSink task checks its path again when it starts', () => {
  const sink = FileSink as unknown as SinkConnector;

  it('appends where it is allowed to', async () => {
    const file = join(allowed, 'new-dir', 'out.jsonl');
    const harness = await startSink(sink, { topics: 'people', file });
    const [sent] = await harness.send([{ key: 'k', value: { hello: 'world' } }]);
    expect(sent?.outcome).toMatchObject({ status: 'sent' });
    await harness.stop();
    expect(JSON.parse(readFileSync(file, 'utf8').trim())).toMatchObject({ key: 'k', value: { hello: 'world' } });
  });

  it('fails on a worker that allows less than the one that validated the config', async () => {
    const file = join(allowed, 'out.jsonl');
    // Validated on a worker that allows the directory…
    expect(FileSink.validate!(FileSink.config.parse({ file }))).toEqual({});
    // …started on one that does not.
    process.env[FILE_SINK_ALLOWED_DIRS_ENV] = outside;
    const task = FileSink.createTask();
    const started = task.start(FileSink.config.parse({ file }), { connectorName: 'f', taskId: 0, logger: silentLogger, reportDeliveries: async () => undefined });
    await expect(started).rejects.toBeInstanceOf(ConfigError);
    expect(existsSync(file)).toBe(false);
  });

  it('fails when a directory was replaced by a link leading out after validation', async () => {
    mkdirSync(join(allowed, 'logs'));
    const file = join(allowed, 'logs', 'out.jsonl');
    expect(FileSink.validate!(FileSink.config.parse({ file }))).toEqual({});
    rmSync(join(allowed, 'logs'), { recursive: true });
    symlinkSync(outside, join(allowed, 'logs'));
    const task = FileSink.createTask();
    const started = task.start(FileSink.config.parse({ file }), { connectorName: 'f', taskId: 0, logger: silentLogger, reportDeliveries: async () => undefined });
    await expect(started).rejects.toMatchObject({ errors: { file: [expect.stringContaining('symbolic link')] } });
    expect(existsSync(join(outside, 'out.jsonl'))).toBe(false);
  });
});

const silentLogger = {
  debug: () => undefined,
  info: () => undefined,
  warn: () => undefined,
  error: () => undefined,
  child: () => silentLogger,
};
