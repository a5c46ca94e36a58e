/**
 * Checks a response against the served OpenAPI document: its status must be documented for
 * the operation, and its JSON body must validate against the documented schema (ajv, JSON
 * Schema 2020-12, which is what OpenAPI 3.1 schemas are).
 */
import { Ajv2020 } from 'ajv/dist/2020.js';
import type { ValidateFunction } from 'ajv';
import { expect } from 'vitest';
import { openApiDocument } from '../../src/rest/openapi.ts';

type Operation = { responses: Record<string, { content?: Record<string, { schema: unknown }> }> };
const document = openApiDocument() as { paths: Record<string, Record<string, Operation>>; components: unknown };

const ajv = new Ajv2020({ strict: false, allErrors: true });
ajv.addFormat('int32', { type: 'number', validate: (n: number) => Number.isInteger(n) && n >= -(2 ** 31) && n < 2 ** 31 });
ajv.addFormat('int64', { type: 'number', validate: (n: number) => Number.isSafeInteger(n) });
ajv.addSchema({ $id: 'omnibus.json', components: document.components });

const templates = Object.keys(document.paths).map((template) => ({
  template,
  pattern: new RegExp(`^${template.replace(/\{path\}/g, '.+').replace(/\{[^}]+\}/g, '[^/]+')}$`),
  // The most literal template wins (`/connectors/{c}/topics/reset` over a parameter there).
  weight: template.replace(/\{[^}]+\}/g, '').length,
}));

const compiled = new Map<string, ValidateFunction>();

export function templateOf(pathname: string): string | undefined {
  return templates.filter((t) => t.pattern.test(pathname)).sort((a, b) => b.weight - a.weight)[0]?.template;
}

interface ResponseLike {
  statusCode: number;
  body: string;
  headers: Record<string, unknown>;
}

/** Asserts that `response` to `method url` is what the OpenAPI document promises. */
export function expectDocumented(method: string, url: string, response: ResponseLike): void {
  const pathname = url.split('?')[0] ?? url;
  const template = templateOf(pathname);
  expect(template, `${method} ${pathname} is not in the OpenAPI document`).toBeDefined();
  const operation = document.paths[template as string]?.[method.toLowerCase()];
  expect(operation, `${method} ${template} is not in the OpenAPI document`).toBeDefined();
  const key = String(response.statusCode);
  const documented = (operation as Operation).responses[key] ?? (operation as Operation).responses.default;
  expect(documented, `${method} ${template} answered ${key}, which the document does not list`).toBeDefined();
  const schema = documented?.content?.['application/json']?.schema;
  if (!schema) {
    if (!documented?.content) expect(response.body, `${method} ${template} ${key} has a body the document does not describe`).toBe('');
    return;
  }
  const cacheKey = `${method} ${template} ${key}`;
  let validate = compiled.get(cacheKey);
  if (!validate) {
    validate = ajv.compile(JSON.parse(JSON.stringify(schema).replaceAll('"#/components/', '"omnibus.json#/components/')) as object);
    compiled.set(cacheKey, validate);
  }
  const body = response.body === '' ? undefined : (JSON.parse(response.body) as unknown);
  const valid = validate(body);
  expect(valid ? [] : validate.errors, `${cacheKey}: body ${response.body.slice(0, 500)}`).toEqual([]);
}

export function openApi(): typeof document {
  return document;
}

/** Asserts that `value` validates against the document's component schema `name` (e.g. what a webhook POSTs). */
export function expectSchema(name: string, value: unknown): void {
  const validate = ajv.getSchema(`omnibus.json#/components/schemas/${name}`);
  expect(validate, `no component schema ${name}`).toBeDefined();
  const valid = validate!(value);
  expect(valid ? [] : validate!.errors, `${name}: ${JSON.stringify(value).slice(0, 500)}`).toEqual([]);
}
