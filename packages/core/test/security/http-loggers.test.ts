// PUT /admin/loggers/<name> keeps every logger it creates for the worker's life, so names are
// checked and their number bounded: a caller cannot grow the worker's memory without end.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_API_LOGGERS, MAX_LOGGER_NAME_LENGTH } from '../../src/runtime/logger-registry.ts';
import { startTestWorker, type TestWorker } from '../rest/harness.ts';

let worker: TestWorker;
beforeAll(async () => {
  worker = await startTestWorker();
});
afterAll(async () => worker?.close());

const put = (name: string, level = 'DEBUG') => worker.app.inject({ method: 'PUT', url: `/admin/loggers/${name}`, payload: { level } });

describe('PUT /admin/loggers/{name}', () => {
  it('accepts Java-style and dotted names up to the length limit', async () => {
    for (const name of ['org.apache.kafka.connect.runtime.Worker', 'com.example.Outer$Inner', 'omnibus.connector-1', 'my_logger', 'x'.repeat(MAX_LOGGER_NAME_LENGTH)]) {
      const response = await put(name);
      expect(response.statusCode, name).toBe(200);
      expect(response.json(), name).toContain(name);
    }
  });

  it('refuses malformed or over-long names with 400, creating nothing', async () => {
    for (const name of ['a%20b', 'a..b', '.a', 'a.', '%3Cscript%3E', 'a%2Fb', 'é', 'x'.repeat(MAX_LOGGER_NAME_LENGTH + 1)]) {
      const response = await put(name);
      expect(response.statusCode, name).toBe(400);
      expect(response.json(), name).toMatchObject({ error_code: 400, message: expect.stringContaining('Invalid logger name') });
    }
    const names = Object.keys((await worker.app.inject({ method: 'GET', url: '/admin/loggers' })).json() as object);
    expect(names.some((name) => name.includes('..') || name.length > MAX_LOGGER_NAME_LENGTH || name === 'a b')).toBe(false);
  });

  it(`creates at most ${MAX_API_LOGGERS} loggers, then answers 409; existing loggers and namespaces stay settable`, async () => {
    const before = Object.keys((await worker.app.inject({ method: 'GET', url: '/admin/loggers' })).json() as object).length;
    let created = 0;
    for (let i = 0; created < MAX_API_LOGGERS; i++) {
      const response = await put(`flood.logger${i}`, 'WARN');
      if (response.statusCode === 409) break;
      expect(response.statusCode).toBe(200);
      created += 1;
    }
    const refused = await put('flood.one.more');
    expect(refused.statusCode).toBe(409);
    expect(refused.json()).toMatchObject({ error_code: 409, message: expect.stringContaining(`at most ${MAX_API_LOGGERS}`) });
    const after = Object.keys((await worker.app.inject({ method: 'GET', url: '/admin/loggers' })).json() as object).length;
    expect(after - before).toBeLessThanOrEqual(MAX_API_LOGGERS);
    expect(after).toBeLessThanOrEqual(before + MAX_API_LOGGERS);

    expect((await put('flood.logger1', 'ERROR')).statusCode).toBe(200);
    expect((await put('flood', 'INFO')).statusCode).toBe(409);
    expect((await put('root', 'INFO')).statusCode).toBe(200);
    expect((await put('omnibus.rest', 'INFO')).statusCode).toBe(200);
    // The runtime's own loggers are never refused.
    expect(worker.loggers.get('omnibus.after.the.limit').level).toBe('info');
  });
});
