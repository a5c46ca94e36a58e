// The served OpenAPI document: it covers Kafka Connect's published spec (every path, method
// and component schema), it describes every route the worker serves, and it is well formed.
import { readFileSync } from 'node:fs';
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { FastifyPluginAsync } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { openApiDocument } from '../../src/rest/openapi.ts';
import { startTestWorker, type TestWorker } from './harness.ts';
import { expectDocumented, templateOf } from './openapi-check.ts';

type Operation = { operationId?: string; responses: Record<string, unknown>; parameters?: Array<{ name: string; in: string }> };
type Document = {
  openapi: string;
  paths: Record<string, Record<string, Operation>>;
  components: { schemas: Record<string, { properties?: Record<string, { writeOnly?: boolean }> }> };
};

const ours = openApiDocument() as unknown as Document;
// Kafka's published spec, kept beside this test (see the fixture's header for its origin).
const kafka = parse(readFileSync(new URL('./fixtures/kafka-connect-openapi.yaml', import.meta.url), 'utf8')) as Document;
const HTTP_METHODS = ['get', 'put', 'post', 'patch', 'delete'];

const isControlCenter = (url: string) => url === '/ui' || url.startsWith('/ui/');
/** `/connectors/:connector/tasks/:task` and `/connectors/{connector}/tasks/{task}` → one shape. */
const shape = (path: string) => path.replace(/\{[^}]+\}|:[^/]+|\*/g, '{}');

describe("coverage of Kafka Connect's published spec", () => {
  it('has every path and method, with the same operation id', () => {
    const missing: string[] = [];
    for (const [path, operations] of Object.entries(kafka.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const mine = ours.paths[path]?.[method];
        if (!mine) missing.push(`${method.toUpperCase()} ${path}`);
        else expect(mine.operationId, `${method} ${path}`).toBe(operation.operationId);
      }
    }
    expect(missing).toEqual([]);
    expect(Object.keys(kafka.paths).length).toBeGreaterThan(20);
  });

  it('has every query and path parameter (and may document more, such as the untyped expand)', () => {
    for (const [path, operations] of Object.entries(kafka.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        const theirs = (operation.parameters ?? []).map((p) => `${p.in}:${p.name}`).sort();
        const mine = (ours.paths[path]?.[method]?.parameters ?? []).map((p) => `${p.in}:${p.name}`).sort();
        expect(mine, `${method} ${path}`).toEqual(expect.arrayContaining(theirs));
      }
    }
  });

  it('has every component schema by name, with every readable property', () => {
    for (const [name, schema] of Object.entries(kafka.components.schemas)) {
      const mine = ours.components.schemas[name];
      expect(mine, name).toBeDefined();
      const readable = Object.entries(schema.properties ?? {})
        .filter(([, p]) => !p.writeOnly)
        .map(([p]) => p);
      expect(Object.keys(mine?.properties ?? {}), name).toEqual(expect.arrayContaining(readable));
    }
  });
});

describe('the document', () => {
  it('is OpenAPI 3.1 whose every $ref resolves and whose schemas all compile', () => {
    expect(ours.openapi).toBe('3.1.0');
    const refs = [...JSON.stringify(ours).matchAll(/"\$ref":"#\/components\/schemas\/([^"]+)"/g)].map((m) => m[1] as string);
    expect(refs.length).toBeGreaterThan(30);
    for (const name of refs) expect(ours.components.schemas[name], name).toBeDefined();
    const ajv = new Ajv2020({ strict: false });
    ajv.addFormat('int32', true).addFormat('int64', true);
    ajv.addSchema({ $id: 'doc.json', components: ours.components });
    for (const name of Object.keys(ours.components.schemas)) {
      expect(() => ajv.getSchema(`doc.json#/components/schemas/${name}`), name).not.toThrow();
    }
  });

  it('documents responses for every operation, and the error body for each 4xx', () => {
    for (const [path, operations] of Object.entries(ours.paths)) {
      for (const [method, operation] of Object.entries(operations)) {
        expect(Object.keys(operation.responses).length, `${method} ${path}`).toBeGreaterThan(0);
        for (const [status, response] of Object.entries(operation.responses)) {
          if (!/^4/.test(status)) continue;
          expect(JSON.stringify(response), `${method} ${path} ${status}`).toContain('#/components/schemas/ErrorMessage');
        }
      }
    }
  });
});

describe('the response checker the route tests use', () => {
  const response = (statusCode: number, body: unknown) => ({ statusCode, body: body === undefined ? '' : JSON.stringify(body), headers: {} });

  it('accepts a documented status with a conforming body', () => {
    expectDocumented('GET', '/connectors/a/status', response(200, { name: 'a', connector: { state: 'RUNNING', worker_id: 'w' }, tasks: [], type: 'sink' }));
    expectDocumented('PUT', '/connectors/a/pause', response(202, undefined));
  });

  it('refuses a body that breaks the schema, an undocumented status and an unknown path', () => {
    expect(() => expectDocumented('GET', '/connectors/a/status', response(200, { name: 'a', connector: { state: 'NAPPING', worker_id: 'w' }, tasks: [], type: 'sink' }))).toThrow();
    expect(() => expectDocumented('GET', '/connectors/a/status', response(200, { name: 'a', tasks: [], type: 'sink' }))).toThrow();
    expect(() => expectDocumented('GET', '/connectors/a/status', response(418, { error_code: 418, message: 'teapot' }))).toThrow();
    expect(() => expectDocumented('GET', '/connectors/a/status', response(404, { message: 'no error_code' }))).toThrow();
    expect(() => expectDocumented('PUT', '/connectors/a/pause', response(202, { unexpected: 'body' }))).toThrow();
    expect(() => expectDocumented('GET', '/nowhere', response(200, {}))).toThrow();
    expect(templateOf('/connectors/a/topics/reset')).toBe('/connectors/{connector}/topics/reset');
  });
});

describe('the routes the worker serves', () => {
  let worker: TestWorker;
  const routes: Array<{ method: string; url: string }> = [];
  const collector: FastifyPluginAsync = async (app) => {
    app.addHook('onRoute', (route) => {
      for (const method of [route.method].flat()) routes.push({ method: method.toLowerCase(), url: route.url });
    });
  };
  Object.assign(collector, { [Symbol.for('skip-override')]: true });

  beforeAll(async () => {
    worker = await startTestWorker({ before: [collector] });
  });
  afterAll(async () => {
    await worker?.close();
  });

  it('are all in the document', () => {
    const documented = new Set(Object.entries(ours.paths).flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${shape(path)}`)));
    // The control center's static files (rest/ui.ts) are pages, not part of the API the document describes.
    const served = routes.filter((r) => HTTP_METHODS.includes(r.method) && !isControlCenter(r.url)).map((r) => `${r.method} ${shape(r.url)}`);
    expect(served.length).toBeGreaterThan(30);
    expect(served.filter((r) => !documented.has(r))).toEqual([]);
  });

  it('serve what the document describes', async () => {
    const served = new Set(routes.map((r) => `${r.method} ${shape(r.url)}`));
    const dataPlane = ['/topics', '/messages/', '/groups/'];
    const undocumentedHere = Object.entries(ours.paths)
      .filter(([path]) => !dataPlane.some((prefix) => path.startsWith(prefix)))
      .flatMap(([path, ops]) => Object.keys(ops).map((m) => `${m} ${shape(path)}`))
      .filter((op) => !served.has(op));
    expect(undocumentedHere).toEqual([]);
  });

  it('GET /openapi.json serves the document', async () => {
    const response = await worker.app.inject({ method: 'GET', url: '/openapi.json' });
    expect(response.statusCode).toBe(200);
    expect(response.json()).toEqual(ours);
  });
});
